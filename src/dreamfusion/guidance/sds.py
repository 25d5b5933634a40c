"""Score Distillation Sampling (DreamFusion, eq. 3) over any DiffusionBackend."""
from __future__ import annotations

import torch
from torch import Tensor

from ..config import GuidanceConfig
from ..devices import upload
from . import perp_neg
from .base import DiffusionBackend


def sds_weight(alphas_cumprod: Tensor, t: Tensor, kind: str) -> Tensor:
    """w(t), (B,): `sds` = sigma_t^2 = 1 - alphabar_t, `uniform` = 1."""
    if kind == "sds":
        return 1.0 - alphas_cumprod[t]
    if kind == "uniform":
        return torch.ones_like(alphas_cumprod[t])
    raise ValueError(f"unknown SDS weighting {kind!r}")


def t_range(cfg: GuidanceConfig, step: int, total_steps: int) -> tuple[float, float]:
    """(lo, hi) of the t range at `step`, fractions of the schedule; both anneal linearly."""
    frac = step / max(total_steps - 1, 1)
    lo = cfg.t_min_start + (cfg.t_min - cfg.t_min_start) * frac
    hi = cfg.t_max + (cfg.t_max_final - cfg.t_max) * frac
    return lo, max(hi, lo)


def sample_timesteps(n: int, lo: float, hi: float, num_steps: int,
                     generator: torch.Generator | None, device) -> Tensor:
    """n integer timesteps uniform in [lo * T, hi * T]."""
    lo_i, hi_i = int(lo * num_steps), max(int(hi * num_steps), int(lo * num_steps) + 1)
    return upload(torch.randint(lo_i, hi_i, (n,), generator=generator), device)


def sds_loss(latents: Tensor, grad: Tensor) -> Tensor:
    """Loss whose gradient w.r.t. `latents` (B, ...) is exactly grad / B.

    With target = stopgrad(latents - grad), d/dlatents of 0.5 * ||latents - target||^2 is
    latents - target = grad; summing over the batch and dividing by B keeps the step size
    independent of the batch size. The U-Net Jacobian never appears: grad is detached.
    A non-finite grad makes the loss non-finite, so the training loop sees the fault
    (it is not silently zeroed here).
    """
    grad = grad.detach()
    target = (latents - grad).detach()
    return 0.5 * ((latents - target) ** 2).sum() / latents.shape[0]


def guided_noise(backend: DiffusionBackend, z_t: Tensor, t: Tensor, cond: Tensor,
                 uncond: Tensor, scale: float, negatives: Tensor | None = None,
                 neg_weights: Tensor | None = None) -> Tensor:
    """Classifier-free guidance eps_u + s (eps_c - eps_u), one batched no-grad call;
    with negatives (B, M, ...) and weights (B, M), Perp-Neg's (guidance/perp_neg.py),
    all 2 + M texts in the same call."""
    m = 0 if negatives is None else negatives.shape[1]
    texts = [cond, uncond] + [negatives[:, i] for i in range(m)]
    with torch.no_grad():
        eps = backend.predict_noise(torch.cat([z_t] * (2 + m)), torch.cat([t] * (2 + m)),
                                    torch.cat(texts))
    eps_c, eps_u, *eps_neg = eps.chunk(2 + m)
    if m == 0:
        return eps_u + scale * (eps_c - eps_u)
    return perp_neg.combine(eps_u, eps_c, torch.stack(eps_neg, dim=1),
                            upload(neg_weights, eps.device), scale)


def tile(x: Tensor, k: int) -> Tensor:
    """(B, ...) -> (K B, ...): the batch repeated k times, copy j in rows j B .. j B + B-1."""
    return x.repeat(k, *([1] * (x.dim() - 1)))


def score_distillation(backend: DiffusionBackend, images: Tensor, cond: Tensor,
                       uncond: Tensor, cfg: GuidanceConfig, step: int, total_steps: int,
                       generator: torch.Generator | None = None,
                       negatives: Tensor | None = None,
                       neg_weights: Tensor | None = None) -> dict[str, Tensor]:
    """SDS on renders (B, 3, H, W) in [0, 1] with text embeddings cond / uncond (B, ...)
    and, for Perp-Neg, negatives (B, M, ...) with weights (B, M).

    Returns {'sds': loss, 't': timesteps (K B,)}; gradient of 'sds' w.r.t. the encoded
    images is w(t) (eps_hat - eps) / B, averaged over K = `cfg.noise_samples` draws of
    t and eps per image (K = 1: the paper's single draw).
    """
    latents = backend.encode_images(images)
    k, b = cfg.noise_samples, latents.shape[0]
    # K draws of (t, eps) per render, one batched prior call; their gradients are averaged
    x = tile(latents.detach(), k)  # (K B, ...)
    acp = backend.alphas_cumprod
    lo, hi = t_range(cfg, step, total_steps)
    t = sample_timesteps(k * b, lo, hi, acp.shape[0], generator, latents.device)
    eps = upload(torch.randn(x.shape, generator=generator), latents.device).to(latents.dtype)
    a = acp[t].reshape(-1, *([1] * (latents.dim() - 1)))
    z_t = a.sqrt() * x + (1 - a).sqrt() * eps
    if negatives is not None:
        negatives, neg_weights = tile(negatives, k), tile(neg_weights, k)
    eps_hat = guided_noise(backend, z_t, t, tile(cond, k), tile(uncond, k), cfg.guidance_scale,
                           negatives, neg_weights)
    grad = sds_weight(acp, t, cfg.weighting).reshape_as(a) * (eps_hat - eps)
    if cfg.grad_clip > 0:
        grad = grad.clamp(-cfg.grad_clip, cfg.grad_clip)
    grad = grad.reshape(k, *latents.shape).mean(0)
    return {"sds": sds_loss(latents, grad), "t": t}
