"""`dreamfusion batch CAPTIONS_FILE --out DIR`: one run per caption (and seed), then a
summary table (Markdown on stdout, JSON in DIR/batch.json).

The captions file is checked whole before anything starts. Runs go in DIR/<caption>-s<seed>;
calling the same command again skips finished runs and resumes interrupted ones.
"""
from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from . import runs
from .errors import UserError
from .executors import Executor, Job, JobResult, run_state
from .options import RunOptions

SUMMARY = "batch.json"


def read_captions(path: Path, check: Callable[[str], None]) -> list[str]:
    """The captions of a file, one per line (blank lines skipped), each passed to `check`
    (which raises UserError); the first problem is one UserError naming its line."""
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"cannot read the captions file {path}: {err}") from None
    captions: list[str] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(lines, start=1):
        caption = line.strip()
        if not caption:
            continue
        slug = runs.slugify(caption)
        if slug in seen:
            raise UserError(f"{path}, line {number}: {caption!r} repeats line {seen[slug]} "
                            "(each caption once; use --seeds for several runs of one)")
        try:
            check(caption)
        except UserError as err:
            raise UserError(f"{path}, line {number}: {err}") from None
        seen[slug] = number
        captions.append(caption)
    if not captions:
        raise UserError(f"the captions file {path} holds no captions (one per line)")
    return captions


def checker(options: RunOptions) -> Callable[[str], None]:
    """A caption check that resolves the run's whole config, as generate would."""
    from dataclasses import replace

    from .lifecycle import check_caption
    from .options import resolve_config

    def check(caption: str) -> None:
        check_caption(resolve_config(replace(options, caption=caption)))
    return check


def batch_jobs(captions: list[str], seeds: list[int], out: Path,
               args: tuple[str, ...]) -> list[Job]:
    return [Job(c, s, out / f"{runs.slugify(c)}-s{s}", args) for c in captions for s in seeds]


def run_batch(jobs: list[Job], executor: Executor, log: Callable[[str], None] = print,
              progress: bool = True) -> list[dict]:
    """Run the jobs with a progress bar (ETA) and a line per finished run; the summary
    rows. KeyboardInterrupt: the runs stop with their checkpoints, then it is raised."""
    from tqdm import tqdm
    todo = [j for j in jobs if run_state(j.folder) != "finished"]
    log(f"{len(jobs)} runs, {len(jobs) - len(todo)} already finished")
    bar = tqdm(total=len(todo), unit="run", disable=not progress or not todo,
               dynamic_ncols=True, desc="batch")

    def done(job: Job, result: JobResult) -> None:
        if result.skipped:
            return
        state = "finished" if result.code == 0 else (
            "stopped" if result.code in (130, 143) else "FAILED")
        line = f"{state}: {job.name()} ({result.seconds:.0f} s)"
        bar.write(line + (f": {result.error}" if result.error else ""), file=sys.stderr)
        bar.update(1)

    try:
        results = executor.run(jobs, done)
    finally:
        bar.close()
    return [summary_row(job, results[job]) for job in jobs]


def summary_row(job: Job, result: JobResult) -> dict:
    """caption, seed, folder, status, seconds, and the ground-truth scores if any."""
    status = runs.read_status(job.folder) or {}
    row = {"caption": job.caption, "seed": job.seed, "folder": str(job.folder),
           "status": status.get("status", "failed" if result.code else "missing"),
           "step": status.get("step"), "seconds": round(result.seconds, 1),
           "skipped": result.skipped}
    if result.error:
        row["error"] = result.error
    metrics = runs.read_json(job.folder / runs.METRICS)
    if result.skipped:
        row["seconds"] = metrics.get("total_seconds")
    truth = metrics.get("ground_truth") or {}
    for key in ("iou", "retrieved_shape", "color_name", "front_color_name", "janus"):
        if key in truth:
            row[key] = truth[key]
    return row


def markdown(rows: list[dict]) -> str:
    lines = ["| caption | seed | status | time (s) | IoU | shape | colour | front |",
             "|---|---:|---|---:|---:|---|---|---|"]
    for r in rows:
        iou = f"{r['iou']:.3f}" if isinstance(r.get("iou"), float) else ""
        secs = f"{r['seconds']:.0f}" if isinstance(r.get("seconds"), (int, float)) else ""
        lines.append(f"| {r['caption']} | {r['seed']} | {r['status']} | {secs} | {iou} | "
                     f"{r.get('retrieved_shape', '')} | {r.get('color_name', '')} | "
                     f"{r.get('front_color_name', '')} |")
    finished = sum(r["status"] == "finished" for r in rows)
    lines.append(f"\n{finished} of {len(rows)} runs finished")
    return "\n".join(lines) + "\n"


def write_summary(out: Path, rows: list[dict]) -> Path:
    path = out / SUMMARY
    runs.write_json(path, {"runs": rows})
    return path
