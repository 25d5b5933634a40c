"""How much of a mesh's roughness is the export's? Re-export finished runs with the
density grid blurred before marching cubes, or the mesh Taubin-smoothed after, and score
each against the exact shape (surface_metrics: normal angle, F-score, shells, Euler; and
volume IoU). A question for issue 17 (clean surfaces), not a shipped option.

    python benchmarks/export_smoothing.py RUN_DIR [RUN_DIR ...]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import trimesh
from scipy import ndimage

from dreamfusion import runs
from dreamfusion.evaluate import volume_iou, voxelize_mesh, _true_occupancy
from dreamfusion.export import choose_threshold, density_on_grid
from dreamfusion.mesh import extract_mesh
from dreamfusion.pipeline import load_field
from dreamfusion.surface_metrics import surface_scores
from dreamfusion.toyworld.captions import parse_caption

VARIANTS = ("as exported", "blur 1", "blur 2", "taubin 10", "taubin 50", "blur 1 + taubin 10")


def variant_mesh(density: np.ndarray, threshold: float, name: str, fill: bool) -> trimesh.Trimesh:
    sigma = 2.0 if "blur 2" in name else 1.0 if "blur 1" in name else 0.0
    grid = ndimage.gaussian_filter(density, sigma) if sigma else density
    mesh = extract_mesh(grid, threshold, fill_hidden=fill)
    if "taubin" in name:
        trimesh.smoothing.filter_taubin(mesh, lamb=0.5, nu=-0.53,
                                        iterations=int(name.split("taubin ")[1]))
    return mesh


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dirs", type=Path, nargs="+")
    ap.add_argument("--res", type=int, default=128, help="marching-cubes grid")
    args = ap.parse_args()
    rows = {v: [] for v in VARIANTS}
    for run_dir in args.run_dirs:
        cfg = runs.load_config(run_dir)
        shape = parse_caption(cfg.caption).obj.shape
        field = load_field(cfg, run_dir, log=lambda m: None)
        density = density_on_grid(field, args.res).numpy()
        threshold = choose_threshold(field)
        for name in VARIANTS:
            mesh = variant_mesh(density, threshold, name, cfg.export.fill_hidden)
            s = surface_scores(mesh, shape)
            iou = volume_iou(voxelize_mesh(mesh, res=64, bound=1.0), _true_occupancy(shape, 64))
            rows[name].append((shape, s["normal_angle_deg"], s["fscore"],
                               s["shells"] == 1 and s["euler"] == (0 if shape == "torus" else 2),
                               iou))
        print(f"{run_dir.name}: " + ", ".join(
            f"{n} {rows[n][-1][1]:.1f} deg F {rows[n][-1][2]:.2f}" for n in VARIANTS), flush=True)
    print(f"\n{len(args.run_dirs)} runs\n")
    print("| export | mean normal angle (deg) | F-score at 0.02, mean | F >= 0.93 | one shell, right Euler | mean IoU |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, r in rows.items():
        a = np.array([x[1] for x in r]); f = np.array([x[2] for x in r])
        print(f"| {name} | {a.mean():.1f} | {f.mean():.3f} | {(f >= 0.93).sum()} / {len(r)} | "
              f"{sum(x[3] for x in r)} / {len(r)} | {np.mean([x[4] for x in r]):.3f} |")


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
