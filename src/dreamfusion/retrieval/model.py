"""A small image classifier over the caption grammar, used like CLIP for retrieval.

The score of caption "a {colour} {shape} [with a {front} front]" for an image is
log p(shape) + log p(colour) + log p(front), with front = "none" for single-colour
captions: a proper log-likelihood over all 216 captions of the world, so ranking the
captions of an image is retrieval, as R-precision asks.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..toyworld.captions import all_objects
from ..toyworld.world import COLORS, SHAPES

CAPTIONS = [obj.text for obj in all_objects()]
"""The 216 captions of the world without a view suffix, in all_objects() order."""
COLOR_NAMES = tuple(COLORS)
FRONTS = ("none", *COLOR_NAMES)
INPUT_SIZE = 32
WEIGHTS = Path(__file__).with_name("toy_retrieval.pt")
WEIGHTS_B = Path(__file__).with_name("toy_retrieval_b.pt")
NAMED = {"toy-a": WEIGHTS, "toy-b": WEIGHTS_B}
"""Two independently trained models (seeds and widths differ), standing for two CLIP
sizes: Table 1 reports baselines scored by the model they trained with and by the other."""


def caption_indices() -> tuple[Tensor, Tensor, Tensor]:
    """(216,) class indices of shape, colour and front for each caption."""
    objs = all_objects()
    shape = torch.tensor([SHAPES.index(o.shape) for o in objs])
    color = torch.tensor([COLOR_NAMES.index(o.color) for o in objs])
    front = torch.tensor([FRONTS.index(o.front_color or "none") for o in objs])
    return shape, color, front


class ToyRetrieval(nn.Module):
    """(B, 3, H, W) images in [0, 1] -> logits of shape (6), colour (6), front (7)."""

    def __init__(self, width: int = 32):
        super().__init__()
        self.width = width
        w = width

        def block(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout),
                                 nn.ReLU(), nn.Conv2d(cout, cout, 3, padding=1),
                                 nn.BatchNorm2d(cout), nn.ReLU(), nn.MaxPool2d(2))

        self.features = nn.Sequential(block(3, w), block(w, 2 * w), block(2 * w, 4 * w))
        self.heads = nn.ModuleDict({"shape": nn.Linear(8 * w, len(SHAPES)),
                                    "color": nn.Linear(8 * w, len(COLOR_NAMES)),
                                    "front": nn.Linear(8 * w, len(FRONTS))})
        self.register_buffer("index", torch.stack(caption_indices()), persistent=False)

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        x = F.interpolate(images, (INPUT_SIZE, INPUT_SIZE), mode="area") * 2 - 1
        h = self.features(x)
        h = torch.cat([h.mean((2, 3)), h.amax((2, 3))], dim=1)
        return {name: head(h) for name, head in self.heads.items()}

    @torch.no_grad()
    def caption_scores(self, images: Tensor) -> Tensor:
        """(B, 216) log-likelihood of every caption in CAPTIONS for each image."""
        logp = {k: F.log_softmax(v, dim=1) for k, v in self(images).items()}
        shape, color, front = self.index
        return logp["shape"][:, shape] + logp["color"][:, color] + logp["front"][:, front]


    def r_precision(self, images: Tensor, caption: str) -> float:
        """Share of images whose best caption among CAPTIONS is `caption` (R = 1)."""
        from ..toyworld.captions import CaptionError, parse_caption
        try:
            target = CAPTIONS.index(parse_caption(caption).obj.text)
        except CaptionError:
            raise ValueError(f'"{caption}" is outside the toy world; score it with a real '
                             "CLIP (--clip MODEL --captions FILE)") from None
        return (self.caption_scores(images).argmax(1) == target).float().mean().item()


    def shape_r_precision(self, images: Tensor, caption: str) -> float:
        """Share of images whose most likely of the six shapes is the caption's: the
        shape head alone, i.e. the caption score with colour and front marginalised
        (log p(shape) + log p(colour) + log p(front) summed over colours and fronts).
        The Geo score that can see geometry in this world, where 35 of a shape's 36
        captions differ only in colour and a textureless render carries none."""
        target = caption_shape_index(caption)
        with torch.no_grad():
            best = self(images)["shape"].argmax(1)
        return (best == target).float().mean().item()


def caption_shape_index(caption: str) -> int:
    """Index in SHAPES of a toy-world caption's shape (ValueError for other captions)."""
    from ..toyworld.captions import CaptionError, parse_caption
    try:
        return SHAPES.index(parse_caption(caption).obj.shape)
    except CaptionError:
        raise ValueError(f'"{caption}" is outside the toy world: no shape to rank') from None


def load(path: Path) -> ToyRetrieval:
    state = torch.load(path, map_location="cpu", weights_only=True)
    model = ToyRetrieval(int(state["width"]))
    model.load_state_dict(state["model"])
    return model.eval()


def load_named(name: str | Path) -> ToyRetrieval:
    """`toy-a`, `toy-b` (shipped in the package) or a path to weights."""
    path = NAMED.get(str(name), Path(name))
    if not path.exists():
        hint = (" (it is trained by `dreamfusion retrieval-train`)" if str(name) in NAMED
                else "")
        raise FileNotFoundError(f"retrieval weights {path} do not exist{hint}")
    return load(path)


def load_default() -> ToyRetrieval:
    """Model A, shipped in the package (trained by `dreamfusion retrieval-train`)."""
    return load_named("toy-a")
