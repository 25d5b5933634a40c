"""A prior for the surfaces the views pin least: the refine stage starts from the field's
mesh cut flat at its widest cross-sections near the bottom and near the top (issue 17).

Every training camera sits above the object's base (elevations from -10 deg), so nothing
the guidance sees pins the underside: a stage-1 field often ends with a dome of material
hanging under a flat base, and the refine stage lifts it by about a tenth of its step a
step (docs/DESIGN-NOTES.md, "Where the F-score is lost"). Tops fare little better: seen
from above at 64x64, a cylinder's domed top stays domed. Cut too far, the other way, the
surface grows back, because the missing material shows in the views' silhouettes (a
rounded end only in part: "A flat start for the base and the top"). So the
stage starts from the least the mesh's own shape suggests: everything below the lowest
height at which the horizontal cross-section is (nearly) as wide as it gets in the
bottom band is raised to that height, and likewise from the top down, where that
cross-section is nearly as wide as the object (a base or a lid). A dome under a rim is
cut at the rim; legs or walls of constant width keep their ends; a tip or a rounded end
(a cone's apex, a sphere) is left as the field made it.
"""
from __future__ import annotations

import numpy as np
import trimesh

LEVELS = 32
"""Heights tried across a band."""
MIN_WIDTH = 0.8
"""An end is cut only where its cut is at least this share of the object's widest (a
base or a lid). A sphere's cross-section 15% from its end is 0.71 of its width; over 36
seed-1 fields' ends: spheres 0.69-0.74, tori 0.89-0.92, the bases of cones, pyramids,
cylinders and cubes 0.79-1.00, the tops of cylinders and cubes 0.97-0.99, the tips of
cones and pyramids 0.19-0.23 (docs/DESIGN-NOTES.md)."""


def cross_section_widths(vertices: np.ndarray, edges: np.ndarray, heights: np.ndarray
                         ) -> np.ndarray:
    """(H,) the largest distance from the vertical axis through the bounding box's centre
    of any point where an edge crosses each height (0 where none does).
    vertices (V, 3), edges (E, 2)."""
    centre = (vertices.min(0) + vertices.max(0)) / 2
    a, b = vertices[edges[:, 0]], vertices[edges[:, 1]]
    dy = b[:, 1] - a[:, 1]
    t = (heights[:, None] - a[None, :, 1]) / np.where(dy == 0, np.nan, dy)[None]  # (H, E)
    crosses = (t >= 0) & (t <= 1)  # level edges (t nan) cross nothing
    points = a[None] + t[..., None] * (b - a)[None]  # (H, E, 3)
    radius = np.hypot(points[..., 0] - centre[0], points[..., 2] - centre[2])
    return np.where(crosses, radius, 0.0).max(1)


def cut_height(mesh: trimesh.Trimesh, band: float, top: bool = False,
               tolerance: float = 0.01) -> float:
    """The height nearest the bottom (or the top) within the end `band` (share of the
    mesh's height) whose cross-section is within `tolerance` (relative) of the band's
    widest; the end itself (no cut) where that cross-section is narrower than MIN_WIDTH
    of the whole mesh's widest (a tip or a rounded end)."""
    v = np.asarray(mesh.vertices, dtype=np.float64)
    sign = -1.0 if top else 1.0  # from the top: the same search on the mesh mirrored in y
    v = v * np.array([1.0, sign, 1.0])
    lo, hi = v[:, 1].min(), v[:, 1].max()
    heights = np.linspace(lo, lo + band * (hi - lo), LEVELS)
    widths = cross_section_widths(v, np.asarray(mesh.edges_unique), heights)
    pick = int(np.argmax(widths >= (1 - tolerance) * widths.max()))
    centre = (v.min(0) + v.max(0)) / 2
    widest = np.hypot(v[:, 0] - centre[0], v[:, 2] - centre[2]).max()
    return sign * float(heights[pick] if widths[pick] >= MIN_WIDTH * widest else lo)


def cut_flat(mesh: trimesh.Trimesh, band: float) -> trimesh.Trimesh:
    """A copy whose vertices below the bottom cut_height are raised to it and above the
    top one lowered to it (same faces and colours); band 0 returns an unchanged copy."""
    out = mesh.copy()
    if band > 0:
        v = np.array(out.vertices)
        v[:, 1] = np.clip(v[:, 1], cut_height(mesh, band), cut_height(mesh, band, top=True))
        out.vertices = v
    return out
