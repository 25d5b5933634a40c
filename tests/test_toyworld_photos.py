"""The prior's training distribution: photo cameras, lights, determinism, captions."""
import pytest
import torch

from dreamfusion.cameras import view_labels, wrap_azimuth
from dreamfusion.toyworld import (
    VIEWS,
    Caption,
    ToyObject,
    all_objects,
    parse_caption,
    random_captions,
    render_mixed_photos,
    render_photos,
    sample_light_dirs,
    sample_photo_cameras,
)

CUBE = Caption(ToyObject("cube", "red", "yellow"))


@pytest.mark.parametrize("view", VIEWS)
def test_cameras_with_a_suffix_have_its_label(view):
    g = torch.Generator().manual_seed(0)
    cams = sample_photo_cameras(CUBE.with_view(view), 4000, g)
    assert set(view_labels(cams.el, cams.az)) == {view}
    assert cams.fov == 40.0
    assert cams.dist.min() >= 2.0 and cams.dist.max() <= 2.4
    assert cams.el.min() >= -10 and cams.el.max() <= 90


def test_side_views_cover_both_sides_and_overhead_all_azimuths():
    g = torch.Generator().manual_seed(1)
    side = sample_photo_cameras(CUBE.with_view("side"), 2000, g)
    assert 0.4 < (side.az > 0).float().mean() < 0.6
    over = sample_photo_cameras(CUBE.with_view("overhead"), 2000, g)
    assert over.el.min() > 60 and over.az.min() < -150 and over.az.max() > 150


def test_suffix_free_cameras_are_front_biased():
    g = torch.Generator().manual_seed(0)
    cams = sample_photo_cameras(CUBE, 5000, g)
    az = wrap_azimuth(cams.az).abs()
    front = (az <= 45).float().mean().item()
    # 0.7 * P(|N(0, 30)| <= 45) + 0.3 * 0.25 = 0.7 * 0.866 + 0.075 = 0.68
    assert front == pytest.approx(0.68, abs=0.03)
    assert front > 0.25 + 0.3
    assert cams.el.min() >= -10 and cams.el.max() <= 60
    assert (az >= 135).float().mean() > 0.05  # the back is still seen sometimes


def test_light_dirs():
    g = torch.Generator().manual_seed(0)
    cams = sample_photo_cameras(CUBE, 2000, g)
    light = sample_light_dirs(cams, g)
    assert light.shape == (2000, 3)
    assert torch.allclose(light.norm(dim=-1), torch.ones(2000), atol=1e-5)
    towards_camera = (light * cams.positions() / cams.dist[:, None]).sum(-1)
    assert towards_camera.mean() > 0.9 and towards_camera.min() < 0.99


def test_render_photos_deterministic_and_seeded():
    cap = parse_caption("a blue cylinder with an orange front")
    a = render_photos(cap, 6, 16, seed=0)
    b = render_photos(cap, 6, 16, seed=0)
    c = render_photos(cap, 6, 16, seed=1)
    assert a.shape == (6, 3, 16, 16)
    assert a.min() >= 0 and a.max() <= 1
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert not torch.equal(a, render_photos(cap.with_view("back"), 6, 16, seed=0))


def test_render_photos_has_clay_and_colour():
    cap = parse_caption("a green sphere")
    photos = render_photos(cap, 60, 8, seed=3)
    centre = photos[:, :, 3:5, 3:5].mean(dim=(-1, -2))
    grey = (centre.max(dim=1).values - centre.min(dim=1).values) < 0.02
    assert 1 <= grey.sum() <= 25  # about 15 % clay photos, the rest green
    assert (centre[~grey, 1] > centre[~grey, 0]).all()


def test_render_mixed_photos():
    g = torch.Generator().manual_seed(0)
    caps = random_captions(24, g)
    a = render_mixed_photos(caps, 16, seed=0)
    assert a.shape == (24, 3, 16, 16)
    assert torch.equal(a, render_mixed_photos(caps, 16, seed=0))
    assert not torch.equal(a, render_mixed_photos(caps, 16, seed=1))


def test_random_captions():
    g = torch.Generator().manual_seed(0)
    caps = random_captions(4000, g)
    assert all(isinstance(c, Caption) for c in caps)
    no_view = sum(c.view is None for c in caps) / len(caps)
    assert no_view == pytest.approx(0.5, abs=0.04)
    counts = {v: sum(c.view == v for c in caps) for v in VIEWS}
    assert min(counts.values()) > 400
    assert len({c.obj for c in caps}) > 200  # uniform over the 216 objects
    plain = random_captions(100, g, with_views=False)
    assert all(c.view is None for c in plain)
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    assert random_captions(10, g1) == random_captions(10, g2)
    assert set(c.obj for c in caps) <= set(all_objects())
