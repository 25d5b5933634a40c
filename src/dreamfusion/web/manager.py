"""The web app's runs: a queue of `dreamfusion generate` processes over one runs folder.

Each run is the real command line in a child process (its checks, signals, checkpoints
and exit codes), in runs/<id>/, beside a `web.json` that holds what the web app knows
and the run folder does not: the request, queued / started / cancelled, the exit code.
The status shown is derived from web.json, the live process and the run's status.json:

    queued -> running -> finished | failed | interrupted | cancelled

A server that restarts finds no live process for a run that was running: it shows as
interrupted (its checkpoint is on disk) and can be resumed. Nothing in the folder is
ever deleted.
"""
from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import runs
from ..errors import UserError

WEB = "web.json"
LOG = "web.log"
ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{16}")
SERVED_FILES = ("mesh.glb", "mesh.obj", "mesh.ply", "views.png", "turntable.mp4",
                "turntable.gif", "preview.png")
"""The only names GET /api/runs/{id}/files/{name} serves (preview.png = the latest)."""
PREVIEW_EVERY = 50
"""Steps between the previews of a web run (the page shows the latest)."""


@dataclass(frozen=True)
class RunRequest:
    """A checked request from POST /api/runs."""

    caption: str
    steps: int | None = None
    seed: int | None = None
    preset: str | None = None
    guidance: float | None = None

    def generate_args(self) -> list[str]:
        """generate's options for this request (the caption comes last, after --)."""
        args = []
        for name in ("steps", "seed", "preset", "guidance"):
            value = getattr(self, name)
            if value is not None:
                args += [f"--{name}", str(value)]
        return args


class RunManager:
    """Queue, start, cancel and describe the web runs under `root`; thread-safe."""

    def __init__(self, root: Path, max_parallel: int = 1, extra_args: tuple[str, ...] = (),
                 poll_seconds: float = 0.2):
        self.root = root
        self.max_parallel = max_parallel
        self.extra_args = list(extra_args)  # e.g. --backend sd --model DIR for every run
        self.poll_seconds = poll_seconds
        self.lock = threading.RLock()
        self.procs: dict[str, subprocess.Popen] = {}
        self.queue: list[str] = []
        self.stopping = False
        root.mkdir(parents=True, exist_ok=True)
        self._recover()
        self.thread = threading.Thread(target=self._loop, name="run-scheduler", daemon=True)
        self.thread.start()

    # -- requests ----------------------------------------------------------------------
    def submit(self, request: RunRequest) -> str:
        """Queue a checked request; returns the new run's id."""
        run_id = new_id(self.root)
        folder = self.root / run_id
        folder.mkdir()
        write_web(folder, {"id": run_id, "caption": request.caption,
                           "request": request.__dict__, "state": "queued",
                           "created": time.time(), "mode": "new"})
        with self.lock:
            self.queue.append(run_id)
        return run_id

    def cancel(self, run_id: str) -> dict:
        """Cancel a queued run (it never starts) or stop a running one (SIGTERM: it
        finishes its step and keeps its checkpoint, so it can be resumed)."""
        folder = self.folder(run_id)
        with self.lock:
            if run_id in self.queue:
                self.queue.remove(run_id)
                update_web(folder, state="cancelled")
            elif run_id in self.procs:
                update_web(folder, cancel_requested=True)
                self.procs[run_id].send_signal(signal.SIGTERM)
            else:
                raise UserError(f"run {run_id} is {self.info(run_id)['status']}, "
                                "not queued or running")
        return self.info(run_id)

    def resume(self, run_id: str) -> dict:
        """Queue an interrupted or cancelled run again, from its checkpoint."""
        folder = self.folder(run_id)
        with self.lock:
            info = self.info(run_id)
            if not info["resumable"]:
                raise UserError(f"run {run_id} is {info['status']} and cannot be resumed")
            update_web(folder, state="queued", mode="resume", cancel_requested=False)
            self.queue.append(run_id)
        return self.info(run_id)

    # -- reading -----------------------------------------------------------------------
    def folder(self, run_id: str) -> Path:
        """The folder of an existing web run; KeyError for anything else."""
        if not ID_PATTERN.fullmatch(run_id):
            raise KeyError(run_id)
        folder = self.root / run_id
        if folder.is_symlink() or not (folder / WEB).is_file():
            raise KeyError(run_id)
        return folder

    def ids(self) -> list[str]:
        found = [p.name for p in self.root.iterdir()
                 if ID_PATTERN.fullmatch(p.name) and (p / WEB).is_file()]
        return sorted(found, key=lambda i: read_web(self.root / i).get("created", 0),
                      reverse=True)

    def info(self, run_id: str) -> dict[str, Any]:
        """{id, caption, status, step, steps, resumable, metrics?, position?, error?}."""
        folder = self.folder(run_id)
        web = read_web(folder)
        status = runs.read_status(folder) or {}
        with self.lock:
            alive = run_id in self.procs
            position = self.queue.index(run_id) + 1 if run_id in self.queue else None
        state = derive_status(web, status, alive, position is not None)
        has_checkpoint = (folder / runs.CHECKPOINT).exists()
        out = {"id": run_id, "caption": web.get("caption", ""), "status": state,
               "step": int(status.get("step", 0)),
               "steps": int(status.get("steps", web.get("steps", 0)) or 0),
               "resumable": state in ("interrupted", "cancelled") and has_checkpoint,
               "files": [n for n in SERVED_FILES if self.file(run_id, n) is not None]}
        if position is not None:
            out["position"] = position
        if state == "failed" and web.get("error"):
            out["error"] = web["error"]
        metrics = runs.read_json(folder / runs.METRICS)
        if state == "finished" and metrics:
            out["metrics"] = public_metrics(metrics)
        return out

    def file(self, run_id: str, name: str) -> Path | None:
        """A served file of a run, or None: only SERVED_FILES, only plain files inside
        the run's own folder (no symlinks)."""
        if name not in SERVED_FILES:
            return None
        folder = self.folder(run_id)
        if name == "preview.png":
            previews = sorted((folder / "previews").glob("step_*.png"))
            path = previews[-1] if previews else None
        else:
            path = folder / name
        if path is None or path.is_symlink() or not path.is_file():
            return None
        if folder.resolve() not in path.resolve().parents:
            return None
        return path

    # -- the scheduler -----------------------------------------------------------------
    def _loop(self) -> None:
        # This thread starts every child and must outlive them: a child is sent SIGTERM
        # when the thread that started it ends (PR_SET_PDEATHSIG, dreamfusion/child.py).
        while not (self.stopping and not self.procs):
            with self.lock:
                self._reap()
                while not self.stopping and self.queue and len(self.procs) < self.max_parallel:
                    self._start(self.queue.pop(0))
            time.sleep(self.poll_seconds)

    def _start(self, run_id: str) -> None:
        folder = self.root / run_id
        web = read_web(folder)
        base = [sys.executable, "-m", "dreamfusion.child", "generate", "--quiet"]
        if web.get("mode") == "resume":
            cmd = base + ["--resume", str(folder)]
        else:
            request = RunRequest(**web["request"])
            cmd = base + request.generate_args() + self.extra_args + [
                "--out", str(folder), "--set", f"preview_every={PREVIEW_EVERY}",
                "--", request.caption]
        with open(folder / LOG, "ab") as log:
            # a session of its own: a Ctrl-C at the server's terminal reaches the server
            # only, which then stops each run with one SIGTERM (a second would not wait
            # for the checkpoint)
            self.procs[run_id] = subprocess.Popen(cmd, stdout=log, stderr=log,
                                                  stdin=subprocess.DEVNULL,
                                                  start_new_session=True)
        update_web(folder, state="started", started=time.time(), exit_code=None, error=None)

    def _reap(self) -> None:
        for run_id, proc in list(self.procs.items()):
            code = proc.poll()
            if code is None:
                continue
            del self.procs[run_id]
            folder = self.root / run_id
            changes: dict[str, Any] = {"exit_code": code}
            if code not in (0, 128 + signal.SIGTERM, 128 + signal.SIGINT):
                changes["error"] = last_error_line(folder / LOG)
            if read_web(folder).get("cancel_requested"):
                changes["state"] = "cancelled"
            update_web(folder, **changes)

    def _recover(self) -> None:
        """After a restart: queued runs queue again; runs left running are interrupted
        (a child that outlived its server is stopped, keeping its checkpoint)."""
        for run_id in reversed(self.ids()):
            folder = self.root / run_id
            web = read_web(folder)
            if web.get("state") == "queued":
                self.queue.append(run_id)
                continue
            status = runs.read_status(folder)
            if runs.still_running(status) and is_our_child(int(status["pid"])):
                os.kill(int(status["pid"]), signal.SIGTERM)

    def shutdown(self, timeout: float = 30.0) -> None:
        """Stop the scheduler and the running runs (each saves its checkpoint)."""
        self.stopping = True
        with self.lock:
            procs = list(self.procs.items())
        for _, proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.time() + timeout
        for _, proc in procs:
            try:
                proc.wait(max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                proc.kill()
        self.thread.join(timeout=max(1.0, deadline - time.time()))


def derive_status(web: dict, status: dict, alive: bool, queued: bool) -> str:
    """One of queued, running, finished, failed, interrupted, cancelled."""
    if queued:
        return "queued"
    if alive:
        return "running"
    if web.get("state") == "cancelled":
        return "cancelled"
    if web.get("state") == "queued":
        return "queued"
    saved = status.get("status")
    if saved in ("finished", "failed", "interrupted"):
        return saved
    if saved == "running":  # its process is gone: stopped without a word
        return "interrupted"
    code = web.get("exit_code")
    return "failed" if code not in (None, 0) else "interrupted"


def public_metrics(metrics: dict) -> dict:
    """What the page shows of metrics.json: the time and the ground-truth scores."""
    out = {k: metrics[k] for k in ("train_seconds", "total_seconds", "faces") if k in metrics}
    truth = metrics.get("ground_truth") or {}
    for key in ("iou", "retrieved_shape", "color_name", "front_color_name",
                "back_color_name", "janus"):
        if key in truth:
            out[key] = truth[key]
    return out


def is_our_child(pid: int) -> bool:
    """Is pid a web run's process (not an unrelated one that reused the number)?"""
    try:
        return b"dreamfusion.child" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def new_id(root: Path) -> str:
    """A random 16-character URL-safe id (96 bits) that names no folder yet."""
    while True:
        run_id = secrets.token_urlsafe(12)
        if not (root / run_id).exists():
            return run_id


def read_web(folder: Path) -> dict:
    return runs.read_json(folder / WEB)


def write_web(folder: Path, data: dict) -> None:
    runs.write_json(folder / WEB, data)


def update_web(folder: Path, **changes: Any) -> None:
    write_web(folder, {**read_web(folder), **changes})


def last_error_line(log: Path) -> str:
    """The run's own one-sentence error (`dreamfusion: error: ...`), or its last line."""
    from ..executors import last_error
    try:
        text = log.read_text(errors="replace")
    except OSError:
        text = ""
    return last_error(text) or "the run stopped with an error"

