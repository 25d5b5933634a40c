"""Where finished runs lose their F-score: the samples more than 0.02 off, split by the
part of the exact shape they belong to (its base, its top, the rest), and the F-score
each run would have with its base left out.

    python benchmarks/surface_misses.py ROOT_OR_RUN... [--mesh mesh.ply]

ROOT_OR_RUN: run folders (with metrics.json and the exported mesh) or folders of them.
The samples are surface_metrics' (the evaluator's): a mesh sample belongs to the part of
the true sample nearest it. "base" is where the true normal points down (n_y < -0.9),
"top" where it points up (n_y > 0.9).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import trimesh
from scipy.spatial import cKDTree

from dreamfusion.surface_metrics import F_SCORE_TAU, f_score, mesh_surface, true_surface
from dreamfusion.toyworld.captions import parse_caption

PARTS = ("base", "top", "rest")


def misses(mesh: trimesh.Trimesh, shape: str) -> dict:
    """F, F without the base, and per part the share of all mesh / true samples that
    lie in it and miss."""
    true_p, true_n = true_surface(shape)
    mesh_p, _ = mesh_surface(mesh)
    d_mesh, nearest = cKDTree(true_p).query(mesh_p)
    d_true, _ = cKDTree(mesh_p).query(true_p)
    part_true = np.where(true_n[:, 1] < -0.9, 0, np.where(true_n[:, 1] > 0.9, 1, 2))
    part_mesh = part_true[nearest]
    out = {"fscore": f_score(d_mesh, d_true),
           "fscore_without_base": f_score(d_mesh[part_mesh != 0], d_true[part_true != 0])}
    for i, name in enumerate(PARTS):
        out[name] = (float(((d_mesh >= F_SCORE_TAU) & (part_mesh == i)).mean()),
                     float(((d_true >= F_SCORE_TAU) & (part_true == i)).mean()))
    out["lowest"] = float(mesh_p[:, 1].min())
    return out


def run_dirs(paths: list[Path]) -> list[Path]:
    found = []
    for p in paths:
        found += [p] if (p / "metrics.json").exists() else sorted(
            m.parent for m in p.glob("*/metrics.json"))
    return found


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("paths", nargs="+", type=Path)
    ap.add_argument("--mesh", default="mesh.ply", help="the mesh file in each run folder")
    args = ap.parse_args()
    print("| run | F | F without base | base missed (mesh / true) | top missed | rest missed | lowest y |")
    print("|---|---:|---:|---|---|---|---:|")
    rows = []
    for run in run_dirs(args.paths):
        shape = parse_caption(json.loads((run / "metrics.json").read_text())["caption"]).obj.shape
        m = misses(trimesh.load(run / args.mesh, process=False), shape)
        rows.append(m)
        parts = " | ".join(f"{m[k][0]:.3f} / {m[k][1]:.3f}" for k in PARTS)
        print(f"| {run.name} | {m['fscore']:.3f} | {m['fscore_without_base']:.3f} | {parts} "
              f"| {m['lowest']:.3f} |", flush=True)
    if rows:
        print(f"\n{len(rows)} runs: F >= 0.93 in {sum(r['fscore'] >= 0.93 for r in rows)}, "
              f"without the base in {sum(r['fscore_without_base'] >= 0.93 for r in rows)}")


if __name__ == "__main__":
    main()
