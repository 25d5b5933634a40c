"""Run the refine stage on finished runs, in process, and score the mesh before and after.

    python benchmarks/refine_probe.py RUN_DIR... [--set refine.steps=300 ...] [--threads 1]

For each run folder (a finished stage-1 run with checkpoint.pt): the initial mesh of the
refine stage (the field's surface, one shell, smoothed) and the refined mesh, each scored
against the exact shape (normal angle, F-score at 0.02, shells, Euler, IoU), with the
refine stage's seconds. A development tool for choosing the stage's settings.
--keep DIR writes each refined mesh to DIR/RUN.ply (for looking at where it misses).

--from-truth starts the stage from the exact shape instead (meshed at
refine.mesh_resolution cells across the field's cube, in the caption's body colour): what
moves it away is the stage's own bias (renderer, prior, regularisers), not stage 1's.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
import trimesh

from dreamfusion import runs
from dreamfusion.config import RunConfig, override
from dreamfusion.guidance.backends import build_backend
from dreamfusion.mesh_model import SurfaceMesh
from dreamfusion.options import parse_set
from dreamfusion.pipeline import ground_truth_metrics, load_field
from dreamfusion.refine import initial_mesh, refine_config
from dreamfusion.surface_metrics import exact_mesh
from dreamfusion.toyworld import COLORS
from dreamfusion.toyworld.captions import parse_caption
from dreamfusion.train import Trainer


def scores(cfg, mesh, turn) -> dict:
    gt = ground_truth_metrics(cfg, mesh, turn)
    return {k: gt.get(k) for k in ("normal_angle_deg", "fscore", "shells", "euler", "iou",
                                   "color_name", "front_color_name", "back_color_name")}


def colours(s: dict) -> str:
    """The body colour, and for a front-coloured caption its front / back colours."""
    if s.get("front_color_name") is None:
        return s["color_name"]
    return f"{s['color_name']} (front {s['front_color_name']} / back {s['back_color_name']})"


def exact_start(cfg) -> trimesh.Trimesh:
    """The caption's exact shape as the refine stage's initial mesh, body-coloured."""
    obj = parse_caption(cfg.caption).obj
    res = round(cfg.refine.mesh_resolution * 1.2 / (2 * cfg.field.bound))  # the same cell size
    mesh = exact_mesh(obj.shape, max(res, 8))
    rgb = np.append(np.round(np.asarray(COLORS[obj.color]) * 255), 255).astype(np.uint8)
    mesh.visual.vertex_colors = np.tile(rgb, (len(mesh.vertices), 1))
    return mesh


def stage_trainer(cfg, mesh: trimesh.Trimesh, device) -> Trainer:
    """A refine-stage trainer of `mesh` (in process, no run folder): the stage's config,
    its prior on `device`, the mesh as a SurfaceMesh."""
    stage = refine_config(cfg)
    return Trainer(stage, build_backend(stage, device), device,
                   model=SurfaceMesh.from_trimesh(mesh, cfg.refine))


def probe(run_dir: Path, changes: dict, from_truth: bool,
          keep: Path | None = None) -> tuple[dict, dict, float]:
    cfg = override(runs.load_config(run_dir), **changes)
    field = load_field(cfg, run_dir, log=lambda s: None)
    start = time.perf_counter()
    mesh, turn = (exact_start(cfg), 0.0) if from_truth else initial_mesh(field, cfg)
    before = scores(cfg, mesh, turn)
    trainer = stage_trainer(cfg, mesh, field.device)
    while trainer.step < trainer.cfg.steps:
        trainer.train_step()
    seconds = time.perf_counter() - start
    refined = trainer.field.to_trimesh()
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        refined.export(keep / f"{run_dir.name}.ply")
    after = scores(cfg, refined, turn)
    return before, after, seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--from-truth", action="store_true",
                    help="start from the exact shape, not the run's field")
    ap.add_argument("--keep", type=Path, help="write each refined mesh to KEEP/RUN.ply")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    changes = parse_set(args.set, RunConfig())
    print("| run | normal angle before -> after | F before -> after | shells | Euler | IoU before -> after | colour | s |")
    print("|---|---|---|---|---|---|---|---:|")
    rows = []
    for run in args.runs:
        b, a, sec = probe(run, changes, args.from_truth, args.keep)
        rows.append((b, a))
        print(f"| {run.name} | {b['normal_angle_deg']:.1f} -> {a['normal_angle_deg']:.1f} "
              f"| {b['fscore']:.3f} -> {a['fscore']:.3f} | {b['shells']} -> {a['shells']} "
              f"| {b['euler']} -> {a['euler']} | {b['iou']:.3f} -> {a['iou']:.3f} "
              f"| {colours(b)} -> {colours(a)} | {sec:.0f} |", flush=True)
    mean = {k: [sum(r[i][k] for r in rows) / len(rows) for i in (0, 1)]
            for k in ("normal_angle_deg", "fscore", "iou")}
    print(f"| mean of {len(rows)} | {mean['normal_angle_deg'][0]:.1f} -> {mean['normal_angle_deg'][1]:.1f} "
          f"| {mean['fscore'][0]:.3f} -> {mean['fscore'][1]:.3f} | | "
          f"| {mean['iou'][0]:.3f} -> {mean['iou'][1]:.3f} | | |")


if __name__ == "__main__":
    main()
