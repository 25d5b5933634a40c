"""`dreamfusion serve`: the JSON API against a real server process on a loopback port."""
import io
import json
import os
import signal
import time

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from dreamfusion.cli import main  # noqa: E402
from web_server import Server  # noqa: E402

LONG = 5000  # steps of a run that is still running when the test acts on it


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("web")
    srv = Server(root / "runs").start()
    yield srv
    srv.stop()


def submit(srv, **body) -> str:
    status, data = srv.json("POST", "/api/runs", body)
    assert status == 202, data
    return data["id"]


def wait_training(srv, run_id: str) -> dict:
    """Until the run is running with a checkpoint on disk past step 0."""
    info = srv.wait_for(run_id, ("running",), min_step=1)
    deadline = time.time() + 120
    while not (srv.runs / run_id / "checkpoint.pt").exists() and time.time() < deadline:
        time.sleep(0.2)
    return info


def test_a_short_run_finishes_and_its_glb_opens(server):
    import trimesh
    run_id = submit(server, caption="a green sphere", steps=40, seed=1)
    info = server.wait_for(run_id, ("finished", "failed"))
    assert info["status"] == "finished", info
    # 40 field steps, then the refine stage's 300 (on by default): one count for both
    assert (info["step"], info["steps"]) == (340, 340)
    assert info["metrics"]["retrieved_shape"] == "sphere" and info["metrics"]["iou"] > 0.3
    status, glb, headers = server.request("GET", f"/api/runs/{run_id}/files/mesh.glb")
    assert status == 200 and headers["content-type"] == "model/gltf-binary"
    mesh = trimesh.load(io.BytesIO(glb), file_type="glb", force="mesh")
    assert len(mesh.faces) > 100 and mesh.bounds[1][1] > 0.2
    for name, magic in (("views.png", b"\x89PNG"), ("preview.png", b"\x89PNG"),
                        ("mesh.obj", b"")):
        status, data, _ = server.request("GET", f"/api/runs/{run_id}/files/{name}")
        assert status == 200 and data.startswith(magic) and len(data) > 100, name
    status, listing = server.json("GET", "/api/runs")
    assert {"id": run_id, "caption": "a green sphere", "status": "finished", "step": 340,
            "steps": 340} in listing
    status, page, _ = server.request("GET", f"/runs/{run_id}")
    assert status == 200 and b"model-viewer" in page


BAD = [
    ({"caption": "a red teapot"}, 400, "shape"),
    ({"caption": ""}, 400, "caption"),
    ({"caption": "a red cube " + "x" * 200}, 400, "200 characters"),
    ({"caption": "a red cube", "steps": 0}, 400, "steps"),
    ({"caption": "a red cube", "steps": "ten"}, 400, "steps"),
    ({"caption": "a red cube", "seed": -1}, 400, "seed"),
    ({"caption": "a red cube", "guidance": -2}, 400, "guidance"),
    ({"caption": "a red cube", "preset": "slow"}, 400, "preset"),
    ({"caption": "a red cube", "colour": "red"}, 400, "unknown field"),
    ([1, 2], 400, "JSON object"),
]


@pytest.mark.parametrize("body,code,words", BAD)
def test_bad_requests_are_one_sentence_and_create_nothing(server, body, code, words):
    before = sorted(p.name for p in server.runs.iterdir())
    status, data = server.json("POST", "/api/runs", body)
    assert status == code and words in data["error"] and "\n" not in data["error"]
    assert sorted(p.name for p in server.runs.iterdir()) == before


def test_bodies_that_are_not_json_or_too_large_are_refused(server):
    before = sorted(p.name for p in server.runs.iterdir())
    status, data, _ = server.request("POST", "/api/runs", raw=b"{caption: red}")
    assert status == 400 and b"not valid JSON" in data
    big = json.dumps({"caption": "a red cube", "pad": "x" * 11000}).encode()
    status, data, _ = server.request("POST", "/api/runs", raw=big)
    assert status == 413 and b"10 kB" in data
    assert sorted(p.name for p in server.runs.iterdir()) == before


def test_no_path_outside_a_run_is_served(server, tmp_path):
    run_id = submit(server, caption="a blue cube", steps=5)
    server.wait_for(run_id, ("finished", "failed"))
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    folder = server.runs / run_id
    (folder / "mesh.ply").unlink()
    (folder / "mesh.ply").symlink_to(secret)
    other = server.runs.parent / "outside.glb"
    other.write_text("top secret")
    attempts = [f"/api/runs/{run_id}/files/mesh.ply",  # a symlink out of the folder
                f"/api/runs/{run_id}/files/config.json",  # a run file not on the list
                f"/api/runs/{run_id}/files/checkpoint.pt",
                f"/api/runs/{run_id}/files/web.json",
                f"/api/runs/{run_id}/files/..%2F..%2Foutside.glb",
                f"/api/runs/{run_id}/files/%2Fetc%2Fpasswd",
                f"/api/runs/{run_id}/files/../../outside.glb",
                "/api/runs/..%2F..%2F/files/outside.glb",
                "/api/runs/%2E%2E/files/outside.glb",
                f"/api/runs/{run_id}%2F..%2F..%2F/files/outside.glb",
                "/static/..%2F..%2F..%2Fconfig.py"]
    for path in attempts:
        status, data, _ = server.request("GET", path)
        assert status == 404, path
        assert b"top secret" not in data and b"root:" not in data and b"dataclass" not in data
    status, data, _ = server.request("GET", f"/api/runs/{run_id}/files/mesh.glb")
    assert status == 200  # the same run's real files still are


def test_cancel_a_queued_and_a_running_run_then_resume(server):
    running = submit(server, caption="a red cone", steps=LONG)
    queued = submit(server, caption="a red torus", steps=LONG)
    status, info = server.json("GET", f"/api/runs/{queued}")
    assert info["status"] == "queued" and info["position"] >= 1
    status, info = server.json("DELETE", f"/api/runs/{queued}")
    assert status == 200 and info["status"] == "cancelled" and not info["resumable"]
    assert not (server.runs / queued / "config.json").exists()  # it never started
    wait_training(server, running)
    status, info = server.json("DELETE", f"/api/runs/{running}")
    assert status == 200
    info = server.wait_for(running, ("cancelled",), timeout=120)
    assert info["resumable"] and (server.runs / running / "checkpoint.pt").exists()
    step = info["step"]
    assert 0 < step < LONG
    status, info = server.json("POST", f"/api/runs/{running}/resume")
    assert status == 202
    info = server.wait_for(running, ("running",), min_step=step + 1)
    server.json("DELETE", f"/api/runs/{running}")
    server.wait_for(running, ("cancelled",), timeout=120)
    status, data = server.json("DELETE", f"/api/runs/{queued}")
    assert status == 409 and "cancelled" in data["error"]
    assert server.json("GET", "/api/runs/AAAAAAAAAAAAAAAA")[0] == 404


def test_a_run_left_running_by_a_dead_server_is_interrupted_and_resumable(tmp_path):
    srv = Server(tmp_path / "runs").start()
    run_id = submit(srv, caption="a purple pyramid", steps=LONG)
    wait_training(srv, run_id)
    srv.stop(signal.SIGKILL)  # no goodbye: the run learns from the kernel
    status_file = srv.runs / run_id / "status.json"
    deadline = time.time() + 120
    while time.time() < deadline and json.loads(status_file.read_text())["status"] == "running":
        time.sleep(0.3)
    again = Server(srv.runs).start()
    try:
        info = again.json("GET", f"/api/runs/{run_id}")[1]
        assert info["status"] == "interrupted" and info["resumable"], info
        step = info["step"]
        assert again.json("POST", f"/api/runs/{run_id}/resume")[0] == 202
        again.wait_for(run_id, ("running",), min_step=step + 1)
    finally:
        again.stop()  # a clean stop: its runs save a checkpoint and stop too
    status = json.loads(status_file.read_text())
    assert status["status"] == "interrupted" and status["step"] > step


def test_basic_auth_guards_every_route(tmp_path):
    srv = Server(tmp_path / "runs", "--auth", "ada:s3cret").start()
    try:
        for path in ("/", "/api/runs", "/static/app.js", "/api/vocabulary"):
            assert srv.request("GET", path, auth=("ada", "wrong"))[0] == 401, path
            assert srv.request("GET", path, auth=("ada", "s3cret"))[0] == 200, path
        srv.auth = None
        status, _, headers = srv.request("GET", "/api/runs")
        assert status == 401 and headers["www-authenticate"].startswith("Basic")
        status, _, _ = srv.request("POST", "/api/runs", {"caption": "a red cube"})
        assert status == 401 and not any(srv.runs.iterdir())
    finally:
        srv.stop()


def test_without_auth_the_page_and_api_are_open(server):
    assert server.request("GET", "/")[0] == 200
    assert server.request("GET", "/static/model-viewer.min.js")[0] == 200
    status, words = server.json("GET", "/api/vocabulary")
    assert "orange" in words["colors"] and "torus" in words["shapes"] and not words["free_text"]


def test_another_host_warns_and_bad_options_are_messages(tmp_path, capsys):
    srv = Server(tmp_path / "runs", "--host", "0.0.0.0").start()
    srv.stop()
    assert "anyone who can reach this machine" in srv.stderr.read_text()
    assert main(["serve", "--auth", "nopassword", "--runs", str(tmp_path)]) == 2
    assert "USER:PASS" in capsys.readouterr().err
    busy = Server(tmp_path / "runs").start()
    try:
        assert main(["serve", "--port", str(busy.port), "--runs", str(tmp_path)]) == 2
        assert "cannot listen" in capsys.readouterr().err
    finally:
        busy.stop()
    assert os.listdir(tmp_path / "runs") == []
