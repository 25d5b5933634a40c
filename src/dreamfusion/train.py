"""The optimisation loop: each step is a short numbered recipe over small helpers."""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field as _field
from pathlib import Path

import torch
from torch import Tensor, nn
from tqdm import tqdm

from . import media, runs
from .cameras import Cameras, ring_cameras, sample_cameras, sample_front_biased_cameras
from .config import RunConfig, ShadingConfig, to_dict
from .devices import upload
from .field import GridField, LearnedBackground
from .guidance.base import DiffusionBackend
from .guidance.image_text import (load_guide, random_backgrounds, similarity_loss,
                                  transmittance_loss)
from .guidance.sds import score_distillation
from .interrupts import GracefulStop, signal_name
from .optim import FusedAdam
from .prompts import PromptSet
from .render import Shading, render_model, render_rows


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda was asked for, but PyTorch sees no CUDA GPU")
    return torch.device(name)


def build_backend(cfg: RunConfig, device: torch.device, size: int = 0) -> DiffusionBackend:
    """One explicit mapping from backend name to class; `size` = the toy prior's photo
    size when it is not the run's."""
    g = cfg.guidance
    if g.backend == "toy":
        from .guidance.toy import ToyPrior
        return ToyPrior(size or cfg.size, g.bank_size, g.uncond_bank_size, g.prior_seed, device,
                        g.bank_cache)
    if g.backend in ("sd", "if"):
        if g.backend == "sd":
            from .guidance.stable_diffusion import DEFAULT_MODEL
            from .guidance.stable_diffusion import StableDiffusion as Backend
        else:
            from .guidance.deepfloyd_if import DEFAULT_MODEL
            from .guidance.deepfloyd_if import DeepFloydIF as Backend
        return Backend(g.model or DEFAULT_MODEL, device, g.precision, g.local_files_only,
                       g.channels_last, g.compile, g.text_cache, g.vae_precision,
                       g.revision or None)
    raise ValueError(f"unknown backend {g.backend!r}")


def build_model(cfg: RunConfig, generator: torch.Generator | None = None):
    """The 3D model the method optimises: the NeRF field, or CLIP-Mesh's sphere mesh."""
    if cfg.method == "clipmesh":
        from .mesh_model import MeshModel
        return MeshModel(cfg.mesh)
    return GridField(cfg.field, generator)


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


def density_lr_scale(warmup: float, step: int, total: int) -> float:
    """Linear warm-up factor in (0, 1] of the density learning rate at `step`."""
    if warmup <= 0:
        return 1.0
    return min(1.0, (step + 1) / (warmup * total))


def lr_decay(final: float, step: int, total: int) -> float:
    """Geometric decay factor from 1 at step 0 to `final` at the last step."""
    return final ** (step / max(1, total - 1))


def to_device(shading: Shading, device) -> Shading:
    return Shading(upload(shading.ambient, device), upload(shading.diffuse, device),
                   upload(shading.textureless, device), upload(shading.light_dirs, device))


@dataclass
class Trainer:
    """Field + optimiser + frozen prior + prompts for one caption."""

    cfg: RunConfig
    backend: DiffusionBackend | None
    """The frozen guide: the diffusion prior (method dreamfusion), or for the baselines
    the image-caption model (None: loaded from cfg.clip)."""
    device: torch.device
    field: nn.Module = _field(init=False)
    """GridField, or MeshModel for clipmesh."""
    background: LearnedBackground | None = _field(init=False, default=None)
    step: int = 0
    elapsed: float = 0.0
    """Seconds spent optimising, over all sessions of a resumed run."""
    loss_log: list = _field(default_factory=list)
    """Per-step loss dicts since step 0."""
    lr_scale: float = 1.0
    """Learning-rate factor, lowered by each rollback after numerical faults."""
    faults: int = 0
    """Steps skipped because the loss or a gradient was not finite."""
    rollbacks: int = 0
    """Returns to the last good checkpoint after repeated faults."""
    stopped_by: int | None = None
    """Signal number that stopped `train` early, or None."""

    def __post_init__(self):
        cfg = self.cfg
        self.generator = torch.Generator().manual_seed(cfg.seed)
        torch.manual_seed(cfg.seed)
        self.field = build_model(cfg, self.generator).to(self.device)
        groups = self.param_groups()
        # (configured rate, warmed up?) per group, kept out of the optimiser's state
        self.base_rates = [(rate, warmup) for _, rate, warmup in groups]
        # fused: one kernel per group, and it skips a step flagged by `found_inf` on the
        # device (a faulty step costs no host-device sync)
        self.optimizer = FusedAdam([{"params": p, "lr": rate} for p, rate, _ in groups],
                                   betas=(0.9, 0.99), eps=1e-15)
        self.pending: list[dict[str, Tensor]] = []
        """Losses of the steps since the last `settle`, still on the device."""
        self.in_a_row = 0
        """Faulty steps in a row up to the last settled step."""
        if cfg.method == "dreamfusion":
            self.prompts = PromptSet(self.backend, cfg.caption, cfg.guidance.view_prompts,
                                     cfg.guidance.negative_prompt)
            self.backend.release_text_encoder()  # every prompt is embedded now
            self.formation_guide = self.guide_at(cfg.render.formation_size)
        else:
            self.guide = self.backend or load_guide(cfg.clip, self.device)
            self.text = self.guide.embed_text([cfg.caption])[0]

    def param_groups(self) -> list[tuple[list, float, bool]]:
        """(parameters, configured learning rate, warmed up?) per optimiser group; builds
        the learned background if there is one."""
        cfg = self.cfg
        if cfg.method == "clipmesh":
            return [([self.field.offsets], cfg.mesh.lr_offsets, False),
                    ([self.field.colour_logits], cfg.mesh.lr_colours, False)]
        groups = [(list(self.field.density_levels), cfg.optim.lr_density, True),
                  (list(self.field.albedo_levels), cfg.optim.lr_albedo, False)]
        if cfg.render.background == "learned" and cfg.method == "dreamfusion":
            self.background = LearnedBackground().to(self.device)
            groups.append((list(self.background.parameters()), cfg.optim.lr_background, False))
        return groups

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

    def step_guide(self) -> tuple[int, DiffusionBackend, PromptSet]:
        """(render size, backend, prompts) for this step."""
        cfg = self.cfg
        start, end = cfg.render.formation_steps
        if self.formation_guide and start * cfg.steps <= self.step < end * cfg.steps:
            return (cfg.render.formation_size, *self.formation_guide)
        return cfg.size, self.backend, self.prompts

    # -- one step -------------------------------------------------------------------
    def background_for(self, cams: Cameras, size: int) -> Tensor:
        """(B, 3) solid colours or (B, H, W, 3) from the learned background."""
        kind, n = self.cfg.render.background, len(cams)
        if kind == "learned" and self.background is not None:
            return self.background(cams.to(self.device).rays(size)[1])
        if kind == "random":
            return upload(torch.rand(n, 3, generator=self.generator), self.device)
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
        if frac <= 0 or self.step < cfg.guidance.plain_camera_start * cfg.steps:
            return cams, plain
        plain = torch.rand(cfg.batch_size, generator=self.generator) < frac
        photo = sample_front_biased_cameras(cfg.batch_size, self.generator,
                                            dist_range=cfg.cameras.dist_range, fov=cfg.cameras.fov)
        pick = lambda a, b: torch.where(plain, b, a)  # noqa: E731
        return Cameras(pick(cams.el, photo.el), pick(cams.az, photo.az),
                       pick(cams.dist, photo.dist), cams.fov), plain

    def train_step(self) -> dict[str, Tensor]:
        """One step. Returns its losses and `fault` as 0-d tensors on the device, never
        read here: the loop reads them every few steps (`settle`), so a GPU step makes
        no host-device sync."""
        # 1-4. render random views and score them (the method's losses)
        if self.cfg.method == "dreamfusion":
            terms, weights = self.dreamfusion_terms()
        else:
            terms, weights = self.baseline_terms()
        loss = sum(weights[k] * v for k, v in terms.items())
        # 5. update the field, unless the loss or a gradient is not finite: the fused
        #    Adam step reads the device flag and then changes nothing, not even its count
        self.apply_learning_rates()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        fault = ~finite_flag([loss, *(p.grad for p in self.parameters() if p.grad is not None)])
        self.optimizer.found_inf = fault.float()
        self.optimizer.step()
        self.step += 1
        return {"loss": loss.detach(), "fault": fault, **{k: v.detach() for k, v in terms.items()}}

    def settle(self) -> int | None:
        """Read the pending steps' losses (one host sync) into `loss_log` and the fault
        counters. Returns the index of the pending step that made `max_consecutive`
        faults in a row (the loop then rolls back), else None."""
        pending, self.pending = self.pending, []
        if not pending:
            return None
        flat = torch.stack([v.float() for row in pending for v in row.values()]).tolist()
        limit, i = self.cfg.faults.max_consecutive, 0
        for n, row in enumerate(pending):
            values = dict(zip(row, flat[i:i + len(row)]))
            i += len(row)
            values["fault"] = bool(values["fault"])
            self.loss_log.append(values)
            self.faults += values["fault"]
            self.in_a_row = self.in_a_row + 1 if values["fault"] else 0
            if self.in_a_row >= limit:
                return n
        return None

    def dreamfusion_terms(self) -> tuple[dict[str, Tensor], dict[str, float]]:
        cfg, total = self.cfg, self.cfg.steps
        # 1. random cameras and lighting for this step, drawn on the host
        cams, plain = self.sample_step_cameras()
        shading = to_device(sample_shading(cfg.shading, cams, self.step, total, self.generator),
                            self.device)
        size, backend, prompts = self.step_guide()
        texts = prompts.conditions(cams, plain, cfg.guidance)  # from the host's cameras
        cams = cams.to(self.device)
        # 2. render the field (larger while the shape forms, if so configured)
        out = render_model(self.field, cams, size, cfg.render.samples, shading,
                           self.background_for(cams, size), self.generator)
        # 3. score distillation against the caption (view-dependent prompt per camera)
        losses = score_distillation(backend, out["image"], cfg=cfg.guidance, step=self.step,
                                    total_steps=total, generator=self.generator, **texts)
        # 4. regularisers
        terms = {"sds": losses["sds"], "orientation": out["orientation"],
                 "opacity": (out["opacity"] ** 2 + 0.01).sqrt().mean()}
        if cfg.reg.tv > 0:
            terms["tv"] = self.field.tv_loss()
        weights = {"sds": 1.0, "orientation": cfg.reg.orientation,
                   "opacity": cfg.reg.opacity, "tv": cfg.reg.tv}
        return terms, weights

    def baseline_terms(self) -> tuple[dict[str, Tensor], dict[str, float]]:
        """Dream Fields / CLIP-Mesh: albedo renders of the paper's cameras on random
        backgrounds, scored by the image-caption guide after random crops."""
        cfg, n = self.cfg, self.cfg.batch_size
        cams = sample_cameras(n, cfg.cameras, self.generator).to(self.device)
        bg = random_backgrounds(n, cfg.size, cfg.clip, self.generator)
        out = render_model(self.field, cams, cfg.size, cfg.render.samples,
                           Shading.albedo(n, self.device), bg.to(self.device), self.generator)
        terms = {"clip": similarity_loss(self.guide, out["image"], self.text, cfg.clip,
                                         self.generator)}
        weights = {"clip": 1.0}
        if cfg.method == "dreamfields":
            terms["transmittance"] = transmittance_loss(out["opacity"], cfg.clip, self.step,
                                                        cfg.steps)
            weights["transmittance"] = cfg.clip.transmittance_weight
        else:
            terms["laplacian"] = self.field.laplacian_loss()
            weights["laplacian"] = cfg.mesh.laplacian
        return terms, weights

    def parameters(self) -> list[Tensor]:
        return [p for group in self.optimizer.param_groups for p in group["params"]]

    def apply_learning_rates(self) -> None:
        """Configured rates x the fault back-off, density warmed up (groups as built)."""
        warm = density_lr_scale(self.cfg.optim.density_warmup, self.step, self.cfg.steps)
        decay = lr_decay(self.cfg.optim.lr_final, self.step, self.cfg.steps)
        for group, (rate, warmup) in zip(self.optimizer.param_groups, self.base_rates):
            group["lr"] = rate * (warm if warmup else 1.0) * decay * self.lr_scale

    def field_is_finite(self) -> bool:
        return all_finite(p.detach() for p in self.parameters())

    # -- state ----------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Everything needed to continue bit for bit: config, field, optimiser, step,
        random states, fault counters and the loss log so far."""
        state = {"step": self.step, "config": to_dict(self.cfg), "field": self.field.state_dict(),
                 "optimizer": self.optimizer.state_dict(),
                 "rng": {"generator": self.generator.get_state(),
                         "torch": torch.get_rng_state()},
                 "lr_scale": self.lr_scale, "faults": self.faults,
                 "rollbacks": self.rollbacks, "elapsed": self.elapsed,
                 "loss_log": list(self.loss_log)}
        if torch.cuda.is_available():
            state["rng"]["cuda"] = torch.cuda.get_rng_state_all()
        if self.background is not None:
            state["background"] = self.background.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        self.step = int(state["step"])
        self.field.load_state_dict(state["field"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.background is not None and "background" in state:
            self.background.load_state_dict(state["background"])
        rng = state.get("rng", {})
        if "generator" in rng:
            self.generator.set_state(rng["generator"])
        if "torch" in rng:
            torch.set_rng_state(rng["torch"])
        if "cuda" in rng and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])
        self.lr_scale = float(state.get("lr_scale", 1.0))
        self.faults = int(state.get("faults", 0))
        self.rollbacks = int(state.get("rollbacks", 0))
        self.elapsed = float(state.get("elapsed", 0.0))
        self.loss_log = list(state.get("loss_log", []))


def finite_flag(tensors) -> Tensor:
    """0-d bool tensor: every value of every tensor is finite (no host read).

    A sum is NaN or inf exactly when a term is (or when finite terms overflow float32,
    past 3e38, a step worth skipping too), and costs a twentieth of isfinite().all()."""
    return torch.stack([t.sum() for t in tensors]).sum().isfinite()


def all_finite(tensors) -> bool:
    tensors = list(tensors)
    return bool(finite_flag(tensors)) if tensors else True


def preview(field, size: int, samples: int) -> Tensor:
    """(12, 3, H, W): albedo, lit and textureless rows of 4 views around the object."""
    return render_rows(field, ring_cameras(4, el=20.0).to(field.device), size, samples)


class TrainingDiverged(RuntimeError):
    """Numerical faults kept coming back after every allowed rollback."""


def rollback(trainer: Trainer, run_dir: Path, log: Callable[[str], None],
             fault_step: int) -> None:
    """Back to the last good checkpoint with a lower learning rate (counters kept);
    `fault_step`: the step that made the faults in a row too many."""
    cfg = trainer.cfg.faults
    if trainer.rollbacks >= cfg.max_rollbacks:
        raise TrainingDiverged(
            f"the loss or its gradient was not finite for {cfg.max_consecutive} steps in a "
            f"row at step {fault_step}, after {trainer.rollbacks} rollback(s); the last "
            f"good checkpoint is kept in {run_dir} (try a lower learning rate)")
    faults, rollbacks, lr_scale = trainer.faults, trainer.rollbacks, trainer.lr_scale
    trainer.load_state_dict(runs.load_checkpoint(run_dir, warn=log))
    trainer.faults, trainer.rollbacks = faults, rollbacks + 1
    trainer.pending, trainer.in_a_row = [], 0
    trainer.lr_scale = min(lr_scale, trainer.lr_scale) * cfg.lr_factor
    log(f"{cfg.max_consecutive} non-finite steps in a row: rolled back to step "
        f"{trainer.step}, learning rates x{trainer.lr_scale:g}")


def read_back(trainer: Trainer, run_dir: Path, log: Callable[[str], None]) -> bool:
    """Settle the pending steps' losses; roll back if they made too many faults in a
    row (returns True then)."""
    first = trainer.step - len(trainer.pending)
    bad = trainer.settle()
    if bad is None:
        return False
    rollback(trainer, run_dir, log, first + bad + 1)
    return True


def save_progress(trainer: Trainer, run_dir: Path) -> None:
    """Checkpoint + status.json; a field that is no longer finite is never saved."""
    if not trainer.field_is_finite():
        raise TrainingDiverged(f"the field holds non-finite values at step {trainer.step}; "
                               f"the last good checkpoint is kept in {run_dir}")
    runs.save_checkpoint(run_dir, trainer.state_dict())
    runs.write_status(run_dir, "running", trainer.step, trainer.cfg.steps)


def train(cfg: RunConfig, run_dir: Path, backend: DiffusionBackend | None = None,
          progress: bool = True, state: dict | None = None,
          log: Callable[[str], None] = print) -> Trainer:
    """Optimise the field for cfg.caption from scratch or from a checkpoint `state`.

    Writes previews, status.json and checkpoint.pt (every cfg.checkpoint_every steps and
    at the end) in run_dir. A SIGINT/SIGTERM ends the loop after the current step with a
    checkpoint; `trainer.stopped_by` is then the signal number."""
    device = resolve_device(cfg.device)
    if backend is None and cfg.method == "dreamfusion":
        backend = build_backend(cfg, device)
    trainer = Trainer(cfg, backend, device)
    if state is not None:
        trainer.load_state_dict(state)
    else:
        save_progress(trainer, run_dir)  # step 0: something to roll back to
    bar = tqdm(total=cfg.steps, initial=trainer.step, disable=not progress, unit="step",
               dynamic_ncols=True, desc="optimising")
    start, elapsed0 = time.perf_counter(), trainer.elapsed
    with GracefulStop(lambda sig: log(f"\n{signal_name(sig)}: finishing step, saving")) as stop:
        while trainer.step < cfg.steps and stop.requested is None:
            trainer.pending.append(trainer.train_step())
            trainer.elapsed = elapsed0 + time.perf_counter() - start
            bar.update(1)
            step = trainer.step
            preview_due = cfg.preview_every and (step % cfg.preview_every == 0
                                                 or step == cfg.steps)
            checkpoint_due = cfg.checkpoint_every and step % cfg.checkpoint_every == 0 \
                and step < cfg.steps
            if not (preview_due or checkpoint_due or step % cfg.faults.check_every == 0
                    or step == cfg.steps or stop.requested is not None):
                continue
            if read_back(trainer, run_dir, log):  # one host sync
                elapsed0, start = trainer.elapsed, time.perf_counter()
                bar.reset(total=cfg.steps)
                bar.update(trainer.step)
                continue
            bar.set_postfix(loss=f"{trainer.loss_log[-1]['loss']:.3g}")
            runs.write_status(run_dir, "running", step, cfg.steps)  # progress for watchers
            if preview_due:
                grid = media.image_grid(preview(trainer.field, 64, 64).cpu(), nrow=4)
                media.write_png(grid, run_dir / "previews" / f"step_{step:05d}.png")
            if checkpoint_due:
                save_progress(trainer, run_dir)
        bar.close()
        trainer.stopped_by = stop.requested
        read_back(trainer, run_dir, log)  # steps since the last read (after a signal)
        save_progress(trainer, run_dir)
    return trainer
