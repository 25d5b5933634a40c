"""Textureless (white clay, headlight) views of meshes, before and after the refine stage,
one row per mesh, for docs/RESULTS.md.

    python benchmarks/surface_figure.py OUT.png MESH... [--views 4] [--size 128]

Each mesh (a run's mesh.ply, or any file trimesh reads) is drawn flat-shaded by the
refine stage's hard rasteriser, so facets and bumps show as they are, at elevation 20
and `--views` azimuths from 30 degrees, on grey. Rows come in the order given.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import trimesh

from dreamfusion.cameras import ring_cameras
from dreamfusion.config import RefineConfig
from dreamfusion.media import image_grid, write_png
from dreamfusion.mesh_model import SurfaceMesh
from dreamfusion.render import Shading


@torch.no_grad()
def clay_views(path: Path, views: int, size: int) -> torch.Tensor:
    """(views, 3, size, size) textureless renders of the mesh at `path`."""
    mesh = trimesh.load(path, force="mesh", process=False)
    mesh.visual.vertex_colors = np.tile([255, 255, 255, 255], (len(mesh.vertices), 1))
    model = SurfaceMesh.from_trimesh(mesh, RefineConfig())
    cams = ring_cameras(views, el=20.0, fov=34.0, start_az=30.0)  # close around the object
    shading = Shading.lit(cams, textureless=True)
    return model.render(cams, size, shading, torch.full((views, 3), 0.45))["image"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("meshes", nargs="+", type=Path)
    ap.add_argument("--views", type=int, default=4)
    ap.add_argument("--size", type=int, default=128)
    args = ap.parse_args()
    rows = torch.cat([clay_views(p, args.views, args.size) for p in args.meshes])
    write_png(image_grid(rows, nrow=args.views), args.out)
    print(f"wrote {args.out}: {len(args.meshes)} rows of {args.views} views")


if __name__ == "__main__":
    main()
