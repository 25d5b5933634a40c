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
    base = [sys.executable, "-m", "dreamfusion.child", "generate"]
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


def run_job(job: Job, env: dict, started: Callable[[subprocess.Popen], None] | None = None,
            stopping: Callable[[], bool] = lambda: False) -> JobResult:
    """Start or resume one run in a child process and wait for it (on any executor).
    A KeyboardInterrupt while waiting (Ctrl-C, ray.cancel) stops the child with one
    SIGTERM, waits for its checkpoint, and is raised again."""
    state = run_state(job.folder)
    if state == "finished":
        return JobResult(0, 0.0, skipped=True)
    wait_for_owner(job.folder)
    if stopping():
        return JobResult(130, 0.0, "not started: the batch was stopped")
    start = time.perf_counter()
    job.folder.parent.mkdir(parents=True, exist_ok=True)
    with open(job.folder.parent / f".{job.folder.name}.log", "ab") as log:
        # a session of its own: a Ctrl-C at the terminal reaches the driver only, which
        # then stops each run with exactly one signal
        proc = subprocess.Popen(generate_command(job, state), env=env,
                                stdout=subprocess.DEVNULL, stderr=log,
                                start_new_session=True)
    if started is not None:
        started(proc)
    try:
        proc.wait()
    except KeyboardInterrupt:
        proc.send_signal(signal.SIGTERM)
        proc.wait()
        keep_log(job)
        raise
    stderr = keep_log(job)
    code = proc.returncode
    return JobResult(code, time.perf_counter() - start, "" if code == 0 else last_error(stderr))


def wait_for_owner(folder: Path, timeout: float = 300.0) -> None:
    """A run whose last owner died is still saving its checkpoint for a moment (its
    child was told by the kernel): wait until no live process holds it."""
    deadline = time.time() + timeout
    while runs.still_running(runs.read_status(folder)) and time.time() < deadline:
        time.sleep(0.5)


class LocalExecutor(Executor):
    """`workers` generate processes at a time on this machine, the cores shared out
    (OMP threads per process = cores // workers)."""

    def __init__(self, workers: int):
        self.workers = workers
        self.procs: list[subprocess.Popen] = []
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
            for proc in self.procs:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)

    def _one(self, job: Job, env: dict, on_done: Done) -> JobResult:
        def started(proc: subprocess.Popen) -> None:
            with self.lock:
                self.procs.append(proc)
                if self.stopping:
                    proc.send_signal(signal.SIGTERM)

        result = run_job(job, env, started, lambda: self.stopping)
        on_done(job, result)
        return result


class RayExecutor(Executor):
    """One Ray task per run, with its CPUs and GPUs, on a Ray cluster (`address`, or a
    local instance started for the call). The runs' folder must be on a filesystem every
    node sees. A task whose worker or node dies is retried elsewhere (`max_retries`) and
    resumes from the run's last checkpoint; a run that fails for its own reasons returns
    its exit code and is not retried."""

    def __init__(self, address: str | None, cpus_per_run: float = 1.0,
                 gpus_per_run: float = 0.0, max_retries: int = 3,
                 copy_back_to: Path | None = None):
        self.address, self.cpus, self.gpus = address, cpus_per_run, gpus_per_run
        self.max_retries = max_retries
        self.copy_back_to = copy_back_to
        """None: every node sees the runs' folders. Else the driver's folder of the runs:
        each task runs in a temporary folder of its node and sends the run folder back
        there at every checkpoint and at the end (folders.py)."""

    def run(self, jobs: list[Job], on_done: Done) -> dict[Job, JobResult]:
        import ray
        ray.init(address=self.address, ignore_reinit_error=True, log_to_driver=False,
                 include_dashboard=False, configure_logging=False)
        env = {"OMP_NUM_THREADS": str(max(1, int(self.cpus)))}
        options = dict(num_cpus=self.cpus, num_gpus=self.gpus, max_retries=self.max_retries)
        if self.copy_back_to is None:
            task = ray.remote(**options)(_ray_job)
            refs = {task.remote(job, env): job for job in jobs}
        else:
            from .folders import copied_job, folder_store
            store = folder_store(self.copy_back_to)
            task = ray.remote(**options)(copied_job)
            refs = {task.remote(job, env, store, self.copy_back_to): job for job in jobs}
        pending, results = list(refs), {}
        try:
            while pending:
                ready, pending = ray.wait(pending, num_returns=1)
                for ref in ready:
                    job = refs[ref]
                    try:
                        result = ray.get(ref)
                    except ray.exceptions.RayError as err:  # retries used up
                        result = JobResult(1, 0.0, f"its Ray task failed: {type(err).__name__}")
                    results[job] = result
                    on_done(job, result)
        except KeyboardInterrupt:
            for ref in pending:
                ray.cancel(ref)  # a KeyboardInterrupt in the task: its run checkpoints
            ray.wait(pending, num_returns=len(pending), timeout=300)
            raise
        return results


def _ray_job(job: Job, env: dict) -> JobResult:
    """The Ray task: the run on whichever node the task landed."""
    return run_job(job, {**os.environ, **env})
