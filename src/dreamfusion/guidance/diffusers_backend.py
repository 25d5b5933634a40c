"""Shared parts of the real priors (Stable Diffusion, DeepFloyd IF) loaded with diffusers.

diffusers and transformers are imported here only, when such a backend is built (the
`diffusers` extra). Weights come from a local folder in diffusers layout (unet/,
scheduler/, text_encoder/, tokenizer/, and vae/ for latent models) or a Hub id;
`HF_HUB_OFFLINE=1` and `local_files_only` are honoured by from_pretrained itself.

Text embeddings are cached on disk per (model, text): once a caption's prompts are
cached, the text encoder (T5-XXL for IF: about 9 GB in half precision) is never loaded.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..cache import cache_root, disabled_by_env
from .base import DiffusionBackend

INSTALL_HINT = 'pip install "dreamfusion[diffusers]"'


class BackendLoadError(RuntimeError):
    """A real prior cannot be built (missing package, weights or folder); user-facing."""


def require_diffusers() -> None:
    try:
        import diffusers  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as err:
        raise BackendLoadError(f"this backend needs diffusers and transformers ({err.name} is "
                               f"missing); install them with: {INSTALL_HINT}") from None


def is_local(model: str) -> bool:
    """A model string that names a folder rather than a Hub id."""
    return (os.path.isabs(model) or model.startswith((".", "~")) or os.path.exists(model)
            or model.count("/") > 1)


def describe(model: str) -> str:
    return f"local folder {model}" if is_local(model) else f"Hub id {model}"


def load_part(cls: Any, model: str, subfolder: str, local_files_only: bool, **kwargs) -> Any:
    """cls.from_pretrained(model, subfolder=...) with a message that says what was tried."""
    if is_local(model) and not Path(model).expanduser().is_dir():
        raise BackendLoadError(f"--model {model}: no such folder. Point --model at a local "
                               "folder in diffusers layout, or at a Hub id")
    path = str(Path(model).expanduser()) if is_local(model) else model
    try:
        return cls.from_pretrained(path, subfolder=subfolder,
                                   local_files_only=local_files_only, **kwargs)
    except (OSError, ValueError) as err:
        offline = os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0") or local_files_only
        how = ("download is off (HF_HUB_OFFLINE or local_files_only) and it is not in the "
               "Hugging Face cache" if offline and not is_local(model) else
               f"{type(err).__name__}: {str(err).splitlines()[0][:200]}")
        raise BackendLoadError(
            f"cannot load {subfolder}/ of the {describe(model)} ({how}). Use --model with a "
            "local folder in diffusers layout (unet/, scheduler/, text_encoder/, tokenizer/"
            "[, vae/]) or another compatible Hub id") from None


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
                 compile_unet: bool = False, text_cache: bool = True):
        require_diffusers()
        from diffusers import DDPMScheduler, UNet2DConditionModel
        self._configure(model, device, precision, local_files_only, text_cache)
        unet = load_part(UNet2DConditionModel, model, "unet", local_files_only,
                         torch_dtype=self.dtype)
        scheduler = load_part(DDPMScheduler, model, "scheduler", local_files_only)
        self._attach(unet, scheduler.alphas_cumprod, channels_last, compile_unet,
                     **self._load_extra_parts())

    @classmethod
    def from_modules(cls, unet: torch.nn.Module, alphas_cumprod: Tensor, device: torch.device,
                     embed_text, precision: str = "auto", channels_last: bool = False,
                     compile_unet: bool = False, **parts) -> DiffusersBackend:
        """A backend around models already in memory (benchmarks with random weights);
        `embed_text(texts) -> (N, L, D)` stands in for tokenizer + text encoder."""
        self = cls.__new__(cls)
        self._configure("<in memory>", device, precision, True, text_cache=False)
        self._embed = embed_text
        self._attach(unet.to(self.dtype), alphas_cumprod, channels_last, compile_unet,
                     **{k: v.to(self.dtype) for k, v in parts.items()})
        return self

    def _configure(self, model: str, device, precision: str, local_files_only: bool,
                   text_cache: bool) -> None:
        self.model, self.device = model, torch.device(device)
        self.local_files_only = local_files_only
        self.dtype = torch_dtype(precision, self.device)
        self.text_cache, self._key = text_cache and not disabled_by_env(), None
        self.tokenizer = self.text_encoder = None

    def _load_extra_parts(self) -> dict[str, torch.nn.Module]:
        """Modules beyond unet/scheduler/text (the VAE of a latent model)."""
        return {}

    def _attach(self, unet: torch.nn.Module, alphas_cumprod: Tensor, channels_last: bool,
                compile_unet: bool, **parts: torch.nn.Module) -> None:
        self.unet = self._frozen(unet)
        if channels_last:
            self.unet = self.unet.to(memory_format=torch.channels_last)
        self.unet_forward = torch.compile(self.unet) if compile_unet else self.unet
        self.alphas_cumprod = alphas_cumprod.float().to(self.device)
        for name, module in parts.items():
            setattr(self, name, self._frozen(module))

    def _frozen(self, module: torch.nn.Module) -> torch.nn.Module:
        module.requires_grad_(False)
        return module.eval().to(self.device)

    # -- text -----------------------------------------------------------------------
    def _fingerprint(self) -> str:
        """The model id, or for a local folder its path plus the size and time of every
        text encoder and tokenizer file (so a replaced model is not served old vectors)."""
        if not is_local(self.model):
            return self.model
        root = Path(self.model).expanduser().resolve()
        stats = [f"{p.relative_to(root)}:{p.stat().st_size}:{p.stat().st_mtime_ns}"
                 for sub in ("text_encoder", "tokenizer") for p in sorted((root / sub).rglob("*"))
                 if p.is_file()]
        return "|".join([str(root), *stats])

    def _cache_path(self, text: str) -> Path:
        if self._key is None:
            self._key = self._fingerprint()
        key = hashlib.sha256(f"{self.kind}|{self._key}|{self.max_length}|{text}".encode())
        return cache_root() / "text-embeddings" / f"{key.hexdigest()[:32]}.pt"

    def _load_text_encoder(self) -> None:
        import transformers
        if self.text_encoder is not None:
            return
        self.tokenizer = load_part(transformers.AutoTokenizer, self.model, "tokenizer",
                                   self.local_files_only)
        config = load_part(transformers.AutoConfig, self.model, "text_encoder",
                           self.local_files_only)
        # the saved architecture (CLIPTextModel, T5EncoderModel): AutoModel would build a
        # whole T5 encoder-decoder for IF
        arch = (getattr(config, "architectures", None) or ["AutoModel"])[0]
        cls = getattr(transformers, arch, transformers.AutoModel)
        self.text_encoder = self._frozen(load_part(cls, self.model, "text_encoder",
                                                   self.local_files_only, torch_dtype=self.dtype))

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
        """(N, max_length, D) embeddings; read from the disk cache where present."""
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
                found[text] = emb.clone()
                if self.text_cache:
                    self._save_cached(text, found[text])
        return torch.stack([found[t] for t in texts]).to(self.device, self.dtype)

    def _save_cached(self, text: str, emb: Tensor) -> None:
        path = self._cache_path(text)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        torch.save(emb, tmp)
        os.replace(tmp, path)

    # -- noise ------------------------------------------------------------------------
    @torch.no_grad()
    def predict_noise(self, z_t: Tensor, t: Tensor, text_emb: Tensor) -> Tensor:
        z = z_t.to(self.dtype)
        if self.unet.config.get("in_channels") and z.shape[1] != self.unet.config.in_channels:
            raise ValueError(f"unet expects {self.unet.config.in_channels} channels, "
                             f"got {z.shape[1]}")
        out = self.unet_forward(z, t, encoder_hidden_states=text_emb.to(self.dtype)).sample
        # IF predicts eps and a variance (learned_range): keep eps
        return out[:, : z.shape[1]].to(z_t.dtype)

    def to(self, device: torch.device) -> DiffusersBackend:
        self.alphas_cumprod = self.alphas_cumprod.to(device)
        return self
