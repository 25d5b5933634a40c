"""Ground-truth renderer: camera convention, silhouettes, shading, output format."""
import math

import pytest
import torch

from dreamfusion.cameras import Cameras
from dreamfusion.toyworld import COLORS, SHAPES, ToyObject, render_objects, trace

RED, YELLOW = torch.tensor(COLORS["red"]), torch.tensor(COLORS["yellow"])


def _cams(el, az, dist=2.2):
    return Cameras.from_angles(el, az, dist)


def _centre(img):
    """(B, C) mean of the central 3x3 pixels of (B, C, S, S) images."""
    s = img.shape[-1] // 2
    return img[:, :, s - 1 : s + 2, s - 1 : s + 2].mean(dim=(-1, -2))


@pytest.mark.parametrize("shape", ["cube", "sphere", "cylinder", "pyramid"])
def test_front_is_seen_from_azimuth_zero(shape):
    obj = ToyObject(shape, "red", "yellow")
    img = render_objects([obj] * 4, _cams([0, 0, 0, 0], [0, 180, 90, -90]), 24, "albedo")
    c = _centre(img)
    assert torch.allclose(c[0], YELLOW, atol=1e-3)  # az = 0 looks at +z: the front
    for i in (1, 2, 3):  # back and sides show the body colour
        assert torch.allclose(c[i], RED, atol=1e-3)


def test_front_is_on_the_left_from_positive_azimuth():
    # The camera at az = 45 sits at +x+z; its right vector is (cos az, 0, -sin az),
    # so the +z (front) face appears on the left of the image.
    img = render_objects([ToyObject("cube", "red", "yellow")], _cams([0], [45]), 32, "albedo")
    left, right = img[0, :, 16, 10], img[0, :, 16, 22]
    assert torch.allclose(left, YELLOW, atol=1e-3) and torch.allclose(right, RED, atol=1e-3)


def test_up_is_up():
    # A cone seen from the front: the apex at the top rows, the wide base at the bottom.
    sil = render_objects([ToyObject("cone", "red")], _cams([0], [0]), 32, "silhouette")[0, 0]
    assert sil[8].sum() < sil[22].sum()


def _projected_disc_area(radius, dist, size, fov=40.0):
    half_angle = math.asin(radius / dist)
    r_px = math.tan(half_angle) / math.tan(math.radians(fov / 2)) * size / 2
    return math.pi * r_px**2


def test_sphere_silhouette_is_a_disc_of_the_right_size():
    g = torch.Generator().manual_seed(0)
    n = 6
    el = torch.rand(n, generator=g) * 100 - 10
    az = torch.rand(n, generator=g) * 360 - 180
    dist = 2.0 + 0.4 * torch.rand(n, generator=g)
    size = 48
    sil = render_objects([ToyObject("sphere", "blue")] * n, Cameras(el, az, dist), size,
                         "silhouette")
    assert sil.shape == (n, 1, size, size)
    assert sil.min() >= 0 and sil.max() <= 1
    for i in range(n):
        expect = _projected_disc_area(0.5, float(dist[i]), size)
        assert sil[i].sum().item() == pytest.approx(expect, rel=0.05)
        # Centred: the coverage's centroid is the image centre.
        ys, xs = torch.meshgrid(torch.arange(size) + 0.5, torch.arange(size) + 0.5, indexing="ij")
        w = sil[i, 0] / sil[i, 0].sum()
        assert (w * xs).sum().item() == pytest.approx(size / 2, abs=0.1)
        assert (w * ys).sum().item() == pytest.approx(size / 2, abs=0.1)


def test_shapes_ranges_and_white_background():
    objs = [ToyObject(s, "green", "purple") for s in SHAPES]
    cams = _cams([20] * 6, [0, 60, 120, 180, 240, 300])
    for mode in ("shaded", "albedo"):
        img = render_objects(objs, cams, 16, mode)
        assert img.shape == (6, 3, 16, 16) and img.dtype == torch.float32
        assert img.min() >= 0 and img.max() <= 1
        for corner in (img[..., 0, 0], img[..., 0, -1], img[..., -1, 0], img[..., -1, -1]):
            assert torch.equal(corner, torch.ones_like(corner))
        assert (img < 0.99).any(dim=1).flatten(1).sum(1).min() > 10  # every object is seen
    sil = render_objects(objs, cams, 16, "silhouette", supersample=1)
    assert sil.shape == (6, 1, 16, 16)
    assert set(sil.unique().tolist()) <= {0.0, 1.0}


def test_lambert_shading_and_clay():
    obj = ToyObject("cube", "red", "yellow")
    cams = _cams([0, 0, 0], [0, 0, 0])
    up = torch.tensor([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [0.0, 1.0, 0.0]])
    clay = torch.tensor([False, False, True])
    c = _centre(render_objects([obj] * 3, cams, 24, "shaded", light_dirs=up, clay=clay))
    assert torch.allclose(c[0], YELLOW, atol=1e-3)  # n . l = 1: the full albedo
    assert torch.allclose(c[1], 0.3 * YELLOW, atol=1e-3)  # n . l = 0: ambient only
    assert torch.allclose(c[2], torch.full((3,), 0.3), atol=1e-3)  # clay: white albedo
    # Default light: from the object towards the camera.
    d = _centre(render_objects([obj], _cams([0], [0]), 24))
    assert torch.allclose(d[0], YELLOW, atol=1e-3)


def test_supersampling_antialiases_edges():
    obj = [ToyObject("sphere", "red")]
    hard = render_objects(obj, _cams([0], [0]), 32, "silhouette", supersample=1)
    soft = render_objects(obj, _cams([0], [0]), 32, "silhouette", supersample=4)
    assert set(hard.unique().tolist()) <= {0.0, 1.0}
    assert ((soft > 0) & (soft < 1)).sum() > 20
    assert soft.sum().item() == pytest.approx(hard.sum().item(), rel=0.05)


def test_trace_hits_at_the_surface():
    # Rays: from the front along -z, away from the object, from the top along -y.
    o = torch.tensor([[0.0, 0.0, 2.2], [0.0, 0.0, 2.2], [0.0, 2.0, 0.0]])
    d = torch.tensor([[0.0, 0.0, -1.0], [0.0, 1.0, 0.0], [0.0, -1.0, 0.0]])
    expect = {  # shape: (hit, front hit z, top hit y) on the axis rays
        "cube": (0.4, 0.4), "sphere": (0.5, 0.5), "cylinder": (0.4, 0.5),
        "cone": (0.25, 0.5), "pyramid": (0.25, 0.5), "torus": (0.55, None),
    }
    for shape, (z, y) in expect.items():
        hit, pts = trace(shape, o, d)
        assert hit.tolist() == [True, False, y is not None], shape
        assert pts[0, 2].item() == pytest.approx(z, abs=1e-3)
        if y is not None:
            assert pts[2, 1].item() == pytest.approx(y, abs=1e-3)


def test_errors():
    with pytest.raises(ValueError):
        render_objects([ToyObject("cube", "red")] * 2, _cams([0], [0]), 8)
    with pytest.raises(ValueError):
        render_objects([ToyObject("cube", "red")], _cams([0], [0]), 8, "depth")
