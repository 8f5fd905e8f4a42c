"""Candidate retrievers for hard-negative mining: each query's top-k passages, in rank order.

A :data:`Retriever` maps (query embeddings (b, d) float32, query texts) -> (scores (b, k) float32, candidate pids
(b, k) int64), each row sorted by (score desc, pid asc) so that exact ties break the same way on every backend and
batch size. pids < 0 mark missing candidates (a corpus smaller than k, a BM25 query matching few passages) and
come last. :func:`make_retriever` is the ``mining.miner`` choice: ``base`` (dense, the paper) or ``bm25``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping

import numpy as np

log = logging.getLogger(__name__)

Retriever = Callable[[np.ndarray, list[str]], tuple[np.ndarray, np.ndarray]]


def make_retriever(
    miner: str,
    top_k: int,
    corpus_vectors: np.ndarray,
    corpus_ids: np.ndarray,
    collection_path: str | os.PathLike,
    device: str | None,
    backend: str,
    bm25: Mapping | None = None,
    threads: int = 1,
) -> tuple[Retriever, bool]:
    """The retriever of ``mining.miner`` and whether its scores are base-model cosines.

    base: :func:`dense_retriever` over the base model's corpus embeddings (``corpus_vectors``, L2-normalised
    rows, pids ``corpus_ids``), searched with ``backend`` on ``device``. bm25: :func:`bm25_retriever` over the
    collection parquet (columns pid, text), indexed with ``bm25["k1"]`` and ``bm25["b"]``, ``threads`` threads.
    """
    if miner == "base":
        return dense_retriever(corpus_vectors, corpus_ids, top_k, device=device, backend=backend), True
    if miner == "bm25":
        if bm25 is None:
            raise ValueError("mining.miner 'bm25' needs the bm25 settings (k1, b)")
        return bm25_collection_retriever(collection_path, top_k, bm25["k1"], bm25["b"], threads), False
    raise ValueError(f"mining.miner '{miner}': expected 'base' or 'bm25'")


def dense_retriever(
    corpus_vectors: np.ndarray,
    corpus_ids: np.ndarray,
    top_k: int,
    search_fn: Callable | None = None,
    device: str | None = None,
    backend: str = "auto",
) -> Retriever:
    """Exact cosine retrieval over L2-normalised ``corpus_vectors`` (the base miner).

    ``backend`` as in :func:`ftstudy.search.resolve_backend` (``auto``: the fastest exact backend measured for
    the device, :data:`ftstudy.search.AUTO_BACKEND`). torch: :class:`ftstudy.search.ResidentSearch`, the corpus
    moved to the device once; faiss: :func:`ftstudy.search.search` over the stored (memory-mapped) vectors in
    blocks, batch by batch, with no index (a flat ``IndexFlatIP`` of the whole corpus was a second, in-memory copy:
    13.6 GB at full size beside the mapped pages, which the full-size run's mining job died of at 24 GB).
    ``search_fn(queries, k) -> (scores, row indices)`` replaces all of it (tests).
    """
    if search_fn is not None:
        return _dense(search_fn, corpus_ids, top_k)
    from ftstudy import search as search_mod

    name, dev = search_mod.resolve_backend(backend, device)
    log.info("dense mining search: backend %s on %s", name, dev)
    if name == "torch":
        # The corpus goes to the device once, not once per query batch (8.8M x 384 float32: 13.6 GB).
        resident = search_mod.ResidentSearch(corpus_vectors, top_k, dev, ids=corpus_ids)
        return _dense(lambda q, k: resident(q), corpus_ids, top_k)

    def fn(q: np.ndarray, k: int):
        return search_mod.search(
            q, corpus_vectors, k, backend=name, device=dev, query_batch_size=max(1, len(q)), ids=corpus_ids
        )

    return _dense(fn, corpus_ids, top_k)


def _dense(fn: Callable, corpus_ids: np.ndarray, top_k: int) -> Retriever:
    def retrieve(q_emb: np.ndarray, _texts: list[str]):
        scores, idx = fn(q_emb, top_k)
        return sorted_candidates(np.asarray(scores, np.float32), np.asarray(idx, np.int64), corpus_ids)

    return retrieve


def bm25_retriever(retriever, corpus_ids: np.ndarray, top_k: int, n_threads: int = 1) -> Retriever:
    """BM25 retrieval with ``ftstudy.bm25.bm25_search`` (the bm25 miner); indices are collection rows.

    Passages with BM25 score 0 (no query term) are not candidates, so a query can have fewer than top_k."""
    from ftstudy.bm25 import bm25_search

    def retrieve(_q_emb: np.ndarray, texts: list[str]):
        scores, idx = bm25_search(retriever, list(texts), top_k, n_threads=n_threads)
        scores, idx = np.asarray(scores, np.float32), np.asarray(idx, np.int64)
        # a passage with score 0 shares no term with the query: not retrieved (as in Lucene and the BM25 runs)
        idx = np.where(scores > 0, idx, -1)
        return sorted_candidates(scores, idx, corpus_ids)

    return retrieve


def bm25_collection_retriever(
    collection_path: str | os.PathLike, top_k: int, k1: float, b: float, n_threads: int = 1
) -> Retriever:
    """:func:`bm25_retriever` over a BM25 index of the collection parquet (pid, text), built here."""
    import pyarrow.parquet as pq

    from ftstudy.bm25 import build_bm25

    coll = pq.read_table(collection_path, columns=["pid", "text"])
    log.info("indexing %d passages for BM25 (k1 %s, b %s)", coll.num_rows, k1, b)
    index = build_bm25(coll["text"].to_pylist(), k1=k1, b=b)
    return bm25_retriever(index, coll["pid"].to_numpy().astype(np.int64), top_k, n_threads)


def sorted_candidates(scores: np.ndarray, idx: np.ndarray, corpus_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Map row indices (b, k) to pids and order each row by (score desc, pid asc): exact ties break the same way
    on every backend and batch size. Invalid indices (< 0) become pid -1, score -inf, and go last."""
    valid = idx >= 0
    pids = np.where(valid, corpus_ids[np.where(valid, idx, 0)], -1).astype(np.int64)
    s = np.where(valid, scores, -np.inf)
    order = np.lexsort((pids, -s), axis=-1)
    return np.take_along_axis(s, order, 1), np.take_along_axis(pids, order, 1)
