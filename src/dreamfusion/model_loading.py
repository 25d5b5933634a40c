"""Loading pretrained models (diffusers / transformers) from a local folder or a Hub id.

One place for what the real priors (guidance/) and the CLIP scorer (retrieval/) share:
telling a folder from a Hub id, from_pretrained with one-sentence errors, fp16 variant
files, and a model's identity for caches (a folder's file fingerprint or the Hub
revision found in the local Hugging Face cache). Neither package imports the other.
`HF_HUB_OFFLINE=1` and `local_files_only` are honoured by from_pretrained itself.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import torch

INSTALL_HINT = 'pip install "dreamfusion[diffusers]"'


class BackendLoadError(RuntimeError):
    """A pretrained model cannot be built (missing package, weights or folder); user-facing."""


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


def model_path(model: str) -> str:
    """The string to hand to from_pretrained; BackendLoadError for a missing folder."""
    if is_local(model) and not Path(model).expanduser().is_dir():
        raise BackendLoadError(f"--model {model}: no such folder. Point --model at a local "
                               "folder in diffusers layout, or at a Hub id")
    return str(Path(model).expanduser()) if is_local(model) else model


def offline(local_files_only: bool) -> bool:
    return local_files_only or os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0")


def load_part(cls: Any, model: str, subfolder: str | None, local_files_only: bool,
              **kwargs) -> Any:
    """cls.from_pretrained(model[, subfolder=...]) with a message that says what was tried.
    subfolder None: the model's root (a CLIP folder)."""
    path = model_path(model)
    where = {} if subfolder is None else {"subfolder": subfolder}
    try:
        return cls.from_pretrained(path, local_files_only=local_files_only, **where, **kwargs)
    except (OSError, ValueError) as err:
        how = ("download is off (HF_HUB_OFFLINE or local_files_only) and it is not in the "
               "Hugging Face cache" if offline(local_files_only) and not is_local(model) else
               f"{type(err).__name__}: {str(err).splitlines()[0][:200]}")
        part = f"{subfolder}/ of the " if subfolder else ""
        raise BackendLoadError(
            f"cannot load {part}{describe(model)} ({how}). Use --model with a local folder "
            "in diffusers layout (unet/, scheduler/, text_encoder/, tokenizer/[, vae/]) or "
            "another compatible Hub id") from None


def has_variant(model: str, subfolder: str, variant: str) -> bool:
    """Whether a local folder holds `variant` weight files for a part
    (e.g. unet/diffusion_pytorch_model.fp16.safetensors)."""
    folder = Path(model).expanduser() / subfolder
    return folder.is_dir() and any(p.name.split(".")[-2:-1] == [variant]
                                   for p in folder.iterdir() if p.is_file())


def load_weights(cls: Any, model: str, subfolder: str, local_files_only: bool,
                 dtype: torch.dtype, **kwargs) -> Any:
    """Load a weighted part in `dtype`, asking for the fp16 variant files when the dtype is
    fp16 and they exist (half the download and disk read; a Hub id without them falls back
    to the full files)."""
    if dtype == torch.float16:
        if is_local(model):
            if has_variant(model, subfolder, "fp16"):
                kwargs["variant"] = "fp16"
        else:
            try:
                return cls.from_pretrained(model, subfolder=subfolder, variant="fp16",
                                           local_files_only=local_files_only,
                                           torch_dtype=dtype, **kwargs)
            except (OSError, ValueError):
                pass  # no fp16 files for this repo: the full-precision ones, cast
    return load_part(cls, model, subfolder, local_files_only, torch_dtype=dtype, **kwargs)


def hub_revision(model: str, revision: str | None = None) -> str | None:
    """The commit of a Hub model as found in the local Hugging Face cache, or None."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    for probe in ("model_index.json", "scheduler/scheduler_config.json", "config.json"):
        found = try_to_load_from_cache(model, probe, revision=revision)
        if isinstance(found, str):
            parts = Path(found).parts
            if "snapshots" in parts:
                return parts[parts.index("snapshots") + 1]
    return None


def model_identity(model: str, subfolders: tuple[str, ...], revision: str | None = None) -> str:
    """A string that changes when the model changes: for a local folder, its resolved path
    and the name, size and content hash of the small files (configs, tokenizer) plus the
    name and size of the weights under `subfolders`; for a Hub id, the id and the commit
    in the local cache (or the asked revision when nothing is cached)."""
    if not is_local(model):
        return f"{model}@{hub_revision(model, revision) or revision or 'main'}"
    root = Path(model).expanduser().resolve()
    parts = [str(root)]
    for sub in subfolders:
        for p in sorted((root / sub).rglob("*")):
            if not p.is_file():
                continue
            size = p.stat().st_size
            tag = (hashlib.sha256(p.read_bytes()).hexdigest()[:16] if size < 4 << 20
                   else f"{size}:{p.stat().st_mtime_ns}")
            parts.append(f"{p.relative_to(root)}:{tag}")
    return "|".join(parts)
