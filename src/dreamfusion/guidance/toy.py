"""The built-in prior: the exact denoiser of the toy world's photo distribution.

For a noisy image z_t = alpha_t x + sigma_t eps and a caption y whose photos form a bank
{x_i}, the optimal clean-image prediction is the posterior mean
    x0(z_t) = sum_i softmax_i(-|z_t - alpha_t x_i|^2 / (2 sigma_t^2)) x_i,
and the matching noise prediction is eps = (z_t - alpha_t x0) / sigma_t. The
unconditional text '' uses a bank of photos of random captions, so classifier-free
guidance behaves as with any diffusion model. No weights, no training: it is exact for
the empirical distribution of the bank.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from .. import cameras, toyworld
from ..cache import cached_tensor, source_fingerprint
from ..toyworld.captions import parse_caption
from ..toyworld.photos import random_captions, render_mixed_photos, render_photos
from .base import DiffusionBackend, linear_alphas_cumprod


def photo_code() -> str:
    """Fingerprint of the code that renders the photos: the toy world and its cameras."""
    return source_fingerprint(str(Path(toyworld.__file__).parent), cameras.__file__)


class ToyPrior(DiffusionBackend):
    """Exact posterior-mean denoiser over photo banks rendered at `size` x `size`.

    Text embeddings are integer bank ids (N,); banks are built on first use and cached.
    """

    name = "toy"

    def __init__(self, size: int, bank_size: int = 128, uncond_bank_size: int = 512,
                 seed: int = 0, device: torch.device | str = "cpu", cache: bool = True):
        self.size, self.bank_size, self.seed = size, bank_size, seed
        self.cache = cache  # photo banks on disk (cache.py): 0.8 s of start-up saved
        self.uncond_bank_size = uncond_bank_size
        self.device = torch.device(device)
        self.alphas_cumprod = linear_alphas_cumprod().to(self.device)
        self._ids: dict[str, int] = {}
        self._banks: list[Tensor] = []  # each (N_k, D) in [-1, 1]
        self._sqnorms: list[Tensor] = []  # each (N_k,)

    def to(self, device) -> "ToyPrior":
        self.device = torch.device(device)
        self.alphas_cumprod = self.alphas_cumprod.to(self.device)
        self._banks = [b.to(self.device) for b in self._banks]
        self._sqnorms = [s.to(self.device) for s in self._sqnorms]
        return self

    # -- text -----------------------------------------------------------------------
    def encode_text(self, texts: list[str]) -> Tensor:
        """Bank ids (N,) long, on the host whatever the device: `posterior_mean` picks a
        bank by id in Python, which would be a host-device sync per image on a GPU.
        Raises CaptionError for text outside the toy world."""
        return torch.tensor([self._bank_id(t) for t in texts], dtype=torch.long)

    def _bank_id(self, text: str) -> int:
        key = "" if not text.strip() else parse_caption(text).text
        if key not in self._ids:
            self._add_bank(key, self._photos(key))
        return self._ids[key]

    def _photos(self, key: str) -> Tensor:
        """(N, 3, size, size) photos of a caption key ('' = the unconditional bank)."""
        n = self.uncond_bank_size if key == "" else self.bank_size
        inputs = {"text": key, "n": n, "size": self.size, "seed": self.seed,
                  "code": photo_code()}
        return cached_tensor("photo-banks", inputs, lambda: self._render_photos(key),
                             self.cache)

    def _render_photos(self, key: str) -> Tensor:
        if key == "":
            gen = torch.Generator().manual_seed(self.seed + 1)
            caps = random_captions(self.uncond_bank_size, gen)
            return render_mixed_photos(caps, self.size, seed=self.seed)
        return render_photos(parse_caption(key), self.bank_size, self.size, seed=self.seed)

    def _add_bank(self, key: str, photos: Tensor) -> None:
        flat = (photos.reshape(photos.shape[0], -1) * 2 - 1).to(self.device)
        self._ids[key] = len(self._banks)
        self._banks.append(flat)
        self._sqnorms.append((flat * flat).sum(-1))

    def bank(self, text: str) -> Tensor:
        """The photos (N, 3, size, size) in [0, 1] behind a text."""
        flat = self._banks[self._bank_id(text)]
        return ((flat + 1) / 2).reshape(-1, 3, self.size, self.size)

    # -- images ---------------------------------------------------------------------
    def encode_images(self, images: Tensor) -> Tensor:
        """Pixel-space model: [0, 1] -> [-1, 1] (the renders must be size x size)."""
        if images.shape[-1] != self.size or images.shape[-2] != self.size:
            raise ValueError(f"toy prior expects {self.size}x{self.size} renders, "
                             f"got {tuple(images.shape[-2:])}")
        return images * 2 - 1

    # -- denoising ------------------------------------------------------------------
    def posterior_mean(self, z_t: Tensor, t: Tensor, text_emb: Tensor) -> Tensor:
        """x0 prediction (B, 3, H, W) in [-1, 1]: softmax-weighted mean of the bank."""
        acp = self.alphas_cumprod[t]
        alpha, var = acp.sqrt(), 1 - acp
        z = z_t.reshape(z_t.shape[0], -1)
        out = torch.empty_like(z)
        for b in range(z.shape[0]):
            bank, sq = self._banks[int(text_emb[b])], self._sqnorms[int(text_emb[b])]
            # |z - a x_i|^2 = |z|^2 - 2 a z.x_i + a^2 |x_i|^2; |z|^2 cancels in the softmax.
            logits = (2 * alpha[b] * (bank @ z[b]) - alpha[b] ** 2 * sq) / (2 * var[b])
            out[b] = torch.softmax(logits, dim=0) @ bank
        return out.reshape_as(z_t)

    def predict_noise(self, z_t: Tensor, t: Tensor, text_emb: Tensor) -> Tensor:
        acp = self.alphas_cumprod[t].reshape(-1, 1, 1, 1)
        x0 = self.posterior_mean(z_t, t, text_emb)
        return (z_t - acp.sqrt() * x0) / (1 - acp).sqrt()
