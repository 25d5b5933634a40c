"""View-dependent prompting."""
import torch

from dreamfusion.cameras import Cameras
from dreamfusion.guidance.toy import ToyPrior
from dreamfusion.prompts import PromptSet, strip_view, view_prompt


def test_view_prompt_text():
    assert view_prompt("a red cube", "side") == "a red cube, side view"
    assert view_prompt("a red cube, back view", "front") == "a red cube, front view"
    assert strip_view("a red cube , Overhead view.") == "a red cube"


def test_each_camera_gets_its_view_prompt():
    prior = ToyPrior(size=8, bank_size=2, uncond_bank_size=4)
    prompts = PromptSet(prior, "a red cube", view_dependent=True)
    cams = Cameras.from_angles([0, 0, 0, 80], [0, 90, 180, 0])
    assert prompts.texts_for(cams) == [f"a red cube, {v} view" for v in ("front", "side", "back", "overhead")]
    cond, uncond = prompts.for_cameras(cams)
    assert cond.tolist() == prior.encode_text(prompts.texts_for(cams)).tolist()
    assert uncond.tolist() == prior.encode_text([""] * 4).tolist()


def test_without_view_prompts_every_camera_gets_the_caption():
    prior = ToyPrior(size=8, bank_size=2, uncond_bank_size=4)
    prompts = PromptSet(prior, "a red cube", view_dependent=False)
    cams = Cameras.from_angles([0, 0], [0, 180])
    cond, _ = prompts.for_cameras(cams)
    assert cond.tolist() == prior.encode_text(["a red cube"] * 2).tolist()


def test_caption_with_its_own_view_is_kept():
    prior = ToyPrior(size=8, bank_size=2, uncond_bank_size=4)
    prompts = PromptSet(prior, "a red cube, back view", view_dependent=True)
    assert prompts.texts_for(Cameras.from_angles([0], [0])) == ["a red cube, back view"]


def test_plain_front_uses_the_caption_for_front_cameras():
    prior = ToyPrior(size=8, bank_size=2, uncond_bank_size=4)
    prompts = PromptSet(prior, "a red cube", view_dependent=True, plain_front=True)
    cams = Cameras.from_angles([0, 0], [0, 180])
    cond, _ = prompts.for_cameras(cams)
    assert prompts.texts_for(cams) == ["a red cube", "a red cube, back view"]
    assert cond.tolist() == prior.encode_text(prompts.texts_for(cams)).tolist()
