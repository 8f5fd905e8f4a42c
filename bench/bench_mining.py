"""Benchmark (not a test): hard-negative mining against a synthetic index, projected to the full MS MARCO run.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/bench_mining.py                       # the issue's sizes: 20K x 1M
    HF_HUB_OFFLINE=1 .venv/bin/python bench/bench_mining.py --n-queries 2000      # smaller, for a shared machine

What runs: random L2-normalised 384-d float16 passage vectors (saved and memory-mapped like the real
``vectors.npy``), random query vectors standing in for the query encoder, random qrels (1-3 positives per query),
and a synthetic collection parquet; then ``ftstudy.mining.mine_hard_negatives`` with the dense retriever of
``ftstudy.candidates`` on its faiss backend (exact IndexFlatIP, CPU), top-200, ranks 51-200. Baseline, measured
in the same process: the plain library call, ``ftstudy.search.search`` (faiss flat search) over the same queries
and index, i.e. retrieval alone. The ratio mining / baseline is the cost of everything around the search (draw,
cosines, text join, parquet write).

Projection to the full run (502,939 queries x 8,841,823 passages): search time scales with queries x passages,
the per-query overhead with queries, the text join with the collection size. Query encoding is measured on real
MS MARCO queries with the base model where the shared mini data is present (CPU), and taken from DESIGN.md's
H200 anchor for the GPU (1.2 s per 10,000 queries; exact fp16 search 0.86 s per 10,000 queries over 8.8M).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from ftstudy.candidates import dense_retriever  # noqa: E402
from ftstudy.config import schema_defaults  # noqa: E402
from ftstudy.mining import mine_hard_negatives  # noqa: E402
from ftstudy.mining_io import collection_texts  # noqa: E402
from ftstudy.negatives import MiningSettings  # noqa: E402

FULL_QUERIES = 502_939
FULL_PASSAGES = 8_841_823
H200_SEARCH_S_PER_10K = 0.86  # DESIGN.md: exact fp16 torch search, 10,000 queries x 8,841,823 x 384, top-200
H200_ENCODE_S_PER_10K = 1.2  # DESIGN.md: query encoding of 10,000 queries
MINI = Path(__file__).resolve().parents[2] / "shared" / "data" / "mini-msmarco"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def make_data(tmp: Path, n_passages: int, n_queries: int, dim: int, seed: int):
    rng = np.random.default_rng(seed)
    vec = np.lib.format.open_memmap(tmp / "vectors.npy", mode="w+", dtype=np.float16, shape=(n_passages, dim))
    for s in range(0, n_passages, 200_000):
        x = rng.standard_normal((min(200_000, n_passages - s), dim), dtype=np.float32)
        vec[s : s + len(x)] = x / np.linalg.norm(x, axis=1, keepdims=True)
    vec.flush()
    del vec
    pids = rng.permutation(n_passages).astype(np.int64) * 3 + 7  # not row numbers
    q = rng.standard_normal((n_queries, dim), dtype=np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    qids = np.arange(n_queries, dtype=np.int64) * 2 + 1
    n_pos = rng.integers(1, 4, size=n_queries)
    qrels = pd.DataFrame(
        {
            "qid": np.repeat(qids, n_pos),
            "pid": rng.choice(pids, size=int(n_pos.sum())),
            "relevance": np.ones(int(n_pos.sum()), np.int8),
        }
    )
    pd.DataFrame({"qid": qids, "text": [f"q{i}" for i in range(n_queries)]}).to_parquet(tmp / "queries.parquet")
    qrels.to_parquet(tmp / "qrels.parquet")
    pd.DataFrame({"pid": np.sort(pids), "text": [f"passage {p}" for p in np.sort(pids)]}).to_parquet(
        tmp / "collection.parquet", row_group_size=262_144
    )
    return np.load(tmp / "vectors.npy", mmap_mode="r"), pids, q


def encode_rate_cpu(n: int = 256) -> float | None:
    """Real queries per second of the base model on this CPU (mini-msmarco queries), or None without the data."""
    if not (MINI / "queries.train.tsv").exists():
        return None
    from ftstudy.encode import encode_texts
    from ftstudy.models import load_model, resolve_model

    texts = pd.read_csv(MINI / "queries.train.tsv", sep="\t", header=None, quoting=3)[1].tolist()
    texts = (texts * (n // len(texts) + 1))[:n]
    model = load_model(resolve_model("sentence-transformers/all-MiniLM-L6-v2"), "cpu")
    encode_texts(model, texts[:32])  # warm-up
    t = time.perf_counter()
    encode_texts(model, texts, batch_size=256)
    return n / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-passages", type=int, default=1_000_000)
    ap.add_argument("--n-queries", type=int, default=20_000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--top-k", type=int, default=200)
    ap.add_argument("--batch", type=int, default=4096, help="mining.query_batch_size")
    ap.add_argument("--repeats", type=int, default=1, help="timed repeats of mining and baseline (median)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-encode", action="store_true", help="skip the CPU query-encoding measurement")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)

    from ftstudy.index import build_index
    from ftstudy.search import search

    with tempfile.TemporaryDirectory(prefix="bench_mining_") as td:
        tmp = Path(td)
        t = time.perf_counter()
        vec, pids, q = make_data(tmp, args.n_passages, args.n_queries, args.dim, args.seed)
        t_data = time.perf_counter() - t
        qmap = {f"q{i}": i for i in range(args.n_queries)}

        def embed(texts):
            return q[[qmap[x] for x in texts]]

        paper = schema_defaults()["mining"]  # the paper's values, with this run's top_k
        settings = MiningSettings.from_config({**paper, "top_k": args.top_k, "rank_range": (51, args.top_k)})
        t = time.perf_counter()
        # faiss, as the baseline: the measurement in docs/mining.md compares faiss flat search inside and outside
        inner = dense_retriever(vec, pids, args.top_k, backend="faiss", device="cpu")
        t_index = time.perf_counter() - t
        in_search = [0.0]

        def retrieve(q_emb, texts):  # the same retriever, timed: mining time = search + everything else
            t0 = time.perf_counter()
            out = inner(q_emb, texts)
            in_search[0] += time.perf_counter() - t0
            return out

        mine_s, mine_cpu, search_in_mining = [], [], []
        for r in range(args.repeats):
            in_search[0] = 0.0
            c = time.process_time()
            t = time.perf_counter()
            stats = mine_hard_negatives(
                tmp / "queries.parquet",
                tmp / "qrels.parquet",
                tmp / "collection.parquet",
                tmp / f"hard{r}.parquet",
                tmp / f"hard_stats{r}.json",
                settings,
                embed,
                retrieve,
                vec,
                pids,
                tmp / "partial",
                args.batch,
                progress=False,
            )
            mine_s.append(time.perf_counter() - t)
            mine_cpu.append(time.process_time() - c)
            search_in_mining.append(in_search[0])
        rss_mining = peak_rss_mb()

        # the per-query work alone (draw, positive test, cosines), CPU time, on the first batch's cached search
        import pyarrow.parquet as pq

        from ftstudy.mining_batches import BatchMiner, mine_batch
        from ftstudy.negatives import PidIndex, judged_positives, positives_in_corpus

        qb = np.arange(min(args.batch, args.n_queries))
        qids_b = qb * 2 + 1
        texts_b = [f"q{i}" for i in qb]
        cached = inner(q[qb], texts_b)
        pidx = PidIndex(pids)
        pos_b, _ = positives_in_corpus(
            {int(k): v for k, v in judged_positives(pq.read_table(tmp / "qrels.parquet")).items()}, pidx
        )
        miner = BatchMiner(settings, pos_b, embed, lambda e, t: cached, vec, pidx)
        draw_cpu = []
        for _ in range(3):
            c = time.process_time()
            mine_batch(miner, qids_b, texts_b)
            draw_cpu.append((time.process_time() - c) / qb.size)

        t = time.perf_counter()
        wanted = np.random.default_rng(1).choice(pids, size=min(2 * args.n_queries, pids.size), replace=False)
        collection_texts(tmp / "collection.parquet", wanted)
        t_join = time.perf_counter() - t

        index = build_index(vec, {"type": "flat"})
        base_s, base_cpu = [], []
        for _ in range(args.repeats):
            c = time.process_time()
            t = time.perf_counter()
            for s in range(0, args.n_queries, args.batch):
                search(q[s : s + args.batch], None, args.top_k, backend="faiss", index=index, device="cpu")
            base_s.append(time.perf_counter() - t)
            base_cpu.append(time.process_time() - c)

    m, b = statistics.median(mine_s), statistics.median(base_s)
    qps = args.n_queries / m
    search_per_qp = b / (args.n_queries * args.n_passages)  # seconds per query-passage pair
    # everything in mining that is not the search (draw, cosines, text join, write), from the same runs
    # (the text join inside mining scales with the collection, not the queries: measured alone and subtracted)
    overhead_per_q = (
        max(statistics.median(x - y for x, y in zip(mine_s, search_in_mining, strict=True)) - t_join, 0.0)
        / args.n_queries
    )
    search_cpu_per_qp = statistics.median(base_cpu) / (args.n_queries * args.n_passages)
    join_per_passage = t_join / args.n_passages
    enc_qps = None if args.no_encode else encode_rate_cpu()
    cpu_full = (
        search_per_qp * FULL_QUERIES * FULL_PASSAGES
        + overhead_per_q * FULL_QUERIES
        + (FULL_QUERIES / enc_qps if enc_qps else 0.0)
    )
    draw_per_q = statistics.median(draw_cpu)
    gpu_full = (
        (H200_SEARCH_S_PER_10K + H200_ENCODE_S_PER_10K) * FULL_QUERIES / 10_000
        + draw_per_q * FULL_QUERIES
        + join_per_passage * FULL_PASSAGES
    )
    cpu_full += join_per_passage * FULL_PASSAGES
    out = {
        "machine": f"{os.cpu_count()} CPU cores (shared), no GPU",
        "sizes": {"queries": args.n_queries, "passages": args.n_passages, "dim": args.dim, "top_k": args.top_k},
        "query_batch_size": args.batch,
        "repeats": args.repeats,
        "data_generation_s": round(t_data, 1),
        "flat_index_build_s": round(t_index, 2),
        "mining_s_median": round(m, 2),
        "mining_cpu_s_median": round(statistics.median(mine_cpu), 2),
        "search_inside_mining_s_median": round(statistics.median(search_in_mining), 2),
        "baseline_search_s_median": round(b, 2),
        "baseline_cpu_s_median": round(statistics.median(base_cpu), 2),
        "ratio_mining_over_plain_search": round(m / b, 3),
        "mining_queries_per_s": round(qps, 1),
        "non_search_overhead_us_per_query": round(overhead_per_q * 1e6, 1),
        "draw_cpu_us_per_query": round(draw_per_q * 1e6, 1),
        "text_join_s": round(t_join, 2),
        "peak_rss_mb_after_mining": round(rss_mining, 0),
        "triplets": stats["triplets"],
        "cpu_query_encoding_qps": None if enc_qps is None else round(enc_qps, 1),
        "projection_full_run_h": {
            "this_machine_cpu_wall_as_loaded": round(cpu_full / 3600, 2),
            "search_cpu_core_hours": round(search_cpu_per_qp * FULL_QUERIES * FULL_PASSAGES / 3600, 1),
            "h200_gpu_from_design_anchor": round(gpu_full / 3600, 3),
        },
        "projection_note": "502,939 queries x 8,841,823 passages; CPU search time scales as queries x passages; "
        "GPU: DESIGN.md's H200 search and encoding anchors plus the per-query draw (CPU time) and text join "
        "measured here. Memory of the full run on CPU: the exact faiss flat index holds 8.8M x 384 fp32 = 13.6 GB.",
    }
    print(json.dumps(out, indent=2))
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
