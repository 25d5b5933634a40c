"""Moving the per-step random draws to the device without a host-device sync.

Random numbers are drawn on a CPU generator, so a run draws the same numbers on every
device; a plain `.to("cuda")` of pageable memory would then wait for all queued GPU
work every step. Pinned memory and a non-blocking copy keep the GPU's queue full.
"""
from __future__ import annotations

import torch
from torch import Tensor


def upload(t: Tensor, device: torch.device | str) -> Tensor:
    """`t.to(device)` for a CPU tensor, without a sync when the device is a GPU."""
    device = torch.device(device)
    if device.type != "cuda" or t.device.type != "cpu":
        return t.to(device)
    return t.pin_memory().to(device, non_blocking=True)
