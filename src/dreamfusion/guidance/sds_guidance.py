"""DreamFusion's guidance: score distillation of shaded renders under a frozen diffusion
prior, with the paper's cameras and shading schedule and view-dependent prompts."""
from __future__ import annotations

import torch
from torch import Tensor

from ..cameras import Cameras, sample_cameras, sample_front_biased_cameras
from ..config import RunConfig, ShadingConfig
from ..devices import upload
from ..prompts import PromptSet
from ..render import Shading
from .backends import build_backend
from .base import DiffusionBackend
from .objective import Guidance, Views
from .sds import score_distillation


def sample_shading(cfg: ShadingConfig, cams: Cameras, step: int, total: int,
                   generator: torch.Generator) -> Shading:
    """The paper's schedule: albedo only first, then random lambertian / textureless."""
    n = len(cams)
    if step < cfg.albedo_only_fraction * total:
        return Shading.albedo(n, brightness=cfg.albedo_brightness)
    shaded = torch.rand(n, generator=generator) < cfg.shaded_probability
    textureless = shaded & (torch.rand(n, generator=generator) < cfg.textureless_probability)
    pos = cams.positions()
    light = pos + cfg.light_jitter * torch.randn(pos.shape, generator=generator)
    light = light / light.norm(dim=-1, keepdim=True)
    return Shading(
        ambient=torch.where(shaded, cfg.ambient, cfg.albedo_brightness),
        diffuse=torch.where(shaded, cfg.diffuse, 0.0),
        textureless=textureless,
        light_dirs=light,
    )


def to_device(shading: Shading, device) -> Shading:
    return Shading(upload(shading.ambient, device), upload(shading.diffuse, device),
                   upload(shading.textureless, device), upload(shading.light_dirs, device))


class SDSGuidance(Guidance):
    """Score distillation against cfg.caption; the orientation and opacity regularisers
    of the paper come with it (they read the same renders)."""

    learned_background = True

    def __init__(self, cfg: RunConfig, backend: DiffusionBackend, device: torch.device,
                 generator: torch.Generator):
        self.cfg, self.backend, self.device, self.generator = cfg, backend, device, generator
        g = cfg.guidance
        self.prompts = PromptSet(backend, cfg.caption, g.view_prompts, g.negative_prompt)
        backend.release_text_encoder()  # every prompt is embedded now
        self.formation_guide = self.guide_at(cfg.render.formation_size)

    def guide_at(self, size: int) -> tuple[DiffusionBackend, PromptSet] | None:
        """(backend, prompts) for renders of `size` during formation, or None when off.
        The toy prior needs photos of that size, so it gets a second one; real priors
        resize any render themselves."""
        if size == 0 or size == self.cfg.size:
            return None
        if self.cfg.guidance.backend != "toy":
            return self.backend, self.prompts
        g = self.cfg.guidance
        backend = build_backend(self.cfg, self.device, size)
        return backend, PromptSet(backend, self.cfg.caption, g.view_prompts, g.negative_prompt)

    def step_guide(self, step: int) -> tuple[int, DiffusionBackend, PromptSet]:
        """(render size, backend, prompts) for this step."""
        cfg = self.cfg
        start, end = cfg.render.formation_steps
        if self.formation_guide and start * cfg.steps <= step < end * cfg.steps:
            return (cfg.render.formation_size, *self.formation_guide)
        return cfg.size, self.backend, self.prompts

    def sample_step_cameras(self, step: int) -> tuple[Cameras, Tensor]:
        """The paper's cameras, with a fraction replaced by front-biased photo-like ones.

        Returns the cameras and a (B,) bool mask of those meant for the plain caption.
        """
        cfg = self.cfg
        cams = sample_cameras(cfg.batch_size, cfg.cameras, self.generator)
        frac = cfg.guidance.plain_camera_fraction
        plain = torch.zeros(cfg.batch_size, dtype=torch.bool)
        if frac <= 0 or step < cfg.guidance.plain_camera_start * cfg.steps:
            return cams, plain
        plain = torch.rand(cfg.batch_size, generator=self.generator) < frac
        photo = sample_front_biased_cameras(cfg.batch_size, self.generator,
                                            dist_range=cfg.cameras.dist_range, fov=cfg.cameras.fov)
        pick = lambda a, b: torch.where(plain, b, a)  # noqa: E731
        return Cameras(pick(cams.el, photo.el), pick(cams.az, photo.az),
                       pick(cams.dist, photo.dist), cams.fov), plain

    def sample_views(self, step: int) -> Views:
        cfg = self.cfg
        # random cameras and lighting, drawn on the host; the prompt of each camera
        cams, plain = self.sample_step_cameras(step)
        shading = to_device(sample_shading(cfg.shading, cams, step, cfg.steps, self.generator),
                            self.device)
        size, backend, prompts = self.step_guide(step)
        texts = prompts.conditions(cams, plain, cfg.guidance)
        return Views(cams.to(self.device), size, shading,
                     context={"backend": backend, "texts": texts})

    def losses(self, out: dict[str, Tensor], views: Views, step: int
               ) -> tuple[dict[str, Tensor], dict[str, float]]:
        cfg = self.cfg
        sds = score_distillation(views.context["backend"], out["image"], cfg=cfg.guidance,
                                 step=step, total_steps=cfg.steps, generator=self.generator,
                                 **views.context["texts"])
        terms = {"sds": sds["sds"], "orientation": out["orientation"],
                 "opacity": (out["opacity"] ** 2 + 0.01).sqrt().mean()}
        weights = {"sds": 1.0, "orientation": cfg.reg.orientation, "opacity": cfg.reg.opacity}
        return terms, weights
