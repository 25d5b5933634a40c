"""Methods are compositions of a 3D model and a Guidance (train.METHODS), not branches."""
import torch

from dreamfusion import train
from dreamfusion.config import override, preset
from dreamfusion.field import GridField
from dreamfusion.guidance.image_text import ImageTextGuidance
from dreamfusion.guidance.objective import Guidance, Views
from dreamfusion.guidance.sds_guidance import SDSGuidance
from dreamfusion.guidance.toy import ToyPrior
from dreamfusion.mesh_model import MeshModel
from dreamfusion.cameras import sample_cameras
from dreamfusion.render import Shading


def small(**changes):
    return override(preset("fast"), size=8, batch_size=2, steps=40, device="cpu",
                    **{"field.resolution": 16, "field.density_levels": (8, 16),
                       "field.albedo_levels": (4, 8)}, **changes)


def test_each_method_is_a_model_and_a_guidance():
    prior = ToyPrior(size=8, bank_size=4, uncond_bank_size=4)
    expected = {"dreamfusion": (GridField, SDSGuidance, {"sds", "orientation", "opacity"}),
                "dreamfields": (GridField, ImageTextGuidance, {"clip", "transmittance"}),
                "clipmesh": (MeshModel, ImageTextGuidance, {"clip", "laplacian"})}
    for method, (model, guidance, terms) in expected.items():
        trainer = train.Trainer(small(method=method), prior if method == "dreamfusion" else None,
                                torch.device("cpu"))
        assert type(trainer.field) is model and type(trainer.guidance) is guidance
        losses = trainer.train_step()
        assert set(losses) == {"loss", "fault"} | terms


class PaintRed(Guidance):
    """A guidance written outside the trainer: albedo renders should be pure red."""

    def __init__(self, cfg, guide, device, generator):
        self.cfg, self.device, self.generator = cfg, device, generator

    def sample_views(self, step):
        n = self.cfg.batch_size
        cams = sample_cameras(n, self.cfg.cameras, self.generator)
        return Views(cams, self.cfg.size, Shading.albedo(n), torch.ones(n, 3))

    def losses(self, out, views, step):
        red = torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1)
        weight = out["opacity"].detach()  # (B, 1, H, W): only where the object is
        return {"red": ((out["image"] - red) ** 2 * weight).mean()}, {"red": 1.0}


def test_a_new_guidance_plugs_in_without_touching_the_trainer(monkeypatch):
    monkeypatch.setitem(train.METHODS, "dreamfusion", (train.METHODS["dreamfusion"][0], PaintRed))
    trainer = train.Trainer(small(), None, torch.device("cpu"))
    first = trainer.train_step()["red"]
    for _ in range(39):
        last = trainer.train_step()["red"]
    assert float(last) < 0.3 * float(first)
    albedo = trainer.field.albedo(torch.zeros(1, 3))[0]
    assert albedo[0] > 0.8 and albedo[1] < 0.2 and albedo[2] < 0.2
