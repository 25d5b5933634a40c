"""Runs on Ray nodes that do not share a filesystem with the driver (`--no-shared-fs`).

A `FolderStore` actor lives on the driver's node and owns the runs' folders there. A task
fetches its run's folder from the store (empty for a new run, the last checkpoint's for
a retried one), runs it in a temporary folder of its own node, and sends the whole
folder back whenever a new checkpoint appears and at the end; so a task retried on
another node resumes from the last checkpoint that reached the driver.
"""
from __future__ import annotations

import io
import shutil
import tarfile
import tempfile
import threading
from dataclasses import replace
from pathlib import Path

from . import runs
from .executors import Job, JobResult, run_job

UPLOAD_POLL_SECONDS = 2.0


def pack(folder: Path) -> bytes:
    """The folder as an uncompressed tar (checkpoints do not compress)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and not path.name.startswith("."):
                tar.add(path, arcname=str(path.relative_to(folder)), recursive=False)
    return buffer.getvalue()


def unpack(data: bytes, folder: Path) -> None:
    """Replace `folder` by the tar's contents, all at once (a sibling swapped in)."""
    fresh = folder.with_name(f".{folder.name}.incoming")
    shutil.rmtree(fresh, ignore_errors=True)
    fresh.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r") as tar:
        tar.extractall(fresh, filter="data")  # no absolute paths, links or '..'
    old = folder.with_name(f".{folder.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if folder.exists():
        folder.rename(old)
    fresh.rename(folder)
    shutil.rmtree(old, ignore_errors=True)


class FolderStore:
    """The driver-side owner of the runs' folders (a Ray actor), by path under `root`."""

    def __init__(self, root: str):
        self.root = Path(root)

    def get(self, key: str) -> bytes | None:
        folder = self.root / key
        return pack(folder) if (folder / runs.CONFIG).exists() else None

    def put(self, key: str, data: bytes) -> None:
        unpack(data, self.root / key)


def folder_store(root: Path):
    """A FolderStore actor pinned to this (the driver's) node."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
    here = ray.get_runtime_context().get_node_id()
    actor = ray.remote(num_cpus=0)(FolderStore).options(
        scheduling_strategy=NodeAffinitySchedulingStrategy(here, soft=False),
        max_restarts=-1)
    return actor.remote(str(root.resolve()))


def copied_job(job: Job, env: dict, store, root: Path) -> JobResult:
    """The Ray task of a run on a node of its own: fetch, run locally, send back."""
    import os

    import ray
    key = str(job.folder.relative_to(root))
    work = Path(tempfile.mkdtemp(prefix="dreamfusion-run-"))
    local = replace(job, folder=work / Path(key).name)
    data = ray.get(store.get.remote(key))
    if data is not None:
        unpack(data, local.folder)
    stop = threading.Event()
    uploader = threading.Thread(target=_upload_checkpoints, args=(local.folder, key, store, stop),
                                daemon=True)
    uploader.start()
    try:
        result = run_job(local, {**os.environ, **env})
    finally:
        stop.set()
        uploader.join()
    if local.folder.exists():
        ray.get(store.put.remote(key, pack(local.folder)))
    shutil.rmtree(work, ignore_errors=True)
    return result


def _upload_checkpoints(folder: Path, key: str, store, stop: threading.Event) -> None:
    """Send the folder to the store each time its checkpoint changes."""
    import ray
    seen = None
    while not stop.wait(UPLOAD_POLL_SECONDS):
        try:
            stamp = (folder / runs.CHECKPOINT).stat().st_mtime_ns
        except OSError:
            continue
        if stamp != seen:
            seen = stamp
            ray.get(store.put.remote(key, pack(folder)))
