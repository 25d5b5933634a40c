"""The toy world's fixed numbers (docs/TOYWORLD.md). They are a contract: do not tune."""
from __future__ import annotations

import math

import torch
from torch import Tensor

SHAPES = ("sphere", "cube", "cylinder", "cone", "torus", "pyramid")

COLORS: dict[str, tuple[float, float, float]] = {
    "red": (0.85, 0.10, 0.10),
    "green": (0.10, 0.70, 0.20),
    "blue": (0.15, 0.25, 0.90),
    "yellow": (0.95, 0.85, 0.10),
    "purple": (0.55, 0.15, 0.75),
    "orange": (1.00, 0.50, 0.05),
}

VIEWS = ("front", "side", "back", "overhead")

FRONT_COS = math.cos(math.radians(45.0))
"""Surface with outward normal n_z >= FRONT_COS is the object's front."""

BACKGROUND = (1.0, 1.0, 1.0)
AMBIENT, DIFFUSE = 0.3, 0.7
"""Photo shading: albedo * (AMBIENT + DIFFUSE * max(0, n . l))."""
LIGHT_JITTER = 0.5
"""Light direction = normalize(camera position + N(0, LIGHT_JITTER^2 I))."""
CLAY_PROBABILITY = 0.15
FRONT_BIAS_PROBABILITY, FRONT_BIAS_STD = 0.7, 30.0
PHOTO_EL_RANGE = (-10.0, 60.0)
PHOTO_DIST_RANGE = (2.0, 2.4)
FOV = 40.0


def grid_points(res: int, bound: float = 1.0) -> Tensor:
    """(res, res, res, 3) cell centres of a regular grid over [-bound, bound]^3.

    Index [i, j, k] is the point (x_i, y_j, z_k): axis 0 is x, 1 is y, 2 is z. Every
    occupancy grid in the project (ground truth, field, voxelised mesh) uses this.
    """
    c = (torch.arange(res, dtype=torch.float32) + 0.5) / res * 2 * bound - bound
    return torch.stack(torch.meshgrid(c, c, c, indexing="ij"), dim=-1)
