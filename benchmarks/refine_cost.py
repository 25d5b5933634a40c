"""The refine stage's cost end to end: `dreamfusion generate CAPTION` with --no-refine and
--refine alternated, after one warm-up run (photo banks cached), then the first run of
the caption with an empty cache, each way. Run it alone on the machine.

    python benchmarks/refine_cost.py ["a blue torus"] [--rounds 3] [--dir DIR]
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path


def wall(caption: str, out: Path, option: str, env: dict | None = None) -> float:
    """Wall seconds of one `dreamfusion generate` run (its output in out.log)."""
    start = time.perf_counter()
    with open(f"{out}.log", "w") as log:
        subprocess.run(["dreamfusion", "generate", caption, "--quiet", "--overwrite",
                        "--out", str(out), option], stdout=log, stderr=subprocess.STDOUT,
                       env=env, check=True)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("caption", nargs="?", default="a blue torus")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--dir", type=Path, default=None)
    args = ap.parse_args()
    root = args.dir or Path(tempfile.mkdtemp(prefix="refine-cost-"))
    root.mkdir(parents=True, exist_ok=True)
    wall(args.caption, root / "warmup", "--refine")
    none, refine = [], []
    for i in range(args.rounds):
        none.append(wall(args.caption, root / f"none-{i}", "--no-refine"))
        refine.append(wall(args.caption, root / f"refine-{i}", "--refine"))
    fmt = lambda xs: " / ".join(f"{x:.2f}" for x in xs)  # noqa: E731
    print(f"cached banks: --no-refine {fmt(none)} s, --refine {fmt(refine)} s, "
          f"{sum(refine) / sum(none):.3f}x")
    for option in ("--no-refine", "--refine"):
        cache = root / "empty-cache"
        shutil.rmtree(cache, ignore_errors=True)
        env = dict(os.environ, DREAMFUSION_CACHE=str(cache))
        print(f"empty cache, {option}: {wall(args.caption, root / f'cold{option}', option, env):.2f} s")
        shutil.rmtree(cache, ignore_errors=True)
    print(f"runs in {root}")


if __name__ == "__main__":
    main()
