"""A real `dreamfusion serve` process on a free loopback port, and a small HTTP client."""
from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`dreamfusion serve` in a child process; `request` speaks to it."""

    def __init__(self, runs: Path, *args: str, auth: tuple[str, str] | None = None):
        self.runs, self.args, self.auth = runs, args, auth
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.stderr = runs.parent / f"serve-{self.port}.log"

    def start(self, timeout: float = 60) -> Server:
        cmd = [sys.executable, "-m", "dreamfusion.cli", "serve", "--port", str(self.port),
               "--runs", str(self.runs), *self.args]
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        with open(self.stderr, "ab") as err:
            self.proc = subprocess.Popen(cmd, stdout=err, stderr=err, env=env)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"serve exited: {self.stderr.read_text()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("serve did not start")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout)

    def request(self, method: str, path: str, body: object = None, raw: bytes | None = None,
                auth: tuple[str, str] | None = None) -> tuple[int, bytes, dict]:
        """(status, body bytes, headers); never raises for an HTTP error status."""
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None
                                            else None)
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data,
                                     method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        credentials = auth or self.auth
        if credentials is not None:
            token = base64.b64encode(":".join(credentials).encode()).decode()
            req.add_header("Authorization", f"Basic {token}")
        try:
            with urllib.request.urlopen(req, timeout=60) as response:
                return response.status, response.read(), dict(response.headers)
        except urllib.error.HTTPError as err:
            return err.code, err.read(), dict(err.headers)

    def json(self, method: str, path: str, body: object = None) -> tuple[int, object]:
        status, data, _ = self.request(method, path, body)
        return status, json.loads(data) if data else None

    def wait_for(self, run_id: str, statuses: tuple[str, ...], timeout: float = 300,
                 min_step: int = 0) -> dict:
        deadline = time.time() + timeout
        info: dict = {}
        while time.time() < deadline:
            status, info = self.json("GET", f"/api/runs/{run_id}")
            assert status == 200, info
            if info["status"] in statuses and info["step"] >= min_step:
                return info
            time.sleep(0.3)
        raise AssertionError(f"run {run_id} still {info} after {timeout} s; "
                             f"log: {(self.runs / run_id / 'web.log').read_text()[-2000:]}")
