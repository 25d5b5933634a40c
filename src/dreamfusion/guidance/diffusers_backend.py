"""Shared parts of the real priors (Stable Diffusion, DeepFloyd IF) loaded with diffusers.

diffusers and transformers are imported here only, when such a backend is built (the
`diffusers` extra). Weights come from a local folder in diffusers layout (unet/,
scheduler/, text_encoder/, tokenizer/, and vae/ for latent models) or a Hub id
(model_loading.py).

Load order: the scheduler at once; the text encoder when a prompt is not in the disk cache
of text embeddings; the UNet (and VAE) on first use, after the trainer has embedded every
prompt and freed the text encoder, so that the two never share the GPU (for IF the T5-XXL
encoder alone is about 9 GB in half precision). The network's output is turned into a
noise estimate by the scheduler's `prediction_type` (prediction.py), in float32 whatever
the UNet's dtype.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch
from torch import Tensor

from ..cache import cache_root, disabled_by_env
from ..model_loading import (  # noqa: F401  (re-exported: the backends' public errors)
    BackendLoadError,
    load_part,
    load_weights,
    model_identity,
    require_diffusers,
)
from .base import DiffusionBackend
from .prediction import check_prediction_type, to_epsilon


def torch_dtype(precision: str, device: torch.device) -> torch.dtype:
    """auto = fp16 on CUDA, fp32 elsewhere."""
    if precision == "auto":
        return torch.float16 if device.type == "cuda" else torch.float32
    return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]


class DiffusersBackend(DiffusionBackend):
    """A frozen diffusers UNet with a lazily loaded text encoder and cached embeddings.

    Subclasses set `kind`, `max_length` and implement `_encode_images`.
    """

    kind = "diffusers"
    max_length = 77

    def __init__(self, model: str, device: torch.device, precision: str = "auto",
                 local_files_only: bool = False, channels_last: bool = False,
                 compile_unet: bool = False, text_cache: bool = True,
                 vae_precision: str = "fp32", revision: str | None = None):
        require_diffusers()
        from diffusers import DDPMScheduler
        self._configure(model, device, precision, local_files_only, text_cache)
        self.revision = revision
        self.vae_dtype = torch_dtype(vae_precision, self.device)
        self._unet_options = (channels_last, compile_unet)
        scheduler = load_part(DDPMScheduler, model, "scheduler", local_files_only,
                              **self._revision())
        self._set_schedule(scheduler.alphas_cumprod,
                           scheduler.config.get("prediction_type", "epsilon"))

    @classmethod
    def from_modules(cls, unet: torch.nn.Module, alphas_cumprod: Tensor, device: torch.device,
                     embed_text, precision: str = "auto", channels_last: bool = False,
                     compile_unet: bool = False, prediction_type: str = "epsilon",
                     vae_precision: str = "fp32", **parts) -> DiffusersBackend:
        """A backend around models already in memory (benchmarks, tests); `embed_text(texts)
        -> (N, L, D)` stands in for tokenizer + text encoder."""
        self = cls.__new__(cls)
        self._configure("<in memory>", device, precision, True, text_cache=False)
        self.vae_dtype = torch_dtype(vae_precision, self.device)
        self._embed = embed_text
        self._set_schedule(alphas_cumprod, prediction_type)
        self._attach(unet.to(self.dtype), channels_last, compile_unet,
                     **{k: v.to(self._part_dtype(k)) for k, v in parts.items()})
        return self

    def _configure(self, model: str, device, precision: str, local_files_only: bool,
                   text_cache: bool) -> None:
        self.model, self.device = model, torch.device(device)
        self.local_files_only, self.revision = local_files_only, None
        self.dtype = torch_dtype(precision, self.device)
        self.text_cache, self._key = text_cache and not disabled_by_env(), None
        self.tokenizer = self.text_encoder = self.unet = None

    def _revision(self) -> dict:
        return {"revision": self.revision} if self.revision else {}

    def _set_schedule(self, alphas_cumprod: Tensor, prediction_type: str) -> None:
        self.alphas_cumprod = alphas_cumprod.float().to(self.device)
        self.prediction_type = check_prediction_type(prediction_type)

    def _part_dtype(self, name: str) -> torch.dtype:
        return self.vae_dtype if name == "vae" else self.dtype

    def _load_extra_parts(self) -> dict[str, torch.nn.Module]:
        """Modules beyond unet/scheduler/text (the VAE of a latent model)."""
        return {}

    def load_denoiser(self) -> None:
        """Load the UNet (and the VAE) once, on first use; the text encoder is freed first."""
        if self.unet is not None:
            return
        from diffusers import UNet2DConditionModel
        self.release_text_encoder()
        unet = load_weights(UNet2DConditionModel, self.model, "unet", self.local_files_only,
                            self.dtype, **self._revision())
        self._attach(unet, *self._unet_options, **self._load_extra_parts())

    def _attach(self, unet: torch.nn.Module, channels_last: bool, compile_unet: bool,
                **parts: torch.nn.Module) -> None:
        self.unet = self._frozen(unet)
        if channels_last:
            self.unet = self.unet.to(memory_format=torch.channels_last)
        self.unet_forward = torch.compile(self.unet) if compile_unet else self.unet
        for name, module in parts.items():
            setattr(self, name, self._frozen(module))

    def _frozen(self, module: torch.nn.Module) -> torch.nn.Module:
        module.requires_grad_(False)
        return module.eval().to(self.device)

    # -- text -----------------------------------------------------------------------
    def _cache_path(self, text: str) -> Path:
        """Keyed by the model's identity (a folder's text-encoder and tokenizer files, or the
        Hub commit), the embedding dtype, the token length and the text."""
        if self._key is None:
            self._key = model_identity(self.model, ("text_encoder", "tokenizer"),
                                       self.revision)
        key = hashlib.sha256(f"{self.kind}|{self._key}|{self.dtype}|{self.max_length}|{text}"
                             .encode())
        return cache_root() / "text-embeddings" / f"{key.hexdigest()[:32]}.pt"

    def _load_text_encoder(self) -> None:
        import transformers
        if self.text_encoder is not None:
            return
        self.tokenizer = load_part(transformers.AutoTokenizer, self.model, "tokenizer",
                                   self.local_files_only, **self._revision())
        config = load_part(transformers.AutoConfig, self.model, "text_encoder",
                           self.local_files_only, **self._revision())
        # the saved architecture (CLIPTextModel, T5EncoderModel): AutoModel would build a
        # whole T5 encoder-decoder for IF
        arch = (getattr(config, "architectures", None) or ["AutoModel"])[0]
        cls = getattr(transformers, arch, transformers.AutoModel)
        self.text_encoder = self._frozen(load_weights(cls, self.model, "text_encoder",
                                                      self.local_files_only, self.dtype,
                                                      **self._revision()))

    def release_text_encoder(self) -> None:
        """Free the text encoder (the prompts are embedded once, at the start)."""
        self.tokenizer = self.text_encoder = None
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    @torch.no_grad()
    def _embed(self, texts: list[str]) -> Tensor:
        self._load_text_encoder()
        tokens = self.tokenizer(texts, padding="max_length", max_length=self.max_length,
                                truncation=True, return_tensors="pt")
        ids = tokens.input_ids.to(self.device)
        mask = tokens.attention_mask.to(self.device) if self.kind == "if" else None
        return self.text_encoder(ids, attention_mask=mask)[0].to(self.dtype)

    def encode_text(self, texts: list[str]) -> Tensor:
        """(N, max_length, D) embeddings; read from the disk cache where present.
        BackendLoadError for a non-finite embedding (never cached)."""
        found: dict[str, Tensor] = {}
        if self.text_cache:
            for text in texts:
                path = self._cache_path(text)
                if path.exists():
                    try:
                        found[text] = torch.load(path, map_location="cpu", weights_only=True)
                    except Exception:  # a damaged cache entry is recomputed
                        path.unlink(missing_ok=True)
        missing = [t for t in dict.fromkeys(texts) if t not in found]
        if missing:
            for text, emb in zip(missing, self._embed(missing).cpu()):
                self._check_finite(text, emb)
                found[text] = emb.clone()
                if self.text_cache:
                    self._save_cached(text, found[text])
        return torch.stack([found[t] for t in texts]).to(self.device, self.dtype)

    def _check_finite(self, text: str, emb: Tensor) -> None:
        if not torch.isfinite(emb).all():
            raise BackendLoadError(
                f"the text encoder of the {self.model} model gave a non-finite embedding "
                f"for {text!r} in {str(self.dtype).removeprefix('torch.')}; try "
                "--set guidance.precision=fp32 (or bf16), or the model's fp16 variant files")

    def _save_cached(self, text: str, emb: Tensor) -> None:
        path = self._cache_path(text)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        torch.save(emb, tmp)
        os.replace(tmp, path)

    # -- noise ------------------------------------------------------------------------
    @torch.no_grad()
    def predict_noise(self, z_t: Tensor, t: Tensor, text_emb: Tensor) -> Tensor:
        """eps estimate (B, C, h, w), float32, whatever the UNet's dtype and what it predicts
        (noise, v or the sample: the scheduler's prediction_type)."""
        self.load_denoiser()
        if self.unet.config.get("in_channels") and z_t.shape[1] != self.unet.config.in_channels:
            raise ValueError(f"unet expects {self.unet.config.in_channels} channels, "
                             f"got {z_t.shape[1]}")
        out = self.unet_forward(z_t.to(self.dtype), t,
                                encoder_hidden_states=text_emb.to(self.dtype)).sample
        # IF predicts its target and a variance (learned_range): keep the target
        out = out[:, : z_t.shape[1]]
        return to_epsilon(out, z_t, t, self.alphas_cumprod, self.prediction_type)

    def to(self, device: torch.device) -> DiffusersBackend:
        self.alphas_cumprod = self.alphas_cumprod.to(device)
        return self
