"""Config files and values: every option from YAML/JSON, bad keys and values named."""
import json
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dreamfusion.cli import UserError, build_parser, config_from_args, main
from dreamfusion.config import RunConfig, preset, to_dict
from dreamfusion.config_check import ConfigError, apply_file, from_dict, validate


def args_for(*argv):
    return build_parser().parse_args(["generate", *argv])


def test_yaml_and_json_files_set_every_option_and_the_command_line_wins(tmp_path):
    text = """
caption: a green cone
steps: 123
guidance:
  guidance_scale: 2.0
  view_prompts: false
cameras:
  el_range: [0, 45]
render:
  background: black
"""
    (tmp_path / "c.yaml").write_text(text)
    cfg = config_from_args(args_for("--config", str(tmp_path / "c.yaml"), "--seed", "3"))
    assert (cfg.caption, cfg.steps, cfg.seed) == ("a green cone", 123, 3)
    assert cfg.guidance.guidance_scale == 2.0 and cfg.guidance.view_prompts is False
    assert cfg.cameras.el_range == (0.0, 45.0) and cfg.render.background == "black"
    cfg = config_from_args(args_for("a red cube", "--config", str(tmp_path / "c.yaml"),
                                    "--steps", "7", "--set", "guidance.guidance_scale=3"))
    assert (cfg.caption, cfg.steps, cfg.guidance.guidance_scale) == ("a red cube", 7, 3.0)
    # a run's own config.json is a valid config file: the round trip is exact
    full = preset("quality")
    (tmp_path / "full.json").write_text(json.dumps(to_dict(full)))
    assert apply_file(RunConfig(), tmp_path / "full.json") == full


@pytest.mark.parametrize("data,key", [
    ({"guidance": {"scale": 2}}, "guidance.scale"),
    ({"stepz": 5}, "stepz"),
    ({"steps": "ten"}, "steps"),
    ({"steps": 2.5}, "steps"),
    ({"steps": True}, "steps"),
    ({"guidance": {"view_prompts": 1}}, "guidance.view_prompts"),
    ({"guidance": {"guidance_scale": "high"}}, "guidance.guidance_scale"),
    ({"render": {"background": "purple"}}, "render.background"),
    ({"cameras": {"el_range": [10]}}, "cameras.el_range"),
    ({"cameras": {"el_range": "low"}}, "cameras.el_range"),
    ({"field": {"density_levels": ["a"]}}, "field.density_levels[0]"),
    ({"guidance": 3}, "guidance"),
])
def test_unknown_keys_and_wrong_types_are_named(data, key):
    with pytest.raises(ConfigError, match=key.replace("[", r"\[").replace("]", r"\]")):
        from_dict(RunConfig, data)


@pytest.mark.parametrize("changes,key", [
    ({"size": 4}, "size"), ({"steps": 0}, "steps"),
    ({"guidance": {"t_max": 1.5}}, "guidance.t_max"),
    ({"guidance": {"t_min": 0.5, "t_max_final": 0.3}}, "guidance.t_min"),
    ({"field": {"density_levels": [8, 128]}}, "field.density_levels"),
    ({"cameras": {"dist_range": [3.0, 2.0]}}, "cameras.dist_range"),
    ({"faults": {"lr_factor": 0.0}}, "faults.lr_factor"),
    ({"optim": {"lr_density": float("nan")}}, "optim.lr_density"),
    ({"render": {"formation_size": 4}}, "render.formation_size"),
    ({"render": {"formation_steps": [0.6, 0.2]}}, "render.formation_steps"),
    ({"refine": {"flat_start": 1.5}}, "refine.flat_start"),
])
def test_values_out_of_range_are_named(changes, key):
    with pytest.raises(ConfigError, match=key):
        validate(from_dict(RunConfig, changes))


@pytest.mark.parametrize("name,text,message", [
    ("bad.yaml", "steps: [1, 2\n", "not valid YAML"),
    ("bad.json", "{steps: 1}", "cannot be read"),
    ("list.yaml", "- 1\n- 2\n", "mapping"),
    ("c.toml", "steps = 1", ".json, .yaml or .yml"),
    ("types.yaml", "guidance:\n  t_max: high\n", "guidance.t_max"),
])
def test_bad_config_files_are_one_message_and_touch_nothing(tmp_path, capsys, name, text,
                                                            message):
    run = tmp_path / "earlier"
    run.mkdir()
    (run / "config.json").write_text('{"caption": "mine"}')
    (run / "mesh.glb").write_bytes(b"precious")
    (tmp_path / name).write_text(text)
    for target in (run, tmp_path / "new"):
        code = main(["generate", "a red cube", "--config", str(tmp_path / name),
                     "--out", str(target), "--overwrite"])
        err = capsys.readouterr().err
        assert code == 2 and message in err and "Traceback" not in err
    assert (run / "mesh.glb").read_bytes() == b"precious"
    assert (run / "config.json").read_text() == '{"caption": "mine"}'
    assert not (tmp_path / "new").exists()


def test_missing_config_file_and_missing_caption(tmp_path, capsys):
    assert main(["generate", "--config", str(tmp_path / "none.yaml")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["generate", "--out", str(tmp_path / "r")]) == 2
    assert "no caption" in capsys.readouterr().err


# -- property: any value for any key is either a valid config or a named error ---------------
KEYS = sorted(
    f"{group}.{name}" if isinstance(sub, dict) else group
    for group, value in to_dict(RunConfig()).items()
    for name, sub in (value.items() if isinstance(value, dict) else [(group, value)])
)
VALUES = st.one_of(
    st.integers(-10**6, 10**6).map(str), st.floats(allow_nan=True).map(repr),
    st.sampled_from(["true", "false", "nan", "inf", "-1", "0", "1e9", "", "0.5,0.5",
                     "white", "toy", "sds", "auto", "1,2,3"]),
    st.text(string.printable, max_size=12),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(key=st.sampled_from(KEYS), raw=VALUES)
def test_any_set_value_gives_a_valid_config_or_a_user_error(key, raw):
    try:
        cfg = config_from_args(args_for("a red cube", "--set", f"{key}={raw}"))
    except UserError as err:
        assert key in str(err) or "KEY=VALUE" in str(err)
        return
    assert validate(cfg) is cfg


@settings(max_examples=300, deadline=None)
@given(key=st.sampled_from(KEYS), value=st.one_of(
    st.none(), st.booleans(), st.integers(-10**9, 10**9), st.floats(),
    st.text(max_size=8), st.lists(st.floats(-100, 100), max_size=3),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2)))
def test_any_config_file_value_gives_a_valid_config_or_a_named_error(key, value):
    group, _, name = key.partition(".")
    data = {group: {name: value}} if name else {group: value}
    try:
        validate(from_dict(RunConfig, data))
    except ConfigError as err:
        assert key.split(".")[-1] in str(err) or group in str(err)


def test_the_example_config_in_docs_loads():
    from pathlib import Path
    path = Path(__file__).parent.parent / "docs" / "example-config.yaml"
    cfg = config_from_args(args_for("--config", str(path)))
    assert cfg.caption == "a blue torus" and cfg.faults.max_rollbacks == 3
