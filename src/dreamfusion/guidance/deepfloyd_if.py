"""DeepFloyd IF stage I as an SDS prior: pixel space at the UNet's size (64x64)."""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from .diffusers_backend import DiffusersBackend

DEFAULT_MODEL = "DeepFloyd/IF-I-XL-v1.0"


class DeepFloydIF(DiffusersBackend):
    """T5 text embeddings (computed once, cached on disk, encoder then freed); renders
    resized to the UNet's sample size and scaled to [-1, 1]; eps is the first half of
    the UNet's output (the rest is its learned variance)."""

    name = kind = "if"
    max_length = 77

    def _attach(self, *args, **parts) -> None:
        super()._attach(*args, **parts)
        self.image_size = int(self.unet.config.sample_size)

    def encode_images(self, images: Tensor) -> Tensor:
        """(B, 3, H, W) in [0, 1] -> (B, 3, S, S) in [-1, 1], differentiable."""
        self.load_denoiser()
        x = F.interpolate(images, (self.image_size, self.image_size), mode="bilinear",
                          align_corners=False)
        return x * 2 - 1
