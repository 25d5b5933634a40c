"""Mesh extraction, vertex colours and mesh files."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import trimesh

from dreamfusion.mesh import EmptyFieldError, color_vertices, extract_mesh, write_meshes
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
