"""generate = train + export + metrics, writing one run folder."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable


from . import runs
from .config import RunConfig
from .export import export_run
from .field import GridField
from .mesh import EmptyFieldError
from .train import resolve_device, train

USER_FACING_ERRORS = (EmptyFieldError, runs.RunFolderError)
"""Failures whose message is meant for the user (printed without a traceback)."""


def ground_truth_metrics(cfg: RunConfig, mesh) -> dict:
    """Scores against the toy world's exact object, or {} for captions outside it."""
    from .evaluate import score_mesh
    from .toyworld.captions import CaptionError, parse_caption
    try:
        caption = parse_caption(cfg.caption)
    except CaptionError:
        return {}
    return score_mesh(mesh, caption)


def export_and_score(cfg: RunConfig, field: GridField, run_dir: Path,
                     log: Callable[[str], None]) -> dict:
    start = time.perf_counter()
    mesh, info = export_run(field, cfg.export, run_dir)
    info["export_seconds"] = round(time.perf_counter() - start, 2)
    info["faces"] = int(len(mesh.faces))
    info["ground_truth"] = ground_truth_metrics(cfg, mesh)
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
             log: Callable[[str], None] = print) -> dict:
    """Train, export and score; returns the metrics written to metrics.json."""
    start = time.perf_counter()
    runs.save_config(run_dir, cfg)
    trainer = train(cfg, run_dir, progress=progress)
    metrics = {"caption": cfg.caption, "steps": cfg.steps,
               "train_seconds": round(trainer.elapsed, 2),
               "final_loss": trainer.loss_log[-1]["loss"] if trainer.loss_log else None}
    if cfg.export.enabled:
        try:
            metrics.update(export_and_score(cfg, trainer.field, run_dir, log))
        except EmptyFieldError as err:
            metrics["export_error"] = str(err)
            runs.write_json(run_dir / runs.METRICS, metrics)
            raise
    metrics["total_seconds"] = round(time.perf_counter() - start, 2)
    runs.write_json(run_dir / runs.METRICS, metrics)
    log(f"run folder: {run_dir}  ({metrics['total_seconds']:.0f} s)")
    if metrics.get("ground_truth"):
        log(summary_line(cfg, metrics["ground_truth"]))
    return metrics


def load_field(cfg: RunConfig, run_dir: Path) -> GridField:
    state = runs.load_checkpoint(run_dir)
    field = GridField(cfg.field)
    field.load_state_dict(state["field"])
    return field.to(resolve_device(cfg.device))


def reexport(cfg: RunConfig, run_dir: Path, log: Callable[[str], None] = print) -> dict:
    """Redo export and metrics from checkpoint.pt; keeps training numbers in metrics.json."""
    field = load_field(cfg, run_dir)
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
