"""The turn of a four-fold object about the vertical axis, and snapping it to the world axes.

The toy prior cannot tell a cube or pyramid from the same object turned about y: every
view label covers a whole period (90 degrees) of its turns, and the front bias of
captions without a suffix is weak (docs/DESIGN-NOTES.md). So the turn a run ends with is
set by its random draws. Snapping rotates the finished field by the turn of its
four-fold mode, so that the faces sit on the world axes as the toy world's objects do;
fields without a clear four-fold mode (spheres, cones, ...) are left as they are.
"""
from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn.functional as F
from torch import Tensor

from .field import GridField
from .toyworld.world import grid_points

SNAP_MIN_AMPLITUDE = 0.05
"""Four-fold amplitude above which a field counts as four-fold: 0.16-0.33 for the cubes and
pyramids of the Table 1 grid, at most 0.04 for its spheres, cylinders, cones and tori (at
most 0.032 for the 30 round seed-1 fields of the single-colour sweep with 2048-photo
banks). 0.05, not 0.1, since session 27: the fuzzy stage-1 yellow cube of seed 1 has
0.066; snapped, its refined mesh reads as a cube (IoU 0.715 -> 0.782), unsnapped as a
sphere."""


def four_fold_mode(density: Tensor, bound: float, threshold: float = 5.0
                   ) -> tuple[float, float, float]:
    """(A, B, turn in degrees) of a density grid (R, R, R) indexed like grid_points.

    Over the occupied cross-section (density above `threshold`, heights y in [-0.45, 0],
    radius above 0.15, weighted by rho^2): A = -<cos 4 phi>, B = -<sin 4 phi> with
    phi = atan2(z, x). A > 0 when the corners sit where the aligned object has them
    (exact aligned pyramid: +0.30), A < 0 when turned by 45 degrees; the object's turn
    is atan2(B, A) / 4, in (-45, 45].
    """
    p = grid_points(density.shape[-1], bound).to(density.device)
    x, y, z = p[..., 0], p[..., 1], p[..., 2]
    rho2 = x * x + z * z
    phi = torch.atan2(z, x)
    weight = ((density > threshold) & (y > -0.45) & (y < 0.0) & (rho2 > 0.15**2)).float() * rho2
    total = weight.sum().clamp(min=1e-9)
    a = float(-(weight * torch.cos(4 * phi)).sum() / total)
    b = float(-(weight * torch.sin(4 * phi)).sum() / total)
    return a, b, math.degrees(math.atan2(b, a)) / 4


def turn_points_about_y(points: Tensor, degrees: float) -> Tensor:
    """Points (..., 3) turned about y: x' = c x - s z, z' = s x + c z."""
    a = math.radians(degrees)
    c, s = math.cos(a), math.sin(a)
    x, z = points[..., 0], points[..., 2]
    return torch.stack([c * x - s * z, points[..., 1], s * x + c * z], dim=-1)


@torch.no_grad()
def turned_field(field: GridField, degrees: float) -> GridField:
    """A copy of `field` turned about y, as single full-resolution grids: its four-fold
    turn (four_fold_mode) is the original's minus `degrees`."""
    cfg = field.cfg
    r = cfg.resolution
    copy = GridField(dataclasses.replace(cfg, density_levels=(r,), albedo_levels=(r,),
                                         blob_density=0.0, mirror_x=False))
    # The copy at p is the original at p turned by the angle.
    back = turn_points_about_y(grid_points(r, cfg.bound).to(field.device), degrees)
    raw = torch.cat([field.density_raw[None], field.albedo_raw])
    coords = (back.reshape(1, r, r, r, 3)[..., [2, 1, 0]] / cfg.bound)
    # grid_sample's output (1, C, D, H, W) follows coords' (r, r, r) = our (x, y, z) order.
    out = F.grid_sample(raw[None], coords, mode="bilinear", padding_mode="border",
                        align_corners=False)[0]
    copy.density_levels[0].copy_(out[0])
    copy.albedo_levels[0].copy_(out[1:])
    return copy.to(field.device)


def snap_turn(field) -> tuple:
    """(field turned so that its four-fold mode is aligned, the turn it had in degrees);
    the model itself and 0.0 when it has no clear four-fold mode, or its own `turned`
    when it is a mesh model (0 for CLIP-Mesh's sphere)."""
    if not isinstance(field, GridField):  # a mesh carries the turn of the field it came from
        return field, float(getattr(field, "turned", 0.0))
    with torch.no_grad():
        a, b, turn = four_fold_mode(field.density_grid(), field.cfg.bound)
    if math.hypot(a, b) < SNAP_MIN_AMPLITUDE or abs(turn) < 0.5:
        return field, 0.0
    return turned_field(field, turn), turn
