"""The Python API and the presets: one resolution path for the CLI and Python."""
import json
from pathlib import Path

import pytest

import dreamfusion
from dreamfusion.cli import build_parser, config_from_args
from dreamfusion.config import PRESET_TABLE, PRESETS, RunConfig, preset, to_dict
from dreamfusion.config_check import validate

CASES = [
    # (CLI arguments, the same request as API keyword arguments)
    (["a red cube"], {}),
    (["a blue torus", "--steps", "12", "--seed", "4", "--size", "24", "--batch-size", "3",
      "--guidance", "2.5", "--no-view-prompts", "--shading", "lambertian", "--perp-neg",
      "--no-export", "--no-cache", "--device", "cpu",
      "--set", "guidance.t_max_final=0.5", "--set", "field.density_levels=8,16,32"],
     dict(steps=12, seed=4, size=24, batch_size=3, guidance=2.5, view_prompts=False,
          shading="lambertian", perp_neg=True, export=False, cache=False, device="cpu",
          settings={"guidance.t_max_final": 0.5, "field.density_levels": "8,16,32"})),
    (["a squirrel", "--backend", "sd", "--model", "/models/sd"],
     dict(backend="sd", model="/models/sd")),
    (["a squirrel", "--backend", "if", "--preset", "quality", "--guidance", "7"],
     dict(backend="if", preset="quality", guidance=7.0)),
    (["a red cube", "--method", "dreamfields", "--guide-model", "toy-b", "--preset", "quality"],
     dict(method="dreamfields", guide_model="toy-b", preset="quality")),
]


@pytest.mark.parametrize("argv,kwargs", CASES)
def test_api_and_cli_resolve_the_same_config(argv, kwargs):
    from_cli = config_from_args(build_parser().parse_args(["generate", *argv]))
    from_api = dreamfusion.make_config(argv[0], **kwargs)
    assert from_api == from_cli
    for key in ("steps", "seed", "size", "batch_size", "device"):
        if key in kwargs:
            assert getattr(from_api, key) == kwargs[key]


def test_a_config_file_names_the_backend_and_gets_its_preset(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"caption": "a squirrel", "guidance": {"backend": "sd"}}))
    from_api = dreamfusion.make_config(config=path)
    assert from_api == config_from_args(build_parser().parse_args(
        ["generate", "--config", str(path)]))
    assert from_api == dreamfusion.make_config("a squirrel", backend="sd")


@pytest.mark.parametrize("backend,scale", [("sd", 100.0), ("if", 20.0)])
def test_a_real_backend_gets_its_own_preset_not_the_toy_worlds(backend, scale):
    """Choosing sd or if anywhere (CLI, API, preset()) gives the recipe of that prior."""
    cfg = dreamfusion.make_config("a squirrel", backend=backend)
    assert cfg == validate(RunConfig(**{**vars(preset("fast", backend)), "caption": "a squirrel"}))
    toy = preset("fast")
    assert cfg.guidance.guidance_scale == scale != toy.guidance.guidance_scale
    assert (cfg.guidance.t_min, cfg.guidance.t_max) == (0.02, 0.98)
    assert cfg.guidance.t_max_final == 0.98 != toy.guidance.t_max_final
    assert cfg.size == 64 and cfg.batch_size == 1 and cfg.steps >= 2500 > toy.steps
    assert cfg.render.background == "learned" and cfg.guidance.plain_camera_fraction == 0
    assert (cfg.shading.ambient, cfg.shading.diffuse) == (0.1, 0.9)
    quality = dreamfusion.make_config("a squirrel", backend=backend, preset="quality")
    assert quality.steps == 10000 and quality.field.resolution > cfg.field.resolution
    # the refine stage at the prior's own image size (Stable Diffusion: its VAE's 512)
    assert cfg.refine.size == (512 if backend == "sd" else 64) and cfg.refine.distance_ends == 0


def test_every_preset_is_valid_and_cites_its_source():
    assert {name for _, name in PRESET_TABLE} == set(PRESETS)
    for (backend, name), p in PRESET_TABLE.items():
        assert validate(p.config) == p.config
        assert p.config.guidance.backend == backend and p.sources and p.summary
        assert preset(name, backend) == p.config
    assert to_dict(preset("fast")) == to_dict(RunConfig())  # RunConfig() is the toy fast preset


@pytest.mark.parametrize("kwargs,message", [
    (dict(stepz=3), "unknown option 'stepz'"),
    (dict(preset="slow"), "unknown preset"),
    (dict(backend="dalle"), "guidance.backend"),
    (dict(settings={"guidance.nope": 1}), "unknown config key"),
    (dict(settings={"guidance.t_max": "high"}), "not a valid value"),
    (dict(steps=0), "steps"),
])
def test_bad_options_are_one_user_error(kwargs, message):
    with pytest.raises(dreamfusion.UserError, match=message):
        dreamfusion.make_config("a red cube", **kwargs)


def test_generate_returns_the_files_and_metrics_and_refuses_to_overwrite(tmp_path):
    out = tmp_path / "run"
    small = dict(steps=30, size=16, device="cpu",
                 settings={"export.mesh_resolution": 32, "export.turntable_frames": 4,
                           "export.turntable_size": 32, "export.view_size": 32,
                           "preview_every": 0, "refine.enabled": False})
    run = dreamfusion.generate("a green sphere", out=out, **small)
    assert run.run_dir == out and run.config.caption == "a green sphere"
    assert set(run.files) >= {"glb", "obj", "ply", "views", "turntable"}
    assert all(Path(p).is_file() and Path(p).parent == out for p in run.files.values())
    assert run.metrics == json.loads((out / "metrics.json").read_text())
    assert run.metrics["step"] == 30 and run.metrics["ground_truth"]["retrieved_shape"] == "sphere"
    before = (out / "metrics.json").read_bytes()
    with pytest.raises(dreamfusion.UserError, match="already"):
        dreamfusion.generate("a green sphere", out=out, **small)
    with pytest.raises(dreamfusion.UserError, match="already finished"):
        dreamfusion.resume(out)
    assert (out / "metrics.json").read_bytes() == before


def test_a_bad_caption_creates_nothing(tmp_path):
    with pytest.raises(dreamfusion.UserError, match="shape"):
        dreamfusion.generate("a red teapot", out=tmp_path / "run", steps=5)
    assert not (tmp_path / "run").exists()
