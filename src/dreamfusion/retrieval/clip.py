"""R-precision with a real CLIP model (transformers), for runs with open-vocabulary captions.

The model comes from a local folder (save_pretrained layout: config, weights, tokenizer)
or a Hub id; the caption set is a text file, one caption per line, that must contain the
caption of every run scored.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from ..model_loading import BackendLoadError, is_local, load_part

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def read_captions(path: Path) -> list[str]:
    """Non-empty stripped lines of a captions file, in order, without duplicates."""
    if not path.is_file():
        raise FileNotFoundError(f"captions file {path} does not exist")
    lines = [line.strip() for line in path.read_text().splitlines()]
    captions = list(dict.fromkeys(line for line in lines if line))
    if len(captions) < 2:
        raise ValueError(f"captions file {path} needs at least two captions to rank")
    return captions


class ClipRetrieval:
    """Cosine similarity of CLIP image and text embeddings over a fixed caption set."""

    def __init__(self, model: str, captions: list[str] | None = None, device: str | torch.device = "cpu",
                 local_files_only: bool = False):
        try:
            from transformers import AutoTokenizer, CLIPModel
        except ImportError:
            raise BackendLoadError('CLIP scoring needs transformers: pip install '
                                   '"dreamfusion[diffusers]"') from None
        if is_local(model) and not Path(model).expanduser().is_dir():
            raise BackendLoadError(f"CLIP model {model}: no such folder")
        self.model = load_part(CLIPModel, model, None, local_files_only)
        tokenizer = load_part(AutoTokenizer, model, None, local_files_only)
        self.device = torch.device(device)
        self.model = self.model.eval().requires_grad_(False).to(self.device)
        self.captions = captions or []
        self.image_size = int(self.model.config.vision_config.image_size)
        self.tokenizer = tokenizer
        self.text = self.text_features(captions) if captions else None
        self.shape_text: Tensor | None = None  # the six "a {shape}" texts (shape_r_precision)

    @torch.no_grad()
    def text_features(self, texts: list[str]) -> Tensor:
        """(N, D) unit text embeddings."""
        tokens = self.tokenizer(texts, padding=True, truncation=True, return_tensors="pt")
        text = self.model.get_text_features(**tokens.to(self.device))
        return F.normalize(getattr(text, "pooler_output", text), dim=-1)

    def image_features(self, images: Tensor) -> Tensor:
        """(B, D) unit image embeddings of images (B, 3, H, W) in [0, 1], differentiable."""
        x = F.interpolate(images.to(self.device), (self.image_size, self.image_size),
                          mode="bicubic", align_corners=False).clamp(0, 1)
        mean = torch.tensor(CLIP_MEAN, device=self.device).view(1, 3, 1, 1)
        std = torch.tensor(CLIP_STD, device=self.device).view(1, 3, 1, 1)
        feats = self.model.get_image_features(pixel_values=(x - mean) / std)
        return F.normalize(getattr(feats, "pooler_output", feats), dim=-1)

    @torch.no_grad()
    def caption_scores(self, images: Tensor) -> Tensor:
        """(B, N) cosine similarity of images (B, 3, H, W) in [0, 1] to every caption."""
        return self.image_features(images) @ self.text.T

    def r_precision(self, images: Tensor, caption: str) -> float:
        if caption not in self.captions:
            raise ValueError(f'the caption "{caption}" is not in the captions file')
        target = self.captions.index(caption)
        return (self.caption_scores(images).argmax(1) == target).float().mean().item()

    def shape_r_precision(self, images: Tensor, caption: str) -> float:
        """Share of images whose best of the six texts "a {shape}" (no colour) names the
        shape of `caption`, a toy-world caption (ValueError otherwise)."""
        from ..toyworld.world import SHAPES
        from .model import caption_shape_index
        target = caption_shape_index(caption)
        if self.shape_text is None:  # encoded once, on first use
            self.shape_text = self.text_features([f"a {shape}" for shape in SHAPES])
        with torch.no_grad():
            scores = self.image_features(images) @ self.shape_text.T
        return (scores.argmax(1) == target).float().mean().item()
