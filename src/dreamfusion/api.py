"""The Python API: the CLI's `generate`, with its defaults and checks, as functions.

    import dreamfusion
    run = dreamfusion.generate("a red cube", out="runs/red-cube", steps=400)
    run.files["glb"], run.metrics["ground_truth"]["iou"]

Options are the keyword arguments of `RunOptions` (caption aside); bad input raises
`dreamfusion.UserError` with one sentence, before anything is created.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import RunConfig
from .errors import UserError
from .options import RunOptions, resolve_config


@dataclass(frozen=True)
class RunResult:
    """A finished run: its folder, its settings and metrics.json's contents."""

    run_dir: Path
    config: RunConfig
    metrics: dict

    @property
    def files(self) -> dict[str, Path]:
        """The exported files by kind (glb, obj, ply, turntable, views); {} without export."""
        return {k: Path(v) for k, v in self.metrics.get("files", {}).items()}


def options(caption: str | None = None, **kwargs: Any) -> RunOptions:
    """RunOptions from keyword arguments; an unknown keyword is a UserError."""
    known = set(RunOptions.__dataclass_fields__)
    unknown = sorted(set(kwargs) - known)
    if unknown:
        raise UserError(f"unknown option {unknown[0]!r}; the options are "
                        f"{', '.join(sorted(known - {'caption'}))}")
    if kwargs.get("config") is not None:
        kwargs["config"] = Path(kwargs["config"])
    return RunOptions(caption=caption, **kwargs)


def make_config(caption: str | None = None, **kwargs: Any) -> RunConfig:
    """The checked RunConfig `generate` would train with for these options."""
    return resolve_config(options(caption, **kwargs))


def generate(caption: str | None = None, out: str | Path | None = None, *,
             overwrite: bool = False, progress: bool = False, log=None,
             **kwargs: Any) -> RunResult:
    """Train, export and score one object; returns its RunResult.

    out: the run folder (default: a new folder under ./runs/ named from the caption). A
    folder holding an unfinished run of the same settings is continued; one holding
    anything else is refused unless overwrite=True. log: a function of one line of text
    (default: stderr)."""
    from .lifecycle import start_run
    cfg = make_config(caption, **kwargs)
    run_dir, metrics = start_run(cfg, Path(out) if out is not None else None, overwrite,
                                 progress, log or _stderr)
    return RunResult(run_dir, cfg, metrics)


def resume(run_dir: str | Path, device: str | None = None, progress: bool = False,
           log=None) -> RunResult:
    """Continue an interrupted run from its last checkpoint, with its saved settings."""
    from . import runs
    from .lifecycle import resume_run
    run_dir, metrics = resume_run(Path(run_dir), device, progress, log or _stderr)
    return RunResult(run_dir, runs.load_config(run_dir), metrics)


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr)
