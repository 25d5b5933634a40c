"""The exact prior: posterior mean against brute force, CFG, banks, errors."""
import pytest
import torch

from dreamfusion.guidance.toy import ToyPrior
from dreamfusion.toyworld.captions import CaptionError


def prior_with_bank(photos_by_text, size=4):
    prior = ToyPrior(size=size)
    for text, photos in photos_by_text.items():
        prior._add_bank(text, photos)
    return prior


def brute_force_posterior_mean(z, alpha, var, bank):
    """Bayes' rule term by term: p(x_i | z) ~ N(z; alpha x_i, var I)."""
    log_p = torch.stack([-((z - alpha * x) ** 2).sum() / (2 * var) for x in bank])
    w = torch.exp(log_p - log_p.max())
    w = w / w.sum()
    return sum(wi * x for wi, x in zip(w, bank))


def test_posterior_mean_matches_brute_force():
    gen = torch.Generator().manual_seed(0)
    photos = torch.rand(5, 3, 4, 4, generator=gen)
    prior = prior_with_bank({"a red cube": photos})
    bank = photos * 2 - 1
    for t in (50, 400, 900):
        acp = prior.alphas_cumprod[t]
        z = acp.sqrt() * bank[2] + (1 - acp).sqrt() * torch.randn(3, 4, 4, generator=gen)
        got = prior.posterior_mean(z[None], torch.tensor([t]), torch.tensor([0]))[0]
        want = brute_force_posterior_mean(z, acp.sqrt(), 1 - acp, bank)
        assert torch.allclose(got, want, atol=1e-5)


def test_small_t_recovers_nearest_photo_and_noise():
    photos = torch.rand(6, 3, 4, 4, generator=torch.Generator().manual_seed(1))
    prior = prior_with_bank({"a": photos})
    t = torch.tensor([1])
    acp = prior.alphas_cumprod[1]
    eps = torch.randn(1, 3, 4, 4, generator=torch.Generator().manual_seed(2))
    z = acp.sqrt() * (photos[3:4] * 2 - 1) + (1 - acp).sqrt() * eps
    assert torch.allclose(prior.posterior_mean(z, t, torch.tensor([0])), photos[3:4] * 2 - 1, atol=1e-4)
    assert torch.allclose(prior.predict_noise(z, t, torch.tensor([0])), eps, atol=1e-2)


def test_batch_uses_each_samples_own_bank():
    red, blue = torch.zeros(2, 3, 4, 4), torch.ones(2, 3, 4, 4)
    prior = prior_with_bank({"r": red, "b": blue})
    z = torch.zeros(2, 3, 4, 4)
    x0 = prior.posterior_mean(z, torch.tensor([500, 500]), torch.tensor([0, 1]))
    assert torch.allclose(x0[0], -torch.ones(3, 4, 4)) and torch.allclose(x0[1], torch.ones(3, 4, 4))


def test_mixed_batch_matches_brute_force_row_by_row():
    """Interleaved banks and timesteps in one batch (as with several noise draws per
    render): each row is its own bank's posterior mean at its own t."""
    gen = torch.Generator().manual_seed(4)
    banks = [torch.rand(5, 3, 4, 4, generator=gen), torch.rand(3, 3, 4, 4, generator=gen)]
    prior = prior_with_bank({"a": banks[0], "b": banks[1]})
    ids, ts = torch.tensor([1, 0, 1, 0, 1]), torch.tensor([100, 700, 450, 30, 900])
    z = torch.randn(5, 3, 4, 4, generator=gen)
    got = prior.posterior_mean(z, ts, ids)
    for row, (k, t) in enumerate(zip(ids.tolist(), ts.tolist())):
        acp = prior.alphas_cumprod[t]
        want = brute_force_posterior_mean(z[row], acp.sqrt(), 1 - acp, banks[k] * 2 - 1)
        assert torch.allclose(got[row], want, atol=1e-5)


def test_banks_are_built_from_captions_deterministically():
    a, b = ToyPrior(size=8, bank_size=6, uncond_bank_size=10), ToyPrior(size=8, bank_size=6, uncond_bank_size=10)
    emb = a.encode_text(["a red cube", "", "A Red Cube ", "a red cube, side view"])
    assert emb.tolist() == [[k, k, 1.0] for k in (0, 1, 0, 2)]  # one bank each, share 1
    assert torch.equal(a.bank("a red cube"), b.bank("a red cube"))
    assert a.bank("a red cube").shape == (6, 3, 8, 8)
    assert a.bank("").shape == (10, 3, 8, 8)
    # A red cube's photos are reddish where the object is (non-white pixels).
    photos = a.bank("a red cube")
    obj = (photos < 0.95).any(dim=1)
    assert obj.any()
    r, g = photos[:, 0][obj].mean(), photos[:, 1][obj].mean()
    assert r > 2 * g


def test_banks_hold_the_photos_in_8_bits():
    from dreamfusion.toyworld import parse_caption, render_photos
    prior = ToyPrior(size=8, bank_size=6, uncond_bank_size=10, cache=False)
    rendered = render_photos(parse_caption("a red cube"), 6, 8, seed=0)
    held = prior.bank("a red cube")
    assert torch.allclose(held * 255, (rendered * 255).round(), atol=1e-3)
    assert 0 < (held - rendered).abs().max() <= 0.5 / 255 + 1e-6


def test_caption_outside_world_is_an_error():
    with pytest.raises(CaptionError):
        ToyPrior(size=8, bank_size=2).encode_text(["a pink dog"])


def test_wrong_render_size_is_an_error():
    with pytest.raises(ValueError, match="16x16"):
        ToyPrior(size=16).encode_images(torch.zeros(1, 3, 8, 8))


def test_interpolated_text_is_the_exact_denoiser_of_the_two_banks_mixture():
    """interpolate_text(a, b, r): the posterior mean under the prior r p_a + (1 - r) p_b,
    each photo weighted by its bank's share over the bank's size (brute force)."""
    gen = torch.Generator().manual_seed(5)
    banks = [torch.rand(5, 3, 4, 4, generator=gen), torch.rand(3, 3, 4, 4, generator=gen)]
    prior = prior_with_bank({"a": banks[0], "b": banks[1]})
    ids = torch.tensor([[0.0, 0.0, 1.0], [1.0, 1.0, 1.0]])
    r = torch.tensor([0.3])
    mix = prior.interpolate_text(ids[:1], ids[1:], r)
    assert mix.tolist() == [[0.0, 1.0, pytest.approx(0.3)]]
    z = torch.randn(1, 3, 4, 4, generator=gen)
    t = 350
    acp = prior.alphas_cumprod[t]
    got = prior.posterior_mean(z, torch.tensor([t]), mix)[0]
    photos = torch.cat(banks) * 2 - 1
    mass = torch.tensor([0.3 / 5] * 5 + [0.7 / 3] * 3)
    log_p = torch.stack([-((z[0] - acp.sqrt() * x) ** 2).sum() / (2 * (1 - acp)) for x in photos])
    w = mass * torch.exp(log_p - log_p.max())
    want = (w[:, None, None, None] * photos).sum(0) / w.sum()
    assert torch.allclose(got, want, atol=1e-5)
    # the ends of the interpolation are the plain texts
    for share, k in ((1.0, 0), (0.0, 1)):
        end = prior.interpolate_text(ids[:1], ids[1:], torch.tensor([share]))
        assert torch.allclose(prior.posterior_mean(z, torch.tensor([t]), end),
                              prior.posterior_mean(z, torch.tensor([t]), ids[k:k + 1]), atol=1e-6)


def test_a_flipped_photo_is_the_photo_from_the_mirrored_camera_and_light():
    """What makes mirror banks exact: every toy object is symmetric under x -> -x, so the
    left-right flip of a render from (el, az) under light l is the render from (el, -az)
    under l mirrored. A front-coloured pyramid off-axis: no view or light symmetry."""
    from dreamfusion.cameras import Cameras
    from dreamfusion.toyworld.captions import parse_caption
    from dreamfusion.toyworld.render import render_objects

    obj = parse_caption("a blue pyramid with a yellow front").obj
    light = torch.tensor([[0.6, 0.5, 0.62]])
    seen = render_objects([obj], Cameras.from_angles(25.0, 30.0, 2.2), 16, "shaded", light)
    mirrored = render_objects([obj], Cameras.from_angles(25.0, -30.0, 2.2), 16, "shaded",
                              light * torch.tensor([-1.0, 1.0, 1.0]))
    assert (seen - seen.flip(-1)).abs().max() > 0.1  # the test image is not symmetric itself
    # Equal but for the sphere tracer's error at a few edge pixels (mean 1.8e-4, 9 of 768
    # values over 1e-3); a camera 1 degree further round differs by 4e-3 on average.
    diff = (seen.flip(-1) - mirrored).abs()
    assert diff.mean() < 1e-3 and (diff > 1e-3).float().mean() < 0.02


def test_mirror_banks_hold_each_photo_and_its_flip():
    plain = ToyPrior(size=8, bank_size=6, uncond_bank_size=10)
    mirror = ToyPrior(size=8, bank_size=6, uncond_bank_size=10, mirror=True)
    for text in ("a red cube, side view", ""):
        photos = plain.bank(text)
        assert torch.equal(mirror.bank(text), torch.cat([photos, photos.flip(-1)]))


def mirror_prior_with_two_banks(gen):
    """A mirror prior holding banks a (5 photos) and b (3); the banks; each bank with its
    flips, in [-1, 1]."""
    banks = [torch.rand(5, 3, 4, 4, generator=gen), torch.rand(3, 3, 4, 4, generator=gen)]
    prior = ToyPrior(size=4, mirror=True)
    for text, photos in zip("ab", banks):
        prior._add_bank(text, photos)
    return prior, banks, [torch.cat([p, p.flip(-1)]) * 2 - 1 for p in banks]


def weighted_posterior_mean(z, acp, photos, mass):
    """Bayes' rule over photos (N, ...) with prior masses (N,), at alpha_bar acp."""
    log_p = torch.stack([-((z - acp.sqrt() * x) ** 2).sum() / (2 * (1 - acp)) for x in photos])
    w = mass * torch.exp(log_p - log_p.max())
    return (w.reshape(-1, *[1] * (photos.dim() - 1)) * photos).sum(0) / w.sum()


def test_mirror_posterior_matches_brute_force_over_the_doubled_bank():
    """The fast path reads each bank once (a flip scores against z as the photo against
    flip(z)); the reference is Bayes' rule over the explicit bank of photos and flips,
    for a plain text at several t and for a mixture of two banks."""
    gen = torch.Generator().manual_seed(6)
    prior, banks, doubled = mirror_prior_with_two_banks(gen)
    z = torch.randn(1, 3, 4, 4, generator=gen)
    for t in (30, 350, 900):
        acp = prior.alphas_cumprod[t]
        got = prior.posterior_mean(z, torch.tensor([t]), torch.tensor([0]))[0]
        assert torch.allclose(got, brute_force_posterior_mean(z[0], acp.sqrt(), 1 - acp,
                                                              doubled[0]), atol=1e-5)
    mix = torch.tensor([[0.0, 1.0, 0.3]])
    acp = prior.alphas_cumprod[350]
    mass = torch.tensor([0.3 / 10] * 10 + [0.7 / 6] * 6)
    want = weighted_posterior_mean(z[0], acp, torch.cat(doubled), mass)
    assert torch.allclose(prior.posterior_mean(z, torch.tensor([350]), mix)[0], want, atol=1e-5)
    # and it differs from the bank without its flips
    plain = prior_with_bank({"a": banks[0]})
    assert not torch.allclose(plain.posterior_mean(z, torch.tensor([350]), torch.tensor([0])),
                              prior.posterior_mean(z, torch.tensor([350]), torch.tensor([0])),
                              atol=1e-3)


def test_mirror_batch_matches_brute_force_row_by_row():
    """Rows that share a bank are read together: interleaved banks, timesteps and a
    mixture in one batch, each row against Bayes' rule over its own doubled bank."""
    gen = torch.Generator().manual_seed(8)
    prior, _, doubled = mirror_prior_with_two_banks(gen)
    emb = torch.tensor([[1, 1, 1.0], [0, 0, 1.0], [1, 1, 1.0], [0, 1, 0.4], [0, 0, 1.0]])
    ts = torch.tensor([100, 700, 20, 350, 60])
    z = torch.randn(5, 3, 4, 4, generator=gen)
    got = prior.posterior_mean(z, ts, emb)
    for row, ((a, b, share), t) in enumerate(zip(emb.tolist(), ts.tolist())):
        acp = prior.alphas_cumprod[t]
        photos = doubled[int(a)] if a == b else torch.cat([doubled[int(a)], doubled[int(b)]])
        mass = (torch.ones(len(photos)) if a == b else torch.tensor(
            [share / 10] * 10 + [(1 - share) / 6] * 6))
        want = weighted_posterior_mean(z[row], acp, photos, mass)
        assert torch.allclose(got[row], want, atol=1e-5), row


def test_weighted_sum_reads_only_the_weighed_photos():
    """Concentrated weights (low noise): the sum over the photos some row weighs equals
    the full product; photos no row weighs are not read at all (here they hold inf, which
    the full product would turn into nan). Spread weights take the full product."""
    from dreamfusion.guidance.toy import weighted_sum
    gen = torch.Generator().manual_seed(9)
    bank = torch.rand(64, 12, generator=gen) * 2 - 1
    logits = torch.randn(3, 64, generator=gen) * 200
    weights = torch.softmax(logits, dim=1)
    assert torch.allclose(weighted_sum(weights, bank), weights @ bank, atol=1e-6)
    unread = (weights < 1e-10).all(0)
    assert unread.sum() > 48
    poisoned = bank.clone()
    poisoned[unread] = float("inf")
    assert torch.allclose(weighted_sum(weights, poisoned), weights @ bank, atol=1e-6)
    spread = torch.softmax(torch.randn(3, 64, generator=gen), dim=1)
    assert torch.allclose(weighted_sum(spread, bank), spread @ bank, atol=1e-6)
