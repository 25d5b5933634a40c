"""An analytic "UNet" for the real-prior paths: its denoised estimate is a known function.

For text embeddings whose first entry is c (1 for the caption, 0 for ''), the model's
clean-image estimate is x0 = c * PATTERN, whatever z_t; it reports that estimate in the
parametrisation it is built for (noise, v or sample), like a diffusers UNet (an output
with `.sample`, a `config` dict). With extra_channels it appends a variance half (IF)."""
from __future__ import annotations

from types import SimpleNamespace

import torch


class Config(dict):
    """A diffusers-style config: keys read as attributes too."""
    __getattr__ = dict.__getitem__


class AnalyticUNet(torch.nn.Module):
    def __init__(self, channels: int, size: int, alphas_cumprod: torch.Tensor,
                 prediction_type: str, extra_channels: int = 0, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.register_buffer("pattern", torch.rand(channels, size, size, generator=g) * 2 - 1)
        self.acp = alphas_cumprod.double()  # not a buffer: stays float64 under .to(dtype)
        self.kind, self.extra = prediction_type, extra_channels
        self.weight = torch.nn.Parameter(torch.zeros(()))  # frozen by the backend
        self.config = Config(in_channels=channels, sample_size=size)

    def x0(self, text: torch.Tensor) -> torch.Tensor:
        """(B, C, S, S): the estimate for embeddings (B, L, D)."""
        return text[:, 0, 0].double().reshape(-1, 1, 1, 1) * self.pattern.double()

    def forward(self, z, t, encoder_hidden_states):
        z64 = z.double()
        a = self.acp[t].sqrt().reshape(-1, 1, 1, 1)
        s = (1 - self.acp[t]).sqrt().reshape(-1, 1, 1, 1)
        x0 = self.x0(encoder_hidden_states)
        eps = (z64 - a * x0) / s
        out = {"epsilon": eps, "v_prediction": a * eps - s * x0, "sample": x0}[self.kind]
        if self.extra:
            out = torch.cat([out, torch.zeros_like(out[:, : self.extra])], dim=1)
        return SimpleNamespace(sample=out.to(z.dtype))


def texts(n_cond: int, n_uncond: int, length: int = 4, dim: int = 8) -> torch.Tensor:
    """Embeddings (n_cond + n_uncond, length, dim): first entries 1 (caption), then 0 ('')."""
    emb = torch.zeros(n_cond + n_uncond, length, dim)
    emb[:n_cond, 0, 0] = 1.0
    return emb
