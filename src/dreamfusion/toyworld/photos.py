"""The toy prior's training distribution: captioned photos (docs/TOYWORLD.md, Photos)."""
from __future__ import annotations

import zlib
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from ..cameras import Cameras, wrap_azimuth
from .captions import Caption, all_objects
from .render import render_objects
from .world import (
    CLAY_PROBABILITY,
    FOV,
    FRONT_BIAS_PROBABILITY,
    FRONT_BIAS_STD,
    LIGHT_JITTER,
    PHOTO_DIST_RANGE,
    PHOTO_EL_RANGE,
    VIEWS,
)

_MARGIN = 1e-3
"""Degrees kept off the label boundaries, so float rounding never flips a view label."""


def _uniform(n: int, lo: float, hi: float, generator: torch.Generator) -> Tensor:
    """(n,) uniform in [lo, hi)."""
    return lo + (hi - lo) * torch.rand(n, generator=generator)


def _view_angles(view: str | None, n: int, g: torch.Generator) -> tuple[Tensor, Tensor]:
    """(el, az) each (n,) in degrees for photos of a view label (None: front-biased)."""
    el_lo, el_hi = PHOTO_EL_RANGE
    if view is None:
        el = _uniform(n, el_lo, el_hi, g)
        biased = torch.rand(n, generator=g) < FRONT_BIAS_PROBABILITY
        normal = torch.randn(n, generator=g) * FRONT_BIAS_STD
        az = torch.where(biased, normal, _uniform(n, -180.0, 180.0, g))
    elif view == "overhead":  # el > 60
        el = _uniform(n, el_hi, 90.0, g).clamp(min=el_hi + _MARGIN)
        az = _uniform(n, -180.0, 180.0, g)
    elif view == "front":  # |az| <= 45
        el = _uniform(n, el_lo, el_hi, g)
        az = _uniform(n, -45.0, 45.0, g)
    elif view == "back":  # |az| >= 135
        el = _uniform(n, el_lo, el_hi, g)
        az = _uniform(n, 135.0, 225.0, g)
    elif view == "side":  # 45 < |az| < 135, either side
        el = _uniform(n, el_lo, el_hi, g)
        mag = _uniform(n, 45.0, 135.0, g).clamp(45.0 + _MARGIN, 135.0 - _MARGIN)
        sign = torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0)
        az = sign * mag
    else:
        raise ValueError(f'unknown view "{view}": views are {", ".join(VIEWS)}')
    return el, wrap_azimuth(az)


def sample_photo_cameras(caption: Caption, n: int, generator: torch.Generator) -> Cameras:
    """n photo cameras for a caption: its view label's views, distance U(2.0, 2.4), fov 40."""
    el, az = _view_angles(caption.view, n, generator)
    dist = _uniform(n, *PHOTO_DIST_RANGE, generator)
    return Cameras(el, az, dist, FOV)


def sample_light_dirs(cams: Cameras, generator: torch.Generator) -> Tensor:
    """(B, 3) unit light directions: normalize(camera position + N(0, 0.5^2 I))."""
    pos = cams.positions()
    noise = torch.randn(pos.shape, generator=generator) * LIGHT_JITTER
    return F.normalize(pos + noise, dim=-1)


def _generator(*key) -> torch.Generator:
    """A torch.Generator seeded by a stable hash (crc32) of the key's text."""
    text = "|".join(str(k) for k in key)
    return torch.Generator().manual_seed(zlib.crc32(text.encode("utf-8")))


def render_photos(caption: Caption, n: int, size: int, seed: int = 0) -> Tensor:
    """(n, 3, size, size) photos of a caption; deterministic for (caption.text, n, size, seed)."""
    g = _generator("photos", caption.text, n, size, seed)
    cams = sample_photo_cameras(caption, n, g)
    lights = sample_light_dirs(cams, g)
    clay = torch.rand(n, generator=g) < CLAY_PROBABILITY
    return render_objects([caption.obj] * n, cams, size, "shaded", lights, clay)


def render_mixed_photos(captions: Sequence[Caption], size: int, seed: int) -> Tensor:
    """(len(captions), 3, size, size): one photo per caption; deterministic for the seed."""
    return render_labelled_photos(captions, size, seed)[0]


def render_labelled_photos(captions: Sequence[Caption], size: int,
                           seed: int) -> tuple[Tensor, Tensor]:
    """The photos of render_mixed_photos and a (n,) bool mask of the clay ones."""
    n = len(captions)
    g = _generator("mixed", n, size, seed)
    el, az = torch.zeros(n), torch.zeros(n)
    views = [c.view for c in captions]
    for view in dict.fromkeys(views):  # one draw per view label, in first-seen order
        idx = torch.tensor([i for i, v in enumerate(views) if v == view])
        el[idx], az[idx] = _view_angles(view, len(idx), g)
    cams = Cameras(el, az, _uniform(n, *PHOTO_DIST_RANGE, g), FOV)
    lights = sample_light_dirs(cams, g)
    clay = torch.rand(n, generator=g) < CLAY_PROBABILITY
    images = render_objects([c.obj for c in captions], cams, size, "shaded", lights, clay)
    return images, clay


def random_captions(n: int, generator: torch.Generator, with_views: bool = True) -> list[Caption]:
    """n captions uniform over all_objects(); with_views: no suffix w.p. 0.5, else a uniform view."""
    objects = all_objects()
    obj_idx = torch.randint(len(objects), (n,), generator=generator).tolist()
    if not with_views:
        return [Caption(objects[i]) for i in obj_idx]
    has_view = (torch.rand(n, generator=generator) >= 0.5).tolist()
    view_idx = torch.randint(len(VIEWS), (n,), generator=generator).tolist()
    return [
        Caption(objects[i], VIEWS[v] if h else None)
        for i, h, v in zip(obj_idx, has_view, view_idx)
    ]
