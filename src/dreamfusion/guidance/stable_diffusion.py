"""Stable Diffusion (1.x, 2.x) as an SDS prior: latent space, VAE encoder in the graph."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .diffusers_backend import DiffusersBackend, load_weights

DEFAULT_MODEL = "stabilityai/stable-diffusion-2-1-base"


class StableDiffusion(DiffusersBackend):
    """Renders are resized to the UNet's latent size times the VAE's downsampling (512
    for SD 1.x/2.x-base), encoded to latents (B, 4, 64, 64) times the VAE's scaling
    factor; the UNet predicts their noise."""

    name = kind = "sd"
    max_length = 77

    image_size: int = 512
    """Renders are resized to this before the VAE (SD 1.x/2.x-base work at 512)."""

    def _load_extra_parts(self) -> dict:
        from diffusers import AutoencoderKL
        return {"vae": load_weights(AutoencoderKL, self.model, "vae", self.local_files_only,
                                    self.vae_dtype, **self._revision())}

    def _attach(self, *args, **parts) -> None:
        super()._attach(*args, **parts)
        # latent size = UNet sample size; image = latent x VAE downsampling
        down = 2 ** (len(self.vae.config.block_out_channels) - 1)
        self.image_size = int(self.unet.config.sample_size) * down
        self.scaling = float(self.vae.config.scaling_factor)

    def encode_images(self, images: Tensor) -> Tensor:
        """(B, 3, H, W) in [0, 1] -> latents (B, 4, S/8, S/8), differentiable.

        The posterior mean of the VAE is used (not a sample): the SDS gradient then has
        one source of noise, the diffusion noise. The VAE runs in `vae_dtype`
        (guidance.vae_precision, fp32 by default); the latents come back in float32."""
        self.load_denoiser()
        x = F.interpolate(images, (self.image_size, self.image_size), mode="bilinear",
                          align_corners=False)
        x = (x * 2 - 1).to(self.vae_dtype)
        latents = self.vae.encode(x).latent_dist.mean * self.scaling
        return latents.float()

    def decode_latents(self, latents: Tensor) -> Tensor:
        """Latents -> images (B, 3, S, S) in [0, 1] (for previews and tests)."""
        self.load_denoiser()
        with torch.no_grad():
            x = self.vae.decode((latents / self.scaling).to(self.vae_dtype)).sample
        return ((x.float() + 1) / 2).clamp(0, 1)
