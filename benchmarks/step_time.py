"""Per-step time of training, split into render, guidance and backward (+ optimiser).

    python benchmarks/step_time.py                      # fast preset, toy prior
    python benchmarks/step_time.py --preset quality --steps 30
    python benchmarks/step_time.py --size 64 --batch-size 4 --samples 64

Prints a Markdown table (milliseconds per step, mean over the timed steps after warm-up).
"""
from __future__ import annotations

import argparse
import time

import torch

from dreamfusion.config import override, preset
from dreamfusion.guidance.sds import score_distillation
from dreamfusion.train import Trainer, build_backend, resolve_device, sample_shading, to_device
from dreamfusion.render import render


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed_step(tr: Trainer) -> dict[str, float]:
    """One training step as in Trainer.train_step, with a clock between the phases."""
    cfg, dev = tr.cfg, tr.device
    t0 = time.perf_counter()
    cams, plain = tr.sample_step_cameras()
    shading = to_device(sample_shading(cfg.shading, cams, tr.step, cfg.steps, tr.generator), dev)
    cams = cams.to(dev)
    out = render(tr.field, cams, cfg.size, cfg.render.samples, shading,
                 tr.background_for(cams, cfg.size), tr.generator)
    sync(dev)
    t1 = time.perf_counter()
    cond, uncond = tr.prompts.for_cameras(cams, plain)
    losses = score_distillation(tr.backend, out["image"], cond, uncond, cfg.guidance,
                                tr.step, cfg.steps, tr.generator)
    loss = losses["sds"] + cfg.reg.orientation * out["orientation"]
    sync(dev)
    t2 = time.perf_counter()
    tr.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    tr.optimizer.step()
    sync(dev)
    t3 = time.perf_counter()
    tr.step += 1
    return {"render": t1 - t0, "guidance": t2 - t1, "backward": t3 - t2, "total": t3 - t0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="fast")
    ap.add_argument("--caption", default="a blue torus")
    ap.add_argument("--steps", type=int, default=40, help="timed steps")
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--size", type=int)
    ap.add_argument("--batch-size", type=int)
    ap.add_argument("--samples", type=int)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = override(preset(args.preset), caption=args.caption, device=args.device)
    changes = {"size": args.size, "batch_size": args.batch_size, "render.samples": args.samples}
    cfg = override(cfg, **{k: v for k, v in changes.items() if v})
    # Time the shaded phase (normals in use), which is most of a run.
    cfg = override(cfg, **{"shading.albedo_only_fraction": 0.0})
    device = resolve_device(cfg.device)
    t = time.perf_counter()
    trainer = Trainer(cfg, build_backend(cfg, device), device)
    setup = time.perf_counter() - t
    for _ in range(args.warmup):
        timed_step(trainer)
    rows = [timed_step(trainer) for _ in range(args.steps)]
    mean = {k: 1000 * sum(r[k] for r in rows) / len(rows) for k in rows[0]}
    print(f"device {device}, threads {torch.get_num_threads()}, preset {args.preset}, "
          f"size {cfg.size}, batch {cfg.batch_size}, samples {cfg.render.samples}, "
          f"grid {cfg.field.resolution}^3; setup (prior banks) {setup:.2f} s")
    print()
    print("| phase | ms/step | share |")
    print("|---|---:|---:|")
    for k in ("render", "guidance", "backward"):
        print(f"| {k} | {mean[k]:.1f} | {mean[k] / mean['total']:.0%} |")
    print(f"| **total** | **{mean['total']:.1f}** | {1000 / mean['total']:.1f} steps/s |")


if __name__ == "__main__":
    main()
