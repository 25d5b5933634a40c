"""The GLB's UV texture (texture.py): the baker against its texel-by-texel reference, the
texture read back at the faces agrees with the vertex colours it was baked from (which
catches a flipped v), and the export's three files."""
import io

import numpy as np
import pytest
import trimesh

from dreamfusion import texture
from dreamfusion.mesh import write_meshes

pytestmark = pytest.mark.skipif(not texture.available(), reason="xatlas (the texture extra)")


def rainbow_sphere(subdivisions=2):
    """An icosphere whose vertex colours are its positions mapped to RGB: every face's
    colours differ, so a texture read at the wrong place shows."""
    mesh = trimesh.creation.icosphere(subdivisions=subdivisions, radius=0.5)
    rgb = np.round((mesh.vertices + 0.5) * 255).clip(0, 255).astype(np.uint8)
    mesh.visual.vertex_colors = np.concatenate([rgb, np.full((len(rgb), 1), 255, np.uint8)], 1)
    return mesh


def test_the_baker_matches_its_texel_by_texel_reference():
    mesh = rainbow_sphere(1)
    vmapping, faces, uv = texture.unwrap(mesh.vertices, mesh.faces)
    colours = mesh.visual.vertex_colors[vmapping, :3] / 255.0
    fast, fast_covered = texture.bake(uv, faces, colours, 24)
    ref, ref_covered = texture.bake_reference(uv, faces, colours, 24)
    assert fast_covered.sum() > 0.3 * 24 * 24
    assert np.array_equal(fast_covered, ref_covered)
    assert np.allclose(fast, ref, atol=1e-9)


def test_the_texture_read_at_each_face_is_the_colour_baked_there():
    mesh = rainbow_sphere(3)
    glb = texture.textured(mesh, 256).export(file_type="glb")
    back = trimesh.load(io.BytesIO(glb), file_type="glb", force="mesh", process=False)
    assert isinstance(back.visual, trimesh.visual.TextureVisuals)
    assert len(back.faces) == len(mesh.faces)
    image = np.asarray(back.visual.material.baseColorTexture.convert("RGB"), dtype=float)
    size = image.shape[0]
    uv = back.visual.uv[back.faces].mean(axis=1)  # each face's centroid
    col = np.clip((uv[:, 0] * size).astype(int), 0, size - 1)
    row = np.clip(((1 - uv[:, 1]) * size).astype(int), 0, size - 1)  # glTF images: row 0 on top
    read = image[row, col]
    # the colour at the centroid: the vertex colours are linear in position
    centroid = back.vertices[back.faces].mean(axis=1)
    expected = np.round((centroid + 0.5) * 255).clip(0, 255)
    error = np.abs(read - expected).max(axis=1)
    # measured: at most 2 of 255 (one texel of the smooth ramp plus rounding); reading
    # with v unflipped gives errors of about 100
    assert np.percentile(error, 99) <= 4 and error.mean() < 1.5
    flipped = image[np.clip((uv[:, 1] * size).astype(int), 0, size - 1), col]
    assert np.abs(flipped - expected).max(axis=1).mean() > 20


def test_dilation_fills_a_ring_around_the_charts_and_keeps_them():
    tex = np.zeros((8, 8, 3))
    covered = np.zeros((8, 8), dtype=bool)
    tex[3:5, 3:5] = [0.2, 0.4, 0.6]
    covered[3:5, 3:5] = True
    out = texture.dilate(tex, covered, texels=1)
    assert np.array_equal(out[covered], tex[covered])
    assert np.allclose(out[2:6, 2:6], [0.2, 0.4, 0.6]) and np.all(out[0] == 0)


def test_the_glb_carries_the_texture_and_the_ply_and_obj_the_vertex_colours(tmp_path, monkeypatch):
    mesh = rainbow_sphere(2)
    paths = write_meshes(mesh, tmp_path, texture_size=128)
    glb = trimesh.load(paths["glb"], force="mesh")
    assert isinstance(glb.visual, trimesh.visual.TextureVisuals)
    assert glb.visual.material.baseColorTexture.size == (128, 128)
    ply = trimesh.load(paths["ply"], process=False)
    assert np.array_equal(ply.visual.vertex_colors, mesh.visual.vertex_colors)
    monkeypatch.setattr(texture, "MAX_FACES", len(mesh.faces) - 1)  # too many faces
    (tmp_path / "big").mkdir()
    big = write_meshes(mesh, tmp_path / "big", texture_size=128)
    assert trimesh.load(big["glb"], force="mesh").visual.kind == "vertex"
    monkeypatch.setattr(texture, "MAX_FACES", len(mesh.faces))
    monkeypatch.setattr(texture, "available", lambda: False)  # without the extra
    (tmp_path / "plain").mkdir()
    plain = write_meshes(mesh, tmp_path / "plain", texture_size=128)
    assert trimesh.load(plain["glb"], force="mesh").visual.kind == "vertex"


def test_a_run_export_with_a_texture_size_writes_the_textured_glb(tmp_path):
    """export.texture_size reaches the GLB of a mesh model's export (CLIP-Mesh's sphere)."""
    import dataclasses

    import torch

    from dreamfusion.config import ExportConfig, MeshConfig
    from dreamfusion.export import export_run
    from dreamfusion.mesh_model import MeshModel
    model = MeshModel(MeshConfig(subdivisions=2))
    with torch.no_grad():
        model.colour_logits.normal_()
    cfg = ExportConfig(turntable_frames=2, turntable_size=16, view_size=16, snap_turn=False)
    for size, kind in ((0, "vertex"), (64, "texture")):
        out = tmp_path / str(size)
        out.mkdir()
        export_run(model, dataclasses.replace(cfg, texture_size=size), out)
        assert trimesh.load(out / "mesh.glb", force="mesh").visual.kind == kind
