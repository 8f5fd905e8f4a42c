"""Benchmark: start-up of a workflow job that loads a model, with and without workflow/scripts/_common.py's
``import_frozen`` (imports with the garbage collector paused, then ``gc.freeze``).

    HF_HUB_OFFLINE=1 .venv/bin/python bench/bench_startup.py --repeats 7

Each run is a fresh Python process (as Snakemake starts one per job) that imports sentence-transformers, loads
the base model (offline copy), encodes 64 short texts, and exits. Baseline: the plain imports. Ours: the same
imports through ``import_frozen``. Whole-process wall time, measured from outside; prints medians and the ratio
baseline / ours (> 1: ours faster). Runs alternate A, B, A, B so that machine drift hits both alike.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

JOB = """
import sys
sys.path[:0] = [{scripts!r}, {src!r}]
if {frozen!r}:
    from _common import import_frozen
    import_frozen(["sentence_transformers"])
from ftstudy.models import load_model, resolve_model
model = load_model(resolve_model("sentence-transformers/all-MiniLM-L6-v2"), device="cpu")
model.encode(["a short query about passage ranking"] * 64, batch_size=64)
"""


def run_once(frozen: bool) -> float:
    """Wall seconds of one fresh process running JOB."""
    code = JOB.format(scripts=str(ROOT / "workflow/scripts"), src=str(ROOT / "src"), frozen=frozen)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    run_once(False)  # warm the page cache and .pyc files for both
    plain, frozen = [], []
    for _ in range(args.repeats):
        plain.append(run_once(False))
        frozen.append(run_once(True))
    a, b = statistics.median(plain), statistics.median(frozen)
    print(f"| job start-up (import + load + encode 64 + exit) | median s ({args.repeats} runs) |")
    print("|---|---|")
    print(f"| plain imports (baseline) | {a:.2f} |")
    print(f"| import_frozen | {b:.2f} |")
    print(f"ratio baseline / import_frozen: {a / b:.2f}x")


if __name__ == "__main__":
    main()
