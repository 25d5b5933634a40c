"""Forward + backward seconds of the soft rasteriser and of the hard one with antialiased
silhouettes (its silhouette walks from every pair of pixels, and from the rim pixels
alone), on icospheres of growing face counts, alternated in one process.

    python benchmarks/raster_speed.py [--size 64] [--views 2] [--repeats 3]
"""
from __future__ import annotations

import argparse
import time

import torch

from dreamfusion.cameras import ring_cameras
from dreamfusion.hard_raster import (antialias, edge_neighbours, interpolate, rasterize_hard,
                                     silhouette_crossings)
from dreamfusion.mesh_model import icosphere
from dreamfusion.rasterize import RasterSettings, project, rasterize


def soft(v, f, cams, size):
    out = rasterize(project(v, cams), f, torch.ones(len(cams), len(f), 3, 3), size,
                    RasterSettings(1e-4, 1e-2))
    return out["alpha"] * out["values"]


def hard(v, f, cams, size, neighbours, prefilter=True):
    screen = project(v, cams)
    raster = rasterize_hard(screen, f, size)
    rgb, alpha, _ = interpolate(raster, screen, f, torch.ones(len(cams), len(f), 3, 3))
    return antialias(alpha * rgb, silhouette_crossings(raster, screen, f, neighbours, prefilter))


def seconds(fn, v, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        verts = v.clone().requires_grad_(True)
        start = time.perf_counter()
        fn(verts).sum().backward()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--views", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    cams = ring_cameras(args.views, el=20.0)
    print("| faces | soft (s) | hard + AA, walks from every pair (s) | hard + AA (s) | soft / hard |")
    print("|---:|---:|---:|---:|---:|")
    for sub in (2, 3, 4):
        v, f = icosphere(sub, 0.5)
        nb = edge_neighbours(f)
        t_soft = seconds(lambda x: soft(x, f, cams, args.size), v, args.repeats)
        t_plain = seconds(lambda x: hard(x, f, cams, args.size, nb, False), v, args.repeats)
        t_hard = seconds(lambda x: hard(x, f, cams, args.size, nb), v, args.repeats)
        print(f"| {len(f)} | {t_soft:.3f} | {t_plain:.3f} | {t_hard:.3f} | {t_soft / t_hard:.0f}x |",
              flush=True)


if __name__ == "__main__":
    main()
