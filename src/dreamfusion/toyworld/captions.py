"""Captions of the toy world: objects, their canonical text and a strict parser.

Grammar (docs/TOYWORLD.md), case-insensitive, surrounding spaces ignored::

    a|an {colour} {shape} [with a|an {colour} front] [, {view} view]
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from .world import COLORS, SHAPES, VIEWS

_ARTICLES = ("a", "an")
_KNOWN_WORDS = frozenset(_ARTICLES + ("with", "front", "view") + SHAPES + tuple(COLORS) + VIEWS)
_FORM = (
    'form: "a {colour} {shape}" or "a {colour} {shape} with a {colour} front", '
    'optionally ", front view|side view|back view|overhead view"'
)


class CaptionError(ValueError):
    """A caption (or object) outside the toy world; the message is one sentence for a user."""


def _known() -> str:
    """The vocabulary and the grammar, as the tail of an error sentence."""
    return f"Known shapes: {', '.join(SHAPES)}; colours: {', '.join(COLORS)}; {_FORM}."


def _article(word: str) -> str:
    """'an' before a vowel-initial word, else 'a'."""
    return "an" if word[:1] in "aeiou" else "a"


@dataclass(frozen=True)
class ToyObject:
    """A shape with a body colour and an optional, different front colour."""

    shape: str
    color: str
    front_color: str | None = None

    def __post_init__(self) -> None:
        if self.shape not in SHAPES:
            raise CaptionError(f'unknown shape "{self.shape}". {_known()}')
        for c in (self.color, self.front_color):
            if c is not None and c not in COLORS:
                raise CaptionError(f'unknown colour "{c}". {_known()}')
        if self.front_color == self.color:
            raise CaptionError(
                f'the front colour of a {self.color} {self.shape} must differ from its '
                f'body colour "{self.color}".'
            )

    @property
    def text(self) -> str:
        """Canonical caption, e.g. 'an orange cube with a yellow front'."""
        base = f"{_article(self.color)} {self.color} {self.shape}"
        if self.front_color is None:
            return base
        return f"{base} with {_article(self.front_color)} {self.front_color} front"


@dataclass(frozen=True)
class Caption:
    """An object and an optional view suffix (one of world.VIEWS)."""

    obj: ToyObject
    view: str | None = None

    def __post_init__(self) -> None:
        if self.view is not None and self.view not in VIEWS:
            raise CaptionError(
                f'unknown view "{self.view}": views are {", ".join(VIEWS)}.'
            )

    @property
    def text(self) -> str:
        """Canonical caption, e.g. 'a red cube with a yellow front, side view'."""
        return self.obj.text if self.view is None else f"{self.obj.text}, {self.view} view"

    def with_view(self, view: str | None) -> "Caption":
        """The same object with another (or no) view suffix."""
        return Caption(self.obj, view)


def _normalise(text: str) -> str:
    """Lower case, no surrounding spaces or trailing period, single inner spaces."""
    s = re.sub(r"\s+", " ", text.strip().lower())
    s = s[:-1].rstrip() if s.endswith(".") else s
    return re.sub(r"\s*,\s*", ", ", s)


def _not_in_world(text: str, reason: str) -> CaptionError:
    """The one-sentence error for a caption that does not parse."""
    return CaptionError(f'"{text.strip()}" is not in the toy world: {reason}. {_known()}')


def _parse_object(words: list[str]) -> tuple[str, str, str | None] | None:
    """(shape, colour, front colour) from the words before the comma, or None."""
    if len(words) not in (3, 7) or words[0] not in _ARTICLES:
        return None
    color, shape = words[1], words[2]
    if color not in COLORS or shape not in SHAPES:
        return None
    if len(words) == 3:
        return shape, color, None
    w, art, front, tail = words[3:]
    if w != "with" or art not in _ARTICLES or front not in COLORS or tail != "front":
        return None
    return shape, color, front


def _parse_view(words: list[str]) -> str | None:
    """View name from the words after the comma ('side view' -> 'side'), or None."""
    if len(words) == 2 and words[0] in VIEWS and words[1] == "view":
        return words[0]
    return None


def parse_caption(text: str) -> Caption:
    """Parse a toy-world caption; raise CaptionError (one clear sentence) otherwise."""
    if not isinstance(text, str):
        raise TypeError(f"caption must be a string, not {type(text).__name__}")
    if not text.strip(" \t\n\r."):
        raise CaptionError(f"caption is empty: write e.g. \"a red cube\". {_known()}")
    s = _normalise(text)
    unknown = list(dict.fromkeys(w for w in re.split(r"[ ,]+", s) if w and w not in _KNOWN_WORDS))
    if unknown:
        noun = "word" if len(unknown) == 1 else "words"
        quoted = ", ".join(f'"{w}"' for w in unknown)
        raise _not_in_world(text, f"unknown {noun} {quoted}")
    parts = s.split(", ")
    fields = _parse_object(parts[0].split(" ")) if len(parts) <= 2 else None
    view = _parse_view(parts[1].split(" ")) if len(parts) == 2 else None
    if fields is None or (len(parts) == 2 and view is None):
        raise _not_in_world(text, "its words are known but not in the caption form")
    shape, color, front = fields
    if front == color:
        raise _not_in_world(
            text, f'the front colour must differ from the body colour "{color}"'
        )
    return Caption(ToyObject(shape, color, front), view)


def single_color_objects() -> list[ToyObject]:
    """The 36 single-colour objects, shape-major in world order."""
    return [ToyObject(s, c) for s in SHAPES for c in COLORS]


def all_objects() -> list[ToyObject]:
    """All 216 objects: the 36 single-colour ones, then the 180 with a different front."""
    fronts = [ToyObject(s, c, f) for s in SHAPES for c in COLORS for f in COLORS if f != c]
    return single_color_objects() + fronts
