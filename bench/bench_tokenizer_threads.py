"""Benchmark: the base model's fast tokenizer on one thread (``TOKENIZERS_PARALLELISM=false``, what every job had)
against its own Rust thread pool (``true`` with ``RAYON_NUM_THREADS`` = the job's threads, what
``workflow/scripts/_common.py`` now sets for multi-threaded jobs), texts per second.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/bench_tokenizer_threads.py --n 50000 --threads 2 --repeats 3

Texts: the first ``--n`` passages of a generated full-size-shaped collection (``bench_standin.generated_passages``).
Each run is a fresh process (A, B, A, B ...: the setting is read when the tokenizer first runs) that tokenises the
texts in one call, as encoding's length sort and training's ``tokenize_once`` do (truncation at 256, no padding).
Prints the medians, the ratio, and whether both give the same token ids.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

WORKER = """
import hashlib, json, sys, time
sys.path.insert(0, {bench!r}); sys.path.insert(0, {src!r})
from bench_standin import generated_passages
from ftstudy.models import load_model, resolve_model
texts = generated_passages({n}, 0)
tok = load_model(resolve_model("sentence-transformers/all-MiniLM-L6-v2"), "cpu").tokenizer
t0 = time.perf_counter()
ids = tok(texts, add_special_tokens=True, truncation=True, max_length=256, padding=False)["input_ids"]
seconds = time.perf_counter() - t0
sha = hashlib.sha256(json.dumps(ids).encode()).hexdigest()
print(json.dumps({{"seconds": seconds, "sha": sha}}))
"""


def run(n: int, parallel: bool, threads: int) -> dict:
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "true" if parallel else "false", "RAYON_NUM_THREADS": str(threads)}
    code = WORKER.format(bench=str(ROOT / "bench"), src=str(ROOT / "src"), n=n)
    out = subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=50_000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    runs = {"one thread (previous)": [], f"{args.threads} threads (ours)": []}
    for _ in range(args.repeats):
        for name in runs:
            runs[name].append(run(args.n, "ours" in name, args.threads))
    same = len({r["sha"] for rs in runs.values() for r in rs}) == 1
    med = {name: statistics.median(r["seconds"] for r in rs) for name, rs in runs.items()}
    print(f"{args.n:,} passages, one tokenizer call, truncation 256; medians of {args.repeats}")
    for name, sec in med.items():
        print(f"{name:24s} {sec:7.2f} s  {args.n / sec:9,.0f} texts/s")
    prev, ours = med["one thread (previous)"], med[f"{args.threads} threads (ours)"]
    print(f"ratio previous / ours: {prev / ours:.2f}x; same token ids: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
