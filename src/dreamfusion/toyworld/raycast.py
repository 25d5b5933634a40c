"""Exact ray casting of the toy world's convex shapes (all but the torus).

Each convex shape is the intersection of a few half-spaces n.p <= c and, for the round
ones, one convex quadric solid. A ray enters a convex solid where it crosses one of these
boundaries against its outward normal at a point inside all the others, so the hit is
the nearest such crossing: a handful of closed-form candidates per ray, where the sphere
tracer (render.trace, the reference twin, tested against this) marches up to 100 sdf
steps. Hit points lie on the surface and their normals are the pieces' own.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor

from .geometry import (
    CONE_R,
    CUBE_HALF,
    CYL_HALF_H,
    CYL_R,
    HALF_H,
    PYR_HALF,
    SPHERE_R,
)

INSIDE_EPS = 1e-5
"""A candidate point counts as inside a piece within this (world units): points on an
edge belong to both of its faces, whatever float32 rounds."""


def _planes(*rows: tuple[float, float, float, float]) -> Tensor:
    """(P, 4) half-spaces n.p <= c as rows (nx, ny, nz, c), n unit."""
    return torch.tensor(rows, dtype=torch.float32)


_PYR_SLANT = math.hypot(2 * HALF_H, PYR_HALF)
_PN, _PY = 2 * HALF_H / _PYR_SLANT, PYR_HALF / _PYR_SLANT  # side normals (+-_PN, _PY, 0)
_POFF = _PY * HALF_H  # the side planes pass through the apex (0, h, 0)
_CONE_K = CONE_R / (2 * HALF_H)  # the cone: rho <= k (h - y)

PLANES = {
    "sphere": _planes(),
    "cube": _planes(*[(s * (i == 0), s * (i == 1), s * (i == 2), CUBE_HALF)
                      for i in range(3) for s in (1.0, -1.0)]),
    "cylinder": _planes((0, 1, 0, CYL_HALF_H), (0, -1, 0, CYL_HALF_H)),
    "cone": _planes((0, -1, 0, HALF_H), (0, 1, 0, HALF_H)),  # y <= h: not the upper nappe
    "pyramid": _planes((_PN, _PY, 0, _POFF), (-_PN, _PY, 0, _POFF), (0, _PY, _PN, _POFF),
                       (0, _PY, -_PN, _POFF), (0, -1, 0, HALF_H)),
}


def _roots(a: Tensor, b: Tensor, c: Tensor) -> Tensor:
    """(N, 2) real roots of a t^2 + 2 b t + c = 0 (nan where none), by the stable form."""
    disc = b * b - a * c
    root = disc.clamp(min=0.0).sqrt()
    q = -(b + torch.where(b >= 0, root, -root))  # no cancellation
    r1 = torch.where(q != 0, c / q, torch.zeros_like(q))
    r2 = q / torch.where(a != 0, a, torch.full_like(a, float("nan")))
    out = torch.stack([r1, r2], dim=1)
    return torch.where((disc >= 0)[:, None], out, torch.full_like(out, float("nan")))


def _sphere(o: Tensor, d: Tensor) -> Tensor:
    return _roots((d * d).sum(-1), (o * d).sum(-1), (o * o).sum(-1) - SPHERE_R**2)


def _cylinder(o: Tensor, d: Tensor) -> Tensor:
    a = d[:, 0] ** 2 + d[:, 2] ** 2
    b = o[:, 0] * d[:, 0] + o[:, 2] * d[:, 2]
    return _roots(a, b, o[:, 0] ** 2 + o[:, 2] ** 2 - CYL_R**2)


def _cone(o: Tensor, d: Tensor) -> Tensor:
    # x^2 + z^2 - k^2 (h - y)^2 = 0: both nappes; the inside test keeps the lower one.
    k2, u = _CONE_K**2, HALF_H - o[:, 1]
    a = d[:, 0] ** 2 + d[:, 2] ** 2 - k2 * d[:, 1] ** 2
    b = o[:, 0] * d[:, 0] + o[:, 2] * d[:, 2] + k2 * u * d[:, 1]
    return _roots(a, b, o[:, 0] ** 2 + o[:, 2] ** 2 - k2 * u * u)


def _rho(p: Tensor) -> Tensor:
    return torch.sqrt(p[:, 0] ** 2 + p[:, 2] ** 2)


# Per round shape: the ray's two roots (N, 2) against the quadric surface (nan where
# none), a signed inside test (<= 0 inside) and the outward gradient, of points (N, 3).
QUADRICS: dict[str, tuple[Callable, Callable, Callable]] = {
    "sphere": (_sphere, lambda p: p.norm(dim=-1) - SPHERE_R, lambda p: p),
    "cylinder": (_cylinder, lambda p: _rho(p) - CYL_R,
                 lambda p: p * torch.tensor([1.0, 0.0, 1.0])),
    "cone": (_cone, lambda p: _rho(p) - _CONE_K * (HALF_H - p[:, 1]),
             lambda p: torch.stack([p[:, 0], _CONE_K * _rho(p), p[:, 2]], dim=1)),
}

CONVEX = tuple(PLANES)
"""The shapes cast exactly here; the torus is sphere-traced."""


def _slab(o: Tensor, d: Tensor, planes: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Where rays o, d (N, 3) are inside all half-spaces (P, 4): entry t (N,) (-inf if
    P = 0), exit t (N,) (empty where exit < entry) and the entered plane's index (N,).
    Each plane the ray crosses against its normal bounds the entry, along it the exit
    (Cyrus-Beck clipping)."""
    N = o.shape[0]
    if planes.shape[0] == 0:
        inf = torch.full((N,), float("inf"), dtype=o.dtype)
        return -inf, inf, torch.zeros(N, dtype=torch.long)
    den = d @ planes[:, :3].T  # (N, P)
    num = planes[:, 3] - o @ planes[:, :3].T  # >= 0: the origin inside
    t = num / den
    inf = torch.tensor(float("inf"), dtype=o.dtype)
    t_in, which = torch.where(den < 0, t, -inf).max(dim=1)
    t_out = torch.where(den > 0, t, inf).min(dim=1).values
    parallel_out = ((den == 0) & (num < 0)).any(dim=1)
    return t_in, torch.where(parallel_out, -inf, t_out), which


@torch.no_grad()
def cast(shape: str, o: Tensor, d: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Rays o, d (N, 3), d unit, from outside against a convex ``shape``: hit mask (N,),
    hit points (N, 3) on the surface and outward unit normals (N, 3) there (o and zeros
    where a ray misses)."""
    if shape not in PLANES:
        raise ValueError(f'"{shape}" is not cast exactly: shapes are {", ".join(CONVEX)}')
    planes = PLANES[shape].to(o)
    t_in, t_out, which = _slab(o, d, planes)
    best_t = torch.where((t_in <= t_out) & (t_in > 0), t_in, float("inf"))
    best_n = planes[which, :3] if planes.shape[0] else torch.zeros_like(o)
    quadric = QUADRICS.get(shape)
    if quadric is not None:
        roots, inside_q, grad = quadric
        p = torch.addcmul(o, torch.nan_to_num(best_t, posinf=0.0)[:, None], d)
        best_t = torch.where(inside_q(p) <= INSIDE_EPS, best_t, float("inf"))  # a face's
        ts = roots(o, d)  # entry counts inside the round piece; a root inside the faces
        for j in range(2):
            t = ts[:, j]
            g = grad(torch.addcmul(o, t[:, None], d))
            ok = (t > 0) & ((g * d).sum(-1) < 0)  # entering the round piece
            ok &= (t >= t_in - INSIDE_EPS) & (t <= t_out + INSIDE_EPS)
            better = ok & (t < best_t)
            best_t = torch.where(better, t, best_t)
            best_n = torch.where(better[:, None], g, best_n)
    hit = torch.isfinite(best_t)
    t = torch.where(hit, best_t, torch.zeros_like(best_t))
    normal = best_n / best_n.norm(dim=-1, keepdim=True).clamp(min=1e-12)
    normal = torch.where(hit[:, None], normal, torch.zeros_like(normal))
    return hit, torch.addcmul(o, t[:, None], d), normal
