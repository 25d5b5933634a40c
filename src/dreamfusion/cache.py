"""On-disk cache of things that are slow to make and fully set by their inputs: the toy
prior's photo banks (and, in the diffusers backend, text embeddings).

An entry is named by a hash of every input that changes it, and holds that key and a
checksum of its tensor; an entry whose key or checksum does not match (a damaged file,
a hash collision, a half-written file) is rebuilt and replaced, never used.
DREAMFUSION_NO_CACHE=1 (or a config switch) bypasses the cache; DREAMFUSION_CACHE moves it.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor

MAX_BYTES = 1 << 30
"""Per kind of entry: beyond this, the least recently used entries are deleted."""


def cache_root() -> Path:
    """$DREAMFUSION_CACHE, else $XDG_CACHE_HOME/dreamfusion, else ~/.cache/dreamfusion."""
    if os.environ.get("DREAMFUSION_CACHE"):
        return Path(os.environ["DREAMFUSION_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "dreamfusion"


def disabled_by_env() -> bool:
    return os.environ.get("DREAMFUSION_NO_CACHE", "").strip() not in ("", "0")


@functools.lru_cache(maxsize=None)
def source_fingerprint(*paths: str) -> str:
    """Hash of source files (a folder: its .py files): a change to the code that makes
    an entry makes the old entries stale."""
    digest = hashlib.sha256()
    for given in paths:
        path = Path(given)
        for file in sorted(path.glob("*.py")) if path.is_dir() else [path]:
            digest.update(file.name.encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


def tensor_checksum(t: Tensor) -> str:
    return hashlib.sha256(t.detach().cpu().contiguous().view(torch.uint8).numpy()).hexdigest()


def entry_path(kind: str, key: dict) -> Path:
    text = json.dumps(key, sort_keys=True)
    return cache_root() / kind / f"{hashlib.sha256(text.encode()).hexdigest()[:32]}.pt"


def read_entry(path: Path, key: dict) -> Tensor | None:
    """The cached tensor, or None when absent, damaged or made for another key."""
    try:
        entry = torch.load(path, map_location="cpu", weights_only=True)
        tensor = entry["tensor"]
        if entry["key"] != json.loads(json.dumps(key)) or \
                entry["checksum"] != tensor_checksum(tensor):
            return None
    except Exception:  # missing, truncated, not a checkpoint, wrong layout
        return None
    os.utime(path)  # recently used: pruned last
    return tensor


def write_entry(path: Path, key: dict, tensor: Tensor) -> None:
    """Atomic write (a reader sees the old entry or the whole new one), then pruning."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    torch.save({"key": key, "checksum": tensor_checksum(tensor), "tensor": tensor}, tmp)
    os.replace(tmp, path)
    prune(path.parent, MAX_BYTES)


def prune(folder: Path, max_bytes: int) -> None:
    """Delete the least recently used entries until the folder holds at most max_bytes."""
    entries = []
    for p in folder.glob("*.pt"):
        try:
            entries.append((p.stat().st_mtime, p.stat().st_size, p))
        except OSError:  # deleted meanwhile by another process
            continue
    total = sum(size for _, size, _ in entries)
    for _, size, p in sorted(entries):
        if total <= max_bytes:
            break
        p.unlink(missing_ok=True)
        total -= size


def cached_tensor(kind: str, key: dict, build: Callable[[], Tensor], enabled: bool = True
                  ) -> Tensor:
    """build() through the cache: read when a valid entry for `key` exists, else built
    and stored. `key` must hold every input that changes the result (JSON values)."""
    if not enabled or disabled_by_env():
        return build()
    path = entry_path(kind, key)
    found = read_entry(path, key)
    if found is not None:
        return found
    tensor = build()
    try:
        write_entry(path, key, tensor)
    except OSError:  # a read-only or full disk: run on without the cache
        pass
    return tensor
