"""Milliseconds per refine-stage step on a finished run's field (the initial mesh, the
stage's prior and settings, one torch thread unless told), after a few warm-up steps.

    python benchmarks/refine_step_time.py RUN_DIR [--steps 60] [--threads 1] [--set KEY=VALUE]

Run it alternately on two checkouts in one sitting to compare them (absolute times
depend on the machine and its load).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from dreamfusion import runs
from dreamfusion.config import RunConfig, override
from dreamfusion.options import parse_set
from dreamfusion.pipeline import load_field
from dreamfusion.refine import initial_mesh
from refine_probe import stage_trainer  # benchmarks/, the script's own folder


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = override(runs.load_config(args.run), **parse_set(args.set, RunConfig()))
    field = load_field(cfg, args.run, log=lambda s: None)
    mesh, _ = initial_mesh(field, cfg)
    trainer = stage_trainer(cfg, mesh, field.device)
    for _ in range(5):
        trainer.train_step()
    start = time.perf_counter()
    for _ in range(args.steps):
        trainer.train_step()
    ms = (time.perf_counter() - start) / args.steps * 1000
    print(f"{args.run.name}: {len(mesh.faces)} faces, {ms:.1f} ms per refine step "
          f"({args.threads} thread{'s' if args.threads > 1 else ''})")


if __name__ == "__main__":
    main()
