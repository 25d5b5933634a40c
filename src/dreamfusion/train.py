"""The optimisation loop: each step is a short numbered recipe over small helpers."""
from __future__ import annotations

import time
from dataclasses import dataclass
from dataclasses import field as _field
from pathlib import Path

import torch
from torch import Tensor
from tqdm import tqdm

from .cameras import Cameras, ring_cameras, sample_cameras, sample_front_biased_cameras
from .config import RunConfig, ShadingConfig
from .field import GridField, LearnedBackground
from .guidance.base import DiffusionBackend
from .guidance.sds import score_distillation
from .prompts import PromptSet
from .render import Shading, render, render_rows
from . import media, runs


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda was asked for, but PyTorch sees no CUDA GPU")
    return torch.device(name)


def build_backend(cfg: RunConfig, device: torch.device) -> DiffusionBackend:
    """One explicit mapping from backend name to class."""
    g = cfg.guidance
    if g.backend == "toy":
        from .guidance.toy import ToyPrior
        return ToyPrior(cfg.size, g.bank_size, g.uncond_bank_size, g.prior_seed, device)
    raise ValueError(f"unknown backend {g.backend!r}")


def sample_shading(cfg: ShadingConfig, cams: Cameras, step: int, total: int,
                   generator: torch.Generator) -> Shading:
    """The paper's schedule: albedo only first, then random lambertian / textureless."""
    n = len(cams)
    if step < cfg.albedo_only_fraction * total:
        return Shading.albedo(n)
    shaded = torch.rand(n, generator=generator) < cfg.shaded_probability
    textureless = shaded & (torch.rand(n, generator=generator) < cfg.textureless_probability)
    pos = cams.positions()
    light = pos + cfg.light_jitter * torch.randn(pos.shape, generator=generator)
    light = light / light.norm(dim=-1, keepdim=True)
    return Shading(
        ambient=torch.where(shaded, cfg.ambient, 1.0),
        diffuse=torch.where(shaded, cfg.diffuse, 0.0),
        textureless=textureless,
        light_dirs=light,
    )


def density_lr_scale(warmup: float, step: int, total: int) -> float:
    """Linear warm-up factor in (0, 1] of the density learning rate at `step`."""
    if warmup <= 0:
        return 1.0
    return min(1.0, (step + 1) / (warmup * total))


def to_device(shading: Shading, device) -> Shading:
    return Shading(shading.ambient.to(device), shading.diffuse.to(device),
                   shading.textureless.to(device), shading.light_dirs.to(device))


@dataclass
class Trainer:
    """Field + optimiser + frozen prior + prompts for one caption."""

    cfg: RunConfig
    backend: DiffusionBackend
    device: torch.device
    field: GridField = _field(init=False)
    background: LearnedBackground | None = _field(init=False, default=None)
    step: int = 0
    elapsed: float = 0.0
    """Seconds spent in `train` (set at the end)."""
    loss_log: list = _field(default_factory=list)
    """Per-step loss dicts of the last `train` call."""

    def __post_init__(self):
        cfg = self.cfg
        self.generator = torch.Generator().manual_seed(cfg.seed)
        torch.manual_seed(cfg.seed)
        self.field = GridField(cfg.field, self.generator).to(self.device)
        groups = [
            {"params": list(self.field.density_levels), "lr": cfg.optim.lr_density},
            {"params": list(self.field.albedo_levels), "lr": cfg.optim.lr_albedo},
        ]
        if cfg.render.background == "learned":
            self.background = LearnedBackground().to(self.device)
            groups.append({"params": self.background.parameters(),
                           "lr": cfg.optim.lr_background})
        self.optimizer = torch.optim.Adam(groups, betas=(0.9, 0.99), eps=1e-15)
        self.prompts = PromptSet(self.backend, cfg.caption, cfg.guidance.view_prompts,
                                 cfg.guidance.negative_prompt)

    # -- one step -------------------------------------------------------------------
    def background_for(self, cams: Cameras, size: int) -> Tensor:
        """(B, 3) solid colours or (B, H, W, 3) from the learned background."""
        kind, n = self.cfg.render.background, len(cams)
        if kind == "learned" and self.background is not None:
            return self.background(cams.to(self.device).rays(size)[1])
        if kind == "random":
            return torch.rand(n, 3, generator=self.generator).to(self.device)
        value = 0.0 if kind == "black" else 1.0
        return torch.full((n, 3), value, device=self.device)

    def sample_step_cameras(self) -> tuple[Cameras, Tensor]:
        """The paper's cameras, with a fraction replaced by front-biased photo-like ones.

        Returns the cameras and a (B,) bool mask of those meant for the plain caption.
        """
        cfg = self.cfg
        cams = sample_cameras(cfg.batch_size, cfg.cameras, self.generator)
        frac = cfg.guidance.plain_camera_fraction
        plain = torch.zeros(cfg.batch_size, dtype=torch.bool)
        if frac <= 0:
            return cams, plain
        plain = torch.rand(cfg.batch_size, generator=self.generator) < frac
        photo = sample_front_biased_cameras(cfg.batch_size, self.generator,
                                            dist_range=cfg.cameras.dist_range, fov=cfg.cameras.fov)
        pick = lambda a, b: torch.where(plain, b, a)  # noqa: E731
        return Cameras(pick(cams.el, photo.el), pick(cams.az, photo.az),
                       pick(cams.dist, photo.dist), cams.fov), plain

    def train_step(self) -> dict[str, float]:
        cfg, total = self.cfg, self.cfg.steps
        # 1. random cameras and lighting for this step
        cams, plain = self.sample_step_cameras()
        shading = to_device(sample_shading(cfg.shading, cams, self.step, total, self.generator),
                            self.device)
        cams = cams.to(self.device)
        # 2. render the field
        out = render(self.field, cams, cfg.size, cfg.render.samples, shading,
                     self.background_for(cams, cfg.size), self.generator)
        # 3. score distillation against the caption (view-dependent prompt per camera)
        cond, uncond = self.prompts.for_cameras(cams, plain)
        losses = score_distillation(self.backend, out["image"], cond, uncond, cfg.guidance,
                                    self.step, total, self.generator)
        # 4. regularisers
        terms = {"sds": losses["sds"], "orientation": out["orientation"],
                 "opacity": (out["opacity"] ** 2 + 0.01).sqrt().mean()}
        if cfg.reg.tv > 0:
            terms["tv"] = self.field.tv_loss()
        weights = {"sds": 1.0, "orientation": cfg.reg.orientation,
                   "opacity": cfg.reg.opacity, "tv": cfg.reg.tv}
        loss = sum(weights[k] * v for k, v in terms.items())
        # 5. update the field
        self.optimizer.param_groups[0]["lr"] = cfg.optim.lr_density * density_lr_scale(
            cfg.optim.density_warmup, self.step, total)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.step += 1
        return {"loss": float(loss.detach()), **{k: float(v.detach()) for k, v in terms.items()}}

    # -- state ----------------------------------------------------------------------
    def state_dict(self) -> dict:
        state = {"step": self.step, "field": self.field.state_dict(),
                 "optimizer": self.optimizer.state_dict()}
        if self.background is not None:
            state["background"] = self.background.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        self.step = int(state["step"])
        self.field.load_state_dict(state["field"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.background is not None and "background" in state:
            self.background.load_state_dict(state["background"])


def preview(field: GridField, size: int, samples: int) -> Tensor:
    """(12, 3, H, W): albedo, lit and textureless rows of 4 views around the object."""
    return render_rows(field, ring_cameras(4, el=20.0).to(field.device), size, samples)


def train(cfg: RunConfig, run_dir: Path, backend: DiffusionBackend | None = None,
          progress: bool = True) -> Trainer:
    """Optimise the field for cfg.caption; writes previews and checkpoint.pt in run_dir."""
    device = resolve_device(cfg.device)
    backend = backend or build_backend(cfg, device)
    trainer = Trainer(cfg, backend, device)
    bar = tqdm(total=cfg.steps, disable=not progress, unit="step", dynamic_ncols=True,
               desc="optimising")
    start, log = time.perf_counter(), []
    while trainer.step < cfg.steps:
        losses = trainer.train_step()
        log.append(losses)
        bar.update(1)
        if trainer.step % 10 == 0 or trainer.step == cfg.steps:
            bar.set_postfix(loss=f"{losses['loss']:.3g}")
        if cfg.preview_every and (trainer.step % cfg.preview_every == 0 or trainer.step == cfg.steps):
            grid = media.image_grid(preview(trainer.field, 64, 64).cpu(), nrow=4)
            media.write_png(grid, run_dir / "previews" / f"step_{trainer.step:05d}.png")
    bar.close()
    trainer.elapsed = time.perf_counter() - start
    trainer.loss_log = log
    runs.save_checkpoint(run_dir, trainer.state_dict())
    return trainer
