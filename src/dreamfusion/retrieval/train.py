"""Training the retrieval model on the toy world's photos, and its held-out accuracy.

    dreamfusion retrieval-train            # writes the packaged weights, prints accuracy

Photos follow the prior's photo distribution (random captions, half with a view
suffix, 15% clay). Clay photos carry no colour, so they train the shape head only.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from ..toyworld.captions import Caption
from ..toyworld.photos import random_captions, render_labelled_photos
from ..toyworld.world import SHAPES
from .model import CAPTIONS, COLOR_NAMES, FRONTS, INPUT_SIZE, WEIGHTS, ToyRetrieval


def labelled_photos(n: int, seed: int, chunk: int = 2000) -> tuple[Tensor, dict[str, Tensor]]:
    """(n, 3, 32, 32) photos and their labels: shape, color, front, clay, caption."""
    g = torch.Generator().manual_seed(seed)
    images, labels = [], {k: [] for k in ("shape", "color", "front", "clay", "caption")}
    for start in range(0, n, chunk):
        caps: list[Caption] = random_captions(min(chunk, n - start), g)
        imgs, clay = render_labelled_photos(caps, INPUT_SIZE, seed * 100003 + start)
        images.append(imgs)
        labels["shape"] += [SHAPES.index(c.obj.shape) for c in caps]
        labels["color"] += [COLOR_NAMES.index(c.obj.color) for c in caps]
        labels["front"] += [FRONTS.index(c.obj.front_color or "none") for c in caps]
        labels["caption"] += [CAPTIONS.index(c.obj.text) for c in caps]
        labels["clay"].append(clay)
    out = {k: torch.tensor(v) for k, v in labels.items() if k != "clay"}
    out["clay"] = torch.cat(labels["clay"])
    return torch.cat(images), out


def losses(model: ToyRetrieval, images: Tensor, labels: dict[str, Tensor]) -> Tensor:
    logits = model(images)
    coloured = ~labels["clay"]
    loss = F.cross_entropy(logits["shape"], labels["shape"])
    if coloured.any():
        loss = loss + F.cross_entropy(logits["color"][coloured], labels["color"][coloured])
        loss = loss + F.cross_entropy(logits["front"][coloured], labels["front"][coloured])
    return loss


def augment(images: Tensor, generator: torch.Generator) -> Tensor:
    """Random blur: generated renders are softer than the sphere-traced photos."""
    soft = torch.rand(len(images), generator=generator) < 0.5
    blurred = F.avg_pool2d(F.pad(images, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    return torch.where(soft[:, None, None, None], 0.5 * (images + blurred), images)


@torch.no_grad()
def accuracy(model: ToyRetrieval, images: Tensor, labels: dict[str, Tensor]) -> dict[str, float]:
    """Held-out accuracy per head (colours on non-clay photos) and caption R-precision."""
    model.eval()
    logits = {k: [] for k in ("shape", "color", "front")}
    scores = []
    for part in images.split(1000):
        out = model(part)
        for k in logits:
            logits[k].append(out[k].argmax(1))
        scores.append(model.caption_scores(part).argmax(1))
    pred = {k: torch.cat(v) for k, v in logits.items()}
    coloured = ~labels["clay"]
    top1 = torch.cat(scores) == labels["caption"]
    return {"shape": (pred["shape"] == labels["shape"]).float().mean().item(),
            "color": (pred["color"] == labels["color"])[coloured].float().mean().item(),
            "front": (pred["front"] == labels["front"])[coloured].float().mean().item(),
            "caption_r_precision": top1[coloured].float().mean().item()}


def train_retrieval(photos: int = 16000, epochs: int = 6, width: int = 32, seed: int = 0,
                    batch: int = 128, test_photos: int = 3000,
                    log: Callable[[str], None] = print) -> tuple[ToyRetrieval, dict]:
    """Train on `photos` photos, test on `test_photos` others; returns model and report."""
    torch.manual_seed(seed)
    start = time.perf_counter()
    images, labels = labelled_photos(photos, seed=1000 + seed)
    test_images, test_labels = labelled_photos(test_photos, seed=999_999 - seed)
    log(f"rendered {photos} + {test_photos} photos in {time.perf_counter() - start:.0f} s")
    model = ToyRetrieval(width)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    steps = epochs * (photos // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps)
    g = torch.Generator().manual_seed(seed)
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(photos, generator=g)
        for i in range(photos // batch):
            idx = order[i * batch:(i + 1) * batch]
            loss = losses(model, augment(images[idx], g), {k: v[idx] for k, v in labels.items()})
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        log(f"epoch {epoch + 1}/{epochs}: loss {loss.item():.3f}")
    report = accuracy(model, test_images, test_labels)
    report.update(photos=photos, test_photos=test_photos, epochs=epochs, width=width, seed=seed,
                  seconds=round(time.perf_counter() - start, 1))
    return model.eval(), report


def save(model: ToyRetrieval, report: dict, path: Path = WEIGHTS) -> None:
    torch.save({"width": model.width, "model": model.state_dict(), "report": report}, path)
