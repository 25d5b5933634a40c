"""The diffusion priors by name: one explicit mapping from `guidance.backend` to a class."""
from __future__ import annotations

import torch

from ..config import RunConfig
from .base import DiffusionBackend


def build_backend(cfg: RunConfig, device: torch.device, size: int = 0) -> DiffusionBackend:
    """The frozen prior of cfg; `size` = the toy prior's photo size when it is not the
    run's."""
    g = cfg.guidance
    if g.backend == "toy":
        from .toy import ToyPrior
        return ToyPrior(size or cfg.size, g.bank_size, g.uncond_bank_size, g.prior_seed, device,
                        g.bank_cache, g.mirror_photos)
    if g.backend in ("sd", "if"):
        if g.backend == "sd":
            from .stable_diffusion import DEFAULT_MODEL
            from .stable_diffusion import StableDiffusion as Backend
        else:
            from .deepfloyd_if import DEFAULT_MODEL
            from .deepfloyd_if import DeepFloydIF as Backend
        return Backend(g.model or DEFAULT_MODEL, device, g.precision, g.local_files_only,
                       g.channels_last, g.compile, g.text_cache, g.vae_precision,
                       g.revision or None)
    raise ValueError(f"unknown backend {g.backend!r}")
