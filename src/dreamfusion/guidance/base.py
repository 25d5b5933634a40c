"""The small interface every diffusion prior implements (toy, Stable Diffusion, IF).

A backend is frozen: it is not an nn.Module of the trainable tree, never enters the
optimiser or a checkpoint, and runs its denoiser without autograd. Only
`encode_images` is differentiable (for latent models the VAE encoder is in the graph).
"""
from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import Tensor

from ..devices import upload


def linear_alphas_cumprod(steps: int = 1000, beta_start: float = 1e-4,
                          beta_end: float = 0.02) -> Tensor:
    """alphabar_t of the standard DDPM schedule (diffusers' DDPMScheduler defaults)."""
    betas = torch.linspace(beta_start, beta_end, steps, dtype=torch.float64)
    return torch.cumprod(1.0 - betas, dim=0).float()


class DiffusionBackend(ABC):
    """A frozen text-conditioned noise predictor eps(z_t, t, text)."""

    name: str = "base"
    alphas_cumprod: Tensor
    """(T,) alphabar_t of the model's noise schedule."""

    @abstractmethod
    def encode_text(self, texts: list[str]) -> Tensor:
        """Embeddings (N, ...) for N texts; '' is the unconditional text."""

    @abstractmethod
    def encode_images(self, images: Tensor) -> Tensor:
        """Images (B, 3, H, W) in [0, 1] -> model space (B, C, h, w), differentiably."""

    @abstractmethod
    def predict_noise(self, z_t: Tensor, t: Tensor, text_emb: Tensor) -> Tensor:
        """eps prediction (B, C, h, w) for noisy z_t (B, C, h, w), integer t (B,), text (B, ...)."""

    def interpolate_text(self, a: Tensor, b: Tensor, r: Tensor) -> Tensor:
        """Embeddings between two texts' (N, ...) each, r (N,) in [0, 1] the share of a
        (Perp-Neg's positive prompt between two views): linear, as in threestudio."""
        r = upload(r, a.device).to(a.dtype).reshape(-1, *([1] * (a.dim() - 1)))
        return r * a + (1 - r) * b

    def release_text_encoder(self) -> None:
        """Free whatever only text encoding needs (called once the prompts are embedded);
        nothing to free by default."""

    def to(self, device: torch.device) -> "DiffusionBackend":
        self.alphas_cumprod = self.alphas_cumprod.to(device)
        return self
