"""Images and videos: uint8 conversion, image grids, atomic PNG / MP4 / GIF writing."""
from __future__ import annotations

import math
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

__all__ = ["to_uint8", "image_grid", "write_png", "write_video", "ffmpeg_exe"]


def to_uint8(images: Tensor | np.ndarray) -> np.ndarray:
    """(N, 3, H, W) float in [0, 1] -> (N, H, W, 3) uint8 (clamped, rounded)."""
    x = torch.as_tensor(images).detach().float().cpu()
    x = (x.nan_to_num(0.0).clamp(0.0, 1.0) * 255.0).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).contiguous().numpy()


def image_grid(images: Tensor | np.ndarray, nrow: int, pad: int = 2) -> np.ndarray:
    """(N, 3, H, W) float in [0, 1] -> (H', W', 3) uint8 grid, ``nrow`` images a row.

    H' = rows * H + (rows + 1) * pad and W' = ncol * W + (ncol + 1) * pad with
    ncol = min(nrow, N) and rows = ceil(N / ncol); padding and empty slots are white.
    """
    imgs = to_uint8(images)
    n, h, w, _ = imgs.shape
    ncol = max(1, min(nrow, n))
    rows = max(1, math.ceil(n / ncol))
    grid = np.full((rows * h + (rows + 1) * pad, ncol * w + (ncol + 1) * pad, 3), 255, np.uint8)
    for idx in range(n):
        r, c = divmod(idx, ncol)
        y, x = pad + r * (h + pad), pad + c * (w + pad)
        grid[y : y + h, x : x + w] = imgs[idx]
    return grid


def _temp_path(path: Path) -> Path:
    """A fresh temporary file next to ``path`` with the same suffix (the caller owns it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    return Path(tmp)


def _commit(tmp: Path, path: Path) -> None:
    """Atomically move the finished temporary file onto ``path``."""
    os.replace(tmp, path)


def write_png(array: np.ndarray, path: Path) -> None:
    """Write a (H, W, 3) uint8 image as PNG at ``path``, atomically."""
    path = Path(path)
    tmp = _temp_path(path)
    try:
        Image.fromarray(np.ascontiguousarray(array, dtype=np.uint8)).save(tmp, format="PNG")
        _commit(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def ffmpeg_exe() -> str | None:
    """Path of an ffmpeg binary (imageio-ffmpeg's bundled one, else PATH), or None."""
    try:
        import imageio_ffmpeg

        exe = imageio_ffmpeg.get_ffmpeg_exe()
        if exe and os.path.exists(exe):
            return exe
    except Exception:  # not installed, or no binary for this platform
        pass
    return shutil.which("ffmpeg")


def _pad_to_multiple(frames: np.ndarray, m: int = 16) -> np.ndarray:
    """(N, H, W, 3) -> (N, H'', W'', 3) padded with white to multiples of ``m``, centred."""
    n, h, w, _ = frames.shape
    ph, pw = (-h) % m, (-w) % m
    if ph == 0 and pw == 0:
        return frames
    spec = ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0))
    return np.pad(frames, spec, mode="constant", constant_values=255)


def _write_mp4(frames: np.ndarray, path: Path, fps: int, exe: str) -> None:
    """H.264 / yuv420p MP4 by piping raw RGB frames to ffmpeg; raises on failure."""
    frames = np.ascontiguousarray(_pad_to_multiple(frames))
    n, h, w, _ = frames.shape
    cmd = [
        exe, "-y", "-loglevel", "error",
        "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-r", str(fps), "-i", "-",
        "-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", "18",
        "-movflags", "+faststart", "-f", "mp4", str(path),
    ]  # fmt: skip
    proc = subprocess.run(cmd, input=frames.tobytes(), capture_output=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"ffmpeg failed: {proc.stderr.decode(errors='replace')[-500:]}")


def _write_gif(frames: np.ndarray, path: Path, fps: int) -> None:
    """Looping animated GIF with Pillow."""
    imgs = [Image.fromarray(f) for f in frames]
    duration = max(20, int(round(1000.0 / fps)))
    imgs[0].save(path, format="GIF", save_all=True, append_images=imgs[1:], duration=duration, loop=0)


def write_video(frames: np.ndarray, path_stem: Path, fps: int = 12) -> Path:
    """Write (N, H, W, 3) uint8 frames as ``path_stem``.mp4, else ``path_stem``.gif.

    MP4 (H.264, yuv420p, sides padded white to multiples of 16) when an ffmpeg binary
    is available and succeeds; otherwise an animated GIF. Atomic. Returns the path.
    """
    frames = np.asarray(frames, dtype=np.uint8)
    if frames.ndim != 4 or frames.shape[0] == 0 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be (N>0, H, W, 3) uint8, got shape {frames.shape}")
    path_stem = Path(path_stem)
    if path_stem.suffix.lower() in (".mp4", ".gif"):
        path_stem = path_stem.with_suffix("")
    exe = ffmpeg_exe()
    if exe is not None:
        path = path_stem.with_name(path_stem.name + ".mp4")
        tmp = _temp_path(path)
        try:
            _write_mp4(frames, tmp, fps, exe)
            _commit(tmp, path)
            return path
        except (OSError, RuntimeError, subprocess.SubprocessError):
            pass  # broken or codec-less ffmpeg: fall back to GIF
        finally:
            tmp.unlink(missing_ok=True)
    path = path_stem.with_name(path_stem.name + ".gif")
    tmp = _temp_path(path)
    try:
        _write_gif(frames, tmp, fps)
        _commit(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
