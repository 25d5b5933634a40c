"""Soft rasterisation of triangle meshes in plain PyTorch (after SoftRas, Liu et al. 2019).

Every pixel sees every face through a soft coverage D = sigmoid(+-d^2 / sigma), where d
is the pixel's distance to the face's edges in image units ([-1, 1] across the image) and
the sign is + inside the face. Faces covering a pixel are blended by a softmax over their
normalised inverse depth (temperature gamma), so the nearest one wins smoothly; the
silhouette is alpha = 1 - prod(1 - D). The image is alpha * (blended face colour) +
(1 - alpha) * background. Everything is differentiable w.r.t. vertex positions and
attributes, with no compiled extension. Cost is B x pixels x faces: meant for 32-128 px
images and a few thousand faces (CLIP-Mesh here; later a mesh-refinement stage with SDS).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from .cameras import Cameras


@dataclass(frozen=True)
class RasterSettings:
    sigma: float = 1e-4
    """Edge softness in squared image units (1e-4: about a third of a pixel at 64 px)."""
    gamma: float = 1e-2
    """Depth-blend temperature on the normalised inverse depth in [0, 1]."""
    near: float = 1.0
    far: float = 4.0
    """Depth range mapped to [1, 0] (covers the toy world seen from distance 2-2.4)."""
    cull: float = 3.2
    """A face is a candidate for a pixel within cull * sqrt(sigma) of its bounding box
    (coverage beyond: under 4e-5)."""


def project(vertices: Tensor, cams: Cameras) -> Tensor:
    """World points (V, 3) or (B, V, 3) -> (B, V, 3): image x (right), image y (up), both
    in [-1, 1] over the field of view, and camera depth z (along the view direction)."""
    if vertices.dim() == 2:
        vertices = vertices.unsqueeze(0).expand(len(cams), -1, -1)
    right, up, forward = cams.axes()  # each (B, 3)
    rel = vertices - cams.positions()[:, None, :]
    half = math.tan(math.radians(cams.fov) / 2)
    z = (rel * forward[:, None]).sum(-1)
    x = (rel * right[:, None]).sum(-1) / (z * half)
    y = (rel * up[:, None]).sum(-1) / (z * half)
    return torch.stack([x, y, z], dim=-1)


def pixel_centres(size: int, device=None) -> Tensor:
    """(size * size, 2) image coordinates (x right, y up) of pixel centres, row 0 on top."""
    c = (torch.arange(size, device=device, dtype=torch.float32) + 0.5) / size * 2 - 1
    y, x = torch.meshgrid(-c, c, indexing="ij")
    return torch.stack([x.reshape(-1), y.reshape(-1)], dim=-1)


def _cross2(a: Tensor, b: Tensor) -> Tensor:
    return a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]


def barycentrics(tri: Tensor, q: Tensor) -> Tensor:
    """Barycentric coordinates (..., 3) of points q (..., 2) in triangles (..., 3, 2)."""
    a, b, c = tri[..., 0, :], tri[..., 1, :], tri[..., 2, :]
    area = _cross2(b - a, c - a)
    area = torch.where(area.abs() < 1e-12, torch.full_like(area, 1e-12), area)
    l1 = _cross2(q - a, c - a) / area
    l2 = _cross2(b - a, q - a) / area
    return torch.stack([1 - l1 - l2, l1, l2], dim=-1)


def edge_distance2(tri: Tensor, q: Tensor) -> Tensor:
    """Squared distance (...) from points q (..., 2) to the edges of triangles (..., 3, 2)."""
    best = None
    for i in range(3):
        a, b = tri[..., i, :], tri[..., (i + 1) % 3, :]
        ab = b - a
        s = (((q - a) * ab).sum(-1) / (ab * ab).sum(-1).clamp(min=1e-12)).clamp(0, 1)
        d2 = ((a + s[..., None] * ab - q) ** 2).sum(-1)
        best = d2 if best is None else torch.minimum(best, d2)
    return best


@torch.no_grad()
def candidate_faces(xy: Tensor, z: Tensor, p: Tensor, margin: float, k: int
                    ) -> tuple[Tensor, Tensor]:
    """The k nearest faces (B, P, k) whose box grown by `margin` holds each pixel, and
    whether each slot holds one (B, P, k) bool. xy (B, F, 3, 2), z (B, F, 3), p (P, 2).

    Beyond the margin a face's coverage is below e^-10, so dropping it changes nothing;
    of more than k candidates the farthest go, which the depth blend hides anyway."""
    lo, hi = xy.amin(2) - margin, xy.amax(2) + margin  # (B, F, 2)
    q = p[None, :, None, :]
    near = ((q >= lo[:, None]) & (q <= hi[:, None])).all(-1)  # (B, P, F)
    key = torch.where(near, -z.amin(-1)[:, None, :], float("-inf"))
    val, idx = key.topk(min(k, key.shape[-1]), dim=-1)
    return idx, val > float("-inf")


def rasterize(screen: Tensor, faces: Tensor, face_values: Tensor, size: int,
              settings: RasterSettings = RasterSettings(), max_faces: int = 24
              ) -> dict[str, Tensor]:
    """Soft-rasterise B views of one mesh.

    screen: (B, V, 3) from `project`; faces: (F, 3) vertex indices; face_values:
    (B, F, 3, C) a value per face corner (interpolated with clamped barycentrics).
    Each pixel blends its `max_faces` nearest candidate faces (see `candidate_faces`).
    Returns `values` (B, C, H, W), the face-blended values (meaningful where alpha > 0),
    `alpha` (B, 1, H, W) and `depth` (B, 1, H, W), the blended camera depth.
    """
    p = pixel_centres(size, screen.device)
    tri = screen[:, faces]  # (B, F, 3, 3)
    idx, valid = candidate_faces(tri[..., :2], tri[..., 2], p, settings.cull * settings.sigma ** 0.5,
                                 max_faces)
    bi = torch.arange(tri.shape[0], device=tri.device)[:, None, None]
    tri_k = tri[bi, idx]  # (B, P, K, 3, 3)
    xy, z = tri_k[..., :2], tri_k[..., 2]
    q = p[None, :, None, :]
    bary = barycentrics(xy, q)  # (B, P, K, 3)
    inside = (bary >= 0).all(-1)
    d2 = edge_distance2(xy, q)
    keep = valid & (z > 1e-3).all(-1)  # faces crossing the camera plane are dropped
    cover = torch.sigmoid(torch.where(inside, d2, -d2) / settings.sigma) * keep
    # Clamped, renormalised barycentrics: outside a face its nearest point is used.
    w = bary.clamp(0, 1)
    w = w / w.sum(-1, keepdim=True).clamp(min=1e-12)
    inv_z = (w / z.clamp(min=1e-3)).sum(-1)  # (B, P, K), perspective-correct
    near, far = 1 / settings.near, 1 / settings.far
    z_norm = ((inv_z - far) / (near - far)).clamp(0, 1)
    logits = z_norm / settings.gamma
    logits = logits - logits.detach().amax(-1, keepdim=True)
    blend = cover * logits.exp()
    blend = blend / blend.sum(-1, keepdim=True).clamp(min=1e-20)  # (B, P, K)
    values = torch.einsum("bpk,bpki,bpkic->bpc", blend, w, face_values[bi, idx])
    depth = (blend / inv_z.clamp(min=1e-6)).sum(-1)
    alpha = 1 - torch.exp(torch.log1p(-cover.clamp(max=1 - 1e-6)).sum(-1))
    b = screen.shape[0]

    def image(x: Tensor) -> Tensor:  # (B, P, C) -> (B, C, H, W)
        return x.reshape(b, size, size, -1).permute(0, 3, 1, 2)

    return {"values": image(values), "alpha": image(alpha[..., None]),
            "depth": image(depth[..., None])}
