"""Caption grammar of the toy world (docs/TOYWORLD.md, Captions)."""
import pytest

from dreamfusion.toyworld import (
    COLORS,
    SHAPES,
    VIEWS,
    Caption,
    CaptionError,
    ToyObject,
    all_objects,
    parse_caption,
    single_color_objects,
)


@pytest.mark.parametrize(
    "text, obj, view",
    [
        ("a red cube", ToyObject("cube", "red"), None),
        ("an orange cube", ToyObject("cube", "orange"), None),
        ("a orange cube", ToyObject("cube", "orange"), None),
        ("an red cube", ToyObject("cube", "red"), None),
        ("  A Blue SPHERE  ", ToyObject("sphere", "blue"), None),
        ("a   green    torus.", ToyObject("torus", "green"), None),
        ("a red cube with a yellow front", ToyObject("cube", "red", "yellow"), None),
        ("a red cube with an orange front", ToyObject("cube", "red", "orange"), None),
        ("a purple cone, side view", ToyObject("cone", "purple"), "side"),
        ("a purple cone , side view.", ToyObject("cone", "purple"), "side"),
        ("a purple cone,side view", ToyObject("cone", "purple"), "side"),
        ("A Yellow Pyramid With A Blue Front, Overhead View", ToyObject("pyramid", "yellow", "blue"), "overhead"),
        ("a red cylinder with a green front, front view", ToyObject("cylinder", "red", "green"), "front"),
        ("a red cylinder, back view", ToyObject("cylinder", "red"), "back"),
    ],
)
def test_parse_valid(text, obj, view):
    cap = parse_caption(text)
    assert cap == Caption(obj, view)


def test_canonical_text_round_trips():
    assert ToyObject("cube", "orange", "yellow").text == "an orange cube with a yellow front"
    assert ToyObject("cube", "red", "orange").text == "a red cube with an orange front"
    assert Caption(ToyObject("cube", "red", "yellow"), "side").text == (
        "a red cube with a yellow front, side view"
    )
    for obj in all_objects():
        for view in (None,) + VIEWS:
            cap = Caption(obj, view)
            assert parse_caption(cap.text) == cap


def test_with_view():
    cap = parse_caption("a red cube")
    assert cap.with_view("back").text == "a red cube, back view"
    assert cap.with_view("back").with_view(None) == cap
    with pytest.raises(CaptionError):
        cap.with_view("top")


def test_unknown_words_are_listed():
    with pytest.raises(CaptionError) as e:
        parse_caption("a pink dog")
    msg = str(e.value)
    assert '"a pink dog" is not in the toy world' in msg
    assert 'unknown words "pink", "dog"' in msg
    for word in SHAPES + tuple(COLORS):
        assert word in msg
    assert "with a {colour} front" in msg and "overhead view" in msg


def test_single_unknown_word():
    with pytest.raises(CaptionError, match='unknown word "top"'):
        parse_caption("a red cube, top view")


@pytest.mark.parametrize("text", ["", "   ", ".", "\n"])
def test_empty(text):
    with pytest.raises(CaptionError, match="caption is empty"):
        parse_caption(text)


@pytest.mark.parametrize(
    "text",
    ["red cube", "a cube red", "a red cube with a yellow", "a red cube, view",
     "a red cube, side", "a red cube,, side view", "a red cube, side view, front view",
     "a red cube front", "a red blue cube", "a red cube with yellow front"],
)
def test_known_words_bad_form(text):
    with pytest.raises(CaptionError, match="not in the caption form"):
        parse_caption(text)


def test_front_equal_to_body_is_an_error():
    with pytest.raises(CaptionError, match="front colour must differ"):
        parse_caption("a red cube with a red front")
    with pytest.raises(CaptionError, match="must differ"):
        ToyObject("cube", "red", "red")


def test_bad_objects():
    with pytest.raises(CaptionError, match="unknown shape"):
        ToyObject("dog", "red")
    with pytest.raises(CaptionError, match="unknown colour"):
        ToyObject("cube", "pink")
    assert isinstance(CaptionError("x"), ValueError)


def test_error_message_is_one_line():
    with pytest.raises(CaptionError) as e:
        parse_caption("a pink dog")
    assert "\n" not in str(e.value)


def test_all_objects():
    objs = all_objects()
    assert len(objs) == 216 and len(set(objs)) == 216
    assert len(single_color_objects()) == 36
    assert objs[:36] == single_color_objects()
    assert sum(o.front_color is not None for o in objs) == 180
    assert all(o.front_color != o.color for o in objs)
