"""The training step: every background and shading mode runs and updates the field."""
import pytest
import torch

from dreamfusion.cameras import Cameras
from dreamfusion.config import ShadingConfig, override, preset
from dreamfusion.guidance.toy import ToyPrior
from dreamfusion.train import Trainer, sample_shading


def tiny_trainer(**changes):
    cfg = override(preset("fast"), size=8, batch_size=2, steps=10,
                   **{"guidance.bank_size": 4, "guidance.uncond_bank_size": 4,
                      "field.resolution": 16, "field.density_levels": (8, 16),
                      "field.albedo_levels": (4, 8)}, **changes)
    return Trainer(cfg, ToyPrior(size=8, bank_size=4, uncond_bank_size=4), torch.device("cpu"))


@pytest.mark.parametrize("background", ["white", "black", "random", "learned"])
def test_a_step_updates_the_field_for_every_background(background):
    trainer = tiny_trainer(**{"render.background": background})
    before = trainer.field.density_raw.detach().clone()
    losses = trainer.train_step()
    assert all(bool(torch.isfinite(v).all()) for v in losses.values())
    assert not torch.equal(before, trainer.field.density_raw.detach())
    if background == "learned":
        assert any(p.grad is not None for p in trainer.background.parameters())


def test_formation_steps_render_larger_against_a_prior_of_that_size():
    """render.formation_size: steps [2, 5) of 10 render at 12 px against a toy prior with
    12-px photos; the other steps at the run's 8 px against the run's prior."""
    trainer = tiny_trainer(**{"render.formation_size": 12,
                              "render.formation_steps": (0.2, 0.5)})
    sizes = []
    for _ in range(7):
        size, backend, _ = trainer.guidance.step_guide(trainer.step)
        sizes.append(size)
        assert backend.size == size
        losses = trainer.train_step()
        assert torch.isfinite(losses["sds"])
    assert sizes == [8, 8, 12, 12, 12, 8, 8]
    assert tiny_trainer().guidance.formation_guide is None  # off by default: nothing extra built


def test_state_dict_round_trip_restores_the_field():
    a, b = tiny_trainer(), tiny_trainer()
    for _ in range(3):
        a.train_step()
    b.load_state_dict(a.state_dict())
    assert b.step == 3
    assert torch.equal(a.field.density_raw, b.field.density_raw)


def test_shading_schedule():
    cams = Cameras.from_angles([0.0] * 4000, [0.0] * 4000)
    gen = torch.Generator().manual_seed(0)
    cfg = ShadingConfig(albedo_only_fraction=0.2, albedo_brightness=0.8)
    early = sample_shading(cfg, cams, 10, 100, gen)
    assert (early.diffuse == 0).all() and (early.ambient == 0.8).all() and not early.textureless.any()
    late = sample_shading(cfg, cams, 50, 100, gen)
    shaded = late.diffuse > 0
    assert (late.ambient[~shaded] == 0.8).all() and (late.ambient[shaded] == cfg.ambient).all()
    assert abs(float(shaded.float().mean()) - 0.75) < 0.03
    assert abs(float(late.textureless[shaded].float().mean()) - 0.5) < 0.04
    assert not late.textureless[~shaded].any()
    assert torch.allclose(late.light_dirs.norm(dim=-1), torch.ones(4000), atol=1e-5)


def test_mirror_x_keeps_the_trained_field_symmetric():
    """field.mirror_x: after steps from a noisy start, density and albedo equal their
    x-mirror images (and the field without it does not)."""
    def trained(mirror):
        trainer = tiny_trainer(**{"field.mirror_x": mirror, "field.init_noise": 0.5})
        for _ in range(3):
            trainer.train_step()
        return trainer.field
    field = trained(True)
    sigma, albedo = field.density_grid(), torch.sigmoid(field.albedo_raw)
    assert torch.allclose(sigma, sigma.flip(0), atol=1e-5)
    assert torch.allclose(albedo, albedo.flip(1), atol=1e-5)
    plain = trained(False).density_grid()
    assert not torch.allclose(plain, plain.flip(0), atol=1e-3)


def test_plain_cameras_start_after_their_fraction_of_the_steps():
    trainer = tiny_trainer(**{"guidance.plain_camera_fraction": 1.0,
                              "guidance.plain_camera_start": 0.5})
    masks = []
    for step in range(10):
        trainer.step = step
        masks.append(bool(trainer.guidance.sample_step_cameras(trainer.step)[1].any()))
    assert masks == [False] * 5 + [True] * 5


def test_the_gpu_code_path_of_a_step_reads_nothing_back_from_the_device(monkeypatch):
    """No host-device sync in a step on a GPU: every place the dense (GPU) path reads a
    tensor's values on the host is one that reads a host tensor by construction (the
    cameras and plain-camera mask drawn on the CPU before upload, the toy prior's bank
    ids). A new .item() / bool() / float() / .tolist() in rendering, guidance, the
    optimiser step or the fault check would show up at another place and fail this."""
    import traceback

    import dreamfusion.render as render_module
    monkeypatch.setattr(render_module, "compact_on", lambda device: False)
    trainer = tiny_trainer(**{"shading.albedo_only_fraction": 0.0})
    trainer.train_step()
    seen = set()
    for name in ("item", "tolist", "__bool__", "__float__", "__int__", "__index__"):
        real = getattr(torch.Tensor, name)

        def spy(self, *args, _real=real, _name=name, **kwargs):
            caller = traceback.extract_stack()[-2]
            seen.add((_name, caller.filename.rsplit("/", 1)[-1], caller.name))
            return _real(self, *args, **kwargs)
        monkeypatch.setattr(torch.Tensor, name, spy)
    for _ in range(3):
        trainer.train_step()
    monkeypatch.undo()
    host_reads = {("tolist", "cameras.py", "view_labels"), ("tolist", "prompts.py", "for_cameras"),
                  ("tolist", "toy.py", "mixture_rows")}
    assert seen <= host_reads, seen - host_reads
