"""The run folder: one folder per run, atomic writes, never silently overwritten.

Layout: config.json, checkpoint.pt, previews/step_XXXXX.png, metrics.json, and the
export (mesh.glb/.obj/.ply, turntable.mp4 or .gif, views.png).
"""
from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import torch

from .config import RunConfig, from_dict, to_dict

CONFIG, CHECKPOINT, METRICS = "config.json", "checkpoint.pt", "metrics.json"


class RunFolderError(RuntimeError):
    """A run folder cannot be used as asked (exists, missing, unreadable)."""


def slugify(text: str, limit: int = 48) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:limit].rstrip("-") or "run"


def default_run_dir(caption: str, root: Path = Path("runs")) -> Path:
    """runs/<caption-slug>, or -2, -3, ... so a new run never lands on an earlier one."""
    base = root / slugify(caption)
    candidate, n = base, 1
    while candidate.exists():
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    return candidate


def is_run(path: Path) -> bool:
    return (path / CONFIG).exists() or (path / CHECKPOINT).exists()


def prepare_run_dir(path: Path, overwrite: bool) -> Path:
    """Create the folder; refuse one that holds a run unless `overwrite`."""
    if path.exists() and not path.is_dir():
        raise RunFolderError(f"output path {path} exists and is not a folder")
    if path.exists() and is_run(path) and not overwrite:
        raise RunFolderError(
            f"{path} already holds a run; choose another --out, or pass --overwrite to replace it")
    path.mkdir(parents=True, exist_ok=True)
    return path


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file in the same folder, then rename over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, data: Any) -> None:
    atomic_write_bytes(path, (json.dumps(data, indent=2) + "\n").encode())


def save_config(run_dir: Path, cfg: RunConfig) -> None:
    write_json(run_dir / CONFIG, to_dict(cfg))


def load_config(run_dir: Path) -> RunConfig:
    path = run_dir / CONFIG
    if not path.exists():
        raise RunFolderError(f"{run_dir} is not a run folder (no {CONFIG})")
    try:
        return from_dict(RunConfig, json.loads(path.read_text()))
    except (ValueError, TypeError) as err:
        raise RunFolderError(f"{path} is not a valid run config: {err}") from err


def save_checkpoint(run_dir: Path, state: dict[str, Any]) -> None:
    """Atomic torch.save of the trainable state (never the frozen prior)."""
    path = run_dir / CHECKPOINT
    fd, tmp = tempfile.mkstemp(dir=run_dir, prefix=f".{CHECKPOINT}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_checkpoint(run_dir: Path) -> dict[str, Any]:
    path = run_dir / CHECKPOINT
    if not path.exists():
        raise RunFolderError(f"{run_dir} has no {CHECKPOINT}; was the run finished?")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # corrupted or truncated file
        raise RunFolderError(f"{path} cannot be read ({type(err).__name__}); "
                             "the checkpoint is damaged") from err
