"""`dreamfusion batch`: a captions file checked whole, runs in parallel, a summary, and a
second call that skips finished runs and resumes stopped ones."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from dreamfusion.cli import main

SMALL = ["--steps", "30", "--size", "16", "--device", "cpu",
         "--set", "export.mesh_resolution=48", "--set", "export.turntable_frames=4",
         "--set", "export.turntable_size=32", "--set", "export.view_size=32",
         "--set", "preview_every=0", "--no-refine"]


def write(path, text):
    path.write_text(text)
    return path


@pytest.mark.parametrize("text,words", [
    ("", "holds no captions"),
    ("\n   \n\n", "holds no captions"),
    ("a red cube\n\na blue teapot\n", "line 3: "),
    ("a red cube\na green cone\n\na red cube\n", "line 4: 'a red cube' repeats line 1"),
])
def test_a_bad_captions_file_is_one_message_and_creates_nothing(tmp_path, capsys, text, words):
    captions = write(tmp_path / "captions.txt", text)
    code = main(["batch", str(captions), "--out", str(tmp_path / "out"), *SMALL])
    err = capsys.readouterr().err
    assert code == 2 and words in err and err.count("\n") == 1, err
    assert not (tmp_path / "out").exists()


def test_bad_values_are_checked_before_anything_starts(tmp_path, capsys):
    captions = write(tmp_path / "captions.txt", "a red cube\n")
    code = main(["batch", str(captions), "--out", str(tmp_path / "out"),
                 "--set", "guidance.t_max=2"])
    assert code == 2 and "guidance.t_max" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    assert main(["batch", str(tmp_path / "missing.txt"), "--out", str(tmp_path / "o")]) == 2


def test_two_runs_in_parallel_then_a_second_call_skips_them(tmp_path, capsys):
    captions = write(tmp_path / "captions.txt", "a green sphere\n\nan orange cone\n")
    out = tmp_path / "out"
    code = main(["batch", str(captions), "--out", str(out), "--jobs", "2", "--quiet", *SMALL])
    printed = capsys.readouterr().out
    assert code == 0
    rows = json.loads((out / "batch.json").read_text())["runs"]
    assert [(r["caption"], r["status"], r["step"]) for r in rows] == [
        ("a green sphere", "finished", 30), ("an orange cone", "finished", 30)]
    assert [r["retrieved_shape"] for r in rows] == ["sphere", "cone"]
    assert (out / "a-green-sphere-s0" / "mesh.glb").is_file()
    assert "| a green sphere | 0 | finished |" in printed
    before = (out / "an-orange-cone-s0" / "metrics.json").read_bytes()
    start = time.perf_counter()
    assert main(["batch", str(captions), "--out", str(out), "--quiet", *SMALL]) == 0
    assert time.perf_counter() - start < 20  # nothing trained again
    assert "2 runs, 2 already finished" in capsys.readouterr().err
    assert (out / "an-orange-cone-s0" / "metrics.json").read_bytes() == before
    assert all(r["skipped"] for r in json.loads((out / "batch.json").read_text())["runs"])


def test_ctrl_c_stops_the_runs_with_checkpoints_and_the_same_command_resumes(tmp_path):
    captions = write(tmp_path / "captions.txt", "a blue cube\n")
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "dreamfusion.cli", "batch", str(captions), "--out", str(out),
            "--quiet", *[a if a != "30" else "80" for a in SMALL]]
    driver = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "OMP_NUM_THREADS": "1"})
    folder = out / "a-blue-cube-s0"
    deadline = time.time() + 180
    while time.time() < deadline:
        status = json.loads((folder / "status.json").read_text()) if (
            folder / "status.json").exists() else {}
        if status.get("step", 0) >= 10:
            break
        time.sleep(0.3)
    driver.send_signal(signal.SIGINT)
    _, err = driver.communicate(timeout=120)
    assert driver.returncode == 130 and "Run the same command again" in err
    status = json.loads((folder / "status.json").read_text())
    assert status["status"] == "interrupted" and 0 < status["step"] < 80
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["step"] == 80 and metrics["status"] == "finished"
    assert "1 runs, 0 already finished" in done.stderr  # resumed, not skipped
    log = (folder / "generate.log").read_text()  # both calls' generate output
    assert f"from step {status['step']} of 80" in log and "stopped by SIGTERM" in log
