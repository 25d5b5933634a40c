"""Noise, v and sample parametrisations, and the SDS gradient of the real-prior paths,
proven with an analytic model whose denoised estimate is known (tests/analytic_models.py)."""
import pytest
import torch

from analytic_models import AnalyticUNet, texts  # tests/ helper
from dreamfusion.config import GuidanceConfig
from dreamfusion.guidance.base import linear_alphas_cumprod
from dreamfusion.guidance.prediction import PREDICTION_TYPES, to_epsilon, to_sample
from dreamfusion.guidance.sds import score_distillation

KINDS = list(PREDICTION_TYPES)
ACP = linear_alphas_cumprod()
T = torch.tensor([10, 300, 600, 900])


def noisy(shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    x, eps = torch.rand(shape, generator=g) * 2 - 1, torch.randn(shape, generator=g)
    a = ACP[T].sqrt().reshape(-1, 1, 1, 1)
    return a * x + (1 - a * a).sqrt() * eps


@pytest.mark.parametrize("kind", KINDS)
def test_every_parametrisation_gives_the_same_noise_and_denoised_estimate(kind):
    z = noisy((4, 3, 8, 8))
    cond = texts(4, 0)
    reference = AnalyticUNet(3, 8, ACP, "epsilon")(z, T, cond).sample
    out = AnalyticUNet(3, 8, ACP, kind)(z, T, cond).sample
    eps = to_epsilon(out, z, T, ACP, kind)
    assert eps.dtype == torch.float32
    torch.testing.assert_close(eps, reference, atol=2e-4, rtol=1e-4)
    x0 = to_sample(eps, z, T, ACP)
    pattern = AnalyticUNet(3, 8, ACP, kind).pattern
    torch.testing.assert_close(x0, pattern.expand_as(x0), atol=2e-3, rtol=1e-3)
    if kind != "epsilon":  # read as noise, a v or sample output is far from the noise
        assert (out - reference).abs().mean() > 0.1


def test_an_unknown_prediction_type_is_refused():
    with pytest.raises(ValueError, match="prediction_type 'flow'"):
        to_epsilon(torch.zeros(1, 3, 2, 2), torch.zeros(1, 3, 2, 2), T[:1], ACP, "flow")


def analytic_backend(name, kind, precision="fp32", vae_precision="fp32"):
    """SD (4 latent channels at 8x8 through a tiny random VAE, 16x16 images) or IF (3
    channels at 16x16 with a variance half) around the analytic UNet."""
    if name == "sd":
        from diffusers import AutoencoderKL

        from dreamfusion.guidance.stable_diffusion import StableDiffusion
        torch.manual_seed(0)
        vae = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, sample_size=16,
                            block_out_channels=(32, 64),
                            down_block_types=("DownEncoderBlock2D",) * 2,
                            up_block_types=("UpDecoderBlock2D",) * 2)
        return StableDiffusion.from_modules(AnalyticUNet(4, 8, ACP, kind), ACP, "cpu", texts,
                                            precision=precision, prediction_type=kind,
                                            vae_precision=vae_precision, vae=vae)
    from dreamfusion.guidance.deepfloyd_if import DeepFloydIF
    return DeepFloydIF.from_modules(AnalyticUNet(3, 16, ACP, kind, extra_channels=3), ACP,
                                    "cpu", texts, precision=precision, prediction_type=kind)


def sds_on(backend, images, scale):
    """(gradient of the SDS loss w.r.t. the encoded images, the encoded images, t)."""
    captured = {}
    encode = backend.encode_images

    def keep(x):
        captured["z"] = z = encode(x)
        z.retain_grad()
        return z

    backend.encode_images = keep
    cfg = GuidanceConfig(guidance_scale=scale, grad_clip=0.0, t_min=0.02, t_min_start=0.02,
                         t_max=0.98, t_max_final=0.98)
    b = len(images)
    out = score_distillation(backend, images, texts(b, 0), texts(0, b), cfg, 0, 100,
                             torch.Generator().manual_seed(1))
    out["sds"].backward()
    backend.encode_images = encode
    return captured["z"].grad, captured["z"].detach(), out["t"]


@pytest.mark.parametrize("name", ["sd", "if"])
@pytest.mark.parametrize("kind", KINDS)
def test_the_sds_gradient_points_from_the_guided_estimate_to_the_render(name, kind):
    """eps_hat - eps = (a / s) (x - x0_guided) for any eps: the gradient is exactly
    w(t) (a / s) (x - (x0_u + s_cfg (x0_c - x0_u))) / B, here x0_c = PATTERN, x0_u = 0."""
    backend = analytic_backend(name, kind)
    images = torch.rand(3, 3, 16, 16, requires_grad=True)
    scale = 7.5
    grad, z, t = sds_on(backend, images, scale)
    acp = ACP[t].reshape(-1, 1, 1, 1)
    guided = scale * backend.unet.pattern
    expected = (1 - acp) * (acp.sqrt() / (1 - acp).sqrt()) * (z - guided) / len(z)
    torch.testing.assert_close(grad, expected, atol=1e-4, rtol=1e-3)
    # and through the image encoder (the VAE for SD): a small step against the image
    # gradient brings the encoded render closer to the guided estimate
    step = images.detach() - 1e-3 * images.grad / images.grad.abs().max()
    after = backend.encode_images(step).detach()
    assert (after - guided).norm() < (z - guided).norm()


@pytest.mark.parametrize("scale", [0.5, 3.0])
def test_the_guidance_sign_follows_the_caption_not_the_empty_text(scale):
    """With guidance s, the estimate is s PATTERN: the gradient's component along PATTERN
    is negative (descent adds PATTERN) for any s > 0 once the render is at 0."""
    backend = analytic_backend("if", "v_prediction")
    images = torch.full((2, 3, 16, 16), 0.5, requires_grad=True)  # encodes to 0
    grad, z, _ = sds_on(backend, images, scale)
    assert z.abs().max() < 1e-6
    along = (grad * backend.unet.pattern).flatten(1).sum(1)
    assert (along < 0).all()


def test_the_arithmetic_is_float32_for_a_bf16_unet_and_vae():
    fp32 = analytic_backend("sd", "v_prediction")
    half = analytic_backend("sd", "v_prediction", precision="bf16", vae_precision="bf16")
    assert half.unet.pattern.dtype == torch.bfloat16 and half.vae.dtype == torch.bfloat16
    images = torch.rand(2, 3, 16, 16)
    z32, z16 = fp32.encode_images(images), half.encode_images(images)
    assert z16.dtype == torch.float32
    noisy_z = torch.randn_like(z32)
    t = torch.tensor([200, 700])
    e32 = fp32.predict_noise(noisy_z, t, texts(2, 0))
    e16 = half.predict_noise(noisy_z, t, texts(2, 0))
    assert e16.dtype == torch.float32
    # bf16 keeps 8 bits of mantissa: the estimates agree to about 1%
    assert (e16 - e32).abs().max() < 0.05 * e32.abs().max()
