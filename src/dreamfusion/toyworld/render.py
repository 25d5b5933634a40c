"""Batched ground-truth renderer of toy objects by sphere tracing their exact sdf."""
from __future__ import annotations

from typing import Literal, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from ..cameras import Cameras
from .captions import ToyObject
from .geometry import BOUNDING_RADIUS, color_tensor, normals, sdf
from .raycast import CONVEX, cast
from .world import AMBIENT, BACKGROUND, DIFFUSE, FRONT_COS

Mode = Literal["shaded", "albedo", "silhouette"]

MAX_STEPS = 100
HIT_EPS = 1e-4
LATE_HIT_EPS = 2e-3
"""Rays still marching after MAX_STEPS (grazing a face) count as hits within this."""
BOUND_RADIUS = 1.0
CHUNK_RAYS = 1 << 17
"""Rays cast at once: 128k rays' tensors mostly stay in cache (1.4x faster than 1M)."""


def _sphere_span(o: Tensor, d: Tensor, radius: float) -> tuple[Tensor, Tensor, Tensor]:
    """Entry/exit distances (N,) of rays o, d (N, 3) through the sphere; and a hit mask (N,)."""
    b = (o * d).sum(-1)
    c = (o * o).sum(-1) - radius * radius
    disc = b * b - c
    root = disc.clamp(min=0.0).sqrt()
    return (-b - root).clamp(min=0.0), -b + root, disc > 0


@torch.no_grad()
def trace(shape: str, o: Tensor, d: Tensor) -> tuple[Tensor, Tensor]:
    """Sphere-trace rays o, d (N, 3) against ``shape``: hit mask (N,) and hit points (N, 3).

    Marching starts where a ray enters the radius-1 sphere (tightened to the shape's
    bounding sphere, which skips empty space and culls most misses at once) and only
    still-active rays are marched; a ray stops when |sdf| < HIT_EPS or it leaves.
    """
    radius = min(BOUND_RADIUS, BOUNDING_RADIUS[shape] + 1e-3)
    t0, t1, valid = _sphere_span(o, d, radius)
    hit = torch.zeros(o.shape[0], dtype=torch.bool, device=o.device)
    t_hit = torch.zeros(o.shape[0], device=o.device)
    idx = valid.nonzero().squeeze(1)
    ro, rd, t, t_end = o[idx], d[idx], t0[idx], t1[idx]
    active = torch.ones_like(t, dtype=torch.bool)
    dist = torch.full_like(t, float("inf"))
    for _ in range(MAX_STEPS):
        dist = sdf(shape, torch.addcmul(ro, t[:, None], rd))
        done = active & (dist.abs() < HIT_EPS)
        hit[idx[done]] = True
        t_hit[idx[done]] = t[done]
        active &= ~done
        t = torch.where(active, t + dist, t)
        active &= t < t_end
        n_active = int(active.sum())
        if n_active == 0:
            break
        if n_active < active.numel() // 2:  # compact now and then, not every step
            idx, ro, rd, t, t_end = idx[active], ro[active], rd[active], t[active], t_end[active]
            dist, active = dist[active], active[active]
    late = active & (dist < LATE_HIT_EPS)  # slow convergence at grazing incidence
    hit[idx[late]] = True
    t_hit[idx[late]] = t[late]
    return hit, o + t_hit[:, None] * d


def surface_hits(shape: str, o: Tensor, d: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Rays o, d (N, 3) against ``shape``: hit mask (N,), hit points (N, 3) and outward
    unit normals there (N, 3). Cast exactly for the convex shapes (raycast.py: photos
    render 1.4-4.7x faster than sphere-traced); the torus is sphere-traced, its normals
    from the sdf."""
    if shape in CONVEX:
        return cast(shape, o, d)
    hit, pts = trace(shape, o, d)
    n = torch.zeros_like(pts)
    n[hit] = normals(shape, pts[hit])
    return hit, pts, n


def _albedos(objects: Sequence[ToyObject], clay: Tensor | None) -> tuple[Tensor, Tensor]:
    """Body and front albedo, each (B, 3); front = body for single-colour objects, 1 for clay."""
    body = torch.stack([color_tensor(o.color) for o in objects])
    front = torch.stack([color_tensor(o.front_color or o.color) for o in objects])
    if clay is not None:
        white = clay.to(torch.bool).cpu()[:, None]
        body = torch.where(white, torch.ones_like(body), body)
        front = torch.where(white, torch.ones_like(front), front)
    return body, front


def _shade_hits(n: Tensor, img: Tensor, body: Tensor, front: Tensor, light: Tensor,
                mode: Mode) -> Tensor:
    """(N, 3) colours of N hit points with normals n (N, 3); img (N,) is each point's
    image index."""
    facing = (n[:, 2] >= FRONT_COS)[:, None]
    albedo = torch.where(facing, front[img], body[img])
    if mode == "albedo":
        return albedo
    lambert = (n * light[img]).sum(-1).clamp(min=0.0)
    return albedo * (AMBIENT + DIFFUSE * lambert)[:, None]


@torch.no_grad()
def _render_chunk(objects: Sequence[ToyObject], cams: Cameras, size: int, mode: Mode,
                  light: Tensor, body: Tensor, front: Tensor) -> Tensor:
    """(B, size, size, C) image of a chunk at full (supersampled) resolution, C = 3 or 1."""
    origins, dirs = cams.rays(size)
    B = len(objects)
    channels = 1 if mode == "silhouette" else 3
    fill = 0.0 if mode == "silhouette" else torch.tensor(BACKGROUND)
    out = torch.zeros(B, size * size, channels) + fill
    shapes = [o.shape for o in objects]
    for shape in dict.fromkeys(shapes):
        imgs = torch.tensor([i for i, s in enumerate(shapes) if s == shape])
        o, d = origins[imgs].reshape(-1, 3), dirs[imgs].reshape(-1, 3)
        hit, _, n = surface_hits(shape, o, d)
        img_of_ray = imgs.repeat_interleave(size * size)
        flat = out[imgs].reshape(-1, channels)
        if mode == "silhouette":
            flat[hit] = 1.0
        else:
            flat[hit] = _shade_hits(n[hit], img_of_ray[hit], body, front, light, mode)
        out[imgs] = flat.reshape(len(imgs), size * size, channels)
    return out.reshape(B, size, size, channels)


def _index_cams(cams: Cameras, sl: slice) -> Cameras:
    return Cameras(cams.el[sl], cams.az[sl], cams.dist[sl], cams.fov)


@torch.no_grad()
def render_objects(
    objects: Sequence[ToyObject],
    cams: Cameras,
    size: int,
    mode: Mode = "shaded",
    light_dirs: Tensor | None = None,
    clay: Tensor | None = None,
    supersample: int = 2,
) -> Tensor:
    """Ground-truth renders of B objects, one per camera, on a white background.

    objects: B objects (shapes may differ); cams: B cameras; light_dirs: (B, 3) unit
    directions towards the light (default: towards the camera); clay: (B,) bool, render
    in white material. Returns (B, 3, size, size) in [0, 1], or for ``"silhouette"``
    (B, 1, size, size) coverage. Rendered at size * supersample, then average-pooled.
    """
    objects = list(objects)
    B = len(objects)
    if len(cams) != B:
        raise ValueError(f"{B} objects but {len(cams)} cameras")
    if mode not in ("shaded", "albedo", "silhouette"):
        raise ValueError(f'unknown mode "{mode}": use "shaded", "albedo" or "silhouette"')
    cams = Cameras(*(x.detach().float().cpu() for x in (cams.el, cams.az, cams.dist)), cams.fov)
    if light_dirs is None:
        light_dirs = cams.positions()
    light = F.normalize(light_dirs.detach().float().cpu(), dim=-1)
    body, front = _albedos(objects, clay)
    full = size * supersample
    per_chunk = max(1, CHUNK_RAYS // (full * full))
    chunks = []
    for s in range(0, B, per_chunk):
        sl = slice(s, s + per_chunk)
        chunks.append(_render_chunk(objects[sl], _index_cams(cams, sl), full, mode,
                                    light[sl], body[sl], front[sl]))
    img = torch.cat(chunks).permute(0, 3, 1, 2)
    if supersample > 1:
        img = F.avg_pool2d(img, supersample)
    return img.clamp(0.0, 1.0).contiguous()
