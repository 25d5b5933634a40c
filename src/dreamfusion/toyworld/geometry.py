"""Exact geometry of the toy world's six shapes (docs/TOYWORLD.md).

Every ``sdf`` here is negative inside, zero exactly on the surface and, outside, equal to
the Euclidean distance to the surface (so it never overshoots in sphere tracing).
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from .captions import ToyObject
from .world import COLORS, FRONT_COS, SHAPES, grid_points

SPHERE_R = 0.5
CUBE_HALF = 0.4
CYL_R, CYL_HALF_H = 0.4, 0.5
CONE_R, HALF_H = 0.5, 0.5  # cone and pyramid: base at y = -0.5, apex at y = +0.5
TORUS_R, TORUS_r = 0.4, 0.15
PYR_HALF = 0.5


def _rho(p: Tensor) -> Tensor:
    """(...,) distance of p (..., 3) from the y axis."""
    return torch.sqrt(p[..., 0] ** 2 + p[..., 2] ** 2)


def _seg_dist2d(px: Tensor, py: Tensor, a: tuple[float, float], b: tuple[float, float]) -> Tensor:
    """(...,) distance of 2D points (px, py) to the segment a-b."""
    bx, by = b[0] - a[0], b[1] - a[1]
    qx, qy = px - a[0], py - a[1]
    h = ((qx * bx + qy * by) / (bx * bx + by * by)).clamp(0.0, 1.0)
    return torch.sqrt((qx - h * bx) ** 2 + (qy - h * by) ** 2)


def _sdf_sphere(p: Tensor) -> Tensor:
    return p.norm(dim=-1) - SPHERE_R


def _sdf_box(p: Tensor) -> Tensor:
    q = p.abs() - CUBE_HALF
    outside = q.clamp(min=0.0).norm(dim=-1)
    return outside + q.max(dim=-1).values.clamp(max=0.0)


def _sdf_cylinder(p: Tensor) -> Tensor:
    dx = _rho(p) - CYL_R
    dy = p[..., 1].abs() - CYL_HALF_H
    outside = torch.sqrt(dx.clamp(min=0.0) ** 2 + dy.clamp(min=0.0) ** 2)
    return outside + torch.maximum(dx, dy).clamp(max=0.0)


def _sdf_cone(p: Tensor) -> Tensor:
    # Exact in the meridian half-plane (rho, y): the profile is the triangle
    # (0,-h) (R,-h) (0,h); its boundary off the axis is the base and the slant.
    rho, y = _rho(p), p[..., 1]
    d = torch.minimum(
        _seg_dist2d(rho, y, (0.0, -HALF_H), (CONE_R, -HALF_H)),
        _seg_dist2d(rho, y, (CONE_R, -HALF_H), (0.0, HALF_H)),
    )
    inside = (y >= -HALF_H) & (rho * (2 * HALF_H) + CONE_R * y <= CONE_R * HALF_H)
    return torch.where(inside, -d, d)


def _sdf_torus(p: Tensor) -> Tensor:
    return torch.sqrt((_rho(p) - TORUS_R) ** 2 + p[..., 1] ** 2) - TORUS_r


# Pyramid side face +x: plane through the apex (0, h, 0) and the base edge x = PYR_HALF.
_PYR_SLANT = math.hypot(2 * HALF_H, PYR_HALF)
_PYR_NX, _PYR_NY = 2 * HALF_H / _PYR_SLANT, PYR_HALF / _PYR_SLANT  # unit normal (nx, ny, 0)
_PYR_OFF = _PYR_NY * HALF_H  # n . apex


def _sdf_pyramid(p: Tensor) -> Tensor:
    # Fold by symmetry into the wedge X >= Z >= 0, where the nearest side face is +x:
    # the triangle apex A = (0, h, 0), base corners (w, -h, +-w).
    ax, az = p[..., 0].abs(), p[..., 2].abs()
    X, Z, y = torch.maximum(ax, az), torch.minimum(ax, az), p[..., 1]
    side = X * _PYR_NX + y * _PYR_NY - _PYR_OFF  # signed distance to the face plane
    below = -(y + HALF_H)  # signed distance to the base plane
    planes = torch.maximum(side, below)  # exact inside a convex solid
    # Outside: distance to the nearest face (side triangle or base square).
    qy = y - side * _PYR_NY  # face-plane projection of the point (its z is Z)
    on_face = (qy >= -HALF_H) & (Z * (2 * HALF_H) <= PYR_HALF * (HALF_H - qy))
    dz = (Z - PYR_HALF).clamp(min=0.0)
    base_edge = torch.sqrt((X - PYR_HALF) ** 2 + below**2 + dz**2)
    ex, ey, ez = PYR_HALF, -2 * HALF_H, PYR_HALF  # slant edge A -> (w, -h, w)
    h = ((X * ex + (y - HALF_H) * ey + Z * ez) / (ex * ex + ey * ey + ez * ez)).clamp(0.0, 1.0)
    slant_edge = torch.sqrt((X - h * ex) ** 2 + (y - HALF_H - h * ey) ** 2 + (Z - h * ez) ** 2)
    tri = torch.where(on_face, side.abs(), torch.minimum(base_edge, slant_edge))
    base = torch.sqrt((X - PYR_HALF).clamp(min=0.0) ** 2 + dz**2 + below**2)
    return torch.where(planes <= 0, planes, torch.minimum(tri, base))


_SDFS = {
    "sphere": _sdf_sphere,
    "cube": _sdf_box,
    "cylinder": _sdf_cylinder,
    "cone": _sdf_cone,
    "torus": _sdf_torus,
    "pyramid": _sdf_pyramid,
}


BOUNDING_RADIUS = {
    "sphere": SPHERE_R,
    "cube": CUBE_HALF * math.sqrt(3.0),
    "cylinder": math.hypot(CYL_R, CYL_HALF_H),
    "cone": math.hypot(CONE_R, HALF_H),
    "torus": TORUS_R + TORUS_r,
    "pyramid": math.sqrt(2 * PYR_HALF**2 + HALF_H**2),
}
"""Radius of the smallest origin-centred sphere holding each shape."""


def sdf(shape: str, p: Tensor) -> Tensor:
    """Signed distance (...,) of points p (..., 3) to ``shape``: < 0 inside, exact."""
    if shape not in _SDFS:
        raise ValueError(f'unknown shape "{shape}": shapes are {", ".join(SHAPES)}')
    return _SDFS[shape](p)


def inside(shape: str, p: Tensor) -> Tensor:
    """(...,) bool: p (..., 3) lies in the solid (surface included)."""
    return sdf(shape, p) <= 0


def occupancy_grid(shape: str, res: int = 64, bound: float = 1.0) -> Tensor:
    """(res, res, res) bool ground-truth occupancy on ``world.grid_points(res, bound)``."""
    return inside(shape, grid_points(res, bound))


_TETRA = torch.tensor([[1.0, -1, -1], [-1, -1, 1], [-1, 1, -1], [1, 1, 1]])


def normals(shape: str, p: Tensor, h: float = 5e-4) -> Tensor:
    """(..., 3) outward unit normals at points p (..., 3) near the surface.

    Tetrahedral finite differences of the sdf (4 evaluations, step ``h``).
    """
    k = _TETRA.to(p)
    vals = sdf(shape, p[..., None, :] + h * k)  # (..., 4)
    g = (vals[..., None] * k).sum(-2)
    return g / g.norm(dim=-1, keepdim=True).clamp(min=1e-12)


def color_tensor(name: str) -> Tensor:
    """(3,) albedo of a colour name."""
    return torch.tensor(COLORS[name], dtype=torch.float32)


def surface_albedo(obj: ToyObject, n: Tensor) -> Tensor:
    """(..., 3) albedo of ``obj`` at surface points with outward normals n (..., 3)."""
    body = color_tensor(obj.color).to(n).expand(n.shape)
    if obj.front_color is None:
        return body
    front = color_tensor(obj.front_color).to(n)
    return torch.where((n[..., 2] >= FRONT_COS)[..., None], front, body)


def volume(shape: str) -> float:
    """Exact volume of ``shape``."""
    vols = {
        "sphere": 4.0 / 3.0 * math.pi * SPHERE_R**3,
        "cube": (2 * CUBE_HALF) ** 3,
        "cylinder": math.pi * CYL_R**2 * 2 * CYL_HALF_H,
        "cone": math.pi * CONE_R**2 * 2 * HALF_H / 3.0,
        "torus": 2 * math.pi**2 * TORUS_R * TORUS_r**2,
        "pyramid": (2 * PYR_HALF) ** 2 * 2 * HALF_H / 3.0,
    }
    if shape not in vols:
        raise ValueError(f'unknown shape "{shape}": shapes are {", ".join(SHAPES)}')
    return vols[shape]
