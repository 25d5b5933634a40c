"""The benchmark scripts still run (tiny settings) and print their tables."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent


def run_script(*args):
    proc = subprocess.run([sys.executable, *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_real_prior_speed_prints_its_table_on_a_cpu():
    out = run_script("benchmarks/real_prior_speed.py", "--tiny", "--device", "cpu",
                     "--steps", "1", "--warmup", "1", "--variants", "fp32")
    assert "| variant | steps/s | step ms | floor ms | step / floor | peak GiB |" in out
    row = next(line for line in out.splitlines() if line.startswith("| fp32 |"))
    steps_per_s = float(row.split("|")[2])
    assert steps_per_s > 0
