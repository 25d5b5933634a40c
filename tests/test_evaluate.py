"""Ground-truth scores of meshes."""
from __future__ import annotations

import json
import time

import numpy as np
import pytest
import torch
import trimesh

from dreamfusion.evaluate import nearest_color, score_mesh, volume_iou, voxelize_mesh
from dreamfusion.mesh import color_vertices, extract_mesh
from dreamfusion.toyworld.captions import parse_caption
from dreamfusion.toyworld.geometry import sdf
from dreamfusion.toyworld.world import COLORS, SHAPES, grid_points


def solid(name: str):
    """albedo_fn painting everything ``name``."""
    rgb = torch.tensor(COLORS[name])
    return lambda x: rgb.expand(len(x), 3)


@pytest.fixture(scope="module")
def truth_meshes() -> dict[str, trimesh.Trimesh]:
    """Marching cubes of the exact sdf of each shape on a 96^3 grid."""
    p = grid_points(96)
    return {s: extract_mesh(-sdf(s, p), 0.0) for s in SHAPES}


def test_voxelize_box_and_icosphere():
    g = grid_points(64).numpy()
    box = trimesh.creation.box(extents=(0.8, 0.6, 1.0))
    truth = (np.abs(g) <= np.array([0.4, 0.3, 0.5])).all(-1)
    assert volume_iou(voxelize_mesh(box), truth) > 0.95
    ico = trimesh.creation.icosphere(subdivisions=5, radius=0.6)  # 20480 faces
    start = time.perf_counter()
    vox = voxelize_mesh(ico, res=64)
    assert time.perf_counter() - start < 2.0
    assert volume_iou(vox, np.linalg.norm(g, axis=-1) < 0.6) > 0.95
    # other bound: grid over [-0.5, 0.5]^3
    g2 = grid_points(32, 0.5).numpy()
    small = trimesh.creation.icosphere(subdivisions=3, radius=0.3)
    assert volume_iou(voxelize_mesh(small, 32, 0.5), np.linalg.norm(g2, axis=-1) < 0.3) > 0.9


def test_volume_iou_and_nearest_color():
    a = np.zeros((4, 4, 4), bool)
    b = a.copy()
    a[:2], b[1:3] = True, True
    assert volume_iou(a, b) == pytest.approx(1 / 3)
    assert volume_iou(np.zeros_like(a), np.zeros_like(a)) == 1.0
    for name, rgb in COLORS.items():
        assert nearest_color(rgb) == name
    assert nearest_color([0.9, 0.45, 0.1]) == "orange"


@pytest.mark.parametrize("shape", SHAPES)
def test_score_exact_shapes(truth_meshes, shape):
    color = list(COLORS)[SHAPES.index(shape)]
    mesh = color_vertices(truth_meshes[shape], solid(color))
    scores = score_mesh(mesh, parse_caption(f"a {color} {shape}"))
    json.dumps(scores)
    assert scores["iou"] > 0.9
    assert scores["retrieved_shape"] == shape and scores["shape_correct"]
    assert set(scores["iou_by_shape"]) == set(SHAPES)
    assert scores["color_name"] == color and scores["color_correct"]
    np.testing.assert_allclose(scores["mean_color"], COLORS[color], atol=0.01)
    assert "janus" not in scores


def test_wrong_caption_and_uncoloured(truth_meshes):
    scores = score_mesh(truth_meshes["torus"], parse_caption("a red sphere"))
    assert not scores["shape_correct"] and scores["retrieved_shape"] == "torus"
    assert scores["mean_color"] == pytest.approx([0.5, 0.5, 0.5])
    assert not scores["color_correct"]


def test_front_and_janus(truth_meshes):
    red, yellow = torch.tensor(COLORS["red"]), torch.tensor(COLORS["yellow"])

    def painted(back: bool):
        def albedo(x):
            sel = x[:, 2:3] > 0.39
            if back:
                sel = sel | (x[:, 2:3] < -0.39)
            return torch.where(sel, yellow, red)

        return albedo

    caption = parse_caption("a red cube with a yellow front")
    good = score_mesh(color_vertices(truth_meshes["cube"], painted(False)), caption)
    json.dumps(good)
    assert good["front_color_name"] == "yellow" and good["back_color_name"] == "red"
    assert good["front_correct"] and good["back_correct"] and good["color_correct"]
    assert not good["janus"]
    janus = score_mesh(color_vertices(truth_meshes["cube"], painted(True)), caption)
    assert janus["janus"] and not janus["back_correct"] and janus["front_correct"]
    # all red: the front is wrong, no Janus
    plain = score_mesh(color_vertices(truth_meshes["cube"], solid("red")), caption)
    assert not plain["front_correct"] and plain["back_correct"] and not plain["janus"]


def test_best_yaw_iou_finds_the_rotation_of_a_turned_cube():
    import numpy as np
    import trimesh

    from dreamfusion.evaluate import score_mesh
    from dreamfusion.toyworld.captions import parse_caption

    box = trimesh.creation.box(extents=(0.8, 0.8, 0.8))
    box.apply_transform(trimesh.transformations.rotation_matrix(np.radians(30), [0, 1, 0]))
    scores = score_mesh(box, parse_caption("a red cube"))
    assert scores["iou"] < 0.8  # the criterion does not align
    assert scores["iou_best_yaw"] > 0.95 and scores["best_yaw_deg"] == 30.0
