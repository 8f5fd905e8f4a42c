"""Benchmark: exact top-k search (ftstudy.search, each backend) vs a NumPy brute force, same data, same process.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/bench_search.py --n-corpus 1000000 --n-queries 10000   # full size
    HF_HUB_OFFLINE=1 .venv/bin/python bench/bench_search.py --n-corpus 100000 --n-queries 1000 --repeats 3

Random unit vectors (float32, d=384). Baseline: chunked matmul + argpartition + sort of the top-k (NumPy's BLAS).
Every ftstudy path includes its exact fp32 rescoring of k + 16 candidates (ftstudy.topk); ``fast`` is
:func:`ftstudy.search.fast_search` (all queries in one batch, corpus chunks sized by a score-matrix budget).
Prints the median seconds of each and the ratio baseline / ours (> 1 means ours is faster). Checks that the
top-k agree.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from ftstudy.search import fast_search, search  # noqa: E402


def numpy_brute_force(q, c, k, query_batch=1024, corpus_chunk=250_000):
    """Chunked matmul, argpartition per chunk, merge, final sort: the plain NumPy way."""
    out_s = np.empty((len(q), k), np.float32)
    out_i = np.empty((len(q), k), np.int64)
    for qs in range(0, len(q), query_batch):
        qb = q[qs : qs + query_batch]
        best_s = np.full((len(qb), 0), -np.inf, np.float32)
        best_i = np.empty((len(qb), 0), np.int64)
        for cs in range(0, len(c), corpus_chunk):
            s = qb @ c[cs : cs + corpus_chunk].T
            kk = min(k, s.shape[1])
            part = np.argpartition(-s, kk - 1, axis=1)[:, :kk]
            cand_s = np.concatenate([best_s, np.take_along_axis(s, part, 1)], 1)
            cand_i = np.concatenate([best_i, part + cs], 1)
            kk = min(k, cand_s.shape[1])
            sel = np.argpartition(-cand_s, kk - 1, axis=1)[:, :kk]
            best_s, best_i = np.take_along_axis(cand_s, sel, 1), np.take_along_axis(cand_i, sel, 1)
        order = np.argsort(-best_s, axis=1, kind="stable")
        out_s[qs : qs + len(qb)] = np.take_along_axis(best_s, order, 1)
        out_i[qs : qs + len(qb)] = np.take_along_axis(best_i, order, 1)
    return out_s, out_i


def timed(fn, repeats):
    times, res = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        res = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-corpus", type=int, default=1_000_000)
    ap.add_argument("--n-queries", type=int, default=10_000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--k", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--backends", default="faiss,torch,fast", help="fast = ftstudy.search.fast_search (fp32 on CPU)")
    ap.add_argument("--score-budget-mb", type=int, default=1024, help="fast_search's score matrix budget")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()

    import faiss
    import torch

    if args.threads:
        faiss.omp_set_num_threads(args.threads)
        torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    c = rng.standard_normal((args.n_corpus, args.dim), dtype=np.float32)
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    q = rng.standard_normal((args.n_queries, args.dim), dtype=np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    print(
        f"{args.n_queries} queries x {args.n_corpus} vectors, d={args.dim}, k={args.k}, "
        f"torch threads {torch.get_num_threads()}, faiss threads {faiss.omp_get_max_threads()}"
    )

    base_t, (bs, _) = timed(lambda: numpy_brute_force(q, c, args.k), args.repeats)
    print(f"numpy brute force     median {base_t:8.3f} s  ({args.n_queries / base_t:9.1f} q/s)")
    for backend in args.backends.split(","):
        if backend == "fast":
            budget = args.score_budget_mb << 20
            t, (s, _) = timed(lambda m=budget: fast_search(q, c, args.k, m, dtype="float32"), args.repeats)
        else:
            t, (s, _) = timed(lambda b=backend: search(q, c, args.k, backend=b, device="cpu"), args.repeats)
        agree = np.allclose(s, bs, atol=1e-4)
        print(
            f"ftstudy.search {backend:6s} median {t:8.3f} s  ({args.n_queries / t:9.1f} q/s)  "
            f"ratio {base_t / t:5.2f}x  same scores: {agree}"
        )


if __name__ == "__main__":
    main()
