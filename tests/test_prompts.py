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


def test_plain_cameras_get_the_caption_as_is():
    prior = ToyPrior(size=8, bank_size=2, uncond_bank_size=4)
    prompts = PromptSet(prior, "a red cube", view_dependent=True)
    cams = Cameras.from_angles([0, 0, 0], [180, 180, 90])
    cond, _ = prompts.for_cameras(cams, torch.tensor([True, False, False]))
    want = prior.encode_text(["a red cube", "a red cube, back view", "a red cube, side view"])
    assert cond.tolist() == want.tolist()


def test_trainer_mixes_plain_and_view_cameras():
    from dreamfusion.config import override, preset
    from dreamfusion.train import Trainer
    cfg = override(preset("fast"), batch_size=400, size=8,
                   **{"guidance.bank_size": 2, "guidance.uncond_bank_size": 2})
    trainer = Trainer(cfg, ToyPrior(size=8, bank_size=2, uncond_bank_size=2), torch.device("cpu"))
    cams, plain = trainer.guidance.sample_step_cameras(trainer.step)
    assert 0.4 < float(plain.float().mean()) < 0.6
    assert cams.el[plain].max() <= 60  # photo-like elevations
    assert float((cams.az[plain].abs() <= 45).float().mean()) > 0.55  # front-biased
    assert float((cams.az[~plain] % 360 > 180).float().mean()) > 0.35  # uniform azimuths
