"""generate = train + export + metrics, writing one run folder."""
from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from . import runs
from .config import RunConfig
from .export import export_run
from .guidance.base import DiffusionBackend
from .interrupts import RunInterrupted, signal_name
from .mesh import EmptyFieldError, NonFiniteFieldError
from .mesh_model import SurfaceMesh
from .refine import run_refine
from .train import TrainingDiverged, all_finite, build_model, resolve_device, train

USER_FACING_ERRORS = (EmptyFieldError, NonFiniteFieldError, runs.RunFolderError,
                      TrainingDiverged)
"""Failures whose message is meant for the user (printed without a traceback)."""


def ground_truth_metrics(cfg: RunConfig, mesh, turn_deg: float = 0.0) -> dict:
    """Scores against the toy world's exact object, or {} for captions outside it;
    turn_deg: the export's turn snap, undone for iou_unsnapped."""
    from .evaluate import score_mesh
    from .toyworld.captions import CaptionError, parse_caption
    try:
        caption = parse_caption(cfg.caption)
    except CaptionError:
        return {}
    return score_mesh(mesh, caption, turn_deg=turn_deg)


def export_and_score(cfg: RunConfig, field, run_dir: Path,
                     log: Callable[[str], None]) -> dict:
    if not all_finite(p.detach() for p in field.parameters()):
        raise NonFiniteFieldError()
    start = time.perf_counter()
    mesh, info = export_run(field, cfg.export, run_dir)
    info["export_seconds"] = round(time.perf_counter() - start, 2)
    info["faces"] = int(len(mesh.faces))
    info["ground_truth"] = ground_truth_metrics(cfg, mesh, info.get("turn_snapped_deg", 0.0))
    log(f"exported {len(mesh.faces)} faces in {info['export_seconds']:.1f} s")
    return info


def summary_line(cfg: RunConfig, gt: dict) -> str:
    """One line of ground-truth scores for the toy world."""
    from .toyworld.captions import parse_caption
    shape = parse_caption(cfg.caption).obj.shape
    text = (f"volume IoU {gt['iou']:.3f} against the true {shape}, best-matching shape "
            f"{gt['retrieved_shape']}, colour {gt['color_name']}")
    if "front_color_name" in gt:
        text += f", front {gt['front_color_name']}, back {gt['back_color_name']}"
    return text


def generate(cfg: RunConfig, run_dir: Path, progress: bool = True,
             log: Callable[[str], None] = print, resume: bool = False,
             backend: DiffusionBackend | None = None) -> dict:
    """Train (from scratch, or from the run's checkpoint if `resume`), export and score;
    returns the metrics written to metrics.json. A signal stops it with a checkpoint,
    the export of the field so far, and RunInterrupted."""
    start = time.perf_counter()
    state = None
    if resume:
        state = runs.load_checkpoint(run_dir, warn=log)
        where = (f"step {state['step']} of the refine stage's {cfg.refine.steps}"
                 if state.get("stage") == "refine" else f"step {state['step']} of {cfg.steps}")
        log(f"resuming {run_dir} from {where}")
    else:
        runs.save_config(run_dir, cfg)
    try:
        trainer = run_stages(cfg, run_dir, backend, progress, state, log)
    except TrainingDiverged:
        status = runs.read_status(run_dir) or {}
        runs.write_status(run_dir, "failed", int(status.get("step", 0)), total_steps(cfg))
        raise
    step, steps = trainer.stage.progress(trainer.step, trainer.cfg.steps)
    metrics = {"caption": cfg.caption, "steps": steps, "step": step,
               "train_seconds": round(trainer.elapsed, 2),
               "final_loss": trainer.loss_log[-1]["loss"] if trainer.loss_log else None,
               "faulty_steps": trainer.faults, "rollbacks": trainer.rollbacks}
    if trainer.stopped_by is not None:
        return stop_interrupted(cfg, trainer, run_dir, metrics, log)
    empty = try_export(cfg, trainer.field, run_dir, metrics, log)
    metrics["total_seconds"] = round(time.perf_counter() - start, 2)
    finish(run_dir, cfg, metrics, "finished")
    if empty is not None:
        raise empty
    log(f"run folder: {run_dir}  ({metrics['total_seconds']:.0f} s)")
    if metrics.get("ground_truth"):
        log(summary_line(cfg, metrics["ground_truth"]))
    return metrics


def total_steps(cfg: RunConfig) -> int:
    """Steps of the whole run: the field's, and the refine stage's when it runs."""
    return cfg.steps + (cfg.refine.steps if cfg.refine.enabled else 0)


def run_stages(cfg: RunConfig, run_dir: Path, backend: DiffusionBackend | None,
               progress: bool, state: dict | None, log: Callable[[str], None]):
    """Stage 1 (the field), then the refine stage if it is on; a checkpoint `state` of
    the refine stage skips stage 1. Returns the trainer of the last stage that ran."""
    if state is None or state.get("stage", "field") == "field":
        trainer = train(cfg, run_dir, backend=backend, progress=progress, state=state, log=log)
        if trainer.stopped_by is not None or not cfg.refine.enabled:
            return trainer
        return run_refine(cfg, run_dir, trainer, backend, progress, None, log)
    return run_refine(cfg, run_dir, None, backend, progress, state, log)


def try_export(cfg: RunConfig, field, run_dir: Path, metrics: dict,
               log: Callable[[str], None]) -> EmptyFieldError | None:
    """Export (if enabled) into metrics; an empty field is recorded and returned."""
    if not cfg.export.enabled:
        return None
    try:
        metrics.update(export_and_score(cfg, field, run_dir, log))
    except EmptyFieldError as err:
        metrics["export_error"] = str(err)
        return err
    return None


def finish(run_dir: Path, cfg: RunConfig, metrics: dict, status: str) -> None:
    metrics["status"] = status
    runs.write_json(run_dir / runs.METRICS, metrics)
    runs.write_status(run_dir, status, metrics["step"], metrics["steps"])


def stop_interrupted(cfg: RunConfig, trainer, run_dir: Path, metrics: dict,
                     log: Callable[[str], None]):
    """Export what exists so far, record the stop, raise RunInterrupted."""
    try_export(cfg, trainer.field, run_dir, metrics, log)
    finish(run_dir, cfg, metrics, "interrupted")
    raise RunInterrupted(
        f"stopped by {signal_name(trainer.stopped_by)} at step {metrics['step']} of "
        f"{metrics['steps']}; "
        f"the checkpoint{' and the export of the field so far' if cfg.export.enabled else ''}"
        f" are in {run_dir}. Continue with: dreamfusion generate --resume {run_dir}",
        trainer.stopped_by)


def load_field(cfg: RunConfig, run_dir: Path, log: Callable[[str], None] = print):
    """The run's 3D model (GridField, MeshModel, or the refine stage's SurfaceMesh) from
    its checkpoint."""
    state = runs.load_checkpoint(run_dir, warn=log)
    if state.get("stage") == "refine":
        field = SurfaceMesh.from_state(state["field"], cfg.refine)
    else:
        field = build_model(cfg)
        field.load_state_dict(state["field"])
    return field.to(resolve_device(cfg.device))


def reexport(cfg: RunConfig, run_dir: Path, log: Callable[[str], None] = print) -> dict:
    """Redo export and metrics from checkpoint.pt; keeps training numbers in metrics.json."""
    field = load_field(cfg, run_dir, log)
    path = run_dir / runs.METRICS
    metrics = {}
    if path.exists():
        import json
        try:
            metrics = json.loads(path.read_text())
        except ValueError:
            metrics = {}
    metrics.update(export_and_score(cfg, field, run_dir, log))
    runs.write_json(path, metrics)
    if metrics.get("ground_truth"):
        log(summary_line(cfg, metrics["ground_truth"]))
    return metrics
