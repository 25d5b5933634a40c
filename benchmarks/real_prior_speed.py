"""Speed and memory of a training step with Stable Diffusion guidance, random weights.

Builds the Stable Diffusion 2.1-base UNet and VAE from their configs (no download; the
weights are random, which does not change the cost), wraps them as the `sd` backend and
times, for each precision / memory-format / compile variant:

- steps/s of the whole training step at 64x64 renders (cameras, render, resize to 512,
  VAE encode with gradients, UNet with classifier-free guidance, backward, Adam),
- the floor: the frozen model's own forward for the same step, measured alone
  (VAE encoder on B renders + UNet on 2B latents, no autograd),
- peak GPU memory of the training step.

    python benchmarks/real_prior_speed.py                 # on a GPU
    python benchmarks/real_prior_speed.py --tiny --device cpu --steps 2   # smoke test

Goal (issue 4): >= 15 steps/s, whole step within 1.5x of the floor, under 8 GB.
"""
from __future__ import annotations

import argparse
import time

import torch

SD21_BASE_UNET = dict(
    sample_size=64, in_channels=4, out_channels=4, layers_per_block=2,
    block_out_channels=(320, 640, 1280, 1280), attention_head_dim=(5, 10, 20, 20),
    cross_attention_dim=1024, use_linear_projection=True,
    down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
    up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
)
SD21_VAE = dict(
    in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2, sample_size=512,
    block_out_channels=(128, 256, 512, 512), down_block_types=("DownEncoderBlock2D",) * 4,
    up_block_types=("UpDecoderBlock2D",) * 4, scaling_factor=0.18215,
)
TINY = {  # same structure, a few channels: a smoke test of this script on a CPU
    "unet": dict(SD21_BASE_UNET, sample_size=8, block_out_channels=(32, 32, 64, 64),
                 attention_head_dim=(4, 4, 8, 8), cross_attention_dim=32, layers_per_block=1),
    "vae": dict(SD21_VAE, sample_size=64, block_out_channels=(32, 32, 32, 32),
                layers_per_block=1),
}


def build_backend(tiny: bool, device: torch.device, precision: str, channels_last: bool,
                  compile_unet: bool):
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel

    from dreamfusion.guidance.stable_diffusion import StableDiffusion
    unet_cfg, vae_cfg = (TINY["unet"], TINY["vae"]) if tiny else (SD21_BASE_UNET, SD21_VAE)
    torch.manual_seed(0)
    unet = UNet2DConditionModel(**unet_cfg)
    vae = AutoencoderKL(**vae_cfg)
    alphas = DDPMScheduler(beta_schedule="scaled_linear", beta_start=0.00085,
                           beta_end=0.012).alphas_cumprod
    dim = unet_cfg["cross_attention_dim"]
    embed = lambda texts: torch.randn(len(texts), 77, dim)  # noqa: E731
    return StableDiffusion.from_modules(unet, alphas, device, embed, precision=precision,
                                        channels_last=channels_last, compile_unet=compile_unet,
                                        vae=vae)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, steps: int, device: torch.device) -> float:
    """Seconds per call of fn over `steps` calls (after the caller's warm-up)."""
    sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    sync(device)
    return (time.perf_counter() - start) / steps


def measure(backend, device: torch.device, steps: int, warmup: int) -> dict:
    from dreamfusion.config import override, preset
    from dreamfusion.train import Trainer
    cfg = override(preset("fast", "sd"), caption="a DSLR photo of a squirrel", steps=10**6,
                   batch_size=1, device=device.type)
    trainer = Trainer(cfg, backend, device)
    for _ in range(warmup):
        trainer.train_step()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    step_s = timed(trainer.train_step, steps, device)
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else float("nan")

    images = torch.rand(cfg.batch_size, 3, cfg.size, cfg.size, device=device)
    emb = backend.encode_text(["a squirrel"] * 2 * cfg.batch_size)
    t = torch.full((2 * cfg.batch_size,), 500, device=device)

    @torch.no_grad()
    def frozen_forward():
        z = backend.encode_images(images)
        backend.predict_noise(torch.cat([z, z]), t, emb)

    for _ in range(warmup):
        frozen_forward()
    floor_s = timed(frozen_forward, steps, device)
    return {"steps_per_s": 1 / step_s, "step_ms": 1000 * step_s, "floor_ms": 1000 * floor_s,
            "ratio": step_s / floor_s, "peak_gib": peak}


VARIANTS = {  # name: (precision, channels_last, compile)
    "fp32": ("fp32", False, False),
    "fp16": ("fp16", False, False),
    "fp16 + channels-last": ("fp16", True, False),
    "fp16 + torch.compile": ("fp16", False, True),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, default=50, help="timed steps per variant")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--tiny", action="store_true", help="small random configs (smoke test)")
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS),
                        choices=list(VARIANTS))
    args = parser.parse_args()
    device = torch.device(args.device)
    name = "tiny SD-shaped" if args.tiny else "SD 2.1-base (random weights)"
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"{name}, 64x64 renders resized to the VAE input, batch 1, on {gpu}\n")
    print("| variant | steps/s | step ms | floor ms | step / floor | peak GiB |")
    print("|---|---:|---:|---:|---:|---:|")
    for variant in args.variants:
        precision, channels_last, compile_unet = VARIANTS[variant]
        if device.type == "cpu" and precision == "fp16":
            precision = "bf16"  # CPU half precision kernels are bfloat16
        backend = build_backend(args.tiny, device, precision, channels_last, compile_unet)
        r = measure(backend, device, args.steps, args.warmup)
        print(f"| {variant} | {r['steps_per_s']:.2f} | {r['step_ms']:.1f} | "
              f"{r['floor_ms']:.1f} | {r['ratio']:.2f} | {r['peak_gib']:.2f} |", flush=True)
        del backend
        if device.type == "cuda":
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
