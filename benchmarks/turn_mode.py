"""When does a cube or pyramid settle its turn about y? The four-fold mode over training.

Trains from the blob with the default preset (or --set KEY=VALUE) and, every --every
steps, measures the four-fold Fourier component of the occupied cross-section (density
above --threshold, heights y in [-0.45, 0], weighted by rho^2):
    A = -<cos 4 phi>,  B = -<sin 4 phi>,  phi = atan2(z, x),
so A > 0 when the corners sit where the aligned object has them (the exact aligned
pyramid: A = +0.30), A < 0 when turned by 45 degrees (-0.29), and the turn estimate is
atan2(B, A) / 4. Used for docs/DESIGN-NOTES.md ("The turn of a cube or pyramid").

    python benchmarks/turn_mode.py "a green pyramid" --every 50
"""
from __future__ import annotations

import argparse

import torch
from turn_torque import cpu_trainer

from dreamfusion.canonical import four_fold_mode


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("caption")
    ap.add_argument("--every", type=int, default=50)
    ap.add_argument("--threshold", type=float, default=5.0)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args()
    trainer = cpu_trainer(ap, args.caption, args.set)
    cfg = trainer.cfg
    print(f"Four-fold mode of '{args.caption}' while training ({cfg.steps} steps; "
          "A > 0 aligned, A < 0 turned 45 degrees)\n")
    print("| step | A | B | turn deg |")
    print("|---:|---:|---:|---:|")
    while trainer.step < cfg.steps:
        trainer.train_step()
        if trainer.step % args.every == 0 or trainer.step == cfg.steps:
            with torch.no_grad():
                a, b, turn = four_fold_mode(trainer.field.density_grid(), cfg.field.bound,
                                            args.threshold)
            print(f"| {trainer.step} | {a:+.3f} | {b:+.3f} | {turn:+.1f} |", flush=True)


if __name__ == "__main__":
    main()
