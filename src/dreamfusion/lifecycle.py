"""A run's life cycle, shared by the CLI and the Python API: start a new run, continue
one that was stopped, refuse what would lose a user's results.

- a new folder (or --overwrite): checked caption, device and prior, then trained;
- the folder holds only the config.json of these very settings: started again;
- the folder holds an unfinished run of these settings: continued from its checkpoint;
- anything else in the way (other settings, a finished run, a run being run by a live
  process): refused with a UserError, nothing touched.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from . import runs
from .config import RunConfig, override
from .errors import UserError

Log = Callable[[str], None]


def start_run(cfg: RunConfig, out: Path | None = None, overwrite: bool = False,
              progress: bool = True, log: Log = print) -> tuple[Path, dict]:
    """Train, export and score a run of cfg in `out` (default: a new folder under runs/
    named from the caption); returns (run folder, metrics)."""
    check_caption(cfg)
    check_device(cfg.device)
    run_dir = out if out is not None else runs.default_run_dir(cfg.caption)
    if out is not None and runs.is_run(run_dir) and not overwrite:
        if never_started(run_dir, cfg):
            overwrite = True  # it holds only the config.json of these very settings
        elif same_unfinished_run(run_dir, cfg):
            return continue_run(run_dir, runs.load_config(run_dir), None, progress, log)
    backend = load_backend(cfg)
    try:
        runs.prepare_run_dir(run_dir, overwrite)
    except runs.RunFolderError as err:
        raise UserError(str(err)) from None
    from .pipeline import generate
    return run_dir, generate(cfg, run_dir, progress=progress, log=log, backend=backend)


def resume_run(run_dir: Path, device: str | None = None, progress: bool = True,
               log: Log = print) -> tuple[Path, dict]:
    """Continue an interrupted run from its last checkpoint with its saved settings
    (the device may change); returns (run folder, metrics)."""
    if not run_dir.is_dir():
        raise UserError(f"{run_dir} is not a folder")
    try:
        cfg = runs.load_config(run_dir)
    except runs.RunFolderError as err:
        cfg = config_from_checkpoint(run_dir, err, log)
    return continue_run(run_dir, cfg, device, progress, log)


def continue_run(run_dir: Path, cfg: RunConfig, device: str | None, progress: bool,
                 log: Log) -> tuple[Path, dict]:
    status = runs.read_status(run_dir) or {}
    if runs.still_running(status):
        raise UserError(f"{run_dir} is being run right now by process {status['pid']}")
    if status.get("status") == "finished":
        raise UserError(f"{run_dir} has already finished all {cfg.steps} steps; "
                        f"`dreamfusion export {run_dir}` redoes its export")
    if device is not None:
        cfg = override(cfg, device=device)
    check_device(cfg.device)
    from .pipeline import generate
    return run_dir, generate(cfg, run_dir, progress=progress, log=log, resume=True,
                             backend=load_backend(cfg))


# -- checks before anything is created -------------------------------------------------
def check_device(name: str | None) -> None:
    if name == "cuda":
        import torch
        if not torch.cuda.is_available():
            raise UserError("device cuda was asked for, but PyTorch sees no CUDA GPU "
                            "(use cpu or auto)")


def check_caption(cfg: RunConfig) -> None:
    """Fail before creating anything if the caption cannot be used with the prior."""
    if not cfg.caption:
        raise UserError('the caption is empty; say what to make, e.g. "a red cube"')
    if uses_toy_world(cfg):
        from .toyworld.captions import CaptionError, parse_caption
        try:
            parse_caption(cfg.caption)
        except CaptionError as err:
            raise UserError(str(err)) from None


def uses_toy_world(cfg: RunConfig) -> bool:
    """Does the run's guidance know only the toy world's captions?"""
    from .guidance.image_text import is_toy_guide
    if cfg.method == "dreamfusion":
        return cfg.guidance.backend == "toy"
    return is_toy_guide(cfg.clip.model)


def load_backend(cfg: RunConfig):
    """The frozen prior, or the baselines' image-caption guide, built before any folder
    is touched: a bad model is a UserError."""
    from .guidance.image_text import load_guide
    from .model_loading import BackendLoadError
    from .train import build_backend, resolve_device
    try:
        if cfg.method != "dreamfusion":
            return load_guide(cfg.clip, resolve_device(cfg.device))
        return build_backend(cfg, resolve_device(cfg.device))
    except (BackendLoadError, FileNotFoundError) as err:
        raise UserError(str(err)) from None


# -- what a folder holds ----------------------------------------------------------------
def never_started(run_dir: Path, cfg: RunConfig) -> bool:
    """True if run_dir holds these settings (device aside) and nothing else of a run:
    it was stopped before its first checkpoint, so starting again loses nothing."""
    if any((run_dir / name).exists() for name in (runs.CHECKPOINT, runs.PREVIOUS,
                                                  runs.METRICS)):
        return False
    try:
        saved = runs.load_config(run_dir)
    except runs.RunFolderError:
        return False
    return override(cfg, device=saved.device) == saved


def same_unfinished_run(run_dir: Path, cfg: RunConfig) -> bool:
    """True if run_dir holds an unfinished run of exactly these settings (device aside)."""
    try:
        saved = runs.load_config(run_dir)
    except runs.RunFolderError:
        return False
    status = runs.read_status(run_dir) or {}
    if status.get("status") not in ("running", "interrupted"):
        return False
    if override(cfg, device=saved.device) != saved:
        raise UserError(f"{run_dir} holds an unfinished run with other settings; continue it "
                        f"with --resume {run_dir}, or pass --overwrite to replace it")
    return True


def config_from_checkpoint(run_dir: Path, config_error: Exception, log: Log) -> RunConfig:
    """The settings saved inside the checkpoint, when config.json is lost or damaged."""
    from .config_check import ConfigError, from_dict, validate
    try:
        state = runs.load_checkpoint(run_dir, warn=log)
        cfg = validate(from_dict(RunConfig, state["config"]))
    except (runs.RunFolderError, ConfigError, KeyError):
        raise UserError(str(config_error)) from None
    log(f"{config_error}; using the settings saved in the checkpoint")
    runs.save_config(run_dir, cfg)
    return cfg
