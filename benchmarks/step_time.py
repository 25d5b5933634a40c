"""Per-step time of training, split into render, guidance and backward (+ optimiser),
for the fast path and its plain reference twin side by side.

    python benchmarks/step_time.py                      # fast preset, toy prior, CPU
    python benchmarks/step_time.py --device cuda        # the same on a GPU (+ peak memory)
    python benchmarks/step_time.py --preset quality --steps 30
    python benchmarks/step_time.py --paths fast         # only the fast path

The field is first trained for `--skip` untimed steps (default 300 of the fast preset's
800), so the timed steps see a formed object, not the start blob: most of a run's steps
look like that. The shaded phase is timed (normals in use). Paths:
- fast: what runs by default (on a CPU: only the occupied box's cells are built and
  only samples in occupied space are queried; separable upsampling; fused Adam);
- reference: the plain twins: every sample queried (dead ones masked), the full volume,
  `F.interpolate` upsampling, max-pool dilation.
Prints a Markdown table (milliseconds per step, mean over the timed steps).
"""
from __future__ import annotations

import argparse
import contextlib
import time

import torch

from dreamfusion import field as field_module
from dreamfusion import render as render_module
from dreamfusion.config import override, preset
from dreamfusion.guidance.sds import score_distillation
from dreamfusion.render import render
from dreamfusion.train import Trainer, build_backend, resolve_device, sample_shading, to_device


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


@contextlib.contextmanager
def reference_path():
    """Swap every fast path for its plain twin (restored afterwards)."""
    saved = (render_module.compact_on, field_module.upsample, field_module.dilate)
    render_module.compact_on = lambda device: False
    field_module.upsample = field_module.upsample_reference
    field_module.dilate = field_module.dilate_reference
    try:
        yield
    finally:
        render_module.compact_on, field_module.upsample, field_module.dilate = saved


def timed_step(tr: Trainer) -> dict[str, float]:
    """One training step as in Trainer.train_step, with a clock between the phases."""
    cfg, dev = tr.cfg, tr.device
    t0 = time.perf_counter()
    cams, plain = tr.guidance.sample_step_cameras(tr.step)
    shading = to_device(sample_shading(cfg.shading, cams, tr.step, cfg.steps, tr.generator), dev)
    texts = tr.guidance.prompts.conditions(cams, plain, cfg.guidance)
    cams = cams.to(dev)
    out = render(tr.field, cams, cfg.size, cfg.render.samples, shading,
                 tr.background_for(cams, cfg.size), tr.generator)
    sync(dev)
    t1 = time.perf_counter()
    losses = score_distillation(tr.backend, out["image"], cfg=cfg.guidance, step=tr.step,
                                total_steps=cfg.steps, generator=tr.generator, **texts)
    loss = losses["sds"] + cfg.reg.orientation * out["orientation"]
    sync(dev)
    t2 = time.perf_counter()
    tr.apply_learning_rates()
    tr.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    tr.optimizer.step()
    sync(dev)
    t3 = time.perf_counter()
    tr.step += 1
    return {"render": t1 - t0, "guidance": t2 - t1, "backward": t3 - t2, "total": t3 - t0}


def measure(cfg, device: torch.device, skip: int, steps: int, warmup: int) -> dict[str, float]:
    """Mean seconds per phase over `steps` timed steps after `skip` + `warmup` untimed."""
    trainer = Trainer(cfg, build_backend(cfg, device), device)
    for _ in range(skip + warmup):
        timed_step(trainer)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    rows = [timed_step(trainer) for _ in range(steps)]
    mean = {k: sum(r[k] for r in rows) / len(rows) for k in rows[0]}
    if device.type == "cuda":
        mean["peak_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
    return mean


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="fast")
    ap.add_argument("--caption", default="a blue torus")
    ap.add_argument("--steps", type=int, default=40, help="timed steps")
    ap.add_argument("--skip", type=int, default=300, help="untimed training steps first")
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--size", type=int)
    ap.add_argument("--batch-size", type=int)
    ap.add_argument("--samples", type=int)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    ap.add_argument("--paths", nargs="+", choices=("reference", "fast"),
                    default=["reference", "fast"])
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = override(preset(args.preset), caption=args.caption, device=args.device)
    changes = {"size": args.size, "batch_size": args.batch_size, "render.samples": args.samples}
    cfg = override(cfg, **{k: v for k, v in changes.items() if v})
    cfg = override(cfg, **{"shading.albedo_only_fraction": 0.0})
    device = resolve_device(cfg.device)
    results = {}
    for path in args.paths:
        with reference_path() if path == "reference" else contextlib.nullcontext():
            results[path] = measure(cfg, device, args.skip, args.steps, args.warmup)
    print(f"device {device}, threads {torch.get_num_threads()}, preset {args.preset}, "
          f"size {cfg.size}, batch {cfg.batch_size}, samples {cfg.render.samples}, "
          f"grid {cfg.field.resolution}^3, timed steps {args.skip + args.warmup} to "
          f"{args.skip + args.warmup + args.steps}")
    print()
    print("| phase | " + " | ".join(f"{p} ms/step" for p in results) + " |")
    print("|---|" + "---:|" * len(results))
    for k in ("render", "guidance", "backward", "total"):
        print(f"| {k} | " + " | ".join(f"{1000 * r[k]:.1f}" for r in results.values()) + " |")
    print("| steps/s | " + " | ".join(f"{1 / r['total']:.1f}" for r in results.values()) + " |")
    if device.type == "cuda":
        print("| peak GiB | " + " | ".join(f"{r['peak_gib']:.2f}" for r in results.values())
              + " |")


if __name__ == "__main__":
    main()
