"""Field and renderer: shapes, ranges, gradients, normals, the plain-PyTorch reference."""
import math

import torch

from dreamfusion.cameras import Cameras, ring_cameras
from dreamfusion.config import FieldConfig
from dreamfusion.field import GridField, density_gradient, sample_volume
from dreamfusion.render import Shading, composite, ray_sphere_bounds, render
from dreamfusion.toyworld.world import grid_points


def small_field(res=24):
    return GridField(FieldConfig(resolution=res, density_levels=(res // 2, res),
                                 albedo_levels=(res // 4, res // 2)))


def test_sample_volume_matches_grid_values_at_cell_centres():
    vol = torch.randn(2, 8, 8, 8)
    pts = grid_points(8)
    out = sample_volume(vol, pts, 1.0)
    assert out.shape == (8, 8, 8, 2)
    assert torch.allclose(out.permute(3, 0, 1, 2), vol, atol=1e-5)


def test_sample_volume_is_trilinear_between_centres():
    vol = torch.zeros(1, 4, 4, 4)
    vol[0, 1, 1, 1] = 1.0
    c = grid_points(4)[1, 1, 1]
    mid = c + torch.tensor([0.25, 0.0, 0.0])  # half way to the next centre in x
    assert abs(float(sample_volume(vol, mid[None], 1.0)) - 0.5) < 1e-5


def test_density_gradient_of_linear_ramp():
    pts = grid_points(16)
    sigma = 2 * pts[..., 0] - 3 * pts[..., 2]
    g = density_gradient(sigma, 2 / 16)
    inner = g[:, 2:-2, 2:-2, 2:-2]
    assert torch.allclose(inner[0], torch.full_like(inner[0], 2.0), atol=1e-4)
    assert torch.allclose(inner[1], torch.zeros_like(inner[1]), atol=1e-4)
    assert torch.allclose(inner[2], torch.full_like(inner[2], -3.0), atol=1e-4)


def test_blob_normals_point_outward():
    field = small_field(32)
    pts = torch.tensor([[0.3, 0.0, 0.0], [0.0, -0.3, 0.0], [0.2, 0.2, 0.2]])
    n = field.query(pts)["normal"]
    expected = pts / pts.norm(dim=-1, keepdim=True)
    assert ((n * expected).sum(-1) > 0.95).all()


def test_ray_sphere_bounds():
    o = torch.tensor([[0.0, 0.0, 3.0], [0.0, 2.0, 3.0]])
    d = torch.tensor([[0.0, 0.0, -1.0], [0.0, 0.0, -1.0]])
    near, far = ray_sphere_bounds(o, d)
    assert torch.allclose(near[0], torch.tensor(2.0)) and torch.allclose(far[0], torch.tensor(4.0))
    assert near[1] == far[1]  # a miss has zero length


def test_composite_matches_closed_form():
    density = torch.tensor([[0.0, 1.0, 2.0]])
    deltas = torch.tensor([[0.5, 0.5, 0.5]])
    w = composite(density, deltas)
    a = 1 - torch.exp(-density * deltas)
    expected = torch.stack([a[0, 0], (1 - a[0, 0]) * a[0, 1], (1 - a[0, 0]) * (1 - a[0, 1]) * a[0, 2]])
    assert torch.allclose(w[0], expected, atol=1e-6)


def test_render_shapes_ranges_and_gradients():
    field = small_field()
    cams = ring_cameras(3, el=15.0)
    bg = torch.ones(3, 3)
    out = render(field, cams, 16, 24, Shading.lit(cams), bg, torch.Generator().manual_seed(0))
    assert out["image"].shape == (3, 3, 16, 16)
    assert out["opacity"].shape == out["depth"].shape == (3, 1, 16, 16)
    image = out["image"].detach()
    assert 0 <= float(image.min()) and float(image.max()) <= 1
    # The blob is in the middle: opaque centre, clear (white) corners.
    assert float(out["opacity"][:, 0, 8, 8].min()) > 0.9
    assert float(out["opacity"][:, 0, 0, 0].max()) < 0.05
    assert torch.allclose(out["image"][:, :, 0, 0], torch.ones(3, 3), atol=0.05)
    (out["image"].mean() + out["orientation"]).backward()
    for grid in [*field.density_levels, *field.albedo_levels]:  # every level learns
        assert grid.grad is not None and grid.grad.abs().sum() > 0
        assert torch.isfinite(grid.grad).all()


def test_render_gradient_matches_finite_difference():
    """Autograd through levels, upsampling, normals, shading and compositing is exact."""
    torch.manual_seed(0)
    field = GridField(FieldConfig(resolution=8, density_levels=(4, 8), albedo_levels=(4,),
                                  init_noise=0.3)).double()
    cams = Cameras.from_angles([10.0], [30.0], 2.2)
    lit = Shading.lit(cams)
    shading = Shading(lit.ambient.double(), lit.diffuse.double(), lit.textureless,
                      lit.light_dirs.double())
    bg = torch.ones(1, 3, dtype=torch.float64)
    origins, dirs = cams.rays(6)

    class DoubleCams(Cameras):  # rays in float64 so the finite difference is precise
        def rays(self, size):
            return origins.double(), dirs.double()

    cams64 = DoubleCams(cams.el, cams.az, cams.dist, cams.fov)

    def loss():
        return (render(field, cams64, 6, 12, shading, bg, jitter=False)["image"] ** 2).sum()

    loss().backward()
    for grid, idx in ((field.density_levels[0], (1, 2, 2)), (field.density_levels[1], (3, 4, 4)),
                      (field.albedo_levels[0], (0, 2, 2, 1))):
        analytic = float(grid.grad[idx])
        with torch.no_grad():
            grid[idx] += 1e-5
            up = float(loss())
            grid[idx] -= 2e-5
            down = float(loss())
            grid[idx] += 1e-5
        assert math.isclose(analytic, (up - down) / 2e-5, rel_tol=1e-4, abs_tol=1e-8)


def test_levels_sum_to_the_upsampled_total():
    field = small_field(16)
    with torch.no_grad():
        for grid in field.density_levels:
            grid.fill_(0.0)
        field.density_levels[0].fill_(2.0)  # a constant coarse level
    assert torch.allclose(field.density_raw, torch.full((16, 16, 16), 2.0), atol=1e-6)


def test_occupied_box_tracks_density():
    field = small_field(32)
    lo, hi = field.occupied_box(threshold=1.0, margin=0.0)
    # The initial blob is opaque inside roughly |p| < 0.9 of its radius, clear outside.
    r = field.cfg.blob_radius
    assert (lo > -1.1 * r).all() and (hi < 1.1 * r).all()
    assert (lo < -0.6 * r).all() and (hi > 0.6 * r).all()


def test_render_with_several_shadings_shares_the_query():
    field = small_field()
    cams = ring_cameras(2, el=10.0)
    bg = torch.ones(2, 3)
    one = render(field, cams, 12, 16, Shading.lit(cams, textureless=True), bg, jitter=False)
    both = render(field, cams, 12, 16, Shading.albedo(2), bg, jitter=False,
                  more_shadings=[Shading.lit(cams, textureless=True)])
    assert torch.allclose(one["image"], both["more_images"][0], atol=1e-6)
    assert both["peak_density"].shape == (2, 12, 12)


def test_textureless_and_albedo_shading():
    field = small_field()
    with torch.no_grad():
        for grid in field.albedo_levels:
            grid.fill_(-1.0)  # dark albedo: sigmoid(-3)
    cams = ring_cameras(1, el=0.0)
    bg = torch.ones(1, 3)
    dark = render(field, cams, 16, 24, Shading.albedo(1), bg, jitter=False)["image"]
    clay = render(field, cams, 16, 24, Shading.lit(cams, textureless=True), bg, jitter=False)["image"]
    assert float(dark[0, :, 8, 8].mean()) < 0.2  # albedo 0.05 over a white background
    assert float(clay[0, :, 8, 8].mean()) > 0.8  # white material lit head-on


def test_any_resolution_works_with_any_levels():
    field = GridField(FieldConfig(resolution=20, density_levels=(8, 32), albedo_levels=(4,)))
    assert field.density_raw.shape == (20, 20, 20) and field.albedo_raw.shape == (3, 20, 20, 20)
    assert float(field.density(torch.zeros(1, 3))) > 5  # the blob survives the resampling
