"""`dreamfusion batch --executor ray` on a real local Ray cluster started by the test: a
head and a second node (`ray start`, one CPU each)."""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("ray")

RAY = shutil.which("ray") or str(Path(sys.executable).parent / "ray")
SMALL = ["--size", "16", "--device", "cpu", "--set", "export.mesh_resolution=48",
         "--set", "export.turntable_frames=4", "--set", "export.turntable_size=32",
         "--set", "export.view_size=32", "--set", "preview_every=0", "--no-refine"]
ENV = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "OMP_NUM_THREADS": "1"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    port = free_port()
    head = [RAY, "start", "--head", f"--port={port}", "--num-cpus=1", "--num-gpus=0",
            "--include-dashboard=false", "--disable-usage-stats"]
    subprocess.run(head, check=True, env=ENV, capture_output=True, timeout=180)
    try:
        subprocess.run([RAY, "start", f"--address=127.0.0.1:{port}", "--num-cpus=1",
                        "--num-gpus=0"], check=True, env=ENV, capture_output=True, timeout=180)
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([RAY, "stop", "--force"], env=ENV, capture_output=True, timeout=180)


def batch(captions: Path, out: Path, address: str, *extra: str) -> subprocess.Popen:
    argv = [sys.executable, "-m", "dreamfusion.cli", "batch", str(captions), "--out", str(out),
            "--executor", "ray", "--address", address, "--quiet", *SMALL, *extra]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=ENV)


def test_two_runs_on_two_nodes_then_a_second_call_skips_them(cluster, tmp_path):
    captions = tmp_path / "captions.txt"
    captions.write_text("a green sphere\na yellow cone\n")
    proc = batch(captions, tmp_path / "out", cluster, "--steps", "60")
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    rows = json.loads((tmp_path / "out" / "batch.json").read_text())["runs"]
    assert [(r["status"], r["step"], r["retrieved_shape"]) for r in rows] == [
        ("finished", 60, "sphere"), ("finished", 60, "cone")]
    again = batch(captions, tmp_path / "out", cluster, "--steps", "60")
    _, err = again.communicate(timeout=300)
    assert again.returncode == 0 and "2 runs, 2 already finished" in err


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


@pytest.mark.slow  # .ci/run runs it after the default test run
def test_a_killed_worker_is_retried_and_its_run_resumes_from_the_checkpoint(cluster, tmp_path):
    captions = tmp_path / "captions.txt"
    captions.write_text("a red cone\n")
    out = tmp_path / "out"
    proc = batch(captions, out, cluster, "--steps", "120", "--set", "checkpoint_every=10")
    folder = out / "a-red-cone-s0"
    deadline, status = time.time() + 300, {}
    while time.time() < deadline:
        if (folder / "status.json").exists():
            status = json.loads((folder / "status.json").read_text())
            if status.get("status") == "running" and status.get("step", 0) >= 30:
                break
        time.sleep(0.3)
    worker = parent_of(int(status["pid"]))
    os.kill(worker, signal.SIGKILL)  # the Ray worker running the task dies
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["step"] == 120 and metrics["status"] == "finished"
    # The run's process is told by the kernel (SIGTERM) and saves a checkpoint; Ray may
    # also kill it at once, and then the last periodic checkpoint (every 10 steps) counts.
    log = (folder / "generate.log").read_text()
    resumed = [int(m) for m in re.findall(r"from step (\d+) of 120", log)]
    assert resumed and resumed[0] >= 20, log  # the step count went on, not from 0


@pytest.mark.slow  # .ci/run runs it after the default test run
def test_without_a_shared_filesystem_the_run_folders_come_back(cluster, tmp_path):
    captions = tmp_path / "captions.txt"
    captions.write_text("a blue sphere\na purple cylinder\n")
    out = tmp_path / "out"
    proc = batch(captions, out, cluster, "--steps", "60", "--no-shared-fs")
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    for name, shape in (("a-blue-sphere-s0", "sphere"), ("a-purple-cylinder-s0", "cylinder")):
        folder = out / name
        metrics = json.loads((folder / "metrics.json").read_text())
        assert metrics["step"] == 60 and metrics["ground_truth"]["retrieved_shape"] == shape
        assert (folder / "mesh.glb").stat().st_size > 1000 and (folder / "checkpoint.pt").exists()
        log = (folder / "generate.log").read_text()
        assert "dreamfusion-run-" in log and str(out) not in log  # trained elsewhere
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no leftovers
