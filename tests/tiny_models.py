"""Tiny random Stable Diffusion and IF folders in diffusers layout, built from configs.

No downloads: the tokenizer is a character-level CLIP BPE (no merges) written here, the
models are random, and everything is saved with save_pretrained like a real model repo.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch


def byte_chars() -> list[str]:
    """The 256 printable stand-ins of byte-level BPE: printable Latin-1 bytes stand for
    themselves, the others are shifted past 255 (the GPT-2 / CLIP convention)."""
    keep = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAC + 1), *range(0xAE, 0xFF + 1)]
    shifted = [b for b in range(256) if b not in keep]
    table = {b: chr(b) for b in keep} | {b: chr(256 + i) for i, b in enumerate(shifted)}
    return [table[b] for b in range(256)]


def write_tokenizer(folder: Path, subfolder: str = "tokenizer") -> int:
    """A CLIP tokenizer whose tokens are single bytes; returns the vocabulary size."""
    from transformers import CLIPTokenizer
    chars = byte_chars()
    tokens = chars + [c + "</w>" for c in chars] + ["<|startoftext|>", "<|endoftext|>"]
    raw = folder / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    (raw / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}))
    (raw / "merges.txt").write_text("#version: 0.2\n")
    tok = CLIPTokenizer(str(raw / "vocab.json"), str(raw / "merges.txt"), pad_token="<|endoftext|>")
    tok.model_max_length = 77
    tok.save_pretrained(folder / subfolder)
    return len(tokens)


def tiny_stable_diffusion(folder: Path, prediction_type: str = "epsilon") -> Path:
    """unet (8x8 latents), vae (16x16 images), CLIP text encoder, tokenizer, scheduler
    (whose prediction_type says what the UNet predicts)."""
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel
    torch.manual_seed(0)
    vocab = write_tokenizer(folder)
    CLIPTextModel(CLIPTextConfig(
        vocab_size=vocab, hidden_size=32, intermediate_size=37, num_attention_heads=4,
        num_hidden_layers=2, max_position_embeddings=77, bos_token_id=vocab - 2,
        eos_token_id=vocab - 1, pad_token_id=vocab - 1)).save_pretrained(folder / "text_encoder")
    UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=1,
        block_out_channels=(32, 64), down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=32,
        attention_head_dim=8).save_pretrained(folder / "unet")
    AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, sample_size=16,
        block_out_channels=(32, 64), down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2).save_pretrained(folder / "vae")
    DDPMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
                  prediction_type=prediction_type).save_pretrained(folder / "scheduler")
    return folder


def tiny_deepfloyd_if(folder: Path) -> Path:
    """IF-shaped: T5 encoder, text_proj UNet with 6 output channels (eps + variance), 16x16."""
    from diffusers import DDPMScheduler, UNet2DConditionModel
    from transformers import T5Config, T5EncoderModel
    torch.manual_seed(0)
    vocab = write_tokenizer(folder)
    T5EncoderModel(T5Config(
        vocab_size=vocab, d_model=32, d_ff=37, d_kv=8, num_layers=2, num_heads=4,
        relative_attention_num_buckets=8, pad_token_id=vocab - 1,
        decoder_start_token_id=0)).save_pretrained(folder / "text_encoder")
    UNet2DConditionModel(
        sample_size=16, in_channels=3, out_channels=6, layers_per_block=1,
        block_out_channels=(32, 64), down_block_types=("ResnetDownsampleBlock2D",
                                                       "SimpleCrossAttnDownBlock2D"),
        up_block_types=("SimpleCrossAttnUpBlock2D", "ResnetUpsampleBlock2D"),
        mid_block_type="UNetMidBlock2DSimpleCrossAttn", cross_attention_dim=32,
        encoder_hid_dim=32, encoder_hid_dim_type="text_proj", addition_embed_type="text",
        addition_embed_type_num_heads=4,
        attention_head_dim=8, resnet_time_scale_shift="scale_shift"
    ).save_pretrained(folder / "unet")
    DDPMScheduler(beta_schedule="squaredcos_cap_v2",
                  variance_type="learned_range").save_pretrained(folder / "scheduler")
    return folder


def tiny_clip(folder: Path) -> Path:
    """A random CLIP (text + vision towers, 32x32 images) with its tokenizer, in one folder."""
    from transformers import CLIPConfig, CLIPModel
    torch.manual_seed(0)
    vocab = write_tokenizer(folder, subfolder=".")
    text = dict(vocab_size=vocab, hidden_size=32, intermediate_size=37, num_attention_heads=4,
                num_hidden_layers=2, max_position_embeddings=77, bos_token_id=vocab - 2,
                eos_token_id=vocab - 1, pad_token_id=vocab - 1)
    vision = dict(hidden_size=32, intermediate_size=37, num_attention_heads=4,
                  num_hidden_layers=2, image_size=32, patch_size=8)
    CLIPModel(CLIPConfig(text_config=text, vision_config=vision,
                         projection_dim=16)).save_pretrained(folder)
    return folder
