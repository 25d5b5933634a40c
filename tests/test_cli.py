"""Command line: help texts, and bad input -> one sentence, non-zero exit, nothing lost."""
import subprocess
import sys

import pytest

from dreamfusion.cli import build_parser, config_from_args, main


def run_cli(*args, cwd=None):
    """The real command in a subprocess: exit code and stderr as a user sees them."""
    return subprocess.run([sys.executable, "-m", "dreamfusion.cli", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=120)


def run_main(capsys, *args):
    """The same in-process (fast): (exit code, stderr)."""
    try:
        code = main(list(args))
    except SystemExit as exit_info:  # argparse errors
        code = exit_info.code
    return code, capsys.readouterr().err


def test_help_lists_every_generate_option(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["generate", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for option in ("--out", "--steps", "--seed", "--size", "--guidance", "--preset", "--device",
                   "--backend", "--no-view-prompts", "--shading", "--overwrite", "--resume",
                   "--config"):
        assert option in text


@pytest.mark.parametrize("caption,words", [
    ("a pink dog", ["pink", "dog"]),
    ("a red cube with a red front", ["front"]),
])
def test_caption_outside_world_is_one_clear_error(tmp_path, caption, words):
    proc = run_cli("generate", caption, "--out", str(tmp_path / "r"))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert all(w in proc.stderr for w in words)
    assert not (tmp_path / "r").exists()  # nothing created for a bad caption


def test_empty_caption(tmp_path, capsys):
    code, err = run_main(capsys, "generate", "   ", "--out", str(tmp_path / "r"))
    assert code == 2 and "empty" in err


@pytest.mark.parametrize("option,value", [
    ("--steps", "0"), ("--steps", "ten"), ("--size", "4"), ("--guidance", "-1"),
    ("--guidance", "nan"), ("--preset", "slow"), ("--device", "tpu"), ("--seed", "-3"),
    ("--backend", "imagen"),
])
def test_bad_option_values(tmp_path, capsys, option, value):
    code, err = run_main(capsys, "generate", "a red cube", option, value, "--out", str(tmp_path / "r"))
    assert code == 2 and option in err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("item,message", [
    ("guidance.nope=1", "unknown config key"), ("guidance.t_max=high", "not a valid value"),
    ("steps", "KEY=VALUE"), ("guidance=1", "group"),
])
def test_bad_set_overrides(tmp_path, capsys, item, message):
    code, err = run_main(capsys, "generate", "a red cube", "--set", item, "--out", str(tmp_path / "r"))
    assert code == 2 and message in err
    assert not (tmp_path / "r").exists()


def test_existing_run_is_refused_and_untouched(tmp_path):
    run = tmp_path / "earlier"
    run.mkdir()
    (run / "config.json").write_text('{"caption": "mine"}')
    (run / "mesh.glb").write_bytes(b"precious")
    proc = run_cli("generate", "a red cube", "--out", str(run))
    assert proc.returncode == 2 and "already holds a run" in proc.stderr
    assert (run / "config.json").read_text() == '{"caption": "mine"}'
    assert (run / "mesh.glb").read_bytes() == b"precious"


def test_export_of_a_folder_that_is_not_a_run(tmp_path, capsys):
    code, err = run_main(capsys, "export", str(tmp_path))
    assert code == 2 and "not a run folder" in err


def test_export_of_a_run_with_a_damaged_checkpoint(tmp_path, capsys):
    from dreamfusion.config import RunConfig
    from dreamfusion.runs import save_config
    save_config(tmp_path, RunConfig())
    (tmp_path / "checkpoint.pt").write_bytes(b"not a checkpoint")
    code, err = run_main(capsys, "export", str(tmp_path), "--device", "cpu")
    assert code == 1 and "damaged" in err


def test_options_reach_the_config():
    args = build_parser().parse_args([
        "generate", " a blue torus ", "--steps", "12", "--seed", "4", "--size", "24",
        "--guidance", "2.5", "--no-view-prompts", "--shading", "lambertian",
        "--set", "guidance.t_max_final=0.5", "--set", "reg.tv=0.1"])
    cfg = config_from_args(args)
    assert (cfg.caption, cfg.steps, cfg.seed, cfg.size) == ("a blue torus", 12, 4, 24)
    assert cfg.guidance.guidance_scale == 2.5 and cfg.guidance.view_prompts is False
    assert cfg.shading.textureless_probability == 0.0
    assert cfg.guidance.t_max_final == 0.5 and cfg.reg.tv == 0.1


def test_cuda_without_a_gpu_is_a_message(tmp_path, capsys, monkeypatch):
    import torch
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    code, err = run_main(capsys, "generate", "a red cube", "--device", "cuda",
                         "--out", str(tmp_path / "r"))
    assert code == 2 and "no CUDA GPU" in err
    assert not (tmp_path / "r").exists()


def test_retrieval_train_writes_a_new_file_not_the_shipped_weights(tmp_path, monkeypatch):
    """Without --out the weights go to a new file in the current folder, never over the
    package's (training replaced by a stub: only where it writes is tested)."""
    import dreamfusion.retrieval.train as rtrain
    from dreamfusion.retrieval.model import WEIGHTS
    written = []
    monkeypatch.setattr(rtrain, "train_retrieval", lambda *a, **k: (None, {"accuracy": 1}))
    monkeypatch.setattr(rtrain, "save", lambda model, report, path: (written.append(path),
                                                                     path.write_text("w")))
    monkeypatch.chdir(tmp_path)
    before = WEIGHTS.stat().st_mtime_ns
    assert main(["retrieval-train"]) == 0
    assert main(["retrieval-train"]) == 0
    assert written == [tmp_path / "retrieval-weights.pt", tmp_path / "retrieval-weights-2.pt"]
    assert WEIGHTS.stat().st_mtime_ns == before
    assert main(["retrieval-train", "--out", str(tmp_path / "mine.pt")]) == 0
    assert written[-1] == tmp_path / "mine.pt"
