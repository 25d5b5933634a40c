"""Snapping the turn of a four-fold object to the world axes (export.snap_turn)."""
import math

import pytest
import torch

from dreamfusion.canonical import (
    SNAP_MIN_AMPLITUDE,
    four_fold_mode,
    snap_turn,
    turn_points_about_y,
)
from dreamfusion.config import ExportConfig, FieldConfig
from dreamfusion.field import GridField
from dreamfusion.toyworld.geometry import inside
from dreamfusion.toyworld.world import grid_points

R = 48


def occupancy(shape: str, turn_deg: float) -> torch.Tensor:
    """(R, R, R) bool: the exact shape, its query points turned by turn_deg about y."""
    q = turn_points_about_y(grid_points(R, 1.0), turn_deg)
    return inside(shape, q.reshape(-1, 3)).reshape(R, R, R)


def field_of(occ: torch.Tensor) -> GridField:
    field = GridField(FieldConfig(resolution=R, density_levels=(R,), albedo_levels=(8,),
                                  blob_density=0.0))
    with torch.no_grad():
        field.density_levels[0].copy_(torch.where(occ, 30.0, -10.0))
    return field


def iou(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a & b).sum()) / float((a | b).sum())


@pytest.mark.parametrize("shape", ["cube", "pyramid"])
@pytest.mark.parametrize("turn", [12.0, -30.0, 40.0])
def test_snap_turns_a_four_fold_object_back_onto_the_axes(shape, turn):
    aligned = occupancy(shape, 0.0)
    field = field_of(occupancy(shape, turn))
    snapped, removed = snap_turn(field)
    assert abs(removed + turn) < 1.5  # four_fold_mode reads the turn with the other sign
    after, before = (iou(f.density_grid() > 10, aligned) for f in (snapped, field))
    assert after > 0.9 and after > before + 0.04  # the resampled grid blurs a little


@pytest.mark.parametrize("shape", ["cone", "cylinder", "torus"])
def test_snap_leaves_objects_without_a_four_fold_mode_alone(shape):
    field = field_of(occupancy(shape, 20.0))
    a, b, _ = four_fold_mode(field.density_grid(), 1.0)
    assert math.hypot(a, b) < SNAP_MIN_AMPLITUDE
    snapped, removed = snap_turn(field)
    assert snapped is field and removed == 0.0


def test_snap_keeps_the_albedo_with_the_geometry():
    """A cube turned by 30 degrees with a red +x half: after the snap the red half is
    still the +x-ish half, turned with the shape (the albedo is resampled too)."""
    field = field_of(occupancy("cube", 30.0))
    with torch.no_grad():
        x = grid_points(8, 1.0)[..., 0]
        field.albedo_levels[0].copy_(torch.stack([x * 20, -x * 20, -x * 20]))
    snapped, _ = snap_turn(field)
    pts = torch.tensor([[0.3, 0.0, 0.0], [-0.3, 0.0, 0.0]])
    red = snapped.albedo(pts)[:, 0]
    assert red[0] > 0.9 and red[1] < 0.1


def test_snap_is_on_for_the_toy_world_and_off_for_real_priors():
    from dreamfusion.config import PRESET_TABLE
    assert ExportConfig().snap_turn is True
    for (backend, _), p in PRESET_TABLE.items():
        assert p.config.export.snap_turn is (backend == "toy")
        assert p.config.export.fill_hidden is (backend == "toy")


def test_iou_unsnapped_undoes_the_snap():
    """A cube turned by 25 degrees: the exported (snapped) mesh fits the true cube;
    turned back by the snap it is the mesh exported without the snap (the other sign
    is not), and iou_unsnapped scores that."""
    from dreamfusion.evaluate import score_mesh, turned_back, voxelize_mesh
    from dreamfusion.export import export_mesh
    from dreamfusion.toyworld.captions import parse_caption
    field = field_of(occupancy("cube", 25.0))
    snapped, turn = snap_turn(field)
    cfg = ExportConfig(mesh_resolution=64, threshold=1.0)
    raw, _ = export_mesh(field, cfg)
    mesh, _ = export_mesh(snapped, cfg)
    vox = torch.from_numpy(voxelize_mesh(raw))
    assert iou(torch.from_numpy(voxelize_mesh(turned_back(mesh, turn))), vox) > 0.9
    assert iou(torch.from_numpy(voxelize_mesh(turned_back(mesh, -turn))), vox) < 0.8
    cube = parse_caption("a red cube")
    as_trained = score_mesh(raw, cube)["iou"]
    scores = score_mesh(mesh, cube, turn_deg=turn)
    assert scores["iou"] > as_trained + 0.1  # the snap is an alignment that pays
    assert abs(scores["iou_unsnapped"] - as_trained) < 0.02
    assert score_mesh(raw, cube)["iou_unsnapped"] == as_trained  # no snap, nothing undone
