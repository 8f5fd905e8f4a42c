"""FAISS indices over an embedding folder: exact inner product (default), IVF or HNSW.

Memory of an exact index is n x d x 4 bytes (fp32): at full MS MARCO scale, 8,841,823 x 384 = 13.6 GB per model
and corpus (6.8 GB as fp16 vectors on disk). IVF (``IndexIVFFlat``) stores the same vectors plus nlist centroids;
HNSW adds about ``hnsw_m * 2 * 4`` bytes of graph per vector (32 -> 256 B, +2.3 GB at full scale).
"""

from __future__ import annotations

import logging
import os

import numpy as np

from ftstudy.atomic import atomic_path

LOG = logging.getLogger(__name__)
INDEX_TYPES = ("flat", "ivf", "hnsw")
MIN_POINTS_PER_CENTROID = 39  # faiss warns below this many training points per IVF list


def index_memory_bytes(n: int, d: int, bytes_per_value: int = 4) -> int:
    """Bytes of the raw vectors of an exact index (n x d x bytes_per_value)."""
    return int(n) * int(d) * int(bytes_per_value)


def effective_nlist(nlist: int, n: int) -> int:
    """``nlist`` capped so that every IVF list gets at least 39 training points (at least 1 list)."""
    return max(1, min(int(nlist), int(n) // MIN_POINTS_PER_CENTROID))


def _add_chunked(index, vectors: np.ndarray, chunk: int) -> None:
    for s in range(0, vectors.shape[0], chunk):
        index.add(np.ascontiguousarray(vectors[s : s + chunk], dtype=np.float32))


def build_index(vectors: np.ndarray, settings: dict, train_size: int | None = None, chunk: int = 500_000):
    """Build a faiss inner-product index over ``vectors`` ((n, d), a float16/float32 memmap is fine; added in chunks).

    ``settings`` is :func:`ftstudy.config.index_build_slice`'s output (the schema holds the defaults): ``type`` flat
    (``IndexFlatIP``, exact), ivf (``IndexIVFFlat`` with ``nlist`` lists, capped to n // 39 and logged, trained on
    at most ``train_size`` (default 256 * nlist) rows sampled with ``seed``) or hnsw (``IndexHNSWFlat`` with
    ``hnsw_m`` links and ``ef_construction``). Search-time settings (nprobe, ef_search) are set by
    :func:`set_search_params` / :func:`read_index`.
    """
    import faiss

    index_type = settings["type"]
    if index_type not in INDEX_TYPES:
        raise ValueError(f"retrieval.index.type '{index_type}': expected one of {INDEX_TYPES}")
    n, d = vectors.shape
    if n == 0:
        raise ValueError("build_index: no vectors")
    if index_type == "flat":
        index = faiss.IndexFlatIP(d)
    elif index_type == "hnsw":
        index = faiss.IndexHNSWFlat(d, settings["hnsw_m"], faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = settings["ef_construction"]
    else:
        index = _trained_ivf(vectors, settings["nlist"], settings["seed"], train_size)
    _add_chunked(index, vectors, chunk)
    LOG.info("built %s index: %d x %d, raw vectors %.2f GB (fp32)", index_type, n, d, index_memory_bytes(n, d) / 1e9)
    return index


def _trained_ivf(vectors: np.ndarray, nlist: int, seed: int, train_size: int | None):
    """An ``IndexIVFFlat`` (inner product) with its centroids trained on a seeded sample of ``vectors``."""
    import faiss

    n, d = vectors.shape
    nl = effective_nlist(nlist, n)
    if nl != nlist:
        LOG.info(
            "IVF nlist %d capped to %d for %d vectors (>= %d points per list)", nlist, nl, n, MIN_POINTS_PER_CENTROID
        )
    index = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, nl, faiss.METRIC_INNER_PRODUCT)
    m = min(n, train_size or 256 * nl)
    rows = np.sort(np.random.default_rng(seed).choice(n, size=m, replace=False))
    index.train(np.ascontiguousarray(vectors[rows], dtype=np.float32))
    return index


def set_search_params(index, nprobe: int | None = None, ef_search: int | None = None):
    """Set ``nprobe`` (IVF, capped at nlist) / ``ef_search`` (HNSW) where given and where the index has them."""
    if nprobe is not None and hasattr(index, "nprobe"):
        index.nprobe = min(int(nprobe), int(index.nlist))
    if ef_search is not None and hasattr(index, "hnsw"):
        index.hnsw.efSearch = int(ef_search)
    return index


def write_index(index, path: str | os.PathLike) -> None:
    """``faiss.write_index`` to a temporary sibling, then an atomic rename onto ``path``."""
    import faiss

    with atomic_path(path) as tmp:
        faiss.write_index(index, str(tmp))


def read_index(path: str | os.PathLike, nprobe: int | None = None, ef_search: int | None = None, mmap: bool = False):
    """Read a faiss index; set ``nprobe`` (IVF) / ``ef_search`` (HNSW) when given. ``mmap`` maps it read-only."""
    import faiss

    flags = faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY if mmap else 0
    return set_search_params(faiss.read_index(str(path), flags), nprobe, ef_search)
