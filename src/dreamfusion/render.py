"""Volume rendering of a field: ray bounds, stratified sampling, shading, compositing.

Plain functions over tensors. Images are (B, 3, H, W) floats in [0, 1], row 0 at the top.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor

from .cameras import Cameras
from .devices import upload
from .field import GridField

SCENE_RADIUS = 1.0
"""Rays are sampled where they cross the sphere of this radius (the toy world's bound)."""


@dataclass
class Shading:
    """Per-image lighting: colour = material * (ambient + diffuse * max(0, n . l)).

    Albedo-only renders are ambient=1, diffuse=0; textureless ones use material = 1.
    All tensors have shape (B,) except light_dirs (B, 3), unit vectors toward the light.
    """

    ambient: Tensor
    diffuse: Tensor
    textureless: Tensor
    light_dirs: Tensor

    @staticmethod
    def albedo(n: int, device=None, brightness: float = 1.0) -> "Shading":
        return Shading(torch.full((n,), brightness, device=device), torch.zeros(n, device=device),
                       torch.zeros(n, dtype=torch.bool, device=device),
                       torch.zeros(n, 3, device=device))

    @staticmethod
    def lit(cams: Cameras, ambient: float = 0.3, diffuse: float = 0.7,
            textureless: bool = False) -> "Shading":
        """Light from the camera's direction (headlight), for previews and exports."""
        n, device = len(cams), cams.el.device
        pos = cams.positions()
        return Shading(torch.full((n,), ambient, device=device),
                       torch.full((n,), diffuse, device=device),
                       torch.full((n,), textureless, dtype=torch.bool, device=device),
                       pos / pos.norm(dim=-1, keepdim=True))


def ray_sphere_bounds(origins: Tensor, dirs: Tensor, radius: float = SCENE_RADIUS
                      ) -> tuple[Tensor, Tensor]:
    """Entry and exit distances (...,) of rays (..., 3) through a centred sphere.

    Rays that miss get near = far (zero-length segment, so nothing is rendered).
    """
    b = (origins * dirs).sum(-1)
    c = (origins * origins).sum(-1) - radius**2
    disc = (b * b - c).clamp(min=0).sqrt()
    near = (-b - disc).clamp(min=0)
    far = (-b + disc).clamp(min=0)
    return near, torch.maximum(far, near)


def ray_box_bounds(origins: Tensor, dirs: Tensor, lo: Tensor, hi: Tensor
                   ) -> tuple[Tensor, Tensor]:
    """Entry and exit distances (...,) of rays (..., 3) through the box [lo, hi] (3,).

    Rays that miss get near = far.
    """
    inv = 1.0 / torch.where(dirs.abs() < 1e-9, torch.full_like(dirs, 1e-9), dirs)
    t0, t1 = (lo - origins) * inv, (hi - origins) * inv
    near = torch.minimum(t0, t1).amax(-1).clamp(min=0)
    far = torch.maximum(t0, t1).amin(-1).clamp(min=0)
    return near, torch.maximum(far, near)


def stratified_depths(near: Tensor, far: Tensor, n: int, generator: torch.Generator | None,
                      jitter: bool) -> Tensor:
    """(..., n) sample depths, one per equal bin of [near, far], jittered when training."""
    u = torch.arange(n, device=near.device, dtype=near.dtype)
    if jitter:
        # Drawn on the CPU generator, then moved: same numbers on every device.
        u = u + upload(torch.rand(*near.shape, n, generator=generator), near.device)
    else:
        u = u + 0.5
    return near[..., None] + (far - near)[..., None] * (u / n)


def composite(density: Tensor, deltas: Tensor) -> Tensor:
    """Weights (..., S) of volume rendering: alpha_i * prod_{j<i} (1 - alpha_j)."""
    alpha = 1.0 - torch.exp(-density * deltas)
    trans = torch.cumprod(torch.cat([torch.ones_like(alpha[..., :1]), 1.0 - alpha[..., :-1] + 1e-10],
                                    dim=-1), dim=-1)
    return alpha * trans


def shade(albedo: Tensor, normal: Tensor, shading: Shading) -> Tensor:
    """Sample colours (B, ..., 3) from albedo and normals (B, ..., 3)."""
    view = (shading.light_dirs.shape[0],) + (1,) * (albedo.dim() - 2) + (3,)
    scalar = view[:-1] + (1,)
    l = shading.light_dirs.reshape(view)
    lambert = (normal * l).sum(-1, keepdim=True).clamp(min=0)
    material = torch.where(shading.textureless.reshape(scalar), torch.ones_like(albedo), albedo)
    return material * (shading.ambient.reshape(scalar) + shading.diffuse.reshape(scalar) * lambert)


class SampleSelection:
    """Which of the N = B*H*W*S ray samples are queried, and how per-sample values go
    back to rays.

    compact: only the live samples are gathered (P of them), and ray sums are
    `index_add`s; needs the live count on the host, free on a CPU. Dense: every sample
    is queried and dead ones are masked to zero density, no host-device sync (CUDA).
    Both compute the same image; the dense path is the plain reference of the compact one.
    """

    def __init__(self, alive: Tensor, compact: bool):
        self.shape = tuple(alive.shape)  # (B, H, W, S)
        self.alive = alive.reshape(-1)  # (N,) bool
        self.index = self.alive.nonzero()[:, 0] if compact else None  # (P,), None = all
        self.ray = self._ray_of_sample()  # (P,) flat ray index over B*H*W

    def take(self, values: Tensor) -> Tensor:
        """(N, ...) -> (P, ...) values at the queried samples."""
        return values if self.index is None else values[self.index]

    def to_dense_density(self, density: Tensor) -> Tensor:
        """(P,) queried densities -> (B, H, W, S), dead samples at 0."""
        if self.index is not None:
            density = density.new_zeros(self.alive.shape).index_put((self.index,), density)
        else:
            density = torch.where(self.alive, density, torch.zeros_like(density))
        return density.reshape(self.shape)

    def _ray_of_sample(self) -> Tensor:
        if self.index is None:
            return torch.arange(self.alive.numel(), device=self.alive.device) // self.shape[-1]
        return self.index // self.shape[-1]

    def sum_per_ray(self, values: Tensor) -> Tensor:
        """(P, k) per-sample values -> (B*H*W, k) sums over each ray's samples."""
        rays = self.alive.numel() // self.shape[-1]
        if self.index is None:
            return values.reshape(rays, self.shape[-1], -1).sum(1)
        return values.new_zeros(rays, values.shape[-1]).index_add(0, self.ray, values)


def compact_on(device: torch.device) -> bool:
    """Gather live samples (a sync, free on CPU) or mask them in place (CUDA)."""
    return device.type == "cpu"


def shade_samples(albedo: Tensor, normal: Tensor, shading: Shading, image: Tensor) -> Tensor:
    """(P, 3) colours of samples with albedo and normal (P, 3), from image (P,) indices."""
    lambert = (normal * shading.light_dirs[image]).sum(-1, keepdim=True).clamp(min=0)
    material = torch.where(shading.textureless[image, None], torch.ones_like(albedo), albedo)
    return material * (shading.ambient[image, None] + shading.diffuse[image, None] * lambert)


def place_samples(field: GridField, origins: Tensor, dirs: Tensor, box: tuple[Tensor, Tensor],
                  density_grid: Tensor, samples: int, generator: torch.Generator | None,
                  jitter: bool) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Stratified samples of rays (B, H, W, 3) between their entry and exit of the
    occupied box (within the unit sphere): the same number of samples, denser.

    Returns depths t and their spacings (B, H, W, S), points (B, H, W, S, 3) and `alive`
    (B, H, W, S) bool: on a ray that crosses the box and in occupied space (a sample
    elsewhere adds nothing, or less than `empty_density` per unit length)."""
    near, far = ray_sphere_bounds(origins, dirs)
    box_near, box_far = ray_box_bounds(origins, dirs, *box)
    near, far = torch.maximum(near, box_near), torch.minimum(far, box_far)
    far = torch.maximum(far, near)
    t = stratified_depths(near, far, samples, generator, jitter)
    deltas = torch.cat([t.diff(dim=-1), (far - t[..., -1])[..., None]], dim=-1)
    points = origins[..., None, :] + dirs[..., None, :] * t[..., None]
    alive = (far > near)[..., None].expand_as(t)
    occupancy = field.occupancy(density_grid)
    if occupancy is not None:
        alive = alive & field.occupied_at(occupancy, points)
    return t, deltas, points, alive


def render(field: GridField, cams: Cameras, size: int, samples: int, shading: Shading,
           background: Tensor, generator: torch.Generator | None = None,
           jitter: bool = True, more_shadings: Sequence[Shading] = (),
           compact: bool | None = None) -> dict[str, Tensor]:
    """Render B images of the field.

    background: (B, 3) solid colours or (B, size, size, 3) per-pixel colours.
    Returns image (B, 3, H, W), opacity (B, 1, H, W), depth (B, 1, H, W),
    `orientation`, the paper's penalty sum_i w_i max(0, n_i . v)^2 per ray averaged over
    rays (scalar), `peak_density` (B, H, W), the largest density on each ray, and
    `more_images`, one (B, 3, H, W) image per extra shading (same field query, so
    several shadings of one view cost little more than one).
    Samples in empty space (`field.occupancy`) and on rays that miss the occupied box
    read density 0; `compact` (default: on a CPU) skips querying them at all.
    """
    origins, dirs = cams.rays(size)  # (B, H, W, 3)
    density_grid = field.density_grid()  # (R, R, R)
    box = field.occupied_box(density=density_grid.detach())
    compact = compact_on(origins.device) if compact is None else compact
    # One volume per render; compacting (a host sync anyway) builds only the box's cells.
    volume = field.feature_volume(density_grid, box if compact else None)
    t, deltas, points, alive = place_samples(field, origins, dirs, box, density_grid.detach(),
                                             samples, generator, jitter)
    sel = SampleSelection(alive, compact)
    q = field.query(sel.take(points.reshape(-1, 3)), volume)  # (P,) and (P, 3)
    density = sel.to_dense_density(q["density"])  # (B, H, W, S)
    weights = composite(density, deltas)  # (B, H, W, S)
    acc = weights.sum(-1, keepdim=True)  # (B, H, W, 1)
    bg = background if background.dim() == 4 else background[:, None, None, :]
    w = sel.take(weights.reshape(-1))[:, None]  # (P, 1)
    ray = sel.ray  # (P,)
    image_of = ray // (size * size)
    b = len(cams)

    def image(sh: Shading) -> Tensor:
        colours = shade_samples(q["albedo"], q["normal"], sh, image_of)  # (P, 3)
        rgb = sel.sum_per_ray(w * colours).reshape(b, size, size, 3) + (1.0 - acc) * bg
        return rgb.permute(0, 3, 1, 2).clamp(0, 1)

    facing = (q["normal"] * dirs.reshape(-1, 3)[ray]).sum(-1, keepdim=True).clamp(min=0) ** 2
    return {
        "image": image(shading),
        "more_images": [image(sh) for sh in more_shadings],
        "opacity": acc.permute(0, 3, 1, 2),
        "depth": (weights * t).sum(-1, keepdim=True).permute(0, 3, 1, 2),
        "orientation": sel.sum_per_ray(w.detach() * facing).sum() / (b * size * size),
        "peak_density": density.amax(-1),
    }


def render_model(model, cams: Cameras, size: int, samples: int, shading: Shading,
                 background: Tensor, generator: torch.Generator | None = None,
                 jitter: bool = True, more_shadings: Sequence[Shading] = ()) -> dict[str, Tensor]:
    """Volume-render a GridField, or let another 3D model (a MeshModel) draw itself;
    the outputs are those of `render` (a mesh has no `peak_density`)."""
    if isinstance(model, GridField):
        return render(model, cams, size, samples, shading, background, generator, jitter,
                      more_shadings)
    return model.render(cams, size, shading, background, more_shadings)


def _slice(sh: Shading, sl: slice) -> Shading:
    return Shading(sh.ambient[sl], sh.diffuse[sl], sh.textureless[sl], sh.light_dirs[sl])


def render_chunked(field, cams: Cameras, size: int, samples: int,
                   shadings: Sequence[Shading], background: Tensor, chunk: int = 8
                   ) -> dict[str, Tensor]:
    """`render_model` without gradients, in chunks of cameras (previews, exports).

    Returns `images`: one (B, 3, H, W) tensor per shading, plus opacity, depth and
    (for a field) peak_density as `render`.
    """
    keys = ("opacity", "depth", "peak_density")
    parts: dict[str, list[Tensor]] = {}
    images: list[list[Tensor]] = [[] for _ in shadings]
    with torch.no_grad():
        for i in range(0, len(cams), chunk):
            sl = slice(i, i + chunk)
            sub = Cameras(cams.el[sl], cams.az[sl], cams.dist[sl], cams.fov)
            out = render_model(field, sub, size, samples, _slice(shadings[0], sl),
                               background[sl], jitter=False,
                               more_shadings=[_slice(s, sl) for s in shadings[1:]])
            for k in keys:
                if k in out:
                    parts.setdefault(k, []).append(out[k])
            for j, img in enumerate([out["image"], *out["more_images"]]):
                images[j].append(img)
    result = {k: torch.cat(v) for k, v in parts.items()}
    result["images"] = [torch.cat(v) for v in images]
    return result


def render_rows(field, cams: Cameras, size: int, samples: int) -> Tensor:
    """(3B, 3, H, W) on white: an albedo row, a lit row and a textureless row of `cams`."""
    n, device = len(cams), cams.el.device
    rows = render_chunked(field, cams, size, samples, [
        Shading.albedo(n, device), Shading.lit(cams), Shading.lit(cams, textureless=True)],
        torch.ones(n, 3, device=device))["images"]
    return torch.cat(rows)
