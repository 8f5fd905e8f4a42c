"""Resources (``mem_mb``, ``runtime``, ``disk_mb``) of the BM25 rules, from their inputs' sizes.

Kept apart from :mod:`ftstudy.bm25` and free of NumPy: Snakemake imports this on every dry run (the rule files'
resource lambdas call it), and a dry run must stay light (``tests/test_tables.py`` checks what the rule files load).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

#: The persisted index's metadata file (written by :func:`ftstudy.bm25.save_bm25_index`).
INDEX_META = "ftstudy_bm25.json"

# ---- resources of the BM25 rules (measured by bench/bench_bm25_index.py; docs/timing.md) -------------------------
# Indexing, per MB of the collection parquet (on top of INDEX_MEM_BASE_MB): peak RSS grew 5.3 MB per parquet MB
# between 100k and 400k generated passages (the base, ~500 MB, is one 100k-passage batch's token lists and the
# imports); minutes on one busy core (measured 0.0058, x3.4 margin); disk of the index folder (measured 1.40).
INDEX_MEM_BASE_MB = 1000
INDEX_MEM_PER_MB = 6.0
INDEX_MIN_PER_MB = 0.02
INDEX_DISK_PER_MB = 3.0
# Search over a memory-mapped index: seconds per query (top 1000) per million passages on one busy core, with bm25s'
# numpy backend (measured 0.019-0.089 on a loaded machine; the larger is used) and, from NUMBA_MIN_DOCS passages up
# (ftstudy.bm25.retrieval_backend), its numba backend (bench/bench_bm25_search.py at 1M passages, busy: 0.0011;
# x4.5 margin), plus the numba JIT compile once per job (8.1 s measured; 60 s allowed).
SEARCH_S_PER_QUERY_PER_MPASSAGE = 0.089
SEARCH_S_PER_QUERY_PER_MPASSAGE_NUMBA = 0.005
NUMBA_COMPILE_S = 60
#: From this many passages up the index is searched with bm25s' numba backend (ftstudy.bm25.retrieval_backend).
NUMBA_MIN_DOCS = 200_000


def index_size_mb(path: str | os.PathLike) -> float:
    """Total size in MB of the files in the folder ``path`` (0 if it does not exist yet)."""
    p = Path(path)
    return sum(f.stat().st_size for f in p.iterdir() if f.is_file()) / 1e6 if p.is_dir() else 0.0


def _index_docs(path: str | os.PathLike) -> int:
    """Passages in the index folder ``path`` (from its metadata; 0 if it is not there yet)."""
    try:
        return int(json.loads((Path(path) / INDEX_META).read_text(encoding="utf-8"))["n_docs"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0


def search_mem_mb(path: str | os.PathLike, threads: int) -> int:
    """``mem_mb`` of a job that searches the index folder ``path`` with ``threads`` threads: every page of the
    memory-mapped index may become resident, plus the vocabulary (a dict of ~8x its JSON's size) and a float32
    score per passage for each thread, twice over, plus 1 GB for Python, the queries and their results."""
    p = Path(path)
    vocab = (p / "vocab.index.json").stat().st_size / 1e6 if (p / "vocab.index.json").is_file() else 0.0
    scores = 2 * max(1, int(threads)) * _index_docs(path) * 4 / 1e6
    return int(math.ceil(1000 + index_size_mb(path) + 8 * vocab + scores))


def search_runtime_min(path: str | os.PathLike, n_queries: int | str | os.PathLike) -> int:
    """``runtime`` (minutes) of ``n_queries`` searches (a count, or a queries parquet whose rows are counted) in
    the index folder ``path`` on one core (at the rate of the backend its size selects), with a 2x margin and at
    least 10 minutes."""
    if not isinstance(n_queries, int):
        import pyarrow.parquet as pq

        n_queries = pq.ParquetFile(n_queries).metadata.num_rows if Path(n_queries).is_file() else 0
    n_docs = _index_docs(path)
    if n_docs >= NUMBA_MIN_DOCS:
        seconds = NUMBA_COMPILE_S + SEARCH_S_PER_QUERY_PER_MPASSAGE_NUMBA * n_queries * n_docs / 1e6
    else:
        seconds = SEARCH_S_PER_QUERY_PER_MPASSAGE * n_queries * n_docs / 1e6
    return max(10, int(2 * seconds / 60) + 1)


def index_resources(collection_mb: float) -> dict:
    """``mem_mb``, ``runtime`` (minutes) and ``disk_mb`` of rule bm25_index for a collection parquet of
    ``collection_mb`` MB (the measured factors above, with floors for tiny corpora)."""
    return {
        "mem_mb": int(INDEX_MEM_BASE_MB + INDEX_MEM_PER_MB * collection_mb),
        "runtime": max(10, int(INDEX_MIN_PER_MB * collection_mb) + 1),
        "disk_mb": max(100, int(INDEX_DISK_PER_MB * collection_mb)),
    }
