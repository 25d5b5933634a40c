"""Every fast path against its plain reference twin: outputs and gradients.

Tolerances: float32 sums taken in another order differ by a few 1e-7 relative; 1e-5
absolute on values of order 1 leaves two orders of margin and still catches any wrong
weight, index or mask (those move values by 1e-2 or more).
"""
import torch

from dreamfusion.cameras import Cameras
from dreamfusion.config import FieldConfig
from dreamfusion.field import (GridField, dilate, dilate_reference, upsample,
                               upsample_reference)
from dreamfusion.render import Shading, render
from dreamfusion.toyworld.world import grid_points


def grads_of(fn, *tensors):
    out = fn()
    upstream = torch.randn(out.shape, generator=torch.Generator().manual_seed(1))
    return out, torch.autograd.grad(out, tensors, upstream)


def test_separable_upsample_matches_interpolate_values_and_gradients():
    for channels, r0 in ((3, 8), (1, 16), (2, 5)):
        grid = torch.randn(channels, r0, r0, r0, requires_grad=True)
        fast, (g_fast,) = grads_of(lambda: upsample(grid, 2 * r0), grid)
        ref, (g_ref,) = grads_of(lambda: upsample_reference(grid, 2 * r0), grid)
        assert fast.shape == (channels, 2 * r0, 2 * r0, 2 * r0)
        assert torch.allclose(fast, ref, atol=1e-5)
        assert torch.allclose(g_fast, g_ref, atol=1e-5)


def test_upsample_other_ratios_fall_back_to_interpolate():
    grid = torch.randn(1, 6, 6, 6)
    assert torch.equal(upsample(grid, 9), upsample_reference(grid, 9))


def test_separable_dilation_matches_max_pool():
    gen = torch.Generator().manual_seed(0)
    for density in (0.01, 0.2):
        mask = torch.rand(20, 20, 20, generator=gen) < density
        mask[0, 0, 0] = mask[-1, 5, -1] = True  # corners and faces
        assert torch.equal(dilate(mask), dilate_reference(mask))
        assert dilate(mask).sum() > mask.sum()


def plain_occupied_box(field, density, threshold=0.1, margin=0.1):
    """The box by boolean indexing, as it was written before (host sync)."""
    occupied = density > threshold
    b = field.cfg.bound
    if not occupied.any():
        return torch.full((3,), -b), torch.full((3,), b)
    centres = grid_points(field.cfg.resolution, b)[occupied]
    half = field.voxel_size / 2 + margin
    return (centres.amin(0) - half).clamp(min=-b), (centres.amax(0) + half).clamp(max=b)


def test_sync_free_occupied_box_matches_boolean_indexing():
    field = GridField(FieldConfig(resolution=16, density_levels=(16,), albedo_levels=(8,)))
    gen = torch.Generator().manual_seed(2)
    cases = [torch.zeros(16, 16, 16)]  # nothing occupied: the whole cube
    for _ in range(4):
        d = torch.zeros(16, 16, 16)
        lo = torch.randint(0, 12, (3,), generator=gen)
        d[lo[0]:lo[0] + 4, lo[1]:lo[1] + 3, lo[2]:lo[2] + 2] = 1.0
        cases.append(d)
    cases.append(torch.ones(16, 16, 16))  # everything: clamped to the cube
    for d in cases:
        fast = field.occupied_box(density=d)
        ref = plain_occupied_box(field, d)
        assert torch.allclose(fast[0], ref[0], atol=1e-6) and torch.allclose(fast[1], ref[1], atol=1e-6)


def two_blob_field(empty_density=0.01):
    """Two dense balls at opposite corners with faint noisy fog between them, so the
    occupied box spans empty space that skipping can leave out."""
    cfg = FieldConfig(resolution=24, density_levels=(12, 24), albedo_levels=(6, 12),
                      init_noise=0.3, empty_density=empty_density)
    field = GridField(cfg, torch.Generator().manual_seed(4))
    pts = grid_points(24)
    balls = ((pts - 0.3).norm(dim=-1) < 0.25) | ((pts + 0.3).norm(dim=-1) < 0.25)
    with torch.no_grad():
        field.density_levels[0].zero_()
        field.density_levels[1].copy_(torch.where(balls, 4.0, -5.5)
                                      + 0.5 * torch.randn(24, 24, 24, generator=torch.Generator()
                                                          .manual_seed(8)))
    return field


def render_both_ways(field, compact):
    cams = Cameras.from_angles([15.0, -5.0, 60.0], [10.0, 130.0, -90.0])
    n = len(cams)
    light = Shading(torch.full((n,), 0.3), torch.full((n,), 0.7),
                    torch.tensor([False, True, False]), torch.nn.functional.normalize(
                        torch.randn(n, 3, generator=torch.Generator().manual_seed(5)), dim=-1))
    out = render(field, cams, 12, 16, light, torch.rand(n, 3, generator=torch.Generator()
                                                          .manual_seed(6)),
                 torch.Generator().manual_seed(7), jitter=True,
                 more_shadings=[Shading.albedo(n)], compact=compact)
    loss = (out["image"] * torch.linspace(0, 1, 12)).sum() + out["more_images"][0].pow(2).sum() \
        + out["depth"].sum() + 3 * out["orientation"] + out["opacity"].sum()
    grads = torch.autograd.grad(loss, list(field.parameters()))
    return out, grads


def test_compact_render_matches_dense_render_values_and_gradients():
    field = two_blob_field()
    with torch.no_grad():
        occ = field.occupancy(field.density_grid())
    assert 0.05 < occ.float().mean() < 0.7  # some space is skipped, some is not
    fast, g_fast = render_both_ways(field, compact=True)
    ref, g_ref = render_both_ways(field, compact=False)
    for key in ("image", "opacity", "depth", "peak_density", "orientation"):
        assert torch.allclose(fast[key], ref[key], atol=1e-5), key
    assert torch.allclose(fast["more_images"][0], ref["more_images"][0], atol=1e-5)
    for a, b in zip(g_fast, g_ref):
        assert torch.allclose(a, b, atol=1e-5)
    assert max(float(g.abs().max()) for g in g_fast) > 1e-3  # gradients do reach the grids


def test_skipping_empty_space_changes_opacity_by_at_most_its_bound():
    """Skipped stretches hold density below empty_density: a ray of length at most 2
    (the unit sphere) loses at most 1 - exp(-2 * 0.01) < 0.02 opacity."""
    skipped, _ = render_both_ways(two_blob_field(0.01), compact=True)
    everything, _ = render_both_ways(two_blob_field(0.0), compact=True)
    diff = (skipped["opacity"] - everything["opacity"]).detach().abs()
    assert float(diff.max()) < 0.02
    assert torch.allclose(skipped["image"], everything["image"], atol=0.03)


def test_volume_built_for_a_box_matches_the_full_volume_inside_it():
    """feature_volume(box=...) builds only the cells a box's samples read; queries inside
    the box (edges of the grid included) agree with the full volume, gradients too."""
    field = two_blob_field()
    gen = torch.Generator().manual_seed(9)
    boxes = [(torch.tensor([-0.5, -0.2, -0.7]), torch.tensor([0.3, 0.6, 0.1])),
             (torch.tensor([-1.0, -1.0, 0.2]), torch.tensor([-0.1, 1.0, 1.0])),  # grid edges
             (torch.tensor([0.05, 0.05, 0.05]), torch.tensor([0.2, 0.2, 0.2]))]
    for lo, hi in boxes:
        pts = lo + (hi - lo) * torch.rand(300, 3, generator=gen)
        crop = field.feature_volume(box=(lo, hi))
        assert crop.data.shape[1:] != (7, 24, 24, 24)[1:]  # a strict part of the grid
        fast, g_fast = grads_of(lambda: crop_features(field, pts, box=(lo, hi)),
                                *field.parameters())
        ref, g_ref = grads_of(lambda: crop_features(field, pts, box=None), *field.parameters())
        # the box's coordinates are mapped another way: rounding-level differences,
        # relative for the gradient channels (magnitudes up to ~100)
        assert torch.allclose(fast, ref, rtol=1e-4, atol=1e-5)
        for a, b in zip(g_fast, g_ref):
            assert torch.allclose(a, b, rtol=1e-4, atol=1e-5)


def crop_features(field, pts, box):
    """(P, 7) raw sampled features: density, its gradient, albedo."""
    return field.feature_volume(box=box).sample(pts)


def test_fused_adam_matches_torch_adam_including_skipped_steps_and_state_dicts():
    from dreamfusion.optim import FusedAdam
    gen = torch.Generator().manual_seed(10)
    shapes = [(4, 4, 4), (3, 2, 2, 2), (5,)]
    start = [torch.randn(s, generator=gen) for s in shapes]
    ours = [torch.nn.Parameter(t.clone()) for t in start]
    theirs = [torch.nn.Parameter(t.clone()) for t in start]
    kw = dict(betas=(0.9, 0.99), eps=1e-15)
    fast = FusedAdam([{"params": ours[:2], "lr": 0.1}, {"params": ours[2:], "lr": 0.05}], **kw)
    ref = torch.optim.Adam([{"params": theirs[:2], "lr": 0.1}, {"params": theirs[2:], "lr": 0.05}],
                           **kw)
    for step in range(6):
        grads = [torch.randn(s, generator=gen) for s in shapes]
        bad = step == 3  # a faulty step: NaN gradients, skipped
        for p, q, g in zip(ours, theirs, grads):
            p.grad = g.clone() * (float("nan") if bad else 1.0)
            q.grad = g.clone()
        fast.found_inf = torch.tensor(float(bad))
        fast.step()
        if not bad:
            ref.step()
        for p, q in zip(ours, theirs):
            assert torch.allclose(p, q, atol=1e-6)
    assert [float(s["step"]) for s in fast.state.values()] == [5.0] * 3
    # checkpoints move between the two, and both continue alike
    fast2 = FusedAdam([{"params": ours[:2], "lr": 0.1}, {"params": ours[2:], "lr": 0.05}], **kw)
    fast2.load_state_dict(ref.state_dict())
    ref2 = torch.optim.Adam([{"params": theirs[:2], "lr": 1.0}, {"params": theirs[2:], "lr": 1.0}],
                            **kw)
    ref2.load_state_dict(fast.state_dict())
    grads = [torch.randn(s, generator=gen) for s in shapes]
    for p, q, g in zip(ours, theirs, grads):
        p.grad, q.grad = g.clone(), g.clone()
    fast2.step()
    ref2.step()
    for p, q in zip(ours, theirs):
        assert torch.allclose(p, q, atol=1e-6)
    assert ref2.param_groups[1]["lr"] == 0.05


def test_occupancy_lookup_matches_plain_integer_indexing():
    """occupied_at's float index arithmetic against int64 indexing, at random points,
    on cell faces and beyond the grid's edges (clamped to the edge cells)."""
    field = GridField(FieldConfig(resolution=16, density_levels=(16,), albedo_levels=(8,)))
    gen = torch.Generator().manual_seed(11)
    occupancy = torch.rand(16, 16, 16, generator=gen) < 0.3
    faces = (torch.randint(0, 17, (200, 3), generator=gen) / 8.0) - 1.0  # on cell faces
    points = torch.cat([torch.rand(500, 3, generator=gen) * 2.2 - 1.1, faces])
    cell = ((points + 1.0) / field.voxel_size).floor().long().clamp(0, 15)
    expected = occupancy[cell[:, 0], cell[:, 1], cell[:, 2]]
    assert torch.equal(field.occupied_at(occupancy, points), expected)


def test_finite_flag_by_sums_matches_elementwise_isfinite():
    from dreamfusion.train import finite_flag
    gen = torch.Generator().manual_seed(12)
    base = [torch.randn(8, 8, 8, generator=gen) * 1e3, torch.randn(3, 4, generator=gen),
            torch.tensor(2.5)]
    for i, bad in [(None, None), (0, float("nan")), (1, float("inf")), (2, float("-inf")),
                   (0, float("-inf"))]:
        tensors = [t.clone() for t in base]
        if i is not None:
            tensors[i].view(-1)[3 % tensors[i].numel()] = bad
        plain = bool(torch.stack([torch.isfinite(t).all() for t in tensors]).all())
        assert bool(finite_flag(tensors)) == plain == (i is None)
    both = [t.clone() for t in base]
    both[0].view(-1)[0], both[0].view(-1)[1] = float("inf"), float("-inf")  # inf - inf: NaN
    assert not bool(finite_flag(both))
