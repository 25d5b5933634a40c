"""Runs that survive: kill -9 and resume, SIGINT/SIGTERM, damaged checkpoints, NaNs."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch
import trimesh

from dreamfusion import runs
from dreamfusion.config import override, preset
from dreamfusion.guidance.toy import ToyPrior
from dreamfusion.train import TrainingDiverged, train

TINY = {  # a run of a few seconds: 16x16 renders, 16^3 grid, small export
    "size": 16, "batch_size": 2, "preview_every": 0, "checkpoint_every": 10,
    "guidance": {"bank_size": 8, "uncond_bank_size": 8},
    "field": {"resolution": 16, "density_levels": [8, 16], "albedo_levels": [4, 8]},
    "export": {"mesh_resolution": 32, "turntable_frames": 2, "turntable_size": 16,
               "view_size": 16},
    "refine": {"enabled": False},  # the stage's own tests turn it on (test_refine.py)
}


def tiny_cfg(steps=30, **changes):
    cfg = override(preset("fast"), caption="a red cube", steps=steps, size=16, device="cpu",
                   preview_every=0, checkpoint_every=10,
                   **{"guidance.bank_size": 8, "guidance.uncond_bank_size": 8,
                      "field.resolution": 16, "field.density_levels": (8, 16),
                      "field.albedo_levels": (4, 8), "refine.enabled": False})
    return override(cfg, **changes)


def tiny_prior():
    return ToyPrior(size=16, bank_size=8, uncond_bank_size=8)


def start_cli(tmp_path, run_dir, *extra, steps=200):
    """`dreamfusion generate` on the tiny config in a subprocess (not waited for)."""
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps({**TINY, "steps": steps}))
    cmd = [sys.executable, "-m", "dreamfusion.cli", "generate", "a red cube", "--config",
           str(config), "--out", str(run_dir), "--device", "cpu", "--quiet", *extra]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_step(proc, run_dir, step, timeout=120):
    """Block until status.json reports at least `step` (the run is then mid-way)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        status = runs.read_status(run_dir)
        if status and status["step"] >= step:
            return status["step"]
        assert proc.poll() is None, proc.communicate()[1]
        time.sleep(0.01)
    raise AssertionError(f"the run did not reach step {step}")


def finish(proc):
    _, err = proc.communicate(timeout=300)
    return proc.returncode, err


def field_of(run_dir):
    return runs.read_checkpoint(run_dir / runs.CHECKPOINT)


# -- kill -9 and resume ----------------------------------------------------------------
def test_kill_9_then_resume_gives_the_uninterrupted_result_bit_for_bit(tmp_path):
    ref = start_cli(tmp_path, tmp_path / "ref", "--no-export")
    assert finish(ref)[0] == 0
    killed = start_cli(tmp_path, tmp_path / "run", "--no-export")
    wait_for_step(killed, tmp_path / "run", 60)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert runs.read_status(tmp_path / "run")["status"] == "running"  # died without a word
    # the same command on the same folder continues it
    code, err = finish(start_cli(tmp_path, tmp_path / "run", "--no-export"))
    assert code == 0, err
    assert "resuming" in err and "Traceback" not in err
    a, b = field_of(tmp_path / "ref"), field_of(tmp_path / "run")
    assert a["step"] == b["step"] == 200
    for name, tensor in a["field"].items():
        assert torch.equal(tensor, b["field"][name]), name
    assert [r["loss"] for r in a["loss_log"]] == [r["loss"] for r in b["loss_log"]]
    assert runs.read_status(tmp_path / "run")["status"] == "finished"


# -- signals -----------------------------------------------------------------------------
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_saves_a_checkpoint_and_an_export_then_resume_finishes(tmp_path, sig):
    run_dir = tmp_path / "run"
    proc = start_cli(tmp_path, run_dir, steps=400)
    wait_for_step(proc, run_dir, 20)
    proc.send_signal(sig)
    code, err = finish(proc)
    assert code == 128 + sig, err
    assert "Traceback" not in err
    assert f"dreamfusion generate --resume {run_dir}" in err
    state = field_of(run_dir)
    assert 20 <= state["step"] < 400
    assert runs.read_status(run_dir)["status"] == "interrupted"
    mesh = trimesh.load(run_dir / "mesh.glb", force="mesh")
    assert len(mesh.faces) > 0
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "interrupted" and metrics["step"] == state["step"]

    proc = subprocess.run([sys.executable, "-m", "dreamfusion.cli", "generate", "--resume",
                           str(run_dir), "--quiet"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert field_of(run_dir)["step"] == 400
    assert runs.read_status(run_dir)["status"] == "finished"
    assert json.loads((run_dir / "metrics.json").read_text())["status"] == "finished"


# -- damaged checkpoints -------------------------------------------------------------------
def damage(path, how):
    data = bytearray(path.read_bytes())
    if how == "truncated":
        path.write_bytes(bytes(data[: len(data) // 2]))
    else:  # one flipped byte in the middle, where torch.load does not notice
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))


@pytest.mark.parametrize("how", ["truncated", "flipped"])
def test_a_damaged_checkpoint_is_detected_and_the_previous_one_used(tmp_path, how):
    train(tiny_cfg(steps=20), tmp_path, backend=tiny_prior(), progress=False)
    assert runs.read_checkpoint(tmp_path / runs.PREVIOUS)["step"] == 10
    damage(tmp_path / runs.CHECKPOINT, how)
    with pytest.raises(runs.RunFolderError, match="damaged"):
        runs.read_checkpoint(tmp_path / runs.CHECKPOINT)
    warnings = []
    state = runs.load_checkpoint(tmp_path, warn=warnings.append)
    assert state["step"] == 10
    assert len(warnings) == 1 and "previous checkpoint" in warnings[0]
    damage(tmp_path / runs.PREVIOUS, how)
    with pytest.raises(runs.RunFolderError, match="damaged"):
        runs.load_checkpoint(tmp_path)


def test_resume_after_a_damaged_checkpoint_uses_the_previous_one(tmp_path, capsys):
    from dreamfusion.cli import main
    run_dir = tmp_path / "run"
    proc = start_cli(tmp_path, run_dir, "--no-export", steps=400)
    wait_for_step(proc, run_dir, 30)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    latest = run_dir / runs.CHECKPOINT
    if not latest.exists():  # killed between the two renames of a save: only the previous
        shutil.copyfile(run_dir / runs.PREVIOUS, latest)
    damage(latest, "flipped")
    assert main(["generate", "--resume", str(run_dir), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "damaged" in err and "previous checkpoint" in err
    assert field_of(run_dir)["step"] == 400


# -- numerical faults ----------------------------------------------------------------------
class FaultyPrior(ToyPrior):
    """The toy prior, but its noise prediction is NaN on the chosen calls."""

    def __init__(self, bad_calls):
        super().__init__(size=16, bank_size=8, uncond_bank_size=8)
        self.bad_calls, self.calls = bad_calls, 0

    def predict_noise(self, *args, **kwargs):
        eps = super().predict_noise(*args, **kwargs)
        self.calls += 1
        return eps * float("nan") if self.bad_calls(self.calls) else eps


def params_finite(trainer):
    return all(torch.isfinite(p).all() for p in trainer.field.parameters())


def test_one_nan_step_is_skipped_and_counted(tmp_path):
    trainer = train(tiny_cfg(steps=30), tmp_path, backend=FaultyPrior(lambda n: n == 12),
                    progress=False)
    assert (trainer.step, trainer.faults, trainer.rollbacks) == (30, 1, 0)
    assert sum(r["fault"] for r in trainer.loss_log) == 1
    assert params_finite(trainer)


def test_repeated_nans_roll_back_with_a_lower_learning_rate(tmp_path):
    bad = FaultyPrior(lambda n: 22 <= n < 22 + 5)  # five in a row from step 22
    trainer = train(tiny_cfg(steps=40), tmp_path, backend=bad, progress=False)
    assert trainer.step == 40 and trainer.rollbacks == 1 and trainer.faults == 5
    assert trainer.lr_scale == 0.5
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(0.5 * 0.1)
    assert params_finite(trainer)
    assert runs.read_checkpoint(tmp_path / runs.CHECKPOINT)["lr_scale"] == 0.5


def test_endless_nans_stop_with_a_message_and_keep_the_last_good_checkpoint(tmp_path):
    with pytest.raises(TrainingDiverged, match="last good checkpoint"):
        train(tiny_cfg(steps=40), tmp_path, backend=FaultyPrior(lambda n: n > 15),
              progress=False)
    state = runs.load_checkpoint(tmp_path)
    assert state["step"] == 10
    assert all(torch.isfinite(t).all() for t in state["field"].values())


def test_a_nan_field_is_never_exported(tmp_path, capsys):
    from dreamfusion.cli import main
    from dreamfusion.config import RunConfig
    from dreamfusion.field import GridField
    cfg = override(RunConfig(), device="cpu")
    runs.save_config(tmp_path, cfg)
    field = GridField(cfg.field)
    with torch.no_grad():
        field.density_levels[0].fill_(float("nan"))
    state = {"step": 800, "field": field.state_dict()}
    runs.save_checkpoint(tmp_path, state)
    assert main(["export", str(tmp_path), "--device", "cpu"]) == 1
    assert "non-finite" in capsys.readouterr().err
    assert not (tmp_path / "mesh.glb").exists()


def test_an_empty_field_is_reported_not_exported(tmp_path, capsys):
    from dreamfusion.cli import main
    from dreamfusion.config import RunConfig
    from dreamfusion.field import GridField
    cfg = override(RunConfig(), device="cpu")
    runs.save_config(tmp_path, cfg)
    field = GridField(cfg.field)
    with torch.no_grad():
        for level in field.density_levels:
            level.fill_(-20.0)
    runs.save_checkpoint(tmp_path, {"step": 800, "field": field.state_dict()})
    assert main(["export", str(tmp_path), "--device", "cpu"]) == 1
    assert "no density above the threshold" in capsys.readouterr().err
    assert not (tmp_path / "mesh.glb").exists()


# -- what --resume refuses ---------------------------------------------------------------
def test_resume_refuses_other_settings_and_finished_or_missing_runs(tmp_path, capsys):
    from dreamfusion.cli import main
    code = main(["generate", "--resume", str(tmp_path / "nope")])
    assert code == 2 and "not a folder" in capsys.readouterr().err
    code = main(["generate", "a red cube", "--steps", "5", "--resume", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "CAPTION" in err and "--steps" in err
    run_dir = tmp_path / "done"
    run_dir.mkdir()
    cfg = tiny_cfg(steps=10)
    runs.save_config(run_dir, cfg)
    train(cfg, run_dir, backend=tiny_prior(), progress=False)
    runs.write_status(run_dir, "finished", 10, 10)
    before = sorted(p.name for p in run_dir.iterdir())
    code = main(["generate", "--resume", str(run_dir)])
    assert code == 2 and "already finished" in capsys.readouterr().err
    assert sorted(p.name for p in run_dir.iterdir()) == before


def test_same_out_with_other_settings_is_refused_untouched(tmp_path, capsys):
    from dreamfusion.cli import main
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    cfg = tiny_cfg(steps=10)
    runs.save_config(run_dir, cfg)
    runs.write_status(run_dir, "interrupted", 5, 10)
    before = (run_dir / "config.json").read_text()
    code = main(["generate", "a blue cube", "--out", str(run_dir)])
    assert code == 2 and "--resume" in capsys.readouterr().err
    assert (run_dir / "config.json").read_text() == before


def test_a_run_in_progress_is_not_resumed_twice(tmp_path, capsys):
    from dreamfusion.cli import main
    run_dir = tmp_path / "run"
    proc = start_cli(tmp_path, run_dir, "--no-export", steps=100000)
    try:
        wait_for_step(proc, run_dir, 10)
        code = main(["generate", "--resume", str(run_dir)])
        assert code == 2 and f"process {proc.pid}" in capsys.readouterr().err
    finally:
        proc.kill()
        proc.wait()
    assert os.path.exists(run_dir / runs.CHECKPOINT)


def test_resume_with_a_lost_config_json_uses_the_checkpoint_settings(tmp_path, capsys):
    from dreamfusion.cli import main
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    cfg = override(tiny_cfg(steps=20), export=override(tiny_cfg().export, enabled=False))
    runs.save_config(run_dir, cfg)
    train(override(cfg, steps=20), run_dir, backend=tiny_prior(), progress=False)
    runs.write_status(run_dir, "interrupted", 20, 30)
    state = runs.load_checkpoint(run_dir)
    state["step"] = 10  # pretend it stopped at 10 of 20
    runs.save_checkpoint(run_dir, {k: v for k, v in state.items() if k != "checksum"})
    (run_dir / "config.json").write_text("{ damaged")
    assert main(["generate", "--resume", str(run_dir), "--quiet"]) == 0
    assert "settings saved in the checkpoint" in capsys.readouterr().err
    assert runs.load_config(run_dir) == cfg
    assert field_of(run_dir)["step"] == 20


def test_a_run_stopped_before_its_first_checkpoint_starts_again(tmp_path, capsys):
    from dreamfusion.cli import config_from_args, build_parser, main
    run_dir = tmp_path / "run"
    argv = ["generate", "a red cube", "--out", str(run_dir), "--steps", "5", "--size", "16",
            "--device", "cpu", "--quiet", "--no-export", "--set", "guidance.bank_size=8",
            "--set", "guidance.uncond_bank_size=8", "--no-refine"]
    run_dir.mkdir()
    runs.save_config(run_dir, config_from_args(build_parser().parse_args(argv)))
    assert main(argv) == 0  # only its own config.json was there: nothing to lose
    assert field_of(run_dir)["step"] == 5


class SignallingPrior(ToyPrior):
    """The toy prior, sending this process SIGINT on one call."""

    def __init__(self, at_call):
        super().__init__(size=16, bank_size=8, uncond_bank_size=8)
        self.at_call, self.calls = at_call, 0

    def predict_noise(self, *args, **kwargs):
        self.calls += 1
        if self.calls == self.at_call:
            os.kill(os.getpid(), signal.SIGINT)
        return super().predict_noise(*args, **kwargs)


def test_a_signal_between_loss_reads_keeps_every_step_in_the_log(tmp_path):
    """Losses are read every faults.check_every steps; a stop in between still reads
    the steps since the last read into the log and the checkpoint."""
    trainer = train(tiny_cfg(steps=30), tmp_path, backend=SignallingPrior(13), progress=False)
    assert trainer.stopped_by == signal.SIGINT and trainer.step == 13
    assert len(trainer.loss_log) == 13 and trainer.pending == []
    assert len(runs.read_checkpoint(tmp_path / runs.CHECKPOINT)["loss_log"]) == 13
