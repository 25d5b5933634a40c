"""Is the true object a fixed point of the toy prior's score distillation? The mean SDS
pull (the step direction, alpha_t sigma_t (x0_guided - x)) on renders of the TRUE
object, read on its front pixels along the unit vector from the body colour to the
front colour (> 0: the front is pushed towards its colour, < 0: it is being erased),
and on all object pixels along their own colour (< 0: the prior darkens them).

    python benchmarks/front_pull.py "a red cylinder with a yellow front"
    python benchmarks/front_pull.py CAPTION --banks 128 512 --brightness 1.0 0.8

Rows: camera group (front: |az| < 30; side: az in [45, 90]) x render (lit as the photos
are; albedo only at a brightness) x photos per caption in the bank.
"""
from __future__ import annotations

import argparse

import torch
from torch import Tensor

from dreamfusion.cameras import Cameras, view_labels
from dreamfusion.guidance.toy import ToyPrior
from dreamfusion.prompts import view_prompt
from dreamfusion.toyworld.captions import parse_caption
from dreamfusion.toyworld.geometry import color_tensor
from dreamfusion.toyworld.render import render_objects

GROUPS = {"front": (-30.0, 30.0), "side": (45.0, 90.0)}


def cameras(az_range: tuple[float, float], n: int, g: torch.Generator) -> Cameras:
    """n cameras, elevation uniform in [0, 50], azimuth uniform in az_range, distance 2.2."""
    el = torch.rand(n, generator=g) * 50
    az = az_range[0] + torch.rand(n, generator=g) * (az_range[1] - az_range[0])
    return Cameras(el, az, torch.full((n,), 2.2), 40.0)


def true_renders(caption: str, cams: Cameras, brightness: float | None
                 ) -> tuple[Tensor, Tensor, Tensor]:
    """(renders (n, 3, H, W) in [0, 1], front mask (n, H, W), object mask (n, H, W)):
    lit by a headlight as the photos are (brightness None) or albedo x brightness."""
    obj = parse_caption(caption).obj
    size = 32
    albedo = render_objects([obj] * len(cams), cams, size, "albedo")
    front = (albedo - color_tensor(obj.front_color)[:, None, None]).norm(dim=1) < 0.05
    inside = (albedo - 1).abs().sum(1) > 0.3
    image = (render_objects([obj] * len(cams), cams, size, "shaded") if brightness is None
             else albedo * brightness + (1 - brightness) * ~inside[:, None])
    return image, front, inside


def pull(prior: ToyPrior, caption: str, image: Tensor, cams: Cameras,
         t_range: tuple[float, float], scale: float, reps: int, g: torch.Generator) -> Tensor:
    """Mean SDS step direction (n, 3, H, W) over `reps` draws of (t, eps), view prompts
    (only the banks these cameras need are built)."""
    cond = prior.encode_text([view_prompt(caption, v) for v in view_labels(cams.el, cams.az)])
    uncond = prior.encode_text([""] * len(cams))
    x = image * 2 - 1
    acp, total = prior.alphas_cumprod, torch.zeros_like(x)
    lo, hi = (int(v * len(acp)) for v in t_range)
    for _ in range(reps):
        t = torch.randint(lo, hi, (len(x),), generator=g)
        a = acp[t].reshape(-1, 1, 1, 1)
        z = a.sqrt() * x + (1 - a).sqrt() * torch.randn(x.shape, generator=g)
        x0_u = prior.posterior_mean(z, t, uncond)
        x0 = x0_u + scale * (prior.posterior_mean(z, t, cond) - x0_u)
        total += (a * (1 - a)).sqrt() * (x0 - x)
    return total / reps


def front_pull(caption: str, bank_size: int, group: str, brightness: float | None = None,
               n: int = 48, reps: int = 6, t_range=(0.02, 0.35), scale: float = 1.5,
               seed: int = 1) -> dict[str, float]:
    """{'front': pull on the front pixels towards the front colour, 'darken': minus the
    pull on object pixels along their own colour} for one camera group."""
    obj = parse_caption(caption).obj
    prior = ToyPrior(32, bank_size, 512, seed=0)
    g = torch.Generator().manual_seed(seed)
    cams = cameras(GROUPS[group], n, g)
    image, front, inside = true_renders(caption, cams, brightness)
    step = pull(prior, caption, image, cams, t_range, scale, reps, g)
    d = color_tensor(obj.front_color) - color_tensor(obj.color)
    along_front = (step * (d / d.norm())[:, None, None]).sum(1)
    own = image * 2 - 1
    along_own = (step * own).sum(1) / own.norm(dim=1).clamp(min=1e-6)
    return {"front": float(along_front[front].mean()),
            "darken": float(-along_own[inside].mean())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("caption")
    ap.add_argument("--banks", type=int, nargs="+", default=[128, 512])
    ap.add_argument("--brightness", type=float, nargs="+", default=[1.0, 0.8],
                    help="albedo-only renders at these brightnesses (besides lit renders)")
    args = ap.parse_args()
    print("| cameras | render | bank | pull on the front, towards its colour | darkening |")
    print("|---|---|---:|---:|---:|")
    for group in GROUPS:
        for bright in [None, *args.brightness]:
            render = "lit" if bright is None else f"albedo x {bright:g}"
            for bank in args.banks:
                r = front_pull(args.caption, bank, group, bright)
                print(f"| {group} | {render} | {bank} | {r['front']:+.3f} | {r['darken']:+.3f} |")


if __name__ == "__main__":
    main()
