"""The optimisation loop: each step is a short numbered recipe over small helpers."""
from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from dataclasses import dataclass
from dataclasses import field as _field
from pathlib import Path

import torch
from torch import Tensor, nn
from tqdm import tqdm

from . import media, runs
from .cameras import Cameras, ring_cameras
from .config import RunConfig, to_dict
from .devices import upload
from .field import GridField, LearnedBackground
from .guidance.backends import build_backend
from .guidance.base import DiffusionBackend
from .guidance.image_text import ImageTextGuidance
from .guidance.objective import Guidance
from .guidance.sds_guidance import SDSGuidance, sample_shading, to_device
from .interrupts import GracefulStop, signal_name
from .mesh_model import MeshModel
from .optim import FusedAdam
from .render import render_model, render_rows

__all__ = ["Trainer", "Stage", "build_backend", "build_model", "build_guidance", "sample_shading",
           "to_device", "train", "resolve_device"]


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda was asked for, but PyTorch sees no CUDA GPU")
    return torch.device(name)


def _grid_field(cfg: RunConfig, generator: torch.Generator | None) -> GridField:
    return GridField(cfg.field, generator)


def _sphere_mesh(cfg: RunConfig, generator: torch.Generator | None) -> MeshModel:
    return MeshModel(cfg.mesh)


METHODS = {
    # method: (the 3D model, the guidance that scores its renders), each built from
    # (cfg, ...): a method is a composition, not a branch of the trainer
    "dreamfusion": (_grid_field, SDSGuidance),
    "dreamfields": (_grid_field, partial(ImageTextGuidance, transmittance=True)),
    "clipmesh": (_sphere_mesh, partial(ImageTextGuidance, transmittance=False)),
}


def build_model(cfg: RunConfig, generator: torch.Generator | None = None):
    """The 3D model the method optimises: the NeRF field, or CLIP-Mesh's sphere mesh."""
    return METHODS[cfg.method][0](cfg, generator)


def build_guidance(cfg: RunConfig, guide, device: torch.device,
                   generator: torch.Generator) -> Guidance:
    """The method's guidance; `guide` is its frozen model (the diffusion prior, or the
    image-caption model: None loads cfg.clip's)."""
    return METHODS[cfg.method][1](cfg, guide, device, generator)


def density_lr_scale(warmup: float, step: int, total: int) -> float:
    """Linear warm-up factor in (0, 1] of the density learning rate at `step`."""
    if warmup <= 0:
        return 1.0
    return min(1.0, (step + 1) / (warmup * total))


def lr_decay(final: float, step: int, total: int) -> float:
    """Geometric decay factor from 1 at step 0 to `final` at the last step."""
    return final ** (step / max(1, total - 1))


@dataclass(frozen=True)
class Stage:
    """Which stage of a run a trainer is, for its checkpoints and status.json."""

    name: str = "field"
    """`field` (stage 1, the method's own model) or `refine` (stage 2, refine.py)."""
    offset: int = 0
    """Steps of the stages before (status.json counts the steps of the whole run)."""
    total: int = 0
    """Steps of the whole run (0: this stage's)."""
    run_config: RunConfig | None = None
    """The run's config, saved in checkpoints (the trainer's is the stage's view of it)."""
    elapsed_before: float = 0.0
    """Seconds the stages before took (the trainer's `elapsed` goes on from there)."""

    def progress(self, step: int, steps: int) -> tuple[int, int]:
        """(step, steps) of the whole run."""
        return self.offset + step, self.total or steps


@dataclass
class Trainer:
    """One 3D model + one Guidance (train.METHODS) + the optimiser, for one caption."""

    cfg: RunConfig
    backend: DiffusionBackend | None
    """The guidance's frozen model: the diffusion prior (method dreamfusion), or for the
    baselines the image-caption model (None: loaded from cfg.clip)."""
    device: torch.device
    model: nn.Module | None = None
    """The 3D model to optimise, when not the method's own (the refine stage's mesh)."""
    stage: Stage = Stage()
    field: nn.Module = _field(init=False)
    """GridField, or MeshModel for clipmesh, or `model`."""
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
        model = self.model if self.model is not None else build_model(cfg, self.generator)
        self.field = model.to(self.device)
        self.guidance = build_guidance(cfg, self.backend, self.device, self.generator)
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

    def param_groups(self) -> list[tuple[list, float, bool]]:
        """(parameters, configured learning rate, warmed up?) per optimiser group; builds
        the learned background if there is one."""
        cfg = self.cfg
        groups = self.field.param_groups(cfg)
        if cfg.render.background == "learned" and self.guidance.learned_background:
            self.background = LearnedBackground().to(self.device)
            groups.append((list(self.background.parameters()), cfg.optim.lr_background, False))
        return groups

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

    def train_step(self) -> dict[str, Tensor]:
        """One step. Returns its losses and `fault` as 0-d tensors on the device, never
        read here: the loop reads them every few steps (`settle`), so a GPU step makes
        no host-device sync."""
        # 1. the guidance draws this step's cameras, lighting and prompts
        views = self.guidance.sample_views(self.step)
        # 2. render the model
        background = views.background
        if background is None:
            background = self.background_for(views.cams, views.size)
        out = render_model(self.field, views.cams, views.size, self.cfg.render.samples,
                           views.shading, background, self.generator)
        # 3-4. the guidance's losses of the renders, and the model's own regularisers
        terms, weights = self.guidance.losses(out, views, self.step)
        model_terms, model_weights = self.field.regularisers(self.cfg)
        terms, weights = {**terms, **model_terms}, {**weights, **model_weights}
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
        state = {"step": self.step, "stage": self.stage.name,
                 "config": to_dict(self.stage.run_config or self.cfg),
                 "field": self.field.state_dict(),
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
    runs.write_status(run_dir, "running", *trainer.stage.progress(trainer.step, trainer.cfg.steps))


def train(cfg: RunConfig, run_dir: Path, backend: DiffusionBackend | None = None,
          progress: bool = True, state: dict | None = None,
          log: Callable[[str], None] = print, model: nn.Module | None = None,
          stage: Stage = Stage()) -> Trainer:
    """Optimise the field (or `model`, in `stage`) for cfg.caption from scratch or from a
    checkpoint `state`.

    Writes previews, status.json and checkpoint.pt (every cfg.checkpoint_every steps and
    at the end) in run_dir. A SIGINT/SIGTERM ends the loop after the current step with a
    checkpoint; `trainer.stopped_by` is then the signal number."""
    device = resolve_device(cfg.device)
    if backend is None and cfg.method == "dreamfusion":
        backend = build_backend(cfg, device)
    trainer = Trainer(cfg, backend, device, model, stage)
    if state is not None:
        trainer.load_state_dict(state)
    else:
        trainer.elapsed = stage.elapsed_before
        save_progress(trainer, run_dir)  # step 0: something to roll back to
    bar = tqdm(total=cfg.steps, initial=trainer.step, disable=not progress, unit="step",
               dynamic_ncols=True, desc="optimising" if stage.name == "field" else stage.name)
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
            if preview_due:
                grid = media.image_grid(preview(trainer.field, 64, 64).cpu(), nrow=4)
                media.write_png(grid, run_dir / "previews" / f"step_{stage.offset + step:05d}.png")
            # progress for watchers, written after the step's checkpoint: a status that
            # says step N promises the checkpoint of step N when one was due
            if checkpoint_due:
                save_progress(trainer, run_dir)
            else:
                runs.write_status(run_dir, "running", *stage.progress(step, cfg.steps))
        bar.close()
        trainer.stopped_by = stop.requested
        read_back(trainer, run_dir, log)  # steps since the last read (after a signal)
        save_progress(trainer, run_dir)
    return trainer
