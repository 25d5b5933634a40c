"""Images and videos."""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from dreamfusion import media


def test_to_uint8_and_grid_shape():
    imgs = torch.rand(5, 3, 8, 10)
    u = media.to_uint8(imgs)
    assert u.shape == (5, 8, 10, 3) and u.dtype == np.uint8
    assert media.to_uint8(torch.full((1, 3, 2, 2), 2.0)).max() == 255
    grid = media.image_grid(imgs, nrow=3, pad=2)
    assert grid.shape == (2 * 8 + 3 * 2, 3 * 10 + 4 * 2, 3)
    assert (grid[:2] == 255).all() and (grid[-2:, -12:] == 255).all()  # pad, empty slot
    np.testing.assert_array_equal(grid[2:10, 2:12], u[0])


def test_write_png(tmp_path):
    arr = (np.random.default_rng(0).random((7, 9, 3)) * 255).astype(np.uint8)
    path = tmp_path / "sub" / "a.png"
    media.write_png(arr, path)
    np.testing.assert_array_equal(np.asarray(Image.open(path)), arr)
    assert [p.name for p in path.parent.iterdir()] == ["a.png"]


def frames(n: int = 6, h: int = 30, w: int = 44) -> np.ndarray:
    rng = np.random.default_rng(1)
    return (rng.random((n, h, w, 3)) * 255).astype(np.uint8)


def test_video_mp4(tmp_path):
    if media.ffmpeg_exe() is None:
        import pytest

        pytest.skip("no ffmpeg here")
    path = media.write_video(frames(), tmp_path / "turn", fps=12)
    assert path == tmp_path / "turn.mp4" and path.stat().st_size > 0
    assert path.read_bytes()[4:8] == b"ftyp"
    assert [p.name for p in tmp_path.iterdir()] == ["turn.mp4"]


def test_video_gif_fallback(tmp_path, monkeypatch):
    monkeypatch.setattr(media, "ffmpeg_exe", lambda: None)
    path = media.write_video(frames(), tmp_path / "turn", fps=10)
    assert path == tmp_path / "turn.gif"
    with Image.open(path) as im:
        assert im.n_frames == 6 and im.size == (44, 30)
    assert [p.name for p in tmp_path.iterdir()] == ["turn.gif"]


def test_video_broken_ffmpeg_falls_back(tmp_path, monkeypatch):
    monkeypatch.setattr(media, "ffmpeg_exe", lambda: str(tmp_path / "no-such-ffmpeg"))
    path = media.write_video(frames(3), tmp_path / "v", fps=12)
    assert path.suffix == ".gif" and path.exists()
