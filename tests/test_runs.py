"""Run folders: unique default names, refusal, atomic writes, config round trip."""
import pytest

from dreamfusion.config import RunConfig, override, preset, to_dict
from dreamfusion.config_check import from_dict
from dreamfusion.runs import (
    RunFolderError,
    atomic_write_bytes,
    default_run_dir,
    load_config,
    prepare_run_dir,
    save_config,
    slugify,
)


def test_default_run_dir_never_lands_on_an_earlier_run(tmp_path):
    first = default_run_dir("A red cube!", tmp_path)
    assert first.name == "a-red-cube"
    first.mkdir()
    second = default_run_dir("A red cube!", tmp_path)
    assert second.name == "a-red-cube-2"
    second.mkdir()
    assert default_run_dir("A red cube!", tmp_path).name == "a-red-cube-3"
    assert slugify("   ") == "run"


def test_prepare_refuses_a_run_unless_overwrite(tmp_path):
    save_config(tmp_path, RunConfig())
    with pytest.raises(RunFolderError, match="already holds a run"):
        prepare_run_dir(tmp_path, overwrite=False)
    assert prepare_run_dir(tmp_path, overwrite=True) == tmp_path
    empty = tmp_path / "new"
    assert prepare_run_dir(empty, overwrite=False).is_dir()
    (tmp_path / "file").write_text("x")
    with pytest.raises(RunFolderError, match="not a folder"):
        prepare_run_dir(tmp_path / "file", overwrite=True)


def test_atomic_write_leaves_no_temporary_files(tmp_path):
    atomic_write_bytes(tmp_path / "a.bin", b"one")
    atomic_write_bytes(tmp_path / "a.bin", b"two")
    assert (tmp_path / "a.bin").read_bytes() == b"two"
    assert [p.name for p in tmp_path.iterdir()] == ["a.bin"]


def test_config_round_trip_and_unknown_keys(tmp_path):
    cfg = override(preset("quality"), caption="a blue torus", **{"guidance.guidance_scale": 2.0})
    save_config(tmp_path, cfg)
    assert load_config(tmp_path) == cfg
    data = to_dict(cfg)
    data["guidance"]["bogus"] = 1
    with pytest.raises(ValueError, match="bogus"):
        from_dict(RunConfig, data)
    with pytest.raises(ValueError, match="preset"):
        preset("slow")
