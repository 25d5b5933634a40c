"""Where a run's front colour is: the share of the true front (surface with n_z >= cos 45,
read 0.03 inside) whose field albedo is nearest the caption's front colour, overall and
for its upper and lower halves. A continuous reading of what `front_correct` (the mean
colour of the exported mesh's front faces) says as yes or no.

    python benchmarks/front_coverage.py RUN_DIR [RUN_DIR ...]
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from dreamfusion import runs
from dreamfusion.canonical import snap_turn
from dreamfusion.pipeline import load_field
from dreamfusion.toyworld.captions import parse_caption
from dreamfusion.toyworld.geometry import color_tensor, normals, sdf
from dreamfusion.toyworld.world import COLORS, FRONT_COS


def front_points(shape: str, n: int = 200_000) -> tuple[torch.Tensor, torch.Tensor]:
    """Points (P, 3) 0.03 inside the true front of `shape`, and their normals (P, 3)."""
    g = torch.Generator().manual_seed(0)
    p = torch.rand(n, 3, generator=g) * 1.4 - 0.7
    p = p[sdf(shape, p).abs() < 0.01]
    normal = normals(shape, p)
    front = normal[:, 2] >= FRONT_COS
    return p[front] - 0.03 * normal[front], normal[front]


def coverage(run_dir: Path) -> dict:
    cfg = runs.load_config(run_dir)
    obj = parse_caption(cfg.caption).obj
    field = load_field(cfg, run_dir, log=lambda m: None)
    if cfg.export.snap_turn:
        field, _ = snap_turn(field)  # as exported
    points, _ = front_points(obj.shape)
    with torch.no_grad():
        albedo = field.albedo(points.to(field.device)).cpu()
    names = list(COLORS)
    table = torch.stack([color_tensor(n) for n in names])
    nearest = ((albedo[:, None] - table[None]) ** 2).sum(-1).argmin(1)
    right = (nearest == names.index(obj.front_color)).float()
    upper = points[:, 1] > points[:, 1].median()
    gt = json.loads((run_dir / "metrics.json").read_text()).get("ground_truth", {})
    return {"caption": cfg.caption, "front_correct": gt.get("front_correct"),
            "all": float(right.mean()), "upper": float(right[upper].mean()),
            "lower": float(right[~upper].mean())}


def main() -> None:
    print("| caption | front right (mesh) | coverage | upper half | lower half |")
    print("|---|---|---:|---:|---:|")
    for arg in sys.argv[1:]:
        c = coverage(Path(arg))
        print(f"| {c['caption']} | {c['front_correct']} | {c['all']:.2f} | {c['upper']:.2f} "
              f"| {c['lower']:.2f} |")


if __name__ == "__main__":
    main()
