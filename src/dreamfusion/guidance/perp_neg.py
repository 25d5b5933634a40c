"""Perp-Neg (Armandpour et al. 2023): negative view prompts through the component of
their guidance perpendicular to the positive one.

Per camera with azimuth |az| (0 = front): between front (0) and side (90) the positive
prompt is the front and side prompts mixed with r = 1 - |az| / 90 (share of front), and
the negatives are front and side; between side and back (180) it is side and back with
r = 2 - |az| / 90 (share of side), and the negatives side and front. Each negative's
weight is -(a exp(-b r) + c), with (a, b, c) chosen so that it is 0 where the view is
the positive one (threestudio's defaults, `GuidanceConfig.perp_neg_*`). The guided noise
is eps_u + s (e_pos + sum_i w_i perp(e_i, e_pos)), e = eps(text) - eps_u.
"""
from __future__ import annotations

import torch
from torch import Tensor

from ..cameras import wrap_azimuth


def decay(abc: tuple[float, float, float], r: Tensor) -> Tensor:
    """a exp(-b r) + c, elementwise."""
    a, b, c = abc
    return a * torch.exp(-b * r) + c


def view_mix(az: Tensor, cfg) -> tuple[Tensor, Tensor, Tensor]:
    """Per camera azimuth (B,) in degrees: `front_half` (B,) bool (|az| < 90: the
    positive mixes front and side, else side and back), r (B,) the share of the first
    of the two, and the two negatives' weights (B, 2): for front_half (front, side),
    else (side, front)."""
    a = wrap_azimuth(az).abs()
    front_half = a < 90
    r = torch.where(front_half, 1 - a / 90, 2 - a / 90).clamp(0, 1)
    w_front_half = torch.stack([-decay(cfg.perp_neg_f_fs, r),
                                -decay(cfg.perp_neg_f_sf, 1 - r)], dim=1)
    w_back_half = torch.stack([-decay(cfg.perp_neg_f_sb, r),
                               -decay(cfg.perp_neg_f_fsb, r)], dim=1)
    weights = torch.where(front_half[:, None], w_front_half, w_back_half)
    return front_half, r, weights


def perpendicular(x: Tensor, y: Tensor) -> Tensor:
    """Per sample, the component of x (B, ...) perpendicular to y (B, ...):
    x - (<x, y> / |y|^2) y (x itself where y is 0)."""
    flat_x, flat_y = x.reshape(len(x), -1), y.reshape(len(y), -1)
    dot = (flat_x * flat_y).sum(-1)
    norm2 = (flat_y * flat_y).sum(-1)
    coef = torch.where(norm2 > 0, dot / norm2.clamp(min=torch.finfo(norm2.dtype).tiny),
                       torch.zeros_like(dot))
    return x - coef.reshape(-1, *([1] * (x.dim() - 1))) * y


def combine(eps_u: Tensor, eps_pos: Tensor, eps_neg: Tensor, weights: Tensor,
            scale: float) -> Tensor:
    """Guided noise (B, ...) from eps of the unconditional and positive texts (B, ...),
    the negatives' (B, M, ...) and their weights (B, M)."""
    e_pos = eps_pos - eps_u
    total = e_pos
    for i in range(eps_neg.shape[1]):
        w = weights[:, i].to(e_pos.dtype).reshape(-1, *([1] * (e_pos.dim() - 1)))
        total = total + w * perpendicular(eps_neg[:, i] - eps_u, e_pos)
    return eps_u + scale * total

