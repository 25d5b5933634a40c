"""SDS: the loss's gradient is exactly w(t) (eps_hat - eps) / B."""
import pytest
import torch

from dreamfusion.config import GuidanceConfig
from dreamfusion.guidance.base import DiffusionBackend, linear_alphas_cumprod
from dreamfusion.guidance.sds import score_distillation, sds_loss, t_range


class LinearBackend(DiffusionBackend):
    """eps = A z + text: simple enough to recompute the SDS gradient by hand."""

    name = "linear"

    def __init__(self):
        self.alphas_cumprod = linear_alphas_cumprod()
        self.scale = 0.3

    def encode_text(self, texts):
        return torch.tensor([[float(len(t))] for t in texts])

    def encode_images(self, images):
        return images * 2 - 1

    def predict_noise(self, z_t, t, text_emb):
        return self.scale * z_t + text_emb.reshape(-1, 1, 1, 1) * 0.01


def test_sds_loss_gradient_is_the_given_grad():
    x = torch.randn(3, 4, 5, 5, requires_grad=True)
    grad = torch.randn(3, 4, 5, 5)
    sds_loss(x, grad).backward()
    assert torch.allclose(x.grad, grad / 3, atol=1e-6)


def test_sds_loss_passes_a_non_finite_gradient_on_to_the_loss():
    # the training loop must see the fault (it skips and counts the step); zeroing the
    # NaN here would hide it
    x = torch.zeros(1, 2, requires_grad=True)
    assert not torch.isfinite(sds_loss(x, torch.tensor([[float("nan"), 1.0]])))


@pytest.mark.parametrize("k", [1, 3])
def test_score_distillation_gradient_matches_formula(k):
    """w(t) (eps_hat - eps) / B per image, averaged over K draws of (t, eps)."""
    backend = LinearBackend()
    cfg = GuidanceConfig(guidance_scale=7.5, weighting="sds", t_min=0.02, t_min_start=0.02,
                         t_max=0.98, t_max_final=0.98, noise_samples=k)
    images = torch.rand(2, 3, 8, 8, requires_grad=True)
    cond, uncond = backend.encode_text(["a red cube", "a red cube"]), backend.encode_text(["", ""])
    gen = torch.Generator().manual_seed(3)
    out = score_distillation(backend, images, cond, uncond, cfg, 0, 10, gen)
    out["sds"].backward()
    # Recompute t and eps from the same generator stream: draw j of image i is row j B + i.
    gen = torch.Generator().manual_seed(3)
    t = torch.randint(20, 980, (2 * k,), generator=gen)
    assert torch.equal(t, out["t"])
    eps = torch.randn(2 * k, 3, 8, 8, generator=gen)
    acp = backend.alphas_cumprod[t].reshape(-1, 1, 1, 1)
    x = (images.detach() * 2 - 1).repeat(k, 1, 1, 1)
    z = acp.sqrt() * x + (1 - acp).sqrt() * eps
    cond_k, uncond_k = cond.repeat(k, 1), uncond.repeat(k, 1)
    eps_c, eps_u = backend.predict_noise(z, t, cond_k), backend.predict_noise(z, t, uncond_k)
    eps_hat = eps_u + 7.5 * (eps_c - eps_u)
    per_draw = (1 - acp) * (eps_hat - eps) / 2 * 2  # d latents / d images = 2
    expected = per_draw.reshape(k, 2, 3, 8, 8).mean(0)
    assert torch.allclose(images.grad, expected, atol=1e-5)


def test_uniform_weighting_and_clipping():
    backend = LinearBackend()
    cfg = GuidanceConfig(weighting="uniform", grad_clip=0.01)
    images = torch.rand(1, 3, 4, 4, requires_grad=True)
    e = backend.encode_text(["x"])
    score_distillation(backend, images, e, backend.encode_text([""]), cfg, 0, 1,
                       torch.Generator().manual_seed(0))["sds"].backward()
    assert images.grad.abs().max() <= 0.02 + 1e-7  # clip * d latents / d images


def test_t_range_anneals_linearly():
    cfg = GuidanceConfig(t_min=0.02, t_min_start=0.5, t_max=0.98, t_max_final=0.38)
    assert t_range(cfg, 0, 101) == (0.5, 0.98)
    lo, hi = t_range(cfg, 50, 101)
    assert abs(hi - 0.68) < 1e-6 and abs(lo - 0.26) < 1e-6
    assert t_range(cfg, 100, 101) == pytest.approx((0.02, 0.38))


def test_density_warmup_ramps_linearly():
    from dreamfusion.train import density_lr_scale
    assert density_lr_scale(0.0, 0, 100) == 1.0
    assert density_lr_scale(0.5, 0, 100) == pytest.approx(1 / 50)
    assert density_lr_scale(0.5, 24, 100) == pytest.approx(0.5)
    assert density_lr_scale(0.5, 80, 100) == 1.0


def test_learning_rate_decays_geometrically_to_the_final_factor():
    from dreamfusion.train import lr_decay
    assert lr_decay(1.0, 50, 100) == 1.0
    assert lr_decay(0.1, 0, 101) == 1.0
    assert lr_decay(0.1, 50, 101) == pytest.approx(0.1 ** 0.5)
    assert lr_decay(0.1, 100, 101) == pytest.approx(0.1)
