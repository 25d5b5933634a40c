"""A deformable coloured mesh (CLIP-Mesh's 3D model): a subdivided sphere whose vertex
offsets and vertex colours are the parameters, drawn by the soft rasteriser."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import trimesh
from torch import Tensor, nn

from .cameras import Cameras
from .config import MeshConfig
from .rasterize import RasterSettings, project, rasterize
from .render import Shading, shade


def icosphere(subdivisions: int, radius: float) -> tuple[Tensor, Tensor]:
    """Vertices (V, 3) float and faces (F, 3) long of a subdivided icosahedron, faces
    wound counter-clockwise seen from outside."""
    sphere = trimesh.creation.icosphere(subdivisions=subdivisions, radius=radius)
    return (torch.tensor(np.asarray(sphere.vertices), dtype=torch.float32),
            torch.tensor(np.asarray(sphere.faces), dtype=torch.long))


def neighbours(faces: Tensor, n_vertices: int) -> tuple[Tensor, Tensor]:
    """Directed edges (E,) src, (E,) dst: every vertex pair that shares a face, both ways."""
    pairs = torch.cat([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    pairs = torch.cat([pairs, pairs.flip(1)])
    key = torch.unique(pairs[:, 0] * n_vertices + pairs[:, 1])
    return key // n_vertices, key % n_vertices


def face_normals(vertices: Tensor, faces: Tensor) -> Tensor:
    """Unit outward normals (F, 3) of counter-clockwise faces."""
    a, b, c = (vertices[faces[:, i]] for i in range(3))
    n = torch.cross(b - a, c - a, dim=-1)
    return n / n.norm(dim=-1, keepdim=True).clamp(min=1e-12)


class MeshModel(nn.Module):
    """Vertices = sphere + offsets (V, 3); colours = sigmoid(colour logits) (V, 3)."""

    def __init__(self, cfg: MeshConfig):
        super().__init__()
        self.cfg = cfg
        base, faces = icosphere(cfg.subdivisions, cfg.radius)
        self.register_buffer("base", base, persistent=False)
        self.register_buffer("faces", faces, persistent=False)
        src, dst = neighbours(faces, len(base))
        self.register_buffer("edge_src", src, persistent=False)
        self.register_buffer("edge_dst", dst, persistent=False)
        self.offsets = nn.Parameter(torch.zeros_like(base))
        self.colour_logits = nn.Parameter(torch.zeros_like(base))
        self.raster = RasterSettings(cfg.sigma, cfg.gamma)

    @property
    def device(self) -> torch.device:
        return self.offsets.device

    def vertices(self) -> Tensor:
        return self.base + self.offsets

    def colours(self) -> Tensor:
        return torch.sigmoid(self.colour_logits)

    def param_groups(self, cfg) -> list[tuple[list, float, bool]]:
        """(parameters, learning rate, warmed up?) per optimiser group, from a RunConfig."""
        return [([self.offsets], cfg.mesh.lr_offsets, False),
                ([self.colour_logits], cfg.mesh.lr_colours, False)]

    def regularisers(self, cfg) -> tuple[dict[str, Tensor], dict[str, float]]:
        """(losses, weights) the mesh adds to any guidance's: Laplacian smoothness."""
        return {"laplacian": self.laplacian_loss()}, {"laplacian": cfg.mesh.laplacian}

    def laplacian_loss(self) -> Tensor:
        """Mean squared uniform Laplacian |d - mean of its neighbours' d|^2 of the offsets
        d (smoothness of the deformation; zero for the sphere itself, so it does not
        shrink the mesh as the Laplacian of the positions would)."""
        v = self.offsets
        total = torch.zeros_like(v).index_add_(0, self.edge_src, v[self.edge_dst])
        count = torch.zeros(len(v), device=v.device).index_add_(
            0, self.edge_src, torch.ones_like(self.edge_src, dtype=v.dtype))
        return ((v - total / count[:, None]) ** 2).sum(-1).mean()

    def render(self, cams: Cameras, size: int, shading: Shading, background: Tensor,
               more_shadings: Sequence[Shading] = ()) -> dict[str, Tensor]:
        """Same outputs as the volume renderer: image (B, 3, H, W), `more_images`, opacity
        and depth (B, 1, H, W); flat-shaded faces, colours interpolated from vertices."""
        v, f = self.vertices(), self.faces
        screen = project(v, cams)
        normals = face_normals(v, f)  # (F, 3)
        corners = self.colours()[f]  # (F, 3, 3)
        shadings = [shading, *more_shadings]
        # One rasterisation for every shading: channels = 3 per shading.
        per_face = [self._shaded_corners(corners[None], normals, sh) for sh in shadings]
        out = rasterize(screen, f, torch.cat(per_face, dim=-1), size, self.raster)
        alpha = out["alpha"]
        bg = background.permute(0, 3, 1, 2) if background.dim() == 4 \
            else background[:, :, None, None]
        images = [(alpha * rgb + (1 - alpha) * bg).clamp(0, 1)
                  for rgb in out["values"].split(3, dim=1)]
        return {"image": images[0], "more_images": images[1:], "opacity": alpha,
                "depth": out["depth"], "orientation": torch.zeros((), device=v.device)}

    @staticmethod
    def _shaded_corners(corners: Tensor, normals: Tensor, sh: Shading) -> Tensor:
        """(B, F, 3, 3) lit corner colours of flat faces, by the volume renderer's shade."""
        b = sh.ambient.shape[0]
        return shade(corners.expand(b, -1, -1, -1),
                     normals[None, :, None, :].expand(b, -1, -1, -1), sh)

    def to_trimesh(self) -> trimesh.Trimesh:
        """The mesh with vertex colours, for export and scoring."""
        with torch.no_grad():
            v = self.vertices().cpu().numpy()
            rgb = self.colours().cpu().numpy()
        colours = np.concatenate([np.round(rgb * 255), np.full((len(v), 1), 255)], axis=1)
        return trimesh.Trimesh(v, self.faces.cpu().numpy(), vertex_colors=colours.astype(np.uint8),
                               process=False)
