"""How much does the VAE encoder's precision change what SDS sees? Latents and their
gradient w.r.t. the render, fp16 / bf16 against fp32, on renders of toy-world objects.

    python benchmarks/vae_precision.py                 # the SD 2.x VAE architecture, 128x128
    python benchmarks/vae_precision.py --tiny --size 16

Random weights (no weights can be downloaded here): the numbers say how far a half
precision encode moves the latents and the gradient that reaches the field, not how a
trained VAE's images look. Prints a Markdown table (relative errors, max and mean).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))
from real_prior_speed import SD21_VAE, TINY  # noqa: E402

from dreamfusion.cameras import Cameras  # noqa: E402
from dreamfusion.toyworld.captions import parse_caption  # noqa: E402
from dreamfusion.toyworld.render import render_objects  # noqa: E402


def renders(size: int) -> torch.Tensor:
    """(4, 3, size, size) shaded renders of four toy objects, in [0, 1]."""
    objs = [parse_caption(c).obj for c in ("a red cube with a yellow front", "a blue torus",
                                            "a green cone", "a purple sphere")]
    cams = Cameras(torch.full((4,), 20.0), torch.tensor([0.0, 45.0, 90.0, 180.0]),
                   torch.full((4,), 2.2), 40.0)
    return F.interpolate(render_objects(objs, cams, 64, "shaded"), (size, size),
                         mode="bilinear", align_corners=False)


def encode_with_grad(vae, images: torch.Tensor, dtype: torch.dtype, probe: torch.Tensor):
    """(latents float32, d<latents, probe>/d images float32) with the VAE in dtype."""
    x = images.clone().requires_grad_(True)
    lat = vae.to(dtype).encode((x * 2 - 1).to(dtype)).latent_dist.mean.float()
    (lat * probe).sum().backward()
    return lat.detach(), x.grad.float()


def rel(a: torch.Tensor, b: torch.Tensor) -> tuple[float, float]:
    """(max, mean) of |a - b| relative to the max of |b|."""
    d = (a - b).abs() / b.abs().max()
    return float(d.max()), float(d.mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tiny", action="store_true")
    ap.add_argument("--size", type=int, default=128)
    args = ap.parse_args()
    from diffusers import AutoencoderKL
    torch.manual_seed(0)
    vae = AutoencoderKL(**(TINY["vae"] if args.tiny else SD21_VAE)).eval()
    images = renders(args.size)
    lat32, _ = encode_with_grad(vae, images, torch.float32, torch.zeros(()))
    probe = torch.randn(lat32.shape, generator=torch.Generator().manual_seed(1))
    lat32, grad32 = encode_with_grad(vae, images, torch.float32, probe)
    print(f"VAE {'tiny' if args.tiny else 'SD 2.x architecture'}, random weights, "
          f"{args.size}x{args.size} renders")
    print("| encode | latents: max / mean relative error | gradient: max / mean relative error |")
    print("|---|---:|---:|")
    for name, dtype in (("fp16", torch.float16), ("bf16", torch.bfloat16)):
        lat, grad = encode_with_grad(vae, images, dtype, probe)
        (lm, la), (gm, ga) = rel(lat, lat32), rel(grad, grad32)
        print(f"| {name} | {lm:.2e} / {la:.2e} | {gm:.2e} / {ga:.2e} |")


if __name__ == "__main__":
    main()
