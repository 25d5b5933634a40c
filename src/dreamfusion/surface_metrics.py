"""How clean a mesh's surface is against the exact toy-world shape: Chamfer distance,
F-score at 0.02, mean normal angle, shells and Euler characteristic.

Both surfaces are sampled uniformly by area. The true samples come from a fine marching-
cubes mesh of the shape's signed distance, each point then moved onto the exact surface
and given the exact normal, so sharp edges and apexes are not bevelled in the reference.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import trimesh
from scipy.spatial import cKDTree
from skimage.measure import marching_cubes

from .toyworld.geometry import normals, sdf

SAMPLES = 20_000
"""Points sampled on each surface."""
F_SCORE_TAU = 0.02
"""Distance within which a point counts as matched (the scene is 2 units across)."""


def _onto_surface(shape: str, p: np.ndarray, iters: int = 3) -> np.ndarray:
    """Points (P, 3) moved along the signed distance's gradient onto the exact surface."""
    x = torch.as_tensor(p, dtype=torch.float32)
    for _ in range(iters):
        x = x - sdf(shape, x)[:, None] * normals(shape, x)
    return x.numpy()


def exact_mesh(shape: str, res: int) -> trimesh.Trimesh:
    """The exact shape's surface by marching cubes of its signed distance on a res^3 grid
    over [-0.6, 0.6]^3, faces outward."""
    lin = torch.linspace(-0.6, 0.6, res)
    grid = torch.stack(torch.meshgrid(lin, lin, lin, indexing="ij"), dim=-1).reshape(-1, 3)
    dist = sdf(shape, grid).reshape(res, res, res).numpy()
    verts, faces, _, _ = marching_cubes(dist, level=0.0, spacing=(1.2 / (res - 1),) * 3)
    return trimesh.Trimesh(verts - 0.6, faces, process=False)


@lru_cache(maxsize=None)
def true_surface(shape: str, n: int = SAMPLES, res: int = 160) -> tuple[np.ndarray, np.ndarray]:
    """(points (n, 3), outward unit normals (n, 3)) on the exact surface of `shape`."""
    mesh = exact_mesh(shape, res)
    points, _ = trimesh.sample.sample_surface(mesh, n, seed=0)
    points = _onto_surface(shape, np.asarray(points))
    normal = normals(shape, torch.as_tensor(points, dtype=torch.float32)).numpy()
    return points, normal


def mesh_surface(mesh: trimesh.Trimesh, n: int = SAMPLES) -> tuple[np.ndarray, np.ndarray]:
    """(points (n, 3), face normals (n, 3)) sampled uniformly by area on `mesh`."""
    points, face = trimesh.sample.sample_surface(mesh, n, seed=0)
    return np.asarray(points), np.asarray(mesh.face_normals)[face]


def f_score(d_mesh: np.ndarray, d_true: np.ndarray, tau: float = F_SCORE_TAU) -> float:
    """Harmonic mean of precision (share of mesh samples within tau of the truth, d_mesh)
    and recall (share of true samples within tau of the mesh, d_true)."""
    precision, recall = float((d_mesh < tau).mean()), float((d_true < tau).mean())
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def surface_scores(mesh: trimesh.Trimesh, shape: str, tau: float = F_SCORE_TAU) -> dict:
    """chamfer (mean of the two mean nearest distances), fscore (at `tau`),
    normal_angle_deg (mean angle between each mesh sample's face normal and the true
    normal nearest it; an inward face counts up to 180), shells (connected pieces) and
    euler (V - E + F; a sphere-like solid has 2, a torus 0)."""
    if len(mesh.faces) == 0:
        return {"chamfer": None, "fscore": 0.0, "normal_angle_deg": None, "shells": 0,
                "euler": None}
    true_p, true_n = true_surface(shape)
    mesh_p, mesh_n = mesh_surface(mesh)
    d_mesh, nearest = cKDTree(true_p).query(mesh_p)  # mesh -> truth
    d_true, _ = cKDTree(mesh_p).query(true_p)  # truth -> mesh
    fscore = f_score(d_mesh, d_true, tau)
    cos = np.clip((mesh_n * true_n[nearest]).sum(-1), -1.0, 1.0)
    return {"chamfer": float(0.5 * (d_mesh.mean() + d_true.mean())),
            "fscore": fscore,
            "normal_angle_deg": float(np.degrees(np.arccos(cos)).mean()),
            "shells": int(len(mesh.split(only_watertight=False))),
            "euler": int(mesh.euler_number)}
