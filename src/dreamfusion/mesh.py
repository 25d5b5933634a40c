"""Mesh export: marching cubes of a density grid, vertex colours, GLB/OBJ/PLY files.

Grids follow ``toyworld.world.grid_points``: index [i, j, k] is the cell centre
(x_i, y_j, z_k) with x_i = -bound + (i + 0.5) * 2 * bound / R.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import trimesh
from scipy import ndimage
from skimage import measure
from torch import Tensor

from . import texture

__all__ = ["EmptyFieldError", "NonFiniteFieldError", "extract_mesh", "fill_occluded", "color_vertices",
           "write_meshes"]


class EmptyFieldError(RuntimeError):
    """The field has no density above the threshold, so there is no mesh to extract."""

    def __init__(self, threshold: float | None = None, max_density: float | None = None):
        where = "" if threshold is None else f" {threshold:g}"
        peak = "" if max_density is None else f" (maximum {max_density:g})"
        super().__init__(
            f"the field has no density above the threshold{where}{peak}, "
            "so there is no mesh to extract"
        )
        self.threshold = threshold
        self.max_density = max_density


class NonFiniteFieldError(RuntimeError):
    """The field holds NaN or inf values; a mesh of it would be garbage."""

    def __init__(self):
        super().__init__("the field holds non-finite values (NaN or inf), so no mesh is "
                         "written from it")


def _as_numpy(density: np.ndarray | Tensor) -> np.ndarray:
    """(R, R, R) float64 copy of a grid, NaN treated as empty."""
    if isinstance(density, Tensor):
        density = density.detach().cpu().double().numpy()
    d = np.array(density, dtype=np.float64)
    if d.ndim != 3 or len(set(d.shape)) != 1:
        raise ValueError(f"density must be a cubic (R, R, R) grid, got shape {d.shape}")
    return np.nan_to_num(d, nan=-np.inf)


def _largest_component(occ: np.ndarray) -> np.ndarray:
    """bool (R, R, R): the largest 26-connected component of ``occ``.

    26-connectivity: every dropped voxel is separated from the kept ones by at least
    one empty voxel, so no marching cube touches both and the surfaces stay apart.
    """
    labels, n = ndimage.label(occ, structure=np.ones((3, 3, 3), dtype=bool))
    if n <= 1:
        return occ
    sizes = np.bincount(labels.ravel())[1:]
    return labels == (1 + int(np.argmax(sizes)))


def _axis_blocked(occ: np.ndarray) -> np.ndarray:
    """int8 (R, R, R): of the six axis-aligned rays from each cell, how many meet an
    occupied cell beyond it."""
    count = np.zeros(occ.shape, dtype=np.int8)
    for axis in range(3):
        upto = np.cumsum(occ, axis=axis, dtype=np.int32)  # occupied cells up to and incl.
        total = np.take(upto, [-1], axis=axis)
        count += (upto - occ) > 0  # some occupied cell before this one
        count += (total - upto) > 0  # some occupied cell after it
    return count


def fill_occluded(occ: np.ndarray, min_blocked: int = 5, max_iters: int = 8) -> np.ndarray:
    """bool (R, R, R): ``occ`` with its enclosed cavities filled and, repeatedly, every
    cell added whose axis rays meet the solid in at least ``min_blocked`` of six
    directions (then cavities filled again), until nothing changes.

    A skin with holes (a trained field's inside can be empty, and its underside thin)
    is filled as the solid the renders show; the hole of a ring (four directions) and
    the space beside a convex face (at most three) stay empty. A cup's inside (five)
    would be filled, so real priors keep this off.
    """
    solid = ndimage.binary_fill_holes(occ)
    for _ in range(max_iters):
        grown = ndimage.binary_fill_holes(solid | (_axis_blocked(solid) >= min_blocked))
        if np.array_equal(grown, solid):
            break
        solid = grown
    return solid


def extract_mesh(
    density: np.ndarray | Tensor,
    threshold: float,
    bound: float = 1.0,
    keep_largest: bool = True,
    fill_cavities: bool = True,
    fill_hidden: bool = False,
) -> trimesh.Trimesh:
    """Closed, outward-oriented surface {density = threshold} of a (R, R, R) grid.

    ``density`` is sampled at ``grid_points(R, bound)``. With ``keep_largest`` only the
    largest connected blob of {density > threshold} is meshed (floaters dropped); with
    ``fill_cavities`` empty pockets enclosed by it count as solid, so the mesh is its
    outer surface alone (a field that is opaque at its skin can leave its inside at low
    density: the skin alone renders the same, but marching cubes would add an inner,
    inward-facing shell); with ``fill_hidden`` also the pockets a holed skin hides
    (`fill_occluded`). The grid is padded by one empty cell, so blobs touching the
    border are closed too.
    Returns a mesh with (V, 3) world-space vertices and (F, 3) faces; volume > 0.
    Raises EmptyFieldError when no cell is above the threshold.
    """
    d = _as_numpy(density)
    res = d.shape[0]
    occ = d > threshold
    if not occ.any():
        raise EmptyFieldError(threshold, float(np.max(d)) if d.size else None)

    # any value strictly below the threshold marks "outside"; make everything finite
    fin = d[np.isfinite(d)]
    span = float(np.ptp(fin)) if fin.size else 1.0
    low = threshold - max(1e-3 * (span + abs(threshold)), 1e-6)
    floor = min(low, float(fin.min())) if fin.size else low
    ceil = max(threshold + span + 1.0, float(fin.max()) if fin.size else 0.0)
    d = np.clip(d, floor, ceil)
    if keep_largest:
        occ = _largest_component(occ)
        d = np.where(occ, d, np.minimum(d, low))
    if fill_cavities or fill_hidden:
        high = threshold + max(1e-3 * (span + abs(threshold)), 1e-6)
        solid = fill_occluded(occ) if fill_hidden else ndimage.binary_fill_holes(occ)
        d = np.where(solid & ~occ, np.maximum(d, high), d)
    # pad: the padded cell centres lie one cell outside the grid
    d = np.pad(d, 1, mode="constant", constant_values=floor)

    h = 2.0 * bound / res
    verts, faces, _, _ = measure.marching_cubes(d, level=threshold, allow_degenerate=False)
    # padded index v is original index v - 1, centre at -bound + (v - 1 + 0.5) * h
    verts = -bound + (verts - 0.5) * h
    mesh = trimesh.Trimesh(vertices=verts, faces=faces, process=True)
    if mesh.volume < 0:
        mesh.invert()
    return mesh


def largest_shell(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    """The connected piece of `mesh` with the most faces (the mesh itself when it is one
    piece). Voxels kept as one 26-connected blob can still give marching cubes separate
    pieces where they touch only at an edge or a corner: a refined mesh keeps its pieces
    (its topology is fixed), so it starts from one."""
    parts = mesh.split(only_watertight=False)
    return mesh if len(parts) <= 1 else max(parts, key=lambda part: len(part.faces))


def color_vertices(
    mesh: trimesh.Trimesh,
    albedo_fn: Callable[[Tensor], Tensor],
    inset: float = 0.0,
    chunk: int = 65536,
) -> trimesh.Trimesh:
    """Copy of ``mesh`` with RGBA uint8 vertex colours from ``albedo_fn``.

    ``albedo_fn`` maps (N, 3) float32 points to (N, 3) albedo in [0, 1]; it is
    evaluated at each vertex moved ``inset`` along minus its normal (inside the
    surface, where a radiance field's colour is often cleaner), in chunks.
    """
    out = mesh.copy()
    pts = np.asarray(out.vertices, dtype=np.float64)
    if inset and len(pts):
        pts = pts - inset * np.asarray(out.vertex_normals)
    pts_t = torch.as_tensor(pts, dtype=torch.float32)
    with torch.no_grad():
        parts = [albedo_fn(pts_t[s : s + chunk]) for s in range(0, len(pts_t), chunk)]
    rgb = torch.cat(parts).reshape(-1, 3) if parts else torch.zeros(0, 3)
    rgb = rgb.detach().float().cpu().nan_to_num(0.5).clamp(0.0, 1.0).numpy()
    rgba = np.empty((len(rgb), 4), dtype=np.uint8)
    rgba[:, :3] = np.round(rgb * 255.0).astype(np.uint8)
    rgba[:, 3] = 255
    out.visual = trimesh.visual.ColorVisuals(out, vertex_colors=rgba)
    return out


def _atomic_write(path: Path, data: bytes | str) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_meshes(mesh: trimesh.Trimesh, out_dir: Path, stem: str = "mesh",
                 texture_size: int = 0) -> dict[str, Path]:
    """Write ``mesh`` as {stem}.glb, {stem}.obj and {stem}.ply in ``out_dir``.

    Vertex colours, if any, are kept in the OBJ ("v x y z r g b") and the PLY; the GLB
    keeps them too, unless texture.wanted(mesh, texture_size): then it carries a UV atlas
    and a texture of that size baked from them (texture.py).
    Returns {"glb": path, "obj": path, "ply": path}.
    """
    out_dir = Path(out_dir)
    paths: dict[str, Path] = {}
    for ext in ("glb", "obj", "ply"):
        path = out_dir / f"{stem}.{ext}"
        if ext == "obj":
            data = mesh.export(file_type="obj", include_normals=False, include_texture=False)
        elif ext == "glb" and texture.wanted(mesh, texture_size):
            data = texture.textured(mesh, texture_size).export(file_type="glb")
        else:
            data = mesh.export(file_type=ext)
        _atomic_write(path, data)
        paths[ext] = path
    return paths
