"""What a trainer optimises against: one Guidance, behind a small interface.

A Guidance draws the views of a step (cameras, lighting, size, background) and turns
their renders into named losses with weights. DreamFusion's score distillation
(sds_guidance.py) and the baselines' image-caption loss (image_text.py) are the two
implementations; the trainer composes one with a 3D model (train.METHODS), so the
NeRF stage, Dream Fields and CLIP-Mesh are compositions, not branches.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor

from ..cameras import Cameras
from ..render import Shading


@dataclass
class Views:
    """The renders a step asks for."""

    cams: Cameras
    """B cameras, on the device."""
    size: int
    """Render side in pixels."""
    shading: Shading
    """Per-camera lighting, on the device."""
    background: Tensor | None = None
    """(B, 3) or (B, H, W, 3) backgrounds, or None: the trainer's own (solid or learned)."""
    context: dict[str, Any] = field(default_factory=dict)
    """What `losses` needs from the drawing of the views (e.g. the prompts per camera)."""


class Guidance(ABC):
    """Draws a step's views and scores their renders."""

    learned_background: bool = False
    """Whether renders may use the trainer's learned background (render.background =
    learned), which then trains with the model."""

    @abstractmethod
    def sample_views(self, step: int) -> Views:
        """The views of step `step`, drawn from the trainer's generator."""

    @abstractmethod
    def losses(self, out: dict[str, Tensor], views: Views, step: int
               ) -> tuple[dict[str, Tensor], dict[str, float]]:
        """(named 0-d losses, their weights) for the render `out` of `views`
        (render.render_model's dict: image, opacity, orientation, ...)."""
