"""The defaults that keep a front: at the TRUE object, the toy prior's SDS pull must not
erase the front colour (bank size) nor darken albedo-only renders (their brightness).

Thresholds from `benchmarks/front_pull.py` on "a red cylinder with a yellow front",
camera seeds 1-3: side-view pull on the front with 128 photos per caption -0.237 /
-0.118 / -0.131, with 512 +0.062 / +0.049 / +0.067; darkening of albedo-only renders
at brightness 1: 0.080 / 0.080 / 0.067, at 0.8: -0.020 / -0.014 / -0.022.
"""
import importlib.util
from pathlib import Path

import pytest

from dreamfusion.config import RunConfig

CAPTION = "a red cylinder with a yellow front"


@pytest.fixture(scope="module")
def front_pull():
    path = Path(__file__).parent.parent / "benchmarks" / "front_pull.py"
    spec = importlib.util.spec_from_file_location("front_pull", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.front_pull


def test_side_views_keep_the_front_with_the_default_bank_and_erase_it_with_a_small_one(front_pull):
    bank = RunConfig().guidance.bank_size
    assert front_pull(CAPTION, bank, "side", n=32, reps=4)["front"] > 0.02
    assert front_pull(CAPTION, 128, "side", n=32, reps=4)["front"] < -0.05


def test_albedo_only_renders_at_the_default_brightness_are_not_darkened(front_pull):
    bright = RunConfig().shading.albedo_brightness
    bank = RunConfig().guidance.bank_size
    assert front_pull(CAPTION, bank, "front", bright, n=32, reps=4)["darken"] < 0.005
    assert front_pull(CAPTION, bank, "front", 1.0, n=32, reps=4)["darken"] > 0.04
