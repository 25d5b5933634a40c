"""Run `dreamfusion generate` over toy-world captions and print the ground-truth table.

    python benchmarks/toyworld_shapes.py                       # the six single-colour shapes
    python benchmarks/toyworld_shapes.py --janus               # red cube with yellow front, +- view prompts
    python benchmarks/toyworld_shapes.py --captions "a green cone" --seeds 0 1 --jobs 2
    python benchmarks/toyworld_shapes.py --single --seeds 0 1 --jobs 2 --root DIR --keep
    python benchmarks/toyworld_shapes.py --front --seeds 0 1 --jobs 2 --extra=--perp-neg

Each run is the real command line in a subprocess (default preset unless --extra), with
`--jobs` processes side by side (1 torch thread each when jobs > 1: on 2 cores that
gives more runs per minute than one 2-thread process). Prints a Markdown table of the
metrics each run wrote to metrics.json, then a summary (the goal: volume IoU >= 0.7,
right shape, right body colour; for front-coloured captions the front colour, the
Janus failure); the run folders stay under --root.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from dreamfusion.toyworld.captions import single_color_objects
from dreamfusion.toyworld.world import COLORS, SHAPES

SIX = ["a red cube", "a green sphere", "a blue torus", "a yellow cylinder", "an orange cone",
       "a purple pyramid"]
JANUS = [("a red cube with a yellow front", ""),
         ("a red cube with a yellow front", "--no-view-prompts")]


def front_spread() -> list[str]:
    """36 front-coloured captions: every shape with every body colour, the front colour
    a shift of the body's that differs per shape, so each front colour comes 6 times."""
    names = list(COLORS)
    captions = []
    for i, shape in enumerate(SHAPES):
        for j, body in enumerate(names):
            front = names[(j + 1 + i % (len(names) - 1)) % len(names)]
            a, b = ("an" if c[0] in "aeiou" else "a" for c in (body, front))
            captions.append(f"{a} {body} {shape} with {b} {front} front")
    return captions


def run_one(caption: str, seed: int, extra: str, root: Path, threads: int,
            keep: bool = False) -> dict:
    out = root / f"{caption.replace(' ', '-')}-s{seed}{extra.replace(' ', '').replace('-', '_')}"
    if keep and (out / "metrics.json").exists():  # finished by an earlier, interrupted sweep
        metrics = json.loads((out / "metrics.json").read_text())
        return {"caption": caption, "seed": seed, "extra": extra,
                "wall": metrics.get("total_seconds", float("nan")), **metrics}
    cmd = [sys.executable, "-m", "dreamfusion.cli", "generate", caption, "--out", str(out),
           "--seed", str(seed), "--quiet", "--overwrite", *shlex.split(extra)]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads)) if threads else dict(os.environ)
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        return {"caption": caption, "seed": seed, "extra": extra, "error": proc.stderr[-300:]}
    metrics = json.loads((out / "metrics.json").read_text())
    return {"caption": caption, "seed": seed, "extra": extra, "wall": wall, **metrics}


def row(r: dict) -> str:
    if "error" in r:
        return f"| {r['caption']} {r['extra']} | {r['seed']} | failed: {r['error'].strip()} |"
    g = r["ground_truth"]
    front = (f"{g.get('front_color_name')} / {g.get('back_color_name')}"
             if "front_color_name" in g else "-")
    return (f"| {r['caption']} {r['extra']} | {r['seed']} | {g['iou']:.3f} | "
            f"{g.get('iou_unsnapped', g['iou']):.3f} | {g['retrieved_shape']} | {g['color_name']} | {front} | {r['wall']:.0f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--captions", nargs="*", help="captions (default: the six shapes)")
    ap.add_argument("--janus", action="store_true", help="the front-colour pair, +- view prompts")
    ap.add_argument("--single", action="store_true",
                    help="all 36 single-colour captions (every shape in every colour)")
    ap.add_argument("--front", action="store_true",
                    help="36 front-coloured captions (every shape x body colour, fronts spread)")
    ap.add_argument("--keep", action="store_true",
                    help="reuse runs under --root that finished (resume a sweep)")
    ap.add_argument("--seeds", nargs="*", type=int, default=[0])
    ap.add_argument("--extra", default="", help="extra generate options for every run")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--root", type=Path, default=None, help="where run folders go")
    args = ap.parse_args()
    root = args.root or Path(tempfile.mkdtemp(prefix="dreamfusion-bench-"))
    if args.janus:
        specs = [(c, s, e) for c, e in JANUS for s in args.seeds]
    else:
        captions = ([o.text for o in single_color_objects()] if args.single
                    else front_spread() if args.front else args.captions or SIX)
        specs = [(c, s, args.extra) for c in captions for s in args.seeds]
    threads = 1 if args.jobs > 1 else 0
    with ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(lambda sp: run_one(*sp, root, threads, args.keep), specs))
    print(f"runs in {root}; jobs {args.jobs}" + (" (1 thread each)" if threads else ""))
    print()
    print("| caption | seed | volume IoU (as exported) | without turn snap | best shape "
          "| colour | front / back | wall s |")
    print("|---|---:|---:|---:|---|---|---|---:|")
    for r in results:
        print(row(r))
    print()
    print(summary(results))


def summary(results: list[dict]) -> str:
    """Goal counts, mean IoU, per-shape IoU and, where there are fronts, front / Janus."""
    done = [r for r in results if "error" not in r]
    gt = [r["ground_truth"] for r in done]
    goal = [g["iou"] >= 0.7 and g["shape_correct"] and g["color_correct"] for g in gt]
    n = max(len(gt), 1)
    lines = [f"runs {len(results)}, failed {len(results) - len(done)}, goal met "
             f"{sum(goal)} of {len(done)}, mean IoU as exported "
             f"{sum(g['iou'] for g in gt) / n:.3f}, without the turn snap "
             f"{sum(g.get('iou_unsnapped', g['iou']) for g in gt) / n:.3f}"]
    if gt and all(g.get("normal_angle_deg") is not None for g in gt):
        lines.append(f"surfaces (issue 17's goals): mean normal angle "
                     f"{sum(g['normal_angle_deg'] for g in gt) / n:.1f} deg, F-score at 0.02 >= 0.93 "
                     f"in {sum(g['fscore'] >= 0.93 for g in gt)} of {len(gt)}, IoU >= 0.8 in "
                     f"{sum(g['iou'] >= 0.8 for g in gt)} of {len(gt)}")
    fronts = [g for g in gt if "front_correct" in g]
    if fronts:
        lines.append(f"front colour right {sum(g['front_correct'] for g in fronts)} of "
                     f"{len(fronts)}, Janus {sum(g['janus'] for g in fronts)} of {len(fronts)}, "
                     f"back right {sum(g['back_correct'] for g in fronts)} of {len(fronts)}")
    lines += ["", "| shape | goal met | IoU min - max | mean | normal angle (deg) "
              "| F-score at 0.02 | one shell, right Euler |", "|---|---:|---|---:|---:|---:|---:|"]
    for shape in SHAPES:
        rows = [(g, ok) for r, g, ok in zip(done, gt, goal) if r["caption"].split(" with ")[0]
                .endswith(shape)]
        if rows:
            ious = [g["iou"] for g, _ in rows]
            lines.append(f"| {shape} | {sum(ok for _, ok in rows)} / {len(rows)} | "
                         f"{min(ious):.2f} - {max(ious):.2f} | {sum(ious) / len(ious):.3f} | "
                         f"{surface_cells(shape, [g for g, _ in rows])} |")
    return "\n".join(lines)


def surface_cells(shape: str, gt: list[dict]) -> str:
    """Mean normal angle, mean F-score, and clean shells of a shape's runs (metrics.json
    written before the surface metrics existed: dashes)."""
    if not all(g.get("normal_angle_deg") is not None for g in gt):
        return "— | — | —"
    n = len(gt)
    clean = sum(g["shells"] == 1 and g["euler"] == (0 if shape == "torus" else 2) for g in gt)
    return (f"{sum(g['normal_angle_deg'] for g in gt) / n:.1f} | "
            f"{sum(g['fscore'] for g in gt) / n:.2f} | {clean} / {n}")


if __name__ == "__main__":
    main()
