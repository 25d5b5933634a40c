"""The camera convention against the formulas of docs/TOYWORLD.md."""
import math

import pytest
import torch

from dreamfusion.cameras import CameraSampling, Cameras, ring_cameras, sample_cameras, view_labels


def test_position_formula():
    el, az, r = 30.0, 60.0, 2.2
    pos = Cameras.from_angles([el], [az], r).positions()[0]
    e, a = math.radians(el), math.radians(az)
    expected = torch.tensor([r * math.cos(e) * math.sin(a), r * math.sin(e), r * math.cos(e) * math.cos(a)])
    assert torch.allclose(pos, expected, atol=1e-6)


def test_front_camera_looks_down_minus_z_with_y_up():
    cams = Cameras.from_angles([0.0], [0.0], 2.2)
    right, up, forward = cams.axes()
    assert torch.allclose(forward[0], torch.tensor([0.0, 0.0, -1.0]), atol=1e-6)
    assert torch.allclose(up[0], torch.tensor([0.0, 1.0, 0.0]), atol=1e-6)
    assert torch.allclose(right[0], torch.tensor([1.0, 0.0, 0.0]), atol=1e-6)


@pytest.mark.parametrize("el", [-10.0, 0.0, 45.0, 89.0, 90.0])
def test_axes_orthonormal_and_looking_at_origin(el):
    cams = Cameras.from_angles([el] * 4, [0.0, 77.0, 180.0, 300.0], 2.0)
    right, up, forward = cams.axes()
    basis = torch.stack([right, up, forward], dim=1)  # (B, 3, 3)
    assert torch.allclose(basis @ basis.transpose(1, 2), torch.eye(3).expand(4, 3, 3), atol=1e-5)
    assert torch.allclose(forward, -cams.positions() / 2.0, atol=1e-5)
    assert (up[:, 1] >= -1e-6).all()  # +y is up on screen


def test_rays_centre_and_field_of_view():
    cams = Cameras.from_angles([20.0], [45.0], 2.2, fov=40.0)
    origins, dirs = cams.rays(64)
    assert origins.shape == dirs.shape == (1, 64, 64, 3)
    assert torch.allclose(dirs.norm(dim=-1), torch.ones(1, 64, 64), atol=1e-5)
    _, up, forward = cams.axes()
    # Top and bottom edge rays are 40 degrees apart vertically (pixel centres: a bit less).
    top = dirs[0, 0, 32] + dirs[0, 0, 31]
    bottom = dirs[0, 63, 32] + dirs[0, 63, 31]
    angle = math.degrees(math.acos(float((top / top.norm() * bottom / bottom.norm()).sum())))
    assert angle == pytest.approx(40.0 * 63 / 64, abs=0.3)
    assert float((dirs[0, 0, 32] * up[0]).sum()) > 0  # row 0 looks up


@pytest.mark.parametrize("el,az,label", [
    (0, 0, "front"), (0, 45, "front"), (0, -45, "front"), (0, 46, "side"), (10, 90, "side"),
    (0, 135, "back"), (0, 180, "back"), (0, -170, "back"), (0, 225, "back"), (0, 300, "side"),
    (61, 0, "overhead"), (60, 180, "back"), (90, 90, "overhead"), (0, 360, "front"),
])
def test_view_labels(el, az, label):
    assert view_labels(torch.tensor([float(el)]), torch.tensor([float(az)])) == [label]


def test_sample_cameras_ranges_and_determinism():
    cfg = CameraSampling()
    a = sample_cameras(4000, cfg, torch.Generator().manual_seed(1))
    b = sample_cameras(4000, cfg, torch.Generator().manual_seed(1))
    assert torch.equal(a.el, b.el) and torch.equal(a.az, b.az)
    assert a.el.min() >= -10 and a.el.max() <= 90
    assert a.az.min() >= 0 and a.az.max() < 360
    assert a.dist.min() >= 2.0 and a.dist.max() <= 2.4
    # Half uniform in angle, half uniform in area: fewer high elevations than uniform.
    assert 0.15 < float((a.el > 60).float().mean()) < 0.3


@pytest.mark.parametrize("ends", [0.5, 1.0])
def test_a_share_of_the_cameras_sits_at_the_ends_of_the_distance_range(ends):
    plain = sample_cameras(4000, CameraSampling(), torch.Generator().manual_seed(2))
    cams = sample_cameras(4000, CameraSampling(dist_ends=ends), torch.Generator().manual_seed(2))
    assert torch.equal(cams.el, plain.el) and torch.equal(cams.az, plain.az)
    near, far = (cams.dist == 2.0).float().mean(), (cams.dist == 2.4).float().mean()
    # binomial shares: 4000 draws, three standard deviations is under 0.025
    assert abs(near - ends / 2) < 0.025 and abs(far - ends / 2) < 0.025
    assert cams.dist.min() >= 2.0 and cams.dist.max() <= 2.4


def test_ring_cameras():
    cams = ring_cameras(8, el=20.0)
    assert torch.allclose(cams.az, torch.arange(8.0) * 45)
    assert torch.allclose(cams.el, torch.full((8,), 20.0))


def test_front_biased_cameras_follow_the_photo_distribution():
    from dreamfusion.cameras import sample_front_biased_cameras
    cams = sample_front_biased_cameras(20000, torch.Generator().manual_seed(0))
    front = float((cams.az.abs() <= 45).float().mean())
    # 0.7 * P(|N(0,30)| <= 45) + 0.3 * 0.25 = 0.7 * 0.866 + 0.075
    assert abs(front - (0.7 * 0.866 + 0.075)) < 0.02
    assert cams.el.min() >= -10 and cams.el.max() <= 60
    assert cams.az.min() > -180 and cams.az.max() <= 180
