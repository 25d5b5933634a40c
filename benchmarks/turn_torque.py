"""Does SDS pull a turned object back? The mean torque about the vertical axis.

The field is set to the exact object of a caption (density from the true occupancy,
albedo from the true colours), and the whole rig of each training step (cameras and
lights) is turned by -theta, which shows the object turned by +theta. The derivative of
the SDS loss with respect to theta, averaged over many steps' worth of cameras, lights,
timesteps and noise, is the torque the optimiser feels on a rigid turn. Positive at a
positive theta means gradient descent turns the object back towards theta = 0.

    python benchmarks/turn_torque.py "a green pyramid" --steps-at 80 250 400 550 \
        --thetas 22.5 --samples 2500

Settings are the default preset's (or --set KEY=VALUE); "step" is where in the default
800-step run the timestep window and shading schedule are taken from. Prints one row per
(step, theta): trimmed mean (2% each side) +- its standard error, and the median, in
units of 1e-3 per degree. Used for docs/DESIGN-NOTES.md ("The turn of a cube or pyramid").
"""
from __future__ import annotations

import argparse
import math

import torch

from dreamfusion.cameras import Cameras
from dreamfusion.cli import UserError, parse_set
from dreamfusion.config import override, preset
from dreamfusion.guidance.sds import score_distillation
from dreamfusion.render import Shading, render_model
from dreamfusion.toyworld.captions import parse_caption
from dreamfusion.toyworld.geometry import sdf
from dreamfusion.toyworld.world import COLORS, grid_points
from dreamfusion.train import Trainer, build_backend, sample_shading


def set_exact_object(field, obj, density: float = 6.0) -> None:
    """Finest density level = +-density by true occupancy; albedo = body colour."""
    with torch.no_grad():
        for g in (*field.density_levels, *field.albedo_levels):
            g.zero_()
        finest = field.density_levels[-1]
        inside = sdf(obj.shape, grid_points(finest.shape[-1], field.cfg.bound)) < 0
        finest.copy_(torch.where(inside, density, -density).reshape(finest.shape))
        colour = torch.tensor(COLORS[obj.color]).clamp(0.02, 0.98)
        albedo = field.albedo_levels[-1]
        albedo.copy_(torch.logit(colour)[:, None, None, None].expand_as(albedo))
    field.requires_grad_(False)


def turn_about_y(v: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """(N, 3) vectors turned by theta (radians) about +y."""
    c, s = torch.cos(theta), torch.sin(theta)
    return torch.stack([c * v[:, 0] + s * v[:, 2], v[:, 1], -s * v[:, 0] + c * v[:, 2]], -1)


def torque_samples(trainer: Trainer, step: int, theta_deg: float, n: int) -> torch.Tensor:
    """(n,) d loss / d theta (per degree) of n training steps' SDS at `step`."""
    cfg = trainer.cfg
    trainer.generator.manual_seed(1234)  # the same draws for every theta
    torch.manual_seed(1234)
    values = []
    for _ in range(n):
        theta = torch.tensor(math.radians(theta_deg), requires_grad=True)
        cams, plain = trainer.guidance.sample_step_cameras(trainer.step)
        shading = sample_shading(cfg.shading, cams, step, cfg.steps, trainer.generator)
        turned = Cameras(cams.el, cams.az - torch.rad2deg(theta), cams.dist, cams.fov)
        lights = Shading(shading.ambient, shading.diffuse, shading.textureless,
                         turn_about_y(shading.light_dirs, -theta))
        out = render_model(trainer.field, turned, cfg.size, cfg.render.samples, lights,
                           trainer.background_for(cams, cfg.size), trainer.generator)
        cond, uncond = trainer.guidance.prompts.for_cameras(cams, plain)  # labels of the true view
        loss = score_distillation(trainer.backend, out["image"], cond, uncond, cfg.guidance,
                                  step, cfg.steps, trainer.generator)["sds"]
        (grad,) = torch.autograd.grad(loss, theta)
        values.append(float(grad) * math.pi / 180)
    return torch.tensor(values)


def summary(values: torch.Tensor) -> tuple[float, float, float]:
    """(trimmed mean, its standard error, median) with 2% trimmed at each end."""
    v = values.sort().values
    k = len(v) // 50
    core = v[k:len(v) - k] if k else v
    err = float(core.std() / math.sqrt(len(core))) if len(core) > 1 else float("nan")
    return float(core.mean()), err, float(v.median())


def cpu_trainer(ap: argparse.ArgumentParser, caption: str, sets: list[str]) -> Trainer:
    """A Trainer of the default preset on the CPU with --set overrides (bad ones are a
    usage error of `ap`)."""
    cfg = override(preset("fast"), caption=caption, device="cpu", preview_every=0)
    try:
        cfg = override(cfg, **parse_set(sets, cfg))
    except UserError as err:
        ap.error(str(err))
    return Trainer(cfg, build_backend(cfg, torch.device("cpu")), torch.device("cpu"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("caption")
    ap.add_argument("--steps-at", type=int, nargs="+", default=[400])
    ap.add_argument("--thetas", type=float, nargs="+", default=[22.5])
    ap.add_argument("--samples", type=int, default=500)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args()
    trainer = cpu_trainer(ap, args.caption, args.set)
    set_exact_object(trainer.field, parse_caption(args.caption).obj)
    print(f"SDS torque on the exact '{args.caption}', {args.samples} samples per row "
          f"(x1e-3 per degree; positive = turned back)\n")
    print("| step | theta deg | trimmed mean | std error | median |")
    print("|---:|---:|---:|---:|---:|")
    for step in args.steps_at:
        for theta in args.thetas:
            mean, err, median = summary(torque_samples(trainer, step, theta, args.samples))
            print(f"| {step} | {theta:g} | {1e3 * mean:+.2f} | {1e3 * err:.2f} | "
                  f"{1e3 * median:+.2f} |", flush=True)


if __name__ == "__main__":
    main()
