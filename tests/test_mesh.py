"""Mesh extraction, vertex colours and mesh files."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import trimesh

from dreamfusion.mesh import (EmptyFieldError, color_vertices, extract_mesh, largest_shell,
                              write_meshes)
from dreamfusion.toyworld.world import grid_points


def sphere_density(res: int, radius: float = 0.5) -> torch.Tensor:
    """(res, res, res) density 10 * (radius - |p|), clipped, on grid_points(res)."""
    return (10.0 * (radius - grid_points(res).norm(dim=-1))).clamp(-5.0, 5.0)


def as_mesh(loaded) -> trimesh.Trimesh:
    """A Trimesh from trimesh.load's answer (a Scene for GLB)."""
    if isinstance(loaded, trimesh.Scene):
        return loaded.to_geometry()
    return loaded


def test_sphere_is_watertight_outward_and_accurate():
    mesh = extract_mesh(sphere_density(64), threshold=0.0)
    assert mesh.is_watertight
    assert mesh.volume > 0
    assert mesh.volume == pytest.approx(4 / 3 * math.pi * 0.5**3, rel=0.03)
    np.testing.assert_allclose(mesh.bounds, [[-0.5] * 3, [0.5] * 3], atol=0.02)
    # outward: normals point away from the centre
    assert (np.einsum("ij,ij->i", mesh.face_normals, mesh.triangles_center) > 0).all()


def test_numpy_input_bound_and_border_blob_closed():
    # a blob cut by the border of the grid is still closed by the padding
    d = sphere_density(32, radius=1.2).numpy()
    mesh = extract_mesh(d, threshold=0.0, bound=0.5)
    assert mesh.is_watertight and mesh.volume > 0
    assert mesh.bounds[1].max() <= 0.5 + 2 * (1.0 / 32)


def test_floater_removed_by_keep_largest():
    p = grid_points(48)
    d = sphere_density(48).clone()
    d[(p - torch.tensor([0.8, 0.8, 0.8])).norm(dim=-1) < 0.1] = 3.0
    kept = extract_mesh(d, 0.0)
    assert kept.body_count == 1 and kept.is_watertight
    assert kept.bounds[1].max() < 0.6
    both = extract_mesh(d, 0.0, keep_largest=False)
    assert both.body_count == 2 and both.bounds[1].max() > 0.8


def test_blocks_touching_at_a_corner_are_one_blob_but_two_pieces_and_the_largest_is_kept():
    d = np.full((32, 32, 32), -1.0)
    d[8:16, 8:16, 8:16] = 1.0
    d[16:20, 16:20, 16:20] = 1.0  # 26-connected to the first block through one corner
    mesh = extract_mesh(d, 0.0)
    assert len(mesh.split(only_watertight=False)) == 2  # marching cubes parts them
    kept = largest_shell(mesh)
    assert len(kept.split(only_watertight=False)) == 1 and kept.is_watertight
    assert kept.bounds[1].max() <= 0.0 < mesh.bounds[1].max()  # the larger block: voxels 8-15
    assert largest_shell(kept) is kept


def test_a_hollow_field_exports_its_outer_surface_alone():
    """A ball opaque only at its skin (density low inside, as trained fields can be):
    one outward shell with the whole ball's volume, not a skin with an inner shell; the
    hole of a torus-like ring is not a cavity and stays open."""
    p = grid_points(64)
    r = p.norm(dim=-1)
    skin = (10.0 * (0.08 - (r - 0.42).abs())).clamp(-5.0, 5.0)
    filled = extract_mesh(skin, 0.0)
    assert filled.body_count == 1 and filled.is_watertight
    assert filled.volume == pytest.approx(4 / 3 * math.pi * 0.5**3, rel=0.05)
    hollow = extract_mesh(skin, 0.0, fill_cavities=False)
    assert hollow.body_count == 2 and hollow.volume < 0.75 * filled.volume  # 0.69
    ring_dist = ((p[:, :, :, [0, 2]].norm(dim=-1) - 0.4) ** 2 + p[..., 1] ** 2).sqrt()
    ring = extract_mesh((10.0 * (0.15 - ring_dist)).clamp(-5.0, 5.0), 0.0)
    assert ring.body_count == 1 and ring.euler_number == 0


def test_a_skin_with_a_hole_is_filled_as_the_solid_it_shows_and_a_ring_stays_a_ring():
    """fill_hidden: a ball's skin with its underside missing (a hole a quarter of the
    radius across) exports as the ball; without it, as a bowl (one shell, no volume
    inside). A ring's hole meets the solid in four axis directions and stays open; so
    does the space beside a cube's faces."""
    p = grid_points(64)
    r = p.norm(dim=-1)
    skin = (10.0 * (0.08 - (r - 0.42).abs())).clamp(-5.0, 5.0)
    skin[(p[..., 1] < -0.3) & (p[..., [0, 2]].norm(dim=-1) < 0.12)] = -5.0
    bowl = extract_mesh(skin, 0.0)
    assert bowl.volume < 0.75 * 4 / 3 * math.pi * 0.5**3
    ball = extract_mesh(skin, 0.0, fill_hidden=True)
    assert ball.body_count == 1 and ball.euler_number == 2
    assert ball.volume == pytest.approx(4 / 3 * math.pi * 0.5**3, rel=0.05)
    ring_dist = ((p[:, :, :, [0, 2]].norm(dim=-1) - 0.4) ** 2 + p[..., 1] ** 2).sqrt()
    ring = extract_mesh((10.0 * (0.15 - ring_dist)).clamp(-5.0, 5.0), 0.0, fill_hidden=True)
    assert ring.euler_number == 0
    cube = (10.0 * (0.4 - p.abs().amax(dim=-1))).clamp(-5.0, 5.0)
    assert extract_mesh(cube, 0.0, fill_hidden=True).volume == pytest.approx(0.8**3, rel=0.03)


def test_empty_field_raises():
    with pytest.raises(EmptyFieldError, match="no density above the threshold"):
        extract_mesh(np.zeros((16, 16, 16)), threshold=0.5)


def test_color_vertices_and_files_round_trip(tmp_path):
    mesh = extract_mesh(sphere_density(32), threshold=0.0)
    colored = color_vertices(mesh, lambda x: (x + 1.0) / 2.0, inset=0.02)
    rgba = colored.visual.vertex_colors
    assert rgba.dtype == np.uint8 and rgba.shape == (len(mesh.vertices), 4)
    # inset moves the sample point inside: |colour - (v+1)/2| reflects the shift
    expected = np.round((mesh.vertices - 0.02 * mesh.vertex_normals + 1) / 2 * 255)
    assert np.abs(rgba[:, :3].astype(int) - expected).max() <= 1
    assert (rgba[:, 3] == 255).all()

    paths = write_meshes(colored, tmp_path, stem="obj1")
    assert set(paths) == {"glb", "obj", "ply"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["obj1.glb", "obj1.obj", "obj1.ply"]
    for ext, path in paths.items():
        loaded = as_mesh(trimesh.load(path))
        assert len(loaded.faces) == len(colored.faces), ext
        assert abs(len(loaded.vertices) - len(colored.vertices)) <= 0.05 * len(colored.vertices)
        assert loaded.visual.kind == "vertex", ext
        if len(loaded.vertices) == len(colored.vertices):
            diff = np.abs(loaded.visual.vertex_colors[:, :3].astype(int) - rgba[:, :3])
            assert diff.max() <= 1, ext
    ply = trimesh.load(paths["ply"])
    assert len(ply.vertices) == len(colored.vertices)
    np.testing.assert_array_equal(ply.visual.vertex_colors, rgba)
