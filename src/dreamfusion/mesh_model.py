"""A deformable coloured mesh (CLIP-Mesh's 3D model): a subdivided sphere whose vertex
offsets and vertex colours are the parameters, drawn by the soft rasteriser; and
SurfaceMesh, the refine stage's model, drawn by the hard one."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import trimesh
from torch import Tensor, nn

from .cameras import Cameras
from .config import MeshConfig, RefineConfig
from .hard_raster import (antialias, edge_neighbours, interpolate, rasterize_hard,
                          silhouette_crossings)
from .large_steps import SparseSmoother
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


def uniform_laplacian(x: Tensor, src: Tensor, dst: Tensor) -> Tensor:
    """Mean over vertices of |x - mean of its neighbours' x|^2; x (V, C), edges src -> dst."""
    total = torch.zeros_like(x).index_add_(0, src, x[dst])
    count = torch.zeros(len(x), device=x.device, dtype=x.dtype).index_add_(
        0, src, torch.ones_like(src, dtype=x.dtype))
    return ((x - total / count.clamp(min=1)[:, None]) ** 2).sum(-1).mean()


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
        self.build(base, faces, torch.zeros_like(base), RasterSettings(cfg.sigma, cfg.gamma),
                   persistent=False)

    def build(self, base: Tensor, faces: Tensor, colour_logits: Tensor,
              raster: RasterSettings, persistent: bool) -> None:
        """Set the topology (base (V, 3), faces (F, 3)) and zero offsets; `persistent`:
        the topology is part of the state dict (a mesh that is not a fixed sphere)."""
        self.register_buffer("base", base, persistent=persistent)
        self.register_buffer("faces", faces, persistent=persistent)
        src, dst = neighbours(faces, len(base))
        self.register_buffer("edge_src", src, persistent=False)
        self.register_buffer("edge_dst", dst, persistent=False)
        self.offsets = nn.Parameter(torch.zeros_like(base))
        self.colour_logits = nn.Parameter(colour_logits.clone())
        self.raster = raster

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
        return uniform_laplacian(self.offsets, self.edge_src, self.edge_dst)

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
        values, alpha, depth, finish = self.draw(screen, torch.cat(per_face, dim=-1), size)
        bg = background.permute(0, 3, 1, 2) if background.dim() == 4 \
            else background[:, :, None, None]
        images = [finish(alpha * rgb + (1 - alpha) * bg).clamp(0, 1)
                  for rgb in values.split(3, dim=1)]
        return {"image": images[0], "more_images": images[1:], "opacity": finish(alpha),
                "depth": depth, "orientation": torch.zeros((), device=v.device)}

    def draw(self, screen: Tensor, corner_values: Tensor, size: int):
        """(values (B, C, H, W), alpha (B, 1, H, W), depth (B, 1, H, W), finish): the
        soft rasteriser's blend of the faces' corner values (B, F, 3, C); finish is
        applied to the composited images (nothing to do here)."""
        out = rasterize(screen, self.faces, corner_values, size, self.raster)
        return out["values"], out["alpha"], out["depth"], lambda image: image

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


def face_pairs(neighbours: Tensor) -> Tensor:
    """(E, 2) the two faces on either side of every shared edge, once each, from
    hard_raster.edge_neighbours' (F, 3) table."""
    face = torch.arange(len(neighbours), device=neighbours.device)[:, None].expand_as(neighbours)
    once = neighbours > face  # each pair seen from its lower-numbered face
    return torch.stack([face[once], neighbours[once]], dim=1)


class SurfaceMesh(MeshModel):
    """The refine stage's model: any closed mesh (from the field's export), its vertex
    offsets and colours optimised, with the regularisers of a clean surface; its
    topology is kept in the state dict, so a checkpoint rebuilds it."""

    def __init__(self, vertices: Tensor, faces: Tensor, colours: Tensor, cfg: RefineConfig):
        nn.Module.__init__(self)
        self.cfg = cfg
        logits = torch.logit(colours.clamp(0.02, 0.98))
        self.build(vertices.float(), faces.long(), logits.float(),
                   RasterSettings(cfg.sigma, cfg.gamma), persistent=True)
        self.register_buffer("turned", torch.zeros(()))
        """Degrees the field was turned about y before meshing (export.snap_turn)."""
        self.register_buffer("neighbours", edge_neighbours(self.faces), persistent=False)
        self.register_buffer("pairs", face_pairs(self.neighbours), persistent=False)
        self.smoother = (SparseSmoother(self.edge_src, self.edge_dst, len(self.base),
                                        cfg.step_smoothing) if cfg.step_smoothing > 0 else None)

    def vertices(self) -> Tensor:
        """(V, 3): base + offsets, or with step smoothing base + (I + lambda L)^-1 offsets
        (the offsets live in the smoothed space of large_steps.py)."""
        if self.smoother is None:
            return self.base + self.offsets
        return self.base + self.smoother(self.offsets)

    @classmethod
    def from_trimesh(cls, mesh: trimesh.Trimesh, cfg: RefineConfig) -> "SurfaceMesh":
        rgb = np.asarray(mesh.visual.vertex_colors)[:, :3] / 255.0
        return cls(torch.tensor(np.asarray(mesh.vertices)), torch.tensor(np.asarray(mesh.faces)),
                   torch.tensor(rgb), cfg)

    @classmethod
    def from_state(cls, state: dict, cfg: RefineConfig) -> "SurfaceMesh":
        """The model a checkpoint's `field` state was saved from (then loaded into it)."""
        model = cls(state["base"], state["faces"], torch.full_like(state["base"], 0.5), cfg)
        model.load_state_dict(state)
        return model

    def draw(self, screen: Tensor, corner_values: Tensor, size: int):
        """The hard rasteriser: each pixel's nearest face interpolated, and `finish`
        antialiases the silhouettes of the composited images (hard_raster.py)."""
        raster = rasterize_hard(screen, self.faces, size)
        values, alpha, depth = interpolate(raster, screen, self.faces, corner_values)
        crossings = silhouette_crossings(raster, screen, self.faces, self.neighbours)

        def finish(image: Tensor) -> Tensor:
            return antialias(image, crossings)

        return values, alpha, depth, finish

    def param_groups(self, cfg) -> list[tuple[list, float, bool]]:
        return [([self.offsets], cfg.refine.lr_vertices, False),
                ([self.colour_logits], cfg.refine.lr_colours, False)]

    def regularisers(self, cfg) -> tuple[dict[str, Tensor], dict[str, float]]:
        """Normal consistency, Laplacian of the positions (flattens bumps) and edge-length
        evenness (keeps faces from degenerating)."""
        r = cfg.refine
        v = self.vertices()
        n = face_normals(v, self.faces)
        terms = {"normal_consistency": (1 - (n[self.pairs[:, 0]] * n[self.pairs[:, 1]]).sum(-1)).mean(),
                 "laplacian": uniform_laplacian(v, self.edge_src, self.edge_dst),
                 "edge_length": self.edge_length_loss(v)}
        return terms, {"normal_consistency": r.normal_consistency, "laplacian": r.laplacian,
                       "edge_length": r.edge_length}

    def edge_length_loss(self, v: Tensor) -> Tensor:
        length = (v[self.edge_src] - v[self.edge_dst]).norm(dim=-1)
        return ((length / length.mean().detach() - 1) ** 2).mean()
