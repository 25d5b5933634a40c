"""Fingerprints of short runs of every method and main option: the loss of each step and a
checksum of the trained model. Run it before and after a refactor that must not change
results, and compare the two files (`cmp`); CPU, about 20 s.

    python benchmarks/loss_fingerprint.py before.json
    ... change the code ...
    python benchmarks/loss_fingerprint.py after.json && cmp before.json after.json
"""
from __future__ import annotations

import argparse
import hashlib
import json

import torch

from dreamfusion.config import override, preset
from dreamfusion.train import Trainer, build_backend, resolve_device

CASES = {
    "dreamfusion": {},
    "learned-bg": {"render.background": "learned"},
    "random-bg": {"render.background": "random"},
    "formation": {"render.formation_size": 24, "render.formation_steps": (0.0, 0.5)},
    "perp-neg": {"guidance.perp_neg": True},
    "tv": {"reg.tv": 0.1, "reg.opacity": 0.01},
    "dreamfields": {"method": "dreamfields"},
    "clipmesh": {"method": "clipmesh"},
}


def fingerprint(changes: dict, steps: int) -> dict:
    cfg = override(preset("fast"), caption="a red cube with a yellow front", steps=steps,
                   size=16, device="cpu", **changes)
    device = resolve_device("cpu")
    backend = build_backend(cfg, device) if cfg.method == "dreamfusion" else None
    trainer = Trainer(cfg, backend, device)
    for _ in range(steps):
        trainer.pending.append(trainer.train_step())
    trainer.settle()
    digest = hashlib.sha256()
    for p in trainer.field.parameters():
        digest.update(p.detach().numpy().tobytes())
    return {"loss": [row["loss"] for row in trainer.loss_log], "model": digest.hexdigest()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", help="JSON file to write")
    ap.add_argument("--steps", type=int, default=20)
    args = ap.parse_args()
    torch.set_num_threads(1)
    result = {}
    for name, changes in CASES.items():
        result[name] = fingerprint(changes, args.steps)
        print(f"{name:12s} last loss {result[name]['loss'][-1]:.6g}  model "
              f"{result[name]['model'][:12]}", flush=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
