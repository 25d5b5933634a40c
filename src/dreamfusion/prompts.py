"""View-dependent prompting: caption + ', front view' etc. by camera angle, embedded once."""
from __future__ import annotations

import re

import torch
from torch import Tensor

from .cameras import VIEW_LABELS, Cameras, view_labels
from .guidance.base import DiffusionBackend
from .guidance.perp_neg import view_mix

_VIEW_SUFFIX = re.compile(r",\s*(front|side|back|overhead)\s+view\s*\.?\s*$", re.IGNORECASE)


def strip_view(caption: str) -> str:
    """The caption without a trailing ', <label> view'."""
    return _VIEW_SUFFIX.sub("", caption.strip()).strip()


def view_prompt(caption: str, label: str) -> str:
    """'a red cube' + 'side' -> 'a red cube, side view'."""
    return f"{strip_view(caption)}, {label} view"


class PromptSet:
    """Text embeddings of a caption, its four view variants and the negative prompt.

    Computed once at construction (the backend may be expensive); `for_cameras` picks
    the embedding of each camera's view label.
    """

    def __init__(self, backend: DiffusionBackend, caption: str, view_dependent: bool,
                 negative: str = ""):
        self.caption, self.view_dependent = caption, view_dependent
        has_suffix = _VIEW_SUFFIX.search(caption) is not None
        # A caption that already names a view is used as given.
        self.view_dependent = view_dependent and not has_suffix
        texts = [caption, negative]
        if self.view_dependent:
            texts += [view_prompt(caption, v) for v in VIEW_LABELS]
        emb = backend.encode_text(texts)
        self.backend = backend
        self.base, self.negative = emb[0], emb[1]
        self.views = {v: emb[2 + i] for i, v in enumerate(VIEW_LABELS)} if self.view_dependent else {}

    def texts_for(self, cams: Cameras) -> list[str]:
        if not self.view_dependent:
            return [self.caption] * len(cams)
        return [view_prompt(self.caption, v) for v in view_labels(cams.el, cams.az)]

    def for_cameras(self, cams: Cameras, plain: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """(cond (B, ...), uncond (B, ...)) embeddings for a batch of cameras.

        plain: optional (B,) bool, cameras that get the caption as is (no view suffix).
        """
        if self.view_dependent:
            labels = view_labels(cams.el, cams.az)
            keep = plain.tolist() if plain is not None else [False] * len(cams)
            cond = torch.stack([self.base if k else self.views[v] for v, k in zip(labels, keep)])
        else:
            cond = self.base.unsqueeze(0).expand(len(cams), *self.base.shape)
        uncond = self.negative.unsqueeze(0).expand(len(cams), *self.negative.shape)
        return cond, uncond

    def conditions(self, cams: Cameras, plain: Tensor | None, cfg) -> dict[str, Tensor]:
        """The text inputs of score distillation for cameras on the host: cond and
        uncond, and with Perp-Neg on (`cfg.perp_neg`, view prompts in use) negatives
        and neg_weights too."""
        if cfg.perp_neg and self.view_dependent:
            keys = ("cond", "uncond", "negatives", "neg_weights")
            return dict(zip(keys, self.perp_neg_for_cameras(cams, plain, cfg)))
        return dict(zip(("cond", "uncond"), self.for_cameras(cams, plain)))

    def perp_neg_for_cameras(self, cams: Cameras, plain: Tensor | None, cfg
                             ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Perp-Neg's (cond (B, ...), uncond (B, ...), negatives (B, 2, ...), weights
        (B, 2)) for cameras on the host (guidance/perp_neg.py). The positive mixes the
        two views either side of the camera's azimuth; overhead and plain cameras keep
        their prompt of `for_cameras` and get negative weights 0."""
        cond, uncond = self.for_cameras(cams, plain)
        v = self.views
        front_half, r, weights = view_mix(cams.az, cfg)
        halves = front_half.tolist()
        first = torch.stack([v["front"] if f else v["side"] for f in halves])
        second = torch.stack([v["side"] if f else v["back"] for f in halves])
        mixed = self.backend.interpolate_text(first, second, r)
        other = torch.stack([v["side"] if f else v["front"] for f in halves])
        negatives = torch.stack([first, other], dim=1)  # (front, side) or (side, front)
        keep = torch.tensor([label == "overhead" for label in view_labels(cams.el, cams.az)])
        if plain is not None:
            keep = keep | plain
        cond = torch.stack([c if k else m for c, m, k in zip(cond, mixed, keep.tolist())])
        return cond, uncond, negatives, torch.where(keep[:, None], 0.0, weights)
