"""Benchmark: memory of ResidentSearch over a memory-mapped corpus, ours (in place, score matrices within
``retrieval.score_budget_mb``) against two previous versions: a copy of the map in RAM (``np.array`` of the map, as
``ResidentSearch(np.array(mapped))`` still does) and no score budget (a whole corpus chunk per product, the next
product allocated before the last was freed: what took time_inference over 20 GB at full size).

    .venv/bin/python bench/bench_resident_memory.py --n 2000000 --repeats 3

Writes an (n, 384) float32 ``vectors.npy`` once, then, in a fresh process per run (A, B, C, A, B, C ...),
memory-maps it, builds ResidentSearch on the CPU (corpus chunks of ``--chunk`` rows) and searches ``--queries``
queries in one batch, top-200, as time_inference does. Each process reports its peak RSS (the kernel's ``VmHWM``)
and its anonymous and file-backed resident memory after the search (``RssAnon``, ``RssFile``: mapped pages are page
cache, which the kernel can drop; anonymous memory it cannot), and its search seconds. Prints medians and the ratios
previous / ours, and checks that every run returns the same rows.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

WORKER = """
import json, sys, time
sys.path.insert(0, {src!r})
import numpy as np
from ftstudy.search import ResidentSearch
mapped = np.load({path!r}, mmap_mode="r")
corpus = np.array(mapped) if {copy!r} else mapped
q = np.asarray(mapped[:{queries}], dtype=np.float32)
t0 = time.perf_counter()
rows = ResidentSearch(corpus, 200, "cpu", {queries}, {chunk}, score_budget_bytes={budget!r})(q)[1]
seconds = time.perf_counter() - t0
status = dict(line.split(":", 1) for line in open("/proc/self/status") if ":" in line)
kb = lambda key: int(status[key].split()[0])
print(json.dumps({{"hwm_mb": kb("VmHWM") / 1024, "anon_mb": kb("RssAnon") / 1024, "file_mb": kb("RssFile") / 1024,
                  "seconds": seconds, "rows_sha": __import__("hashlib").sha256(rows.tobytes()).hexdigest()}}))
"""


def run(path: Path, copy: bool, budget: int | None, queries: int, chunk: int) -> dict:
    code = WORKER.format(src=str(ROOT / "src"), path=str(path), copy=copy, budget=budget, queries=queries, chunk=chunk)
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=2_000_000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--queries", type=int, default=1000, help="one batch, as time_inference's timing.n_queries")
    ap.add_argument("--chunk", type=int, default=1_000_000, help="retrieval.corpus_chunk_size")
    ap.add_argument("--budget-mb", type=int, default=1024, help="retrieval.score_budget_mb")
    args = ap.parse_args()
    budget = args.budget_mb << 20
    variants = {"ours": (False, budget), "copy (previous)": (True, budget), "no budget (previous)": (False, None)}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "vectors.npy"
        vec = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(args.n, args.dim))
        rng = np.random.default_rng(0)
        for s in range(0, args.n, 100_000):
            block = rng.standard_normal((min(100_000, args.n - s), args.dim), dtype=np.float32)
            vec[s : s + len(block)] = block / np.linalg.norm(block, axis=1, keepdims=True)
        vec.flush()
        del vec
        print(f"{args.n} x {args.dim} float32: {path.stat().st_size / 2**20:.0f} MB on disk")
        results = {name: [] for name in variants}
        for _ in range(args.repeats):
            for name, (copy, b) in variants.items():
                results[name].append(run(path, copy, b, args.queries, args.chunk))
    shas = {r["rows_sha"] for rs in results.values() for r in rs}
    print(f"same rows in every run: {len(shas) == 1}")
    keys = ("hwm_mb", "anon_mb", "file_mb", "seconds")
    med = {name: {k: statistics.median(r[k] for r in rs) for k in keys} for name, rs in results.items()}
    print(f"{args.queries} queries, chunks of {args.chunk} rows, budget {args.budget_mb} MB")
    head = f"{'':22s} {'peak RSS MB':>12s} {'anon MB':>10s} {'file MB':>10s} {'search s':>9s}"
    print(f"{head}   (medians of {args.repeats})")
    for name, m in med.items():
        print(f"{name:22s} {m['hwm_mb']:12.0f} {m['anon_mb']:10.0f} {m['file_mb']:10.0f} {m['seconds']:9.2f}")
    ours = med["ours"]
    for name in ("copy (previous)", "no budget (previous)"):
        prev = med[name]
        ratio = {k: prev[k] / ours[k] for k in keys}
        print(f"ratio {name} / ours: peak RSS {ratio['hwm_mb']:.2f}x, anonymous memory {ratio['anon_mb']:.2f}x, "
              f"search time {ratio['seconds']:.2f}x")  # fmt: skip
    return 0 if len(shas) == 1 else 1


if __name__ == "__main__":
    raise SystemExit(main())
