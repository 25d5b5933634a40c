"""Where many runs execute: one `dreamfusion generate` process per job, several at a time.

Shared by `batch` and `experiment`. A job's folder says what is left to do: a finished
run is skipped, an interrupted one resumed from its checkpoint, anything else started
(`run_state`), so calling the same command again goes on where it stopped.
`LocalExecutor` is a process pool on this machine and needs no extra.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from . import runs

LOG = "generate.log"
"""Each run's generate output, appended by every call that ran it."""


@dataclass(frozen=True)
class Job:
    """One run: a caption, a seed, generate's options and the folder it owns."""

    caption: str
    seed: int
    folder: Path
    args: tuple[str, ...] = ()
    label: str = ""
    """How logs name it (default: caption and seed)."""

    def name(self) -> str:
        return self.label or f"{self.caption} / seed {self.seed}"


@dataclass(frozen=True)
class JobResult:
    code: int
    """generate's exit code: 0 finished, 130 / 143 stopped by a signal, else failed."""
    seconds: float
    error: str = ""
    """The run's one-sentence error when it failed."""
    skipped: bool = False
    """Already finished before this call."""


def run_state(folder: Path) -> str:
    """new / finished / resumable."""
    status = runs.read_status(folder) or {}
    if status.get("status") == "finished":
        return "finished"
    if (folder / runs.CHECKPOINT).exists() and (folder / runs.CONFIG).exists():
        return "resumable"
    return "new"


def generate_command(job: Job, state: str) -> list[str]:
    """The command line that starts or resumes the job's run."""
    base = [sys.executable, "-m", "dreamfusion.cli", "generate"]
    if state == "resumable":
        return [*base, "--resume", str(job.folder), "--quiet"]
    return [*base, "--out", str(job.folder), "--overwrite", "--seed", str(job.seed),
            "--quiet", *job.args, "--", job.caption]


def keep_log(job: Job) -> str:
    """Append this call's generate output (written beside the folder, which generate may
    clear when it starts) to the run's generate.log; returns the output."""
    temp = job.folder.parent / f".{job.folder.name}.log"
    try:
        text = temp.read_text(errors="replace")
        temp.unlink()
    except OSError:
        return ""
    if job.folder.is_dir():
        with open(job.folder / LOG, "a") as log:
            log.write(text)
    return text


def last_error(stderr: str) -> str:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    for line in reversed(lines):
        if line.startswith("dreamfusion: "):
            return line.removeprefix("dreamfusion: ").removeprefix("error: ")
    return lines[-1][-300:] if lines else ""


Done = Callable[[Job, JobResult], None]


class Executor(ABC):
    """Runs jobs; `on_done` is called (from any thread) as each one ends."""

    @abstractmethod
    def run(self, jobs: list[Job], on_done: Done) -> dict[Job, JobResult]:
        """Every job's result. KeyboardInterrupt stops the runs (each saves its
        checkpoint) and is raised again once they have stopped."""


class LocalExecutor(Executor):
    """`workers` generate processes at a time on this machine, the cores shared out
    (OMP threads per process = cores // workers)."""

    def __init__(self, workers: int):
        self.workers = workers
        self.procs: dict[Job, subprocess.Popen] = {}
        self.lock = threading.Lock()
        self.stopping = False

    def run(self, jobs: list[Job], on_done: Done) -> dict[Job, JobResult]:
        threads = max(1, (os.cpu_count() or 1) // self.workers)
        env = dict(os.environ, OMP_NUM_THREADS=str(threads))
        pool = ThreadPoolExecutor(self.workers)
        futures = {job: pool.submit(self._one, job, env, on_done) for job in jobs}
        try:
            return {job: f.result() for job, f in futures.items()}
        except KeyboardInterrupt:
            self.stop()
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def stop(self) -> None:
        """One SIGTERM per live run: it finishes its step and saves its checkpoint."""
        with self.lock:
            self.stopping = True
            for proc in self.procs.values():
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)

    def _one(self, job: Job, env: dict, on_done: Done) -> JobResult:
        state = run_state(job.folder)
        if state == "finished":
            result = JobResult(0, 0.0, skipped=True)
            on_done(job, result)
            return result
        start = time.perf_counter()
        job.folder.parent.mkdir(parents=True, exist_ok=True)
        with self.lock:
            if self.stopping:
                return JobResult(130, 0.0, "not started: the batch was stopped")
            # a session of its own: a Ctrl-C at the terminal reaches this process only,
            # which then stops each run with exactly one signal
            with open(job.folder.parent / f".{job.folder.name}.log", "ab") as log:
                proc = subprocess.Popen(generate_command(job, state), env=env,
                                        stdout=subprocess.DEVNULL, stderr=log,
                                        start_new_session=True)
            self.procs[job] = proc
        proc.wait()
        with self.lock:
            del self.procs[job]
        stderr = keep_log(job)
        code = proc.returncode
        result = JobResult(code, time.perf_counter() - start,
                           "" if code == 0 else last_error(stderr))
        on_done(job, result)
        return result
