"""What a diffusion model's network predicts, and the noise estimate SDS needs from it.

With z_t = a x + s eps (a = sqrt(alphabar_t), s = sqrt(1 - alphabar_t), a^2 + s^2 = 1):
- `epsilon`: the network predicts eps (DDPM; SD 1.x, SD 2.x-base, IF);
- `v_prediction`: it predicts v = a eps - s x (Salimans & Ho 2022; SD 2.x 768-v and many
  community checkpoints), so eps = s z_t + a v and x = a z_t - s v;
- `sample`: it predicts x itself, so eps = (z_t - a x) / s.
The scheduler's `prediction_type` says which; everything here runs in float32.
"""
from __future__ import annotations

from torch import Tensor

PREDICTION_TYPES = ("epsilon", "v_prediction", "sample")


def _coefficients(alphas_cumprod: Tensor, t: Tensor, like: Tensor) -> tuple[Tensor, Tensor]:
    acp = alphas_cumprod.float()[t].reshape(-1, *([1] * (like.dim() - 1)))
    return acp.sqrt(), (1 - acp).sqrt()


def check_prediction_type(kind: str) -> str:
    if kind not in PREDICTION_TYPES:
        raise ValueError(f"unsupported prediction_type {kind!r} in the scheduler config "
                         f"(supported: {', '.join(PREDICTION_TYPES)})")
    return kind


def to_epsilon(out: Tensor, z_t: Tensor, t: Tensor, alphas_cumprod: Tensor,
               kind: str) -> Tensor:
    """The noise estimate (B, C, h, w), float32, from a network output of `kind` for z_t at
    integer timesteps t (B,)."""
    out, z_t = out.float(), z_t.float()
    if kind == "epsilon":
        return out
    a, s = _coefficients(alphas_cumprod, t, z_t)
    if kind == "v_prediction":
        return s * z_t + a * out
    if kind == "sample":
        return (z_t - a * out) / s
    raise ValueError(check_prediction_type(kind))


def to_sample(eps: Tensor, z_t: Tensor, t: Tensor, alphas_cumprod: Tensor) -> Tensor:
    """The denoised estimate x = (z_t - s eps) / a (float32)."""
    a, s = _coefficients(alphas_cumprod, t, z_t)
    return (z_t.float() - s * eps.float()) / a
