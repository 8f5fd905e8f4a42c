"""Benchmark: BM25 search over a persisted, memory-mapped index (bm25_retrieve's path), ours (bm25s' numba backend
from ``ftstudy.bm25.NUMBA_MIN_DOCS`` passages up) against the previous version (bm25s' numpy backend, the
library's default), on generated text.

    .venv/bin/python bench/bench_bm25_search.py --passages 400000 --queries 1000 --repeats 3

Generates the collection (``bench_bm25_index.passages``: ~56 words a passage, Zipf words), builds the index once with
the rule's streamed build, then, in a fresh process per run (A, B, A, B ...), memory-maps it and searches the same
``--queries`` generated queries (2-6 words), top 1000, on one thread. Each run reports its first call on 10 queries
(numba compiles its kernels there: the one-off cost a job pays), the timed search after it, and its peak RSS.
Prints medians, the ratio previous / ours of the search seconds, and checks that both give the same scores and,
above each query's last score, the same passages (equal scores come by row: ``ftstudy.bm25.ties_by_row``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "bench"))


def queries(n: int) -> list[str]:
    """``n`` seeded queries of 2-6 words, drawn like the passages (bench_bm25_index's query generator)."""
    from bench_bm25_index import passages

    rng = np.random.default_rng(7)
    qs = passages(n, 99, 1.25, vocab_size=50_000)
    return [" ".join(q.split()[: int(k)]) for q, k in zip(qs, rng.integers(2, 7, size=n), strict=True)]


def worker(index_dir: str, n_queries: int, previous: bool, out: str) -> dict:
    from bench_bm25_index import peak_rss_mb

    from ftstudy import bm25 as B

    if previous:
        B.NUMBA_MIN_DOCS = 1 << 62  # numpy whatever the size
    index = B.load_bm25_index(index_dir)
    qs = queries(n_queries)
    t0 = time.perf_counter()
    B.bm25_search(index, qs[:10], 1000)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    scores, rows = B.bm25_search(index, qs, 1000)
    seconds = time.perf_counter() - t0
    np.savez(out, scores=scores, rows=rows)
    return {"backend": index.retriever.backend, "first_call_s": first, "seconds": seconds,
            "peak_rss_mb": peak_rss_mb(), "scores_sha": hashlib.sha256(scores.tobytes()).hexdigest()}  # fmt: skip


def run(index_dir: Path, n_queries: int, previous: bool, out: Path) -> dict:
    cmd = [sys.executable, __file__, "--worker", str(index_dir), "--queries", str(n_queries), "--out", str(out)]
    proc = subprocess.run([*cmd, *(["--previous"] if previous else [])], capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--passages", type=int, default=400_000)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--zipf", type=float, default=1.2)
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--previous", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.queries, args.previous, args.out)))
        return 0
    from bench_bm25_index import SETTINGS, write_collection

    from ftstudy.bm25 import index_collection

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write_collection(tmp / "collection.parquet", args.passages, seed=args.passages, zipf=args.zipf)
        index_collection(tmp / "collection.parquet", tmp / "index", SETTINGS)
        results = {"ours": [], "previous (numpy)": []}
        for r in range(args.repeats):
            results["ours"].append(run(tmp / "index", args.queries, False, tmp / f"ours{r}.npz"))
            results["previous (numpy)"].append(run(tmp / "index", args.queries, True, tmp / f"prev{r}.npz"))
        ours, prev = np.load(tmp / "ours0.npz"), np.load(tmp / "prev0.npz")
        same_scores = ours["scores"].tobytes() == prev["scores"].tobytes()
        above = ours["scores"] > ours["scores"][:, -1:]
        same_rows = bool((ours["rows"][above] == prev["rows"][above]).all())
    print(f"{args.passages:,} passages, {args.queries:,} queries, top 1000, one thread; medians of {args.repeats}")
    print(f"{'':18s} {'backend':>8s} {'first call s':>13s} {'search s':>9s} {'ms/query':>9s} {'peak RSS MB':>12s}")
    med = {}
    for name, recs in results.items():
        med[name] = {k: statistics.median(r[k] for r in recs) for k in ("first_call_s", "seconds", "peak_rss_mb")}
        m = med[name]
        print(f"{name:18s} {recs[0]['backend']:>8s} {m['first_call_s']:13.2f} {m['seconds']:9.2f} "
              f"{1000 * m['seconds'] / args.queries:9.2f} {m['peak_rss_mb']:12.0f}")  # fmt: skip
    print(f"ratio previous / ours, search seconds: {med['previous (numpy)']['seconds'] / med['ours']['seconds']:.1f}x")
    print(f"same scores: {same_scores}; same passages above each query's last score: {same_rows}")
    return 0 if same_scores and same_rows else 1


if __name__ == "__main__":
    raise SystemExit(main())
