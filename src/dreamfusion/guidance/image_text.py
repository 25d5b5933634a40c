"""Guidance by an image-caption similarity model (CLIP or its toy-world analogue), as in
the paper's baselines: Dream Fields (Jain et al. 2022) and CLIP-Mesh (Khalid et al. 2022).

loss = -mean cos(E_image(augment(render)), E_text(caption)); the augmentations are
random square crops resized back and random backgrounds, which keep the model from
being satisfied by a few pixels or by the background.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from ..cameras import sample_cameras
from ..config import ClipGuidanceConfig, RunConfig
from ..render import Shading
from .objective import Guidance, Views


class ToyGuide:
    """The toy retrieval model as an embedding model, scored in logit space like CLIP.

    Per head (shape, colour, front), the image's logits minus their mean, made unit, and
    the caption's one-hot class minus its mean, made unit; both embeddings concatenate
    the three parts / sqrt(3), so their cosine is the mean over heads of cos(logits,
    class). Like CLIP's similarity it never saturates: raising the caption's logits
    against the others always helps, where a probability would be flat at 0 or 1 and
    give a blob no gradient towards an unlikely shape.
    """

    HEADS = ("shape", "color", "front")

    def __init__(self, model):
        from ..retrieval.model import caption_indices
        self.model = model.eval().requires_grad_(False)
        self.index = caption_indices()
        self.classes = [model.heads[k].out_features for k in self.HEADS]  # 6, 6, 7

    def to(self, device) -> "ToyGuide":
        self.model = self.model.to(device)
        return self

    @staticmethod
    def _unit_centred(x: Tensor) -> Tensor:
        x = x - x.mean(dim=-1, keepdim=True)
        return x / x.norm(dim=-1, keepdim=True).clamp(min=1e-8)

    def embed_images(self, images: Tensor) -> Tensor:
        """(B, 3, H, W) in [0, 1] -> (B, 19) unit vectors, differentiable."""
        logits = self.model(images)
        parts = [self._unit_centred(logits[k]) for k in self.HEADS]
        return torch.cat(parts, dim=1) / math.sqrt(3)

    def embed_text(self, texts: list[str]) -> Tensor:
        """(N, 19) unit vectors; a view suffix is ignored (the model has no view head)."""
        from ..retrieval.model import CAPTIONS
        from ..toyworld.captions import parse_caption
        rows = []
        for text in texts:
            k = CAPTIONS.index(parse_caption(text).obj.text)
            parts = [self._unit_centred(F.one_hot(idx[k], n).float())
                     for idx, n in zip(self.index, self.classes)]
            rows.append(torch.cat(parts) / math.sqrt(3))
        return torch.stack(rows).to(next(self.model.parameters()).device)


class ClipGuide:
    """A real CLIP (transformers) with gradients through its image tower."""

    def __init__(self, model: str, local_files_only: bool = False):
        from ..retrieval.clip import ClipRetrieval
        self.clip = ClipRetrieval(model, local_files_only=local_files_only)

    def to(self, device) -> "ClipGuide":
        self.clip.model.to(device)
        self.clip.device = torch.device(device)
        return self

    def embed_images(self, images: Tensor) -> Tensor:
        return self.clip.image_features(images)

    def embed_text(self, texts: list[str]) -> Tensor:
        return self.clip.text_features(texts)


def is_toy_guide(name: str) -> bool:
    """Does `--guide-model` name a toy retrieval model (toy-a, toy-b, a .pt file)?"""
    from ..retrieval.model import NAMED
    return name in NAMED or name.endswith(".pt")


def load_guide(cfg: ClipGuidanceConfig, device: torch.device):
    """`toy-a` / `toy-b` / retrieval weights (.pt) / a CLIP folder or Hub id."""
    from ..retrieval.model import load_named
    if is_toy_guide(cfg.model):
        return ToyGuide(load_named(cfg.model)).to(device)
    return ClipGuide(cfg.model, cfg.local_files_only).to(device)


def random_crops(images: Tensor, n: int, min_scale: float,
                 generator: torch.Generator) -> Tensor:
    """(n B, 3, H, W): n random square crops of each image, of side >= min_scale, resized
    back to H x W (bilinear, differentiable)."""
    b = images.shape[0]
    scale = min_scale + (1 - min_scale) * torch.rand(n * b, generator=generator)
    shift = (1 - scale)[:, None] * (2 * torch.rand(n * b, 2, generator=generator) - 1)
    theta = torch.zeros(n * b, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = scale
    theta[:, :, 2] = shift
    theta = theta.to(images)
    src = images.repeat(n, 1, 1, 1)
    grid = F.affine_grid(theta, list(src.shape), align_corners=False)
    return F.grid_sample(src, grid, mode="bilinear", padding_mode="border",
                         align_corners=False)


def random_backgrounds(n: int, size: int, cfg: ClipGuidanceConfig,
                       generator: torch.Generator) -> Tensor:
    """(n, size, size, 3) per image: white with probability cfg.white_background, else
    smooth random noise (coarse noise upsampled) with probability cfg.background_noise,
    else a random solid colour."""
    solid = torch.rand(n, 1, 1, 3, generator=generator).expand(n, size, size, 3)
    coarse = torch.rand(n, 3, 4, 4, generator=generator)
    noise = F.interpolate(coarse, (size, size), mode="bicubic", align_corners=False)
    noise = noise.clamp(0, 1).permute(0, 2, 3, 1)
    pick = torch.rand(n, generator=generator) < cfg.background_noise
    white = torch.rand(n, generator=generator) < cfg.white_background
    out = torch.where(pick[:, None, None, None], noise, solid)
    return torch.where(white[:, None, None, None], torch.ones_like(out), out).contiguous()


def similarity_loss(guide, images: Tensor, text: Tensor, cfg: ClipGuidanceConfig,
                    generator: torch.Generator) -> Tensor:
    """-mean cosine over `cfg.crops` augmented crops of renders (B, 3, H, W); text (D,)."""
    crops = random_crops(images, cfg.crops, cfg.crop_scale, generator)
    return -(guide.embed_images(crops) @ text).mean()


def transmittance_loss(opacity: Tensor, cfg: ClipGuidanceConfig, step: int,
                       total: int) -> Tensor:
    """Dream Fields' -min(tau, mean transmittance) with tau annealed; opacity (B, 1, H, W)."""
    frac = min(1.0, step / max(cfg.transmittance_anneal * total, 1.0))
    tau = cfg.transmittance_start + (cfg.transmittance_target - cfg.transmittance_start) * frac
    return -torch.clamp((1 - opacity).mean(), max=tau)



class ImageTextGuidance(Guidance):
    """The baselines' guidance: albedo renders of the paper's cameras on random
    backgrounds, scored by the image-caption guide after random crops; with
    `transmittance` (Dream Fields, a volume) its transmittance loss too."""

    def __init__(self, cfg: RunConfig, guide, device: torch.device,
                 generator: torch.Generator, transmittance: bool):
        self.cfg, self.device, self.generator = cfg, device, generator
        self.guide = guide if guide is not None else load_guide(cfg.clip, device)
        self.text = self.guide.embed_text([cfg.caption])[0]
        self.transmittance = transmittance

    def sample_views(self, step: int) -> Views:
        cfg, n = self.cfg, self.cfg.batch_size
        cams = sample_cameras(n, cfg.cameras, self.generator).to(self.device)
        bg = random_backgrounds(n, cfg.size, cfg.clip, self.generator)
        return Views(cams, cfg.size, Shading.albedo(n, self.device), bg.to(self.device))

    def losses(self, out: dict[str, Tensor], views: Views, step: int
               ) -> tuple[dict[str, Tensor], dict[str, float]]:
        cfg = self.cfg
        terms = {"clip": similarity_loss(self.guide, out["image"], self.text, cfg.clip,
                                         self.generator)}
        weights = {"clip": 1.0}
        if self.transmittance:
            terms["transmittance"] = transmittance_loss(out["opacity"], cfg.clip, step,
                                                        cfg.steps)
            weights["transmittance"] = cfg.clip.transmittance_weight
        return terms, weights
