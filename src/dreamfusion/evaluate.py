"""Ground-truth scores of a generated mesh (docs/TOYWORLD.md, "What counts as a
correct result"): volume IoU against the six true shapes, shape retrieval, colours.

Voxel grids follow ``toyworld.world.grid_points``: [i, j, k] is (x_i, y_j, z_k).
"""
from __future__ import annotations

import functools
import math

import numpy as np
import trimesh

from .surface_metrics import surface_scores
from .toyworld.captions import Caption
from .toyworld.geometry import occupancy_grid
from .toyworld.world import COLORS, FRONT_COS, SHAPES

__all__ = ["voxelize_mesh", "volume_iou", "nearest_color", "score_mesh", "mesh_face_colors",
           "turned_back"]

# deterministic sub-cell shift of the ray columns, so no ray passes exactly through a
# mesh edge or vertex (marching-cubes vertices lie on grid lines) and is counted twice
_RAY_SHIFT = 1e-6 * np.array([math.pi, math.e])
_PAIR_BUDGET = 1 << 21  # (triangle, column) candidate pairs tested at once
_GREY = 0.5


def _cell_centres(res: int, bound: float) -> np.ndarray:
    """(res,) cell centre coordinates along one axis, as grid_points."""
    return (np.arange(res, dtype=np.float64) + 0.5) / res * 2 * bound - bound


def _column_ranges(lo: np.ndarray, hi: np.ndarray, res: int, bound: float, shift: float):
    """First index and count (T,) of the columns c_i + shift inside [lo, hi] (T,)."""
    h = 2.0 * bound / res
    first = np.ceil((lo - shift + bound) / h - 0.5).astype(np.int64)
    last = np.floor((hi - shift + bound) / h - 0.5).astype(np.int64)
    first, last = np.clip(first, 0, res), np.clip(last, -1, res - 1)
    return first, np.maximum(last - first + 1, 0)


def _ray_hits(tris: np.ndarray, res: int, bound: float) -> tuple[np.ndarray, np.ndarray]:
    """Crossings of the +z column rays with triangles (T, 3, 3).

    Returns (column index i * res + j, z of the crossing), both (H,). Candidate
    (triangle, column) pairs come from each triangle's xy bounding box, then an exact
    barycentric test in the xy plane keeps the hits.
    """
    sx, sy = _RAY_SHIFT
    xy = tris[:, :, :2]
    i0, ni = _column_ranges(xy[:, :, 0].min(1), xy[:, :, 0].max(1), res, bound, sx)
    j0, nj = _column_ranges(xy[:, :, 1].min(1), xy[:, :, 1].max(1), res, bound, sy)
    counts = ni * nj
    keep = np.nonzero(counts)[0]
    cols_out, z_out = [], []
    # split the triangles so each chunk tests about _PAIR_BUDGET pairs
    csum = np.cumsum(counts[keep])
    bounds = np.searchsorted(csum, np.arange(_PAIR_BUDGET, csum[-1] if len(csum) else 0, _PAIR_BUDGET))
    for chunk in np.split(keep, bounds):
        if len(chunk) == 0:
            continue
        c, zc = _chunk_hits(tris[chunk], i0[chunk], ni[chunk], j0[chunk], nj[chunk], res, bound)
        cols_out.append(c)
        z_out.append(zc)
    if not cols_out:
        return np.zeros(0, np.int64), np.zeros(0)
    return np.concatenate(cols_out), np.concatenate(z_out)


def _chunk_hits(tris, i0, ni, j0, nj, res, bound):
    """_ray_hits for one chunk of triangles (T, 3, 3) with their column boxes (T,)."""
    counts = ni * nj
    t = np.repeat(np.arange(len(tris)), counts)
    r = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    ci = i0[t] + r // nj[t]
    cj = j0[t] + r % nj[t]
    centres = _cell_centres(res, bound)
    px, py = centres[ci] + _RAY_SHIFT[0], centres[cj] + _RAY_SHIFT[1]
    a, b, c = tris[t, 0], tris[t, 1], tris[t, 2]  # (P, 3) each
    # signed doubled areas of the sub-triangles opposite each corner, in xy
    w_a = (b[:, 0] - px) * (c[:, 1] - py) - (c[:, 0] - px) * (b[:, 1] - py)
    w_b = (c[:, 0] - px) * (a[:, 1] - py) - (a[:, 0] - px) * (c[:, 1] - py)
    w_c = (a[:, 0] - px) * (b[:, 1] - py) - (b[:, 0] - px) * (a[:, 1] - py)
    total = w_a + w_b + w_c
    hit = (total != 0) & (
        ((w_a >= 0) & (w_b >= 0) & (w_c >= 0)) | ((w_a <= 0) & (w_b <= 0) & (w_c <= 0))
    )
    z = (w_a * a[:, 2] + w_b * b[:, 2] + w_c * c[:, 2])[hit] / total[hit]
    return (ci * res + cj)[hit], z


def voxelize_mesh(mesh: trimesh.Trimesh, res: int = 64, bound: float = 1.0) -> np.ndarray:
    """bool (res, res, res) occupancy of a closed mesh at ``grid_points(res, bound)``.

    Ray parity: a +z ray per (x_i, y_j) column; the point (x_i, y_j, z_k) is inside
    when an odd number of the column's crossings have z < z_k.
    """
    tris = np.asarray(mesh.triangles, dtype=np.float64).reshape(-1, 3, 3)
    if len(tris) == 0:
        return np.zeros((res, res, res), dtype=bool)
    cols, z = _ray_hits(tris, res, bound)
    # crossing below z_k for every k >= first index with z_k > z: count, then cumsum
    zs = _cell_centres(res, bound)
    first = np.searchsorted(zs, z, side="right")
    counts = np.zeros((res * res, res + 1), dtype=np.int32)
    np.add.at(counts, (cols, first), 1)
    parity = np.cumsum(counts[:, :res], axis=1) % 2
    return parity.reshape(res, res, res).astype(bool)


def volume_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two bool grids of the same shape (1.0 if both empty)."""
    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"grids differ in shape: {a.shape} vs {b.shape}")
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def nearest_color(rgb) -> str:
    """Name in COLORS nearest to an RGB triple in [0, 1] (Euclidean distance)."""
    x = np.asarray(rgb, dtype=np.float64).reshape(3)
    names = list(COLORS)
    table = np.array([COLORS[n] for n in names])
    return names[int(np.argmin(((table - x) ** 2).sum(1)))]


@functools.lru_cache(maxsize=32)
def _true_occupancy(shape: str, res: int) -> np.ndarray:
    """Read-only cached ground truth bool (res, res, res) over [-1, 1]^3."""
    occ = np.asarray(occupancy_grid(shape, res=res, bound=1.0), dtype=bool).copy()
    occ.setflags(write=False)
    return occ


FOURFOLD_SHAPES = ("cube", "pyramid")
"""Shapes whose rotation about y is left free by the toy world's view labels."""


def best_yaw_iou(vox: np.ndarray, shape: str, res: int, step_deg: float = 5.0
                 ) -> tuple[float, float]:
    """Diagnostic, not a score: (IoU, angle) of the true shape turned about y by the
    angle in [0, 90) that fits `vox` best. Tells a rotated but well-formed cube or
    pyramid from a badly formed one."""
    from .canonical import turn_points_about_y
    from .toyworld.geometry import inside
    from .toyworld.world import grid_points
    pts = grid_points(res, 1.0).reshape(-1, 3)
    best = (-1.0, 0.0)
    for deg in np.arange(0.0, 90.0, step_deg):
        # Turn the query points by -angle: the shape is then turned by +angle.
        turned = turn_points_about_y(pts, float(deg))
        occ = inside(shape, turned).reshape(res, res, res).numpy()
        best = max(best, (volume_iou(vox, occ), float(deg)))
    return best


def mesh_face_colors(mesh: trimesh.Trimesh) -> np.ndarray:
    """(F, 3) float face albedo in [0, 1]: mean of the face's vertex colours.

    Meshes with face colours use them; texture visuals are baked to colours first;
    meshes without colours count as grey 0.5.
    """
    nf = len(mesh.faces)
    visual = mesh.visual
    kind = getattr(visual, "kind", None)
    if kind == "texture":
        try:
            visual = visual.to_color()
            kind = visual.kind
        except Exception:
            kind = None
    if kind == "vertex":
        vc = np.asarray(visual.vertex_colors, dtype=np.float64)[:, :3] / 255.0
        return vc[np.asarray(mesh.faces)].mean(axis=1)
    if kind == "face":
        return np.asarray(visual.face_colors, dtype=np.float64)[:, :3] / 255.0
    return np.full((nf, 3), _GREY)


def _weighted_mean(colors: np.ndarray, weights: np.ndarray) -> list[float] | None:
    """Weighted mean RGB as a list, or None when the weights are all zero."""
    total = float(weights.sum())
    if total <= 0:
        return None
    return [float(v) for v in (colors * weights[:, None]).sum(0) / total]


def turned_back(mesh: trimesh.Trimesh, turn_deg: float) -> trimesh.Trimesh:
    """`mesh` turned about y so as to undo the export's turn snap of `turn_deg`
    (metrics.json's turn_snapped_deg): the field as it was trained."""
    import torch

    from .canonical import turn_points_about_y
    verts = torch.as_tensor(np.asarray(mesh.vertices), dtype=torch.float64)
    return trimesh.Trimesh(turn_points_about_y(verts, turn_deg).numpy(), mesh.faces,
                           process=False)


def score_mesh(mesh: trimesh.Trimesh, caption: Caption, res: int = 64,
               turn_deg: float = 0.0) -> dict:
    """JSON-serialisable ground-truth scores of ``mesh`` for ``caption``.

    Keys: iou (vs the caption's shape, as exported), iou_unsnapped (the same with the
    export's turn snap `turn_deg` undone: no alignment), iou_by_shape (all six), retrieved_shape,
    shape_correct, mean_color (area-weighted RGB of the whole surface), color_name,
    color_correct (whole surface nearest the body colour). For front-coloured captions
    also body_color / body_color_name (surface off the front, n_z < FRONT_COS; then
    color_correct is about this part), front_color / back_color (n_z >= FRONT_COS,
    resp. <= -FRONT_COS; None if no face points that way), front_color_name,
    back_color_name, front_correct, back_correct (back nearest the body colour) and
    janus (back nearest the front colour). And the surface's cleanness, as exported
    (surface_metrics.surface_scores): chamfer, fscore (at 0.02), normal_angle_deg,
    shells, euler.
    """
    obj = caption.obj
    vox = voxelize_mesh(mesh, res=res, bound=1.0)
    iou_by_shape = {s: volume_iou(vox, _true_occupancy(s, res)) for s in SHAPES}
    retrieved = max(SHAPES, key=lambda s: iou_by_shape[s])

    face_rgb = mesh_face_colors(mesh)
    area = np.asarray(mesh.area_faces, dtype=np.float64) if len(mesh.faces) else np.zeros(0)
    mean = _weighted_mean(face_rgb, area) or [_GREY] * 3
    out: dict = {
        "iou": iou_by_shape[obj.shape],
        "iou_unsnapped": (volume_iou(voxelize_mesh(turned_back(mesh, turn_deg), res=res),
                                     _true_occupancy(obj.shape, res)) if turn_deg
                          else iou_by_shape[obj.shape]),
        "iou_by_shape": iou_by_shape,
        "retrieved_shape": retrieved,
        "shape_correct": retrieved == obj.shape,
        "mean_color": mean,
        "color_name": nearest_color(mean),
        "color_correct": nearest_color(mean) == obj.color,
    }
    if obj.shape in FOURFOLD_SHAPES:
        out["iou_best_yaw"], out["best_yaw_deg"] = best_yaw_iou(vox, obj.shape, res)
    out.update(surface_scores(mesh, obj.shape))
    if obj.front_color is None:
        return out

    # the true object is body-coloured everywhere but its front (n_z >= FRONT_COS)
    nz = np.asarray(mesh.face_normals, dtype=np.float64)[:, 2] if len(mesh.faces) else area
    front = _weighted_mean(face_rgb, area * (nz >= FRONT_COS))
    back = _weighted_mean(face_rgb, area * (nz <= -FRONT_COS))
    body = _weighted_mean(face_rgb, area * (nz < FRONT_COS)) or mean
    front_name = nearest_color(front) if front is not None else None
    back_name = nearest_color(back) if back is not None else None
    out.update(
        body_color=body,
        body_color_name=nearest_color(body),
        color_correct=nearest_color(body) == obj.color,
        front_color=front,
        back_color=back,
        front_color_name=front_name,
        back_color_name=back_name,
        front_correct=front_name == obj.front_color,
        back_correct=back_name == obj.color,
        janus=back_name == obj.front_color,
    )
    return out
