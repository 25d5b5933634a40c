"""Stable Diffusion and IF backends with tiny random models from local folders (CPU).

diffusers and transformers are in the test extra, so these run in every CI run."""
import builtins
import shutil

import pytest
import torch
import trimesh

from dreamfusion import runs
from dreamfusion.cli import main
from dreamfusion.config import override, preset
from dreamfusion.guidance.deepfloyd_if import DeepFloydIF
from dreamfusion.guidance.diffusers_backend import BackendLoadError, require_diffusers
from dreamfusion.guidance.stable_diffusion import StableDiffusion
from dreamfusion.train import Trainer
from tiny_models import tiny_deepfloyd_if, tiny_stable_diffusion  # tests/ helper

BACKENDS = {"sd": (StableDiffusion, tiny_stable_diffusion),
            "if": (DeepFloydIF, tiny_deepfloyd_if)}


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    built = {name: build(root / name) for name, (_, build) in BACKENDS.items()}
    built["sd-v"] = tiny_stable_diffusion(root / "sd-v", prediction_type="v_prediction")
    return built


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DREAMFUSION_CACHE", str(tmp_path / "cache"))


def tiny_run_cfg(backend, folder, **changes):
    cfg = override(preset("fast"), caption="a squirrel wearing a hat", steps=3, size=16,
                   device="cpu", preview_every=0, checkpoint_every=0,
                   **{"guidance.backend": backend, "guidance.model": str(folder),
                      "guidance.guidance_scale": 20.0, "field.resolution": 16,
                      "field.density_levels": (8, 16), "field.albedo_levels": (4, 8)})
    return override(cfg, **changes)


@pytest.mark.parametrize("name", ["sd", "if"])
def test_shapes_and_gradient_through_the_image_encoder(folders, name):
    cls = BACKENDS[name][0]
    backend = cls(str(folders[name]), torch.device("cpu"))
    emb = backend.encode_text(["a squirrel", ""])
    assert emb.shape[:2] == (2, 77)
    images = torch.rand(2, 3, 16, 16, requires_grad=True)
    z = backend.encode_images(images)
    expected = (2, 4, 8, 8) if name == "sd" else (2, 3, 16, 16)
    assert z.shape == expected
    eps = backend.predict_noise(z.detach(), torch.tensor([10, 900]), emb)
    assert eps.shape == expected and torch.isfinite(eps).all()
    z.sum().backward()  # the VAE encoder / resize is in the graph
    assert images.grad is not None and images.grad.abs().sum() > 0
    assert not any(p.requires_grad for p in backend.unet.parameters())
    assert backend.alphas_cumprod.shape == (1000,)
    assert backend.prediction_type == "epsilon"


@pytest.mark.parametrize("name", ["sd", "if"])
def test_the_text_encoder_is_freed_before_the_unet_is_loaded(folders, monkeypatch, name):
    """The load order: prompts embedded, text encoder freed, then UNet (and VAE)."""
    from dreamfusion import model_loading
    cls = BACKENDS[name][0]
    events = []
    real = model_loading.load_weights

    def logged(part_cls, model, subfolder, *args, **kwargs):
        events.append((subfolder, backend.text_encoder is not None))
        return real(part_cls, model, subfolder, *args, **kwargs)

    for module in ("diffusers_backend", "stable_diffusion"):
        monkeypatch.setattr(f"dreamfusion.guidance.{module}.load_weights", logged)
    backend = cls(str(folders[name]), torch.device("cpu"), text_cache=False)
    trainer = Trainer(tiny_run_cfg(name, folders[name]), backend, torch.device("cpu"))
    assert backend.unet is None and backend.text_encoder is None
    assert not trainer.train_step()["fault"]
    parts = ["text_encoder", "unet", "vae"] if name == "sd" else ["text_encoder", "unet"]
    assert [sub for sub, _ in events] == parts
    assert [alive for _, alive in events] == [False] * len(parts)  # never together


def test_the_embedding_cache_is_keyed_by_dtype_and_refuses_non_finite(folders):
    texts = ["a hat", ""]
    StableDiffusion(str(folders["sd"]), torch.device("cpu")).encode_text(texts)  # fp32
    half = StableDiffusion(str(folders["sd"]), torch.device("cpu"), precision="bf16")
    loads = []
    real = half._load_text_encoder
    half._load_text_encoder = lambda: loads.append(1) or real()
    emb = half.encode_text(texts)
    assert loads and emb.dtype == torch.bfloat16  # a miss: computed again in bf16
    broken = StableDiffusion(str(folders["sd"]), torch.device("cpu"))
    broken._embed = lambda batch: torch.full((len(batch), 77, 32), float("nan"))
    with pytest.raises(BackendLoadError, match="non-finite embedding for 'a new text'"):
        broken.encode_text(["a new text"])
    assert not broken._cache_path("a new text").exists()  # never cached


@pytest.mark.parametrize("name", ["sd", "if"])
def test_one_sds_step_moves_the_field(folders, name):
    cfg = tiny_run_cfg(name, folders[name])
    backend = BACKENDS[name][0](str(folders[name]), torch.device("cpu"))
    trainer = Trainer(cfg, backend, torch.device("cpu"))
    assert backend.text_encoder is None  # freed once the prompts are embedded
    before = [p.detach().clone() for p in trainer.field.density_levels]
    losses = trainer.train_step()
    assert not losses["fault"]
    assert any(not torch.equal(a, p) for a, p in zip(before, trainer.field.density_levels))


@pytest.mark.parametrize("name", ["sd", "if"])
def test_a_perp_neg_step_mixes_real_embeddings_and_moves_the_field(folders, name):
    from dreamfusion.cameras import Cameras
    from dreamfusion.config import override
    cfg = override(tiny_run_cfg(name, folders[name]), **{"guidance.perp_neg": True})
    backend = BACKENDS[name][0](str(folders[name]), torch.device("cpu"))
    trainer = Trainer(cfg, backend, torch.device("cpu"))
    v = trainer.guidance.prompts.views
    texts = trainer.guidance.prompts.conditions(Cameras.from_angles([10.0], [30.0]), None, cfg.guidance)
    assert torch.allclose(texts["cond"][0], (2 / 3) * v["front"] + (1 / 3) * v["side"], atol=1e-5)
    assert texts["negatives"].shape == (1, 2, *v["front"].shape)
    before = [p.detach().clone() for p in trainer.field.density_levels]
    assert not trainer.train_step()["fault"]
    assert any(not torch.equal(a, p) for a, p in zip(before, trainer.field.density_levels))


@pytest.mark.parametrize("name", ["sd", "if"])
def test_cached_embeddings_never_load_the_text_encoder(folders, tmp_path, name):
    cls, _ = BACKENDS[name]
    texts = ["a hat", ""]
    a = cls(str(folders[name]), torch.device("cpu")).encode_text(texts)  # fills the cache
    again = cls(str(folders[name]), torch.device("cpu"))
    again._load_text_encoder = lambda: pytest.fail("the text encoder was loaded")
    assert torch.equal(again.encode_text(texts), a)
    # a different model in another folder gets its own embeddings
    copy = tmp_path / "copy"
    shutil.copytree(folders[name], copy)
    other = cls(str(copy), torch.device("cpu"))
    assert torch.equal(other.encode_text(texts), a) and other.text_encoder is not None


def test_missing_folder_and_offline_hub_id_are_messages(tmp_path, capsys):
    with pytest.raises(BackendLoadError, match="no such folder"):
        StableDiffusion(str(tmp_path / "nope"), torch.device("cpu"))
    with pytest.raises(BackendLoadError, match="someone/not-a-model"):
        DeepFloydIF("someone/not-a-model", torch.device("cpu"), local_files_only=True)
    code = main(["generate", "a squirrel", "--backend", "sd", "--model", str(tmp_path / "nope"),
                 "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2 and "no such folder" in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_without_the_extra_the_message_says_how_to_install(monkeypatch):
    real_import = builtins.__import__

    def no_diffusers(name, *args, **kwargs):
        if name.split(".")[0] == "diffusers":
            raise ImportError("No module named 'diffusers'", name="diffusers")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_diffusers)
    with pytest.raises(BackendLoadError, match=r'pip install "dreamfusion\[diffusers\]"'):
        require_diffusers()


@pytest.mark.parametrize("name", ["sd", "if", "sd-v"])
def test_generate_end_to_end_through_export(folders, tmp_path, capsys, name):
    run_dir = tmp_path / "run"
    backend = name.split("-")[0]
    code = main(["generate", "a squirrel wearing a hat", "--backend", backend, "--model",
                 str(folders[name]), "--steps", "3", "--size", "16", "--device", "cpu",
                 "--quiet", "--out", str(run_dir),
                 "--set", "field.resolution=16", "--set", "field.density_levels=8,16",
                 "--set", "field.albedo_levels=4,8", "--set", "export.mesh_resolution=32",
                 "--set", "export.turntable_frames=2", "--set", "export.turntable_size=16",
                 "--set", "export.view_size=16", "--set", "preview_every=0"])
    assert code == 0, capsys.readouterr().err
    cfg = runs.load_config(run_dir)
    assert cfg.guidance.backend == backend and cfg.guidance.guidance_scale == (
        100.0 if backend == "sd" else 20.0)  # the backend's default, not the toy prior's
    if name == "sd-v":  # the folder's UNet predicts v, and the backend reads it so
        assert StableDiffusion(str(folders[name]), "cpu").prediction_type == "v_prediction"
    mesh = trimesh.load(run_dir / "mesh.glb", force="mesh")
    assert len(mesh.faces) > 0
    assert runs.read_status(run_dir)["status"] == "finished"


@pytest.mark.parametrize("name", ["sd", "if"])
def test_the_refine_stage_runs_on_a_real_prior_and_exports_its_mesh(folders, tmp_path, capsys, name):
    """Stage 2 with Stable Diffusion / IF: the mesh drawn by the hard rasteriser goes
    through the backend's own image path (SD: resized for its VAE), and the export is the
    refined mesh: one closed shell."""
    run_dir = tmp_path / "run"
    code = main(["generate", "a squirrel wearing a hat", "--backend", name, "--model",
                 str(folders[name]), "--steps", "3", "--size", "16", "--device", "cpu",
                 "--quiet", "--out", str(run_dir), "--refine",
                 "--set", "field.resolution=16", "--set", "field.density_levels=8,16",
                 "--set", "field.albedo_levels=4,8", "--set", "refine.steps=2",
                 "--set", "refine.size=32", "--set", "refine.mesh_resolution=16",
                 "--set", "export.turntable_frames=2", "--set", "export.turntable_size=16",
                 "--set", "export.view_size=16", "--set", "preview_every=0"])
    assert code == 0, capsys.readouterr().err
    assert runs.read_checkpoint(run_dir / runs.CHECKPOINT)["stage"] == "refine"
    assert runs.read_status(run_dir)["status"] == "finished"
    mesh = trimesh.load(run_dir / "mesh.ply", force="mesh")
    assert mesh.is_watertight and len(mesh.split(only_watertight=False)) == 1
