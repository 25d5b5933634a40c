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

import math
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


def mixture_rows(text_emb: Tensor) -> list[tuple[int, int, float]]:
    """(bank a, bank b, share of a) per row of (B, 3) mixtures or (B,) bank ids."""
    if text_emb.dim() == 1:
        return [(k, k, 1.0) for k in text_emb.long().tolist()]
    return [(int(a), int(b), float(w)) for a, b, w in text_emb.tolist()]


def to_8bit(photos: Tensor) -> Tensor:
    """Photos in [0, 1] (any shape) rounded to uint8."""
    return (photos.clamp(0.0, 1.0) * 255).round().to(torch.uint8)


def _log_likelihoods(dots: Tensor, alpha: Tensor, var: Tensor, sq: Tensor,
                     prior: Tensor | None) -> Tensor:
    """log N(z; alpha x_i, var I) + log prior mass of each photo, up to a constant per z,
    from dots = z.x_i (..., N) and sq = |x_i|^2 (N,): |z - a x_i|^2 = |z|^2 - 2 a z.x_i +
    a^2 |x_i|^2, and |z|^2 cancels in the softmax."""
    logits = (2 * alpha * dots - alpha ** 2 * sq) / (2 * var)
    return logits if prior is None else logits + prior


PRUNE_WEIGHT = 1e-10
"""weighted_sum leaves out photos whose weight is below this in every row: at most
N * 1e-10 of each row's mass (N photos), under float32's rounding of the sum."""


def weighted_sum(weights: Tensor, bank: Tensor) -> Tensor:
    """weights (R, N) @ bank (N, D), reading only the photos some row weighs: at the
    refine stage's low noise a row's softmax sits on a few near photos, and reading
    the whole bank is most of a step. The plain product where most photos count, and on
    an accelerator (picking the photos would read the weights back to the host)."""
    if bank.device.type != "cpu":
        return weights @ bank
    keep = (weights > PRUNE_WEIGHT).any(0).nonzero().squeeze(1)
    if 4 * keep.numel() > weights.shape[1]:
        return weights @ bank
    return weights[:, keep] @ bank[keep]


class ToyPrior(DiffusionBackend):
    """Exact posterior-mean denoiser over photo banks rendered at `size` x `size`.

    Text embeddings are integer bank ids (N,); banks are built on first use and cached.
    """

    name = "toy"

    def __init__(self, size: int, bank_size: int = 512, uncond_bank_size: int = 512,
                 seed: int = 0, device: torch.device | str = "cpu", cache: bool = True,
                 mirror: bool = False):
        self.size, self.bank_size, self.seed = size, bank_size, seed
        # Every toy object and its photo distribution are symmetric under x -> -x, so a
        # photo flipped left-right is an exact photo of the same text (camera at -az,
        # light mirrored): mirror=True doubles each bank without rendering a photo. The
        # flips are never stored: a flipped photo scores against z as the photo does
        # against flip(z), so each bank is read once for both (posterior_mean).
        self.mirror = mirror
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
        """(N, 3) float, on the host whatever the device: a mixture of at most two banks,
        (bank a, bank b, share of a); a text is (its bank, its bank, 1). On the host
        because `posterior_mean` picks banks in Python (on a GPU a sync per image).
        Raises CaptionError for text outside the toy world."""
        ids = torch.tensor([self._bank_id(t) for t in texts], dtype=torch.float32)
        return torch.stack([ids, ids, torch.ones_like(ids)], dim=1)

    def interpolate_text(self, a: Tensor, b: Tensor, r: Tensor) -> Tensor:
        """The mixture r p_a + (1 - r) p_b of two texts' photo distributions: its exact
        denoiser is this prior's answer to an embedding between the two."""
        if not (torch.equal(a[:, 0], a[:, 1]) and torch.equal(b[:, 0], b[:, 1])):
            raise ValueError("the toy prior mixes two plain texts, not mixtures")
        return torch.stack([a[:, 0], b[:, 0], r.to(torch.float32).cpu()], dim=1)

    def _bank_id(self, text: str) -> int:
        key = "" if not text.strip() else parse_caption(text).text
        if key not in self._ids:
            self._add_bank(key, self._photos(key))
        return self._ids[key]

    def _photos(self, key: str) -> Tensor:
        """(N, 3, size, size) uint8 photos of a caption key ('' = the unconditional bank):
        8-bit, as photos are, and a quarter of float32 on disk (a 2048-photo bank at 64 x
        64 is 25 MB, so the cache's 1 GiB holds eight captions' refine banks)."""
        n = self.uncond_bank_size if key == "" else self.bank_size
        inputs = {"text": key, "n": n, "size": self.size, "seed": self.seed,
                  "code": photo_code(), "format": "uint8"}
        return cached_tensor("photo-banks", inputs, lambda: to_8bit(self._render_photos(key)),
                             self.cache)

    def _render_photos(self, key: str) -> Tensor:
        if key == "":
            gen = torch.Generator().manual_seed(self.seed + 1)
            caps = random_captions(self.uncond_bank_size, gen)
            return render_mixed_photos(caps, self.size, seed=self.seed)
        return render_photos(parse_caption(key), self.bank_size, self.size, seed=self.seed)

    def _add_bank(self, key: str, photos: Tensor) -> None:
        """Hold photos (N, 3, size, size), uint8 or float in [0, 1], as a bank."""
        if photos.dtype == torch.uint8:
            photos = photos.float() / 255
        flat = (photos.reshape(photos.shape[0], -1) * 2 - 1).to(self.device)
        self._ids[key] = len(self._banks)
        self._banks.append(flat)
        self._sqnorms.append((flat * flat).sum(-1))

    def bank(self, text: str) -> Tensor:
        """The photos (N, 3, size, size) in [0, 1] behind a text (with mirror, the
        rendered photos and then their flips)."""
        photos = ((self._banks[self._bank_id(text)] + 1) / 2).reshape(-1, 3, self.size, self.size)
        return torch.cat([photos, photos.flip(-1)]) if self.mirror else photos

    def _flip(self, flat: Tensor) -> Tensor:
        """Left-right flips of (M, 3 * size * size) flat images."""
        return flat.reshape(-1, 3, self.size, self.size).flip(-1).reshape(flat.shape)

    # -- images ---------------------------------------------------------------------
    def encode_images(self, images: Tensor) -> Tensor:
        """Pixel-space model: [0, 1] -> [-1, 1] (the renders must be size x size)."""
        if images.shape[-1] != self.size or images.shape[-2] != self.size:
            raise ValueError(f"toy prior expects {self.size}x{self.size} renders, "
                             f"got {tuple(images.shape[-2:])}")
        return images * 2 - 1

    # -- denoising ------------------------------------------------------------------
    def posterior_mean(self, z_t: Tensor, t: Tensor, text_emb: Tensor) -> Tensor:
        """x0 prediction (B, 3, H, W) in [-1, 1]: softmax-weighted mean of the photos of
        the text's bank, or of two banks with prior shares w and 1 - w (text_emb from
        `encode_text` / `interpolate_text`; plain bank ids (B,) are accepted too)."""
        acp = self.alphas_cumprod[t]
        alpha, var = acp.sqrt(), 1 - acp
        z = z_t.reshape(z_t.shape[0], -1)
        if self.mirror:
            return self._mirrored_means(z, alpha, var, mixture_rows(text_emb)).reshape_as(z_t)
        out = torch.empty_like(z)
        for b, row in enumerate(mixture_rows(text_emb)):
            banks, sq, prior = self._row_bank(row)
            logits = _log_likelihoods(banks @ z[b], alpha[b], var[b], sq, prior)
            out[b] = torch.softmax(logits, dim=0) @ banks
        return out.reshape_as(z_t)

    def _row_bank(self, row: tuple[int, int, float]) -> tuple[Tensor, Tensor, Tensor | None]:
        """(photos (N, D), their squared norms (N,), log prior mass (N,) or None) behind
        one mixture row: a plain text's bank as it is (no copy), or two banks, each
        photo's prior mass its bank's share over its size."""
        ia, ib, share = row
        parts = [(ia, share)] if ia == ib else [(ia, share), (ib, 1.0 - share)]
        parts = [(k, w) for k, w in parts if w > 0]
        if len(parts) == 1:
            return self._banks[parts[0][0]], self._sqnorms[parts[0][0]], None
        banks = torch.cat([self._banks[k] for k, _ in parts])
        sq = torch.cat([self._sqnorms[k] for k, _ in parts])
        prior = torch.cat([torch.full_like(self._sqnorms[k], math.log(w / len(self._banks[k])))
                           for k, w in parts])
        return banks, sq, prior

    def _mirrored_means(self, z: Tensor, alpha: Tensor, var: Tensor,
                        rows: list[tuple[int, int, float]]) -> Tensor:
        """(B, D) posterior means over the photos and their flips. The rows that share a
        bank read it together (a bank of 2048 photos at 64 x 64 is 100 MB, and reading
        it is the cost), and each reads it once for a photo and its flip:
        |z - a flip(x)| = |flip(z) - a x|, and the flips' weighted sum is the flip of
        the photos' sum with the flips' weights. The tests check it against the explicit
        doubled bank."""
        out = torch.empty_like(z)
        for row in dict.fromkeys(rows):
            idx = [b for b, r in enumerate(rows) if r == row]
            banks, sq, prior = self._row_bank(row)
            zs = torch.cat([z[idx], self._flip(z[idx])])  # (2G, D): z, then flip(z)
            a, v = alpha[idx].repeat(2)[:, None], var[idx].repeat(2)[:, None]
            logits = _log_likelihoods(zs @ banks.T, a, v, sq, prior)  # (2G, N)
            G, N = len(idx), banks.shape[0]
            # one softmax per row over its photos and their flips
            pairs = logits.reshape(2, G, N).transpose(0, 1).reshape(G, 2 * N)
            weights = torch.softmax(pairs, dim=1).reshape(G, 2, N).transpose(0, 1)
            means = weighted_sum(weights.reshape(2 * G, N), banks)  # (2G, D)
            out[idx] = means[:G] + self._flip(means[G:])
        return out

    def predict_noise(self, z_t: Tensor, t: Tensor, text_emb: Tensor) -> Tensor:
        acp = self.alphas_cumprod[t].reshape(-1, 1, 1, 1)
        x0 = self.posterior_mean(z_t, t, text_emb)
        return (z_t - acp.sqrt() * x0) / (1 - acp).sqrt()
