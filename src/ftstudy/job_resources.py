"""Resources (``mem_mb``, ``runtime`` in minutes, ``disk_mb``) of the heavy rules, from their inputs' sizes.

Each figure follows from what the job reads, by factors measured in the full-size scale run (``bench/bench_scale.py``;
the per-rule table in docs/scale.md) or in the stage benchmark named beside it, so that a SLURM job asks for about
what it uses instead of a constant sized for the largest case. Vectors count as float32 unless the caller passes
``itemsize=2`` (``encoding.store_dtype: float16``). Runtimes assume the job's GPU (DESIGN.md's H200 anchors) and
carry a 2x margin. Free of NumPy: Snakemake calls these on every dry run, from the rule files' resource lambdas
(workflow/rules/common.smk, ``sized_resources``). A path that does not exist yet counts as empty, so a dry run before
the data exist works, with each figure at its floor.

The estimators are pure functions of sizes (MB, rows) and return ``{"mem_mb", "runtime", "disk_mb"}`` (integers):

- :func:`prepare`: prepare_collection (and an eval set's own collection), streaming a TSV;
- :func:`sample_triplets`: sample_random_triplets, streaming the triples TSV and keeping ``n`` lines;
- :func:`encode`: encode_corpus and, a shard's share of the time, encode_corpus_shard;
- :func:`search`: retrieve and time_inference (exact search over memory-mapped vectors);
- :func:`mine`: mine_hard_negatives and its shards;
- :func:`train`: train_full / train_lora.

:func:`tree_mb` and :func:`parquet_rows` read those sizes off the files.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

MB = 1e6
DIM = 384
#: A job that loads torch, sentence-transformers and a model (peak RSS 0.8-1.0 GB in the embedded default's
#: encode and retrieve jobs; rounded up).
MODEL_JOB_BASE_MB = 2000
#: A streaming data job: Python, pandas, pyarrow and one block of rows (311 MB measured for prepare_collection at
#: full size, 340-398 MB for the eval sets; docs/data.md: flat from 1x to 4x input).
STREAM_JOB_BASE_MB = 1000

# ---- factors from the full-size scale run of 2 Dec 2026 (docs/scale.md) ------------------------------------------
#: prepare_collection: 46.6 s for a 2,996 MB collection.tsv on one core (0.26 min per GB), parquet 0.61 x the TSV.
PREPARE_MIN_PER_MB = 0.26 / 1000
PREPARE_DISK_PER_MB = 0.61
#: sample_random_triplets: 48.6 s for 5,728 MB (8,000,000 lines) read, 1,093 MB peak RSS keeping 1,000,000 lines,
#: 492 MB of parquet for them.
SAMPLE_MIN_PER_MB = 0.14 / 1000
SAMPLE_MEM_PER_KEPT = 800  # bytes per kept line above the base (1,093 MB - ~300 MB base, over 1M lines)
SAMPLE_DISK_PER_KEPT = 492
#: encode_corpus: peak RSS above the base per MB of collection parquet (the passages as Python strings beside
#: pandas' column, one chunk's token ids): 13,801 MB for the 1,829 MB parquet of 8,841,823 passages.
ENCODE_MEM_PER_PARQUET_MB = 6.9
#: Passages per second per GPU for the runtime: DESIGN.md's H200 anchor for fp32 (SentenceTransformer.encode
#: 3,526/s; bf16 is 6,190/s).
ENCODE_PASSAGES_PER_S = 3526
#: Exact search, seconds per (query x million passages): 2.4x the 2-core CPU's rate measured at full size (faiss-cpu,
#: 261 s for 6,980 dev queries x 8,841,823, top-1000: 4.2e-3), which bounds a GPU's (DESIGN.md's H200 anchor: 0.86 s
#: for 10,000 x 8.8M, 1e-5).
SEARCH_S_PER_QUERY_MPASSAGE = 1e-2
#: Training: RAM per triplet above the base (every distinct text's token ids held as one flat int32 array, the
#: triplets' texts and their pandas frame): train_lora on 1,000,000 triplets (1,750,353 distinct texts, 127.5M
#: tokens) peaked at 4,705 MB at full size, 2.7 KB a triplet above the base; x1.5 margin. Triplets per second:
#: DESIGN.md's H200 anchor (TripletLoss, batch 128, bf16: 715/s full fine-tuning, 2,276/s LoRA).
TRAIN_MEM_PER_TRIPLET = 4000
TRAIN_TRIPLETS_PER_S = {"full": 715, "lora": 2276}


def tree_mb(*paths: str | os.PathLike | None) -> float:
    """MB of the files at ``paths`` (a directory counts every file below it; a missing path or None counts 0).
    Snakemake's ``input.size_mb`` counts a directory as its entry alone (4 KB), which is why the rules call this."""
    total = 0
    for p in (Path(q) for q in paths if q is not None):
        if p.is_file():
            total += p.stat().st_size
        elif p.is_dir():
            total += sum(f.stat().st_size for f in p.rglob("*") if f.is_file())
    return total / MB


def parquet_rows(path: str | os.PathLike | None) -> int:
    """Rows of a parquet file, from its footer (0 if it does not exist yet, or is None)."""
    if path is None or not Path(path).is_file():
        return 0
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).metadata.num_rows


def vectors_mb(n: int, dim: int = DIM, itemsize: int = 4) -> float:
    """MB of ``n`` stored vectors of ``dim`` values of ``itemsize`` bytes (float32 by default) plus their int64 ids."""
    return n * (dim * itemsize + 8) / MB


def _minutes(seconds: float, floor: int = 10) -> int:
    """Runtime in minutes: ``seconds`` with a 2x margin, at least ``floor``."""
    return max(floor, math.ceil(2 * seconds / 60))


def _out(mem_mb: float, runtime: int, disk_mb: float) -> dict:
    return {"mem_mb": int(math.ceil(mem_mb)), "runtime": int(runtime), "disk_mb": max(100, int(math.ceil(disk_mb)))}


def prepare(tsv_mb: float) -> dict:
    """A prepare job streaming a TSV of ``tsv_mb`` MB: flat memory (the base, with a 3x margin over the measured
    peak), time and parquet size in proportion to the TSV."""
    return _out(STREAM_JOB_BASE_MB, _minutes(60 * PREPARE_MIN_PER_MB * tsv_mb), PREPARE_DISK_PER_MB * tsv_mb)


def sample_triplets(tsv_mb: float, n_kept: int) -> dict:
    """sample_random_triplets keeping ``n_kept`` lines of a ``tsv_mb`` MB triples file: one pass over the file, the
    kept lines in memory (2x margin) and in the parquet."""
    mem = STREAM_JOB_BASE_MB + 2 * SAMPLE_MEM_PER_KEPT * n_kept / MB
    return _out(mem, _minutes(60 * SAMPLE_MIN_PER_MB * tsv_mb), SAMPLE_DISK_PER_KEPT * n_kept / MB)


def encode(collection_mb: float, n_passages: int, itemsize: int = 4, n_shards: int = 1) -> dict:
    """encode_corpus of ``n_passages`` passages from a ``collection_mb`` MB parquet into ``itemsize``-byte vectors
    (disk: the vectors and ids, written once); with ``n_shards`` > 1, one shard's share of the time (each shard
    holds the whole collection's texts). Memory has a 1.2x margin over the measured factor."""
    mem = MODEL_JOB_BASE_MB + 1.2 * ENCODE_MEM_PER_PARQUET_MB * collection_mb
    runtime = _minutes(n_passages / ENCODE_PASSAGES_PER_S / max(1, n_shards) + 120)
    return _out(mem, runtime, vectors_mb(n_passages, itemsize=itemsize))


def search(
    vectors_mb_: float,
    n_queries: int,
    k: int,
    chunk_rows: int = 1_000_000,
    itemsize: int = 4,
    score_budget_mb: float = 1024,
    query_batch: int = 4096,
) -> dict:
    """Exact search of ``n_queries`` queries, top ``k``, over stored vectors taking ``vectors_mb_`` MB (the
    embedding folder): every page of the memory-mapped file may become resident, plus one block of ``chunk_rows``
    float32 rows, one score matrix of at most ``score_budget_mb`` (``retrieval.score_budget_mb``: a query batch
    of up to ``query_batch`` x the block) and the (k + 16)-deep results; disk is the TREC run (~40 bytes a line)."""
    n = int(vectors_mb_ * MB / (DIM * itemsize + 8))
    block = min(n, chunk_rows) * DIM * 4 / MB
    scores = min(score_budget_mb, min(n_queries, query_batch) * min(n, chunk_rows) * 4 / MB)
    results = 2 * n_queries * (k + 16) * 12 / MB
    runtime = _minutes(SEARCH_S_PER_QUERY_MPASSAGE * n_queries * n / 1e6 + 120)
    return _out(MODEL_JOB_BASE_MB + vectors_mb_ + block + scores + results, runtime, n_queries * k * 40 / MB)


def mine(vectors_mb_: float, n_queries: int, top_k: int, query_batch: int = 4096) -> dict:
    """mine_hard_negatives of ``n_queries`` queries (top ``top_k``) in batches of ``query_batch``: the search's
    memory for one batch (each batch's candidates go to the partial folder, so memory does not grow with the
    queries), plus each query's drawn texts (~1 KB); the search's time for all; candidates and triplets on disk."""
    mem = search(vectors_mb_, min(n_queries, query_batch), top_k)["mem_mb"] + n_queries * 1000 / MB
    runtime = search(vectors_mb_, n_queries, top_k)["runtime"]
    return _out(mem, runtime, n_queries * (top_k * 12 + 2000) / MB)


def train(n_triplets: int, method: str, epochs: int, max_steps: int | None, batch_size: int) -> dict:
    """train_full / train_lora (``method``) on ``n_triplets`` triplets for ``epochs`` epochs (or ``max_steps``
    steps of ``batch_size``): every triplet tokenised in memory; time from the GPU anchor; the model, its
    checkpoints and log on disk (~1 GB)."""
    seen = n_triplets * epochs if max_steps is None else min(n_triplets * epochs, max_steps * batch_size)
    runtime = _minutes(seen / TRAIN_TRIPLETS_PER_S[method] + 300, floor=30)
    return _out(MODEL_JOB_BASE_MB + TRAIN_MEM_PER_TRIPLET * n_triplets / MB, runtime, 1000)
