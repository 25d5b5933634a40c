"""Cameras: the one convention of the whole project (docs/TOYWORLD.md).

World: right-handed, +y up. A camera at elevation ``el`` and azimuth ``az`` (degrees)
and distance ``r`` sits at ``(r cos el sin az, r sin el, r cos el cos az)``, looks at the
origin with +y up; ``az = 0`` sees the object's front (+z). Pinhole, square images,
vertical field of view ``fov`` degrees, pixel row 0 at the top.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from .devices import upload

DEFAULT_FOV = 40.0
DEFAULT_DISTANCE = 2.2
VIEW_LABELS = ("front", "side", "back", "overhead")


@dataclass(frozen=True)
class Cameras:
    """A batch of look-at cameras. All tensors have shape (B,), angles in degrees."""

    el: Tensor
    az: Tensor
    dist: Tensor
    fov: float = DEFAULT_FOV

    def __len__(self) -> int:
        return self.el.shape[0]

    @staticmethod
    def from_angles(el, az, dist=DEFAULT_DISTANCE, fov: float = DEFAULT_FOV) -> "Cameras":
        el = torch.as_tensor(el, dtype=torch.float32).reshape(-1)
        az = torch.as_tensor(az, dtype=torch.float32).reshape(-1)
        dist = torch.as_tensor(dist, dtype=torch.float32).reshape(-1).expand_as(el).clone()
        return Cameras(el, az, dist, fov)

    def to(self, device) -> "Cameras":
        """On `device` (from the CPU without a host sync, see devices.upload)."""
        return Cameras(upload(self.el, device), upload(self.az, device),
                       upload(self.dist, device), self.fov)

    def positions(self) -> Tensor:
        """(B, 3) camera centres."""
        el, az = torch.deg2rad(self.el), torch.deg2rad(self.az)
        return self.dist[:, None] * torch.stack(
            [el.cos() * az.sin(), el.sin(), el.cos() * az.cos()], dim=-1
        )

    def axes(self) -> tuple[Tensor, Tensor, Tensor]:
        """(right, up, forward), each (B, 3) unit vectors in world space.

        right = (cos az, 0, -sin az) equals normalize(forward x +y) for every el < 90 and
        stays defined straight overhead, where the cross product vanishes.
        """
        az = torch.deg2rad(self.az)
        forward = -self.positions() / self.dist[:, None]
        right = torch.stack([az.cos(), torch.zeros_like(az), -az.sin()], dim=-1)
        up = torch.cross(right, forward, dim=-1)
        return right, up, forward

    def rays(self, size: int) -> tuple[Tensor, Tensor]:
        """Rays through pixel centres: origins and unit directions, each (B, size, size, 3)."""
        device = self.el.device
        half = math.tan(math.radians(self.fov) / 2)
        coords = (torch.arange(size, device=device, dtype=torch.float32) + 0.5) / size * 2 - 1
        y = -coords[:, None].expand(size, size) * half  # row 0 is the top
        x = coords[None, :].expand(size, size) * half
        right, up, forward = self.axes()
        dirs = (
            forward[:, None, None, :]
            + x[None, :, :, None] * right[:, None, None, :]
            + y[None, :, :, None] * up[:, None, None, :]
        )
        dirs = dirs / dirs.norm(dim=-1, keepdim=True)
        origins = self.positions()[:, None, None, :].expand_as(dirs)
        return origins, dirs


def wrap_azimuth(az: Tensor) -> Tensor:
    """Wrap degrees to (-180, 180]."""
    wrapped = torch.remainder(az + 180.0, 360.0) - 180.0
    return torch.where(wrapped == -180.0, torch.full_like(wrapped, 180.0), wrapped)


def view_labels(el: Tensor, az: Tensor) -> list[str]:
    """The paper's view label of each camera: overhead / front / back / side."""
    az = wrap_azimuth(torch.as_tensor(az, dtype=torch.float32)).abs()
    el = torch.as_tensor(el, dtype=torch.float32)
    out = []
    for e, a in zip(el.reshape(-1).tolist(), az.reshape(-1).tolist()):
        if e > 60:
            out.append("overhead")
        elif a <= 45:
            out.append("front")
        elif a >= 135:
            out.append("back")
        else:
            out.append("side")
    return out


@dataclass(frozen=True)
class CameraSampling:
    """Random training cameras: the paper's Appendix A.2, at the toy world's scale."""

    el_range: tuple[float, float] = (-10.0, 90.0)
    """Elevation range in degrees; half the draws uniform in angle, half uniform in area."""
    dist_range: tuple[float, float] = (2.0, 2.4)
    """Camera distance range (the prior's photos use [2.0, 2.4])."""
    dist_ends: float = 0.0
    """Fraction of the cameras put at either end of dist_range (half each), the rest
    uniform. A photo prior fixes an object's size only there: a render from the middle
    of the range matches photos of a slightly larger or smaller object from nearer or
    farther, one from the near end has no nearer photo to match a too-large object."""
    fov: float = DEFAULT_FOV
    """Vertical field of view in degrees; the toy prior's photos all use 40."""


def sample_cameras(n: int, cfg: CameraSampling, generator: torch.Generator) -> Cameras:
    """n random cameras: azimuth uniform in [0, 360), elevation as the paper draws it."""
    lo, hi = cfg.el_range
    u = torch.rand(n, generator=generator)
    el_angle = lo + (hi - lo) * u
    s_lo, s_hi = math.sin(math.radians(lo)), math.sin(math.radians(hi))
    el_area = torch.rad2deg(torch.asin((s_lo + (s_hi - s_lo) * u).clamp(-1, 1)))
    pick = torch.rand(n, generator=generator) < 0.5
    el = torch.where(pick, el_angle, el_area)
    az = torch.rand(n, generator=generator) * 360.0
    d_lo, d_hi = cfg.dist_range
    dist = d_lo + (d_hi - d_lo) * torch.rand(n, generator=generator)
    if cfg.dist_ends > 0:  # drawn only then: runs without it keep their random stream
        u = torch.rand(n, generator=generator)
        end = torch.where(u < 0.5 * cfg.dist_ends, d_lo, d_hi)
        dist = torch.where(u < cfg.dist_ends, end, dist)
    return Cameras(el, az, dist, cfg.fov)


def sample_front_biased_cameras(n: int, generator: torch.Generator, front_prob: float = 0.7,
                                az_std: float = 30.0, el_range=(-10.0, 60.0),
                                dist_range=(2.0, 2.4), fov: float = DEFAULT_FOV) -> Cameras:
    """n cameras drawn as photos of a caption without a view suffix are (TOYWORLD.md):
    azimuth ~ N(0, az_std) with probability front_prob, else uniform; elevation uniform."""
    front = torch.rand(n, generator=generator) < front_prob
    az = torch.where(front, az_std * torch.randn(n, generator=generator),
                     torch.rand(n, generator=generator) * 360.0 - 180.0)
    el = el_range[0] + (el_range[1] - el_range[0]) * torch.rand(n, generator=generator)
    dist = dist_range[0] + (dist_range[1] - dist_range[0]) * torch.rand(n, generator=generator)
    return Cameras(el, wrap_azimuth(az), dist, fov)


def ring_cameras(n: int, el: float = 20.0, dist: float = DEFAULT_DISTANCE,
                 fov: float = DEFAULT_FOV, start_az: float = 0.0) -> Cameras:
    """n cameras evenly spaced in azimuth at one elevation (evaluation views, turntables)."""
    az = start_az + torch.arange(n, dtype=torch.float32) * (360.0 / n)
    return Cameras.from_angles(torch.full((n,), el), az, dist, fov)
