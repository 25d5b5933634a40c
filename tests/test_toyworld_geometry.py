"""Exact geometry of the toy world's shapes (docs/TOYWORLD.md, Objects)."""
import math

import pytest
import torch
from scipy.spatial import cKDTree

from dreamfusion.toyworld import (
    BOUNDING_RADIUS,
    COLORS,
    SHAPES,
    ToyObject,
    grid_points,
    inside,
    normals,
    occupancy_grid,
    sdf,
    surface_albedo,
    volume,
)

INSIDE = {
    "sphere": [(0, 0, 0), (0.49, 0, 0), (0, -0.3, 0.3)],
    "cube": [(0, 0, 0), (0.39, 0.39, 0.39), (-0.39, 0.2, -0.1)],
    "cylinder": [(0, 0, 0), (0.39, 0.49, 0), (0, -0.49, -0.39)],
    "cone": [(0, 0, 0), (0, 0.49, 0), (0.45, -0.45, 0), (0.05, 0.35, 0.0)],
    "torus": [(0.4, 0, 0), (0, 0.1, -0.4), (0.3, 0.1, 0.0)],
    "pyramid": [(0, 0, 0), (0.45, -0.45, 0.45), (0, 0.49, 0), (0.2, 0, -0.2)],
}
OUTSIDE = {
    "sphere": [(0.51, 0, 0), (0.3, 0.3, 0.3), (0, 0, -0.9)],
    "cube": [(0.41, 0, 0), (0.3, 0.3, 0.45), (0.5, 0.5, 0.5)],
    "cylinder": [(0.41, 0, 0), (0, 0.51, 0), (0.3, 0, 0.3)],
    "cone": [(0.3, 0.3, 0), (0, 0.51, 0), (0, -0.51, 0), (0.45, -0.3, 0.0)],
    "torus": [(0, 0, 0), (0.4, 0.16, 0), (0.56, 0, 0), (0.24, 0, 0)],
    "pyramid": [(0.3, 0.3, 0), (0.35, 0, 0.35), (0, -0.51, 0), (0.51, -0.45, 0), (0, 0.51, 0)],
}
SURFACE = {
    "sphere": [(0, 0, 0.5), (0.5, 0, 0), (0, -0.5, 0)],
    "cube": [(0, 0, 0.4), (0.4, 0.4, 0.4), (0.4, 0.1, -0.2)],
    "cylinder": [(0.4, 0, 0), (0, 0.5, 0), (0.4, 0.5, 0), (0, -0.5, 0.2)],
    "cone": [(0, 0.5, 0), (0.5, -0.5, 0), (0, -0.5, 0), (0.25, 0, 0), (0, 0, -0.25)],
    "torus": [(0.55, 0, 0), (0.25, 0, 0), (0.4, 0.15, 0), (0, -0.15, 0.4)],
    "pyramid": [(0, 0.5, 0), (0.5, -0.5, 0.5), (0.25, 0, 0.1), (0, -0.5, 0), (-0.1, 0, -0.25)],
}
# Exact distances from outside points, including below the cone's and pyramid's base.
DISTANCES = [
    ("sphere", (0, 0, 1), 0.5),
    ("cube", (1, 1, 0), math.hypot(0.6, 0.6)),
    ("cube", (0, 0, -1), 0.6),
    ("cylinder", (0, 1, 0), 0.5),
    ("cylinder", (1, 1, 0), math.hypot(0.6, 0.5)),
    ("cone", (0, 1, 0), 0.5),
    ("cone", (0, -1, 0), 0.5),
    ("cone", (1, -1, 0), math.hypot(0.5, 0.5)),
    ("torus", (0, 0, 0), 0.25),
    ("torus", (0, 1, 0.4), 0.85),
    ("pyramid", (0, 1, 0), 0.5),
    ("pyramid", (0, -1, 0), 0.5),
    ("pyramid", (1, -1, 1), math.sqrt(0.75)),
]


def _t(points):
    return torch.tensor(points, dtype=torch.float32)


@pytest.mark.parametrize("shape", SHAPES)
def test_sign(shape):
    assert (sdf(shape, _t(INSIDE[shape])) < 0).all()
    assert (sdf(shape, _t(OUTSIDE[shape])) > 0).all()
    assert inside(shape, _t(INSIDE[shape])).all()
    assert not inside(shape, _t(OUTSIDE[shape])).any()


@pytest.mark.parametrize("shape", SHAPES)
def test_zero_on_surface(shape):
    assert sdf(shape, _t(SURFACE[shape])).abs().max() < 1e-6


@pytest.mark.parametrize("shape, point, dist", DISTANCES)
def test_exact_distances(shape, point, dist):
    assert sdf(shape, _t([point]))[0].item() == pytest.approx(dist, abs=1e-5)


@pytest.mark.parametrize("shape", SHAPES)
def test_lipschitz_and_bounded(shape):
    g = torch.Generator().manual_seed(0)
    p = torch.rand(20000, 3, generator=g) * 2.4 - 1.2
    q = p + torch.randn(20000, 3, generator=g) * 0.05
    ds = (sdf(shape, p) - sdf(shape, q)).abs()
    assert (ds <= (p - q).norm(dim=-1) + 1e-5).all()
    # Nothing is outside the bounding sphere: there sdf >= |p| - radius.
    r = BOUNDING_RADIUS[shape]
    assert (sdf(shape, p) >= p.norm(dim=-1) - r - 1e-5).all()


def _surface_samples(shape, n, g):
    """Points on the cone's / pyramid's surface (faces sampled by parameters)."""
    u, v, w = (torch.rand(n, generator=g) for _ in range(3))
    y = w - 0.5
    if shape == "cone":
        th = u * 2 * math.pi
        r = torch.where(torch.arange(n) % 2 == 0, 0.25 - 0.5 * y, 0.5 * v.sqrt())
        y = torch.where(torch.arange(n) % 2 == 0, y, torch.full_like(y, -0.5))
        return torch.stack([r * th.cos(), y, r * th.sin()], -1)
    hw = 0.25 - 0.5 * y
    t = (2 * v - 1) * hw
    faces = [
        torch.stack([hw, y, t], -1), torch.stack([-hw, y, t], -1),
        torch.stack([t, y, hw], -1), torch.stack([t, y, -hw], -1),
        torch.stack([u - 0.5, torch.full_like(u, -0.5), v - 0.5], -1),
    ]
    k = torch.arange(n) % 5
    out = faces[4].clone()
    for i in range(4):
        out[k == i] = faces[i][k == i]
    return out


@pytest.mark.parametrize("shape", ["cone", "pyramid"])
def test_distance_matches_brute_force(shape):
    g = torch.Generator().manual_seed(1)
    surf = _surface_samples(shape, 200000, g)
    assert sdf(shape, surf).abs().max() < 1e-6
    q = torch.rand(5000, 3, generator=g) * 3 - 1.5
    nearest = torch.tensor(cKDTree(surf.numpy()).query(q.numpy())[0], dtype=torch.float32)
    d = sdf(shape, q).abs()
    assert (d <= nearest + 1e-5).all()  # never beyond the true distance
    assert (nearest - d).max() < 0.01  # and equal to it up to the sampling gap


@pytest.mark.parametrize("shape", SHAPES)
def test_volume(shape):
    # A 128^3 stratified grid (one jittered point per cell): an axis-aligned cube
    # aliases with cell centres, jitter makes the estimate unbiased.
    g = torch.Generator().manual_seed(0)
    pts = grid_points(128) + (torch.rand(128, 128, 128, 3, generator=g) - 0.5) * (2 / 128)
    est = inside(shape, pts).float().mean().item() * 8.0
    assert est == pytest.approx(volume(shape), rel=0.02)


def test_volume_values():
    assert volume("cube") == pytest.approx(0.512)
    assert volume("pyramid") == pytest.approx(1 / 3)
    assert volume("torus") == pytest.approx(2 * math.pi**2 * 0.4 * 0.15**2)


def test_occupancy_grid_axes():
    occ = occupancy_grid("cone", res=32)
    assert occ.shape == (32, 32, 32) and occ.dtype == torch.bool
    # Axis 1 is y: the cone is wide at the bottom, narrow at the top.
    assert occ[:, 10].sum() > occ[:, 22].sum() > 0  # y = -0.34, 0.41
    assert torch.equal(occ, inside("cone", grid_points(32)))


def test_normals():
    cases = [
        ("sphere", (0.3, 0.4, 0.0), (0.6, 0.8, 0.0)),
        ("cube", (0.0, 0.0, 0.4), (0, 0, 1)),
        ("cube", (0.1, -0.4, 0.2), (0, -1, 0)),
        ("cylinder", (0.0, 0.2, -0.4), (0, 0, -1)),
        ("cylinder", (0.1, 0.5, 0.1), (0, 1, 0)),
        ("cone", (0.25, 0.0, 0.0), (2 / math.sqrt(5), 1 / math.sqrt(5), 0)),
        ("torus", (0.55, 0.0, 0.0), (1, 0, 0)),
        ("torus", (0.0, 0.15, 0.4), (0, 1, 0)),
        ("pyramid", (0.1, 0.0, 0.25), (0, 1 / math.sqrt(5), 2 / math.sqrt(5))),
        ("pyramid", (0.1, -0.5, 0.2), (0, -1, 0)),
    ]
    for shape, p, n in cases:
        got = normals(shape, _t([p]))[0]
        assert torch.allclose(got, _t(n), atol=1e-3), (shape, p, got)


def test_surface_albedo():
    n = _t([[0, 0, 1], [0, 0, -1], [1, 0, 0], [0, 1, 0.99], [0.5, 0.3, 0.8]])
    n = n / n.norm(dim=-1, keepdim=True)
    red, yellow = _t(COLORS["red"]), _t(COLORS["yellow"])
    got = surface_albedo(ToyObject("cube", "red", "yellow"), n)
    expect = torch.stack([yellow, red, red, red, yellow])
    assert torch.allclose(got, expect)
    plain = surface_albedo(ToyObject("cube", "red"), n)
    assert torch.allclose(plain, red.expand(5, 3))
