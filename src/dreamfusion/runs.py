"""The run folder: one folder per run, atomic writes, never silently overwritten.

Layout: config.json, status.json, checkpoint.pt (+ checkpoint.prev.pt, the one before),
previews/step_XXXXX.png, metrics.json, and the export (mesh.glb/.obj/.ply, turntable.mp4
or .gif, views.png).
"""
from __future__ import annotations

import json
import os
import re
import socket
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from .config import RunConfig, to_dict
from .config_check import from_dict, validate

CONFIG, CHECKPOINT, METRICS = "config.json", "checkpoint.pt", "metrics.json"
PREVIOUS, STATUS = "checkpoint.prev.pt", "status.json"


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
    if overwrite:
        clear_run(path)
    return path


RUN_FILES = (CONFIG, CHECKPOINT, PREVIOUS, STATUS, METRICS, "mesh.glb", "mesh.obj",
             "mesh.mtl", "mesh.ply", "turntable.mp4", "turntable.gif", "views.png")


def clear_run(path: Path) -> None:
    """Remove the files a run writes (and its previews), nothing else in the folder."""
    for name in RUN_FILES:
        (path / name).unlink(missing_ok=True)
    previews = path / "previews"
    if previews.is_dir():
        for png in previews.glob("step_*.png"):
            png.unlink()


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
        return validate(from_dict(RunConfig, json.loads(path.read_text())))
    except (ValueError, TypeError) as err:  # ConfigError is a ValueError
        raise RunFolderError(f"{path} is not a valid run config: {err}") from err


# -- checkpoints ---------------------------------------------------------------------
def _tensors(obj: Any, path: str = "") -> list[tuple[str, torch.Tensor]]:
    """Every tensor in a nested state, with its path, in a fixed order."""
    if isinstance(obj, torch.Tensor):
        return [(path, obj)]
    if isinstance(obj, dict):
        return [t for k in sorted(obj, key=str) for t in _tensors(obj[k], f"{path}/{k}")]
    if isinstance(obj, (list, tuple)):
        return [t for i, v in enumerate(obj) for t in _tensors(v, f"{path}/{i}")]
    return []


def state_checksum(state: dict[str, Any]) -> int:
    """CRC-32 over the paths and bytes of all tensors (torch.load does not notice a
    flipped byte inside a tensor's data, so the checkpoint carries its own check)."""
    crc = 0
    for path, tensor in _tensors({k: v for k, v in state.items() if k != "checksum"}):
        crc = zlib.crc32(path.encode(), crc)
        data = tensor.detach().cpu().contiguous().view(-1).view(torch.uint8)
        crc = zlib.crc32(data.numpy().tobytes(), crc)
    return crc


def save_checkpoint(run_dir: Path, state: dict[str, Any]) -> None:
    """Atomic torch.save of the trainable state (never the frozen prior), with a checksum;
    the checkpoint it replaces is kept as checkpoint.prev.pt."""
    path = run_dir / CHECKPOINT
    state = {**state, "checksum": state_checksum(state)}
    fd, tmp = tempfile.mkstemp(dir=run_dir, prefix=f".{CHECKPOINT}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(state, tmp)
        if path.exists():
            os.replace(path, run_dir / PREVIOUS)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_checkpoint(path: Path) -> dict[str, Any]:
    """One checkpoint file, verified; RunFolderError saying what is wrong with it."""
    if not path.exists():
        raise RunFolderError(f"{path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated or not a torch file at all
        raise RunFolderError(f"{path} cannot be read ({type(err).__name__}): the file is "
                             "truncated or damaged") from err
    if not isinstance(state, dict) or not {"step", "field", "checksum"} <= state.keys():
        raise RunFolderError(f"{path} is not a dreamfusion checkpoint")
    if state_checksum(state) != state["checksum"]:
        raise RunFolderError(f"{path} is damaged (its checksum does not match its contents)")
    return state


def load_checkpoint(run_dir: Path, warn: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The latest readable checkpoint: checkpoint.pt, else checkpoint.prev.pt (with a
    warning saying why); RunFolderError if neither can be used."""
    latest, previous = run_dir / CHECKPOINT, run_dir / PREVIOUS
    if not latest.exists() and not previous.exists():
        raise RunFolderError(f"{run_dir} has no {CHECKPOINT}; the run never reached its "
                             "first checkpoint")
    try:
        return read_checkpoint(latest)
    except RunFolderError as err:
        if not previous.exists():
            raise
        state = read_checkpoint(previous)
        if warn is not None:
            warn(f"{err}; using the previous checkpoint ({PREVIOUS}, step {state['step']})")
        return state


# -- status --------------------------------------------------------------------------
def write_status(run_dir: Path, status: str, step: int, steps: int, **extra: Any) -> None:
    """status.json: running / interrupted / failed / finished, the step reached, and
    the process that wrote it (so a second process can tell the run is still alive)."""
    write_json(run_dir / STATUS, {"status": status, "step": step, "steps": steps,
                                  "pid": os.getpid(), "host": socket.gethostname(),
                                  "updated": time.strftime("%Y-%m-%dT%H:%M:%S"), **extra})


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from a file; {} when it is missing, unreadable or not an object."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def read_status(run_dir: Path) -> dict[str, Any] | None:
    return read_json(run_dir / STATUS) or None


def still_running(status: dict[str, Any] | None) -> bool:
    """True if status says running and its process is alive on this host."""
    if not status or status.get("status") != "running":
        return False
    if status.get("host") != socket.gethostname() or status.get("pid") == os.getpid():
        return False
    try:
        os.kill(int(status["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return True
