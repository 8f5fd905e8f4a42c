"""Top-k inner-product search: :func:`exact_search` (torch, chunked, from the host), :class:`ResidentSearch`
(corpus on the device), :func:`fast_search` (throughput-tuned, reduced-precision candidates) and :func:`search`
(auto/faiss/torch).

Every embedding is L2-normalised, so inner product is cosine similarity for every model. Every path is exact in
the study's sense (:mod:`ftstudy.topk`): the final top-k is fp32 brute force over the stored vectors, ties broken
by score, then pid.
"""

from __future__ import annotations

import logging

import numpy as np

from ftstudy.topk import SCORE_BUDGET_BYTES

LOG = logging.getLogger(__name__)


def _torch_dtype(name):
    """A torch dtype from a name (float32/float16/bfloat16, fp32/fp16/bf16) or a torch dtype; None stays None."""
    import torch

    if name is None or isinstance(name, torch.dtype):
        return name
    names = {"float32": torch.float32, "fp32": torch.float32, "float16": torch.float16, "fp16": torch.float16}
    names.update({"bfloat16": torch.bfloat16, "bf16": torch.bfloat16})
    if name not in names:
        raise ValueError(f"search dtype '{name}': expected one of {sorted(names)}")
    return names[name]


def _is_reduced(dtype) -> bool:
    import torch

    return dtype in (torch.float16, torch.bfloat16)


def _candidate_dtype(requested, stored, device: str):
    """The dtype candidates are found in: ``requested`` (a name or torch dtype) or the stored vectors' own; fp16 on
    the CPU becomes fp32 (CPU half-precision products are slow; fp32 candidates are exact anyway)."""
    import torch

    dtype = _torch_dtype(requested) or stored
    return torch.float32 if str(device) == "cpu" and dtype == torch.float16 else dtype


def host_tensor(array):
    """A torch tensor over the memory of a C-contiguous numpy array or (read-only) memory map, without a copy;
    other layouts are copied once. The tensor is only ever read: torch's warning about read-only memory is
    silenced, since nothing here writes into a corpus. A memory-mapped corpus thus costs page cache (file-backed,
    reclaimable) rather than a second, anonymous copy of the vectors."""
    import warnings

    import torch

    if isinstance(array, torch.Tensor):
        return array
    if not array.flags.c_contiguous:
        array = np.ascontiguousarray(array)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(array)


def _host_chunk(corpus, start: int, size: int):
    """Rows [start, start+size) of a numpy array / memory map / torch tensor, as a torch tensor over the same
    memory (:func:`host_tensor`)."""
    return host_tensor(corpus[start : start + size])


def exact_search(
    queries: np.ndarray,
    corpus: np.ndarray,
    k: int,
    device: str = "cpu",
    query_batch_size: int = 4096,
    corpus_chunk_size: int = 1_000_000,
    ids: np.ndarray | None = None,
    rescore_depth: int = 16,
    candidate_dtype=None,
    score_budget_bytes: int | None = SCORE_BUDGET_BYTES,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-``k`` rows of ``corpus`` by inner product for each row of ``queries``, streamed from the host.

    queries: (nq, d), corpus: (n, d) stored vectors (float32 or float16 numpy array / memory map). Candidates come
    from chunked matrix products on ``device`` in ``candidate_dtype`` (default: the corpus's own precision, fp32
    for fp32 vectors) and are rescored in fp32 (:mod:`ftstudy.topk`): ties break by ``ids`` (the rows' pids;
    default the row number). Returns (scores float32 (nq, k'), rows int64 (nq, k')), k' = min(k, n), best first.
    Memory stays O(query_batch x corpus_chunk), one score matrix at most ``score_budget_bytes``
    (:func:`ftstudy.topk.chunk_candidates`); the chunk, batch and budget sizes change no output.
    """
    import torch

    from ftstudy.topk import candidate_depth, chunk_candidates, rescore_batches

    n = corpus.shape[0]
    stored = torch.float16 if corpus.dtype == np.float16 else torch.float32
    dtype = _candidate_dtype(candidate_dtype, stored, device)
    depth = candidate_depth(k, n, rescore_depth, _is_reduced(dtype))
    out_s, out_i = [], []
    with torch.inference_mode():
        for qs in range(0, queries.shape[0], query_batch_size):
            q = torch.as_tensor(np.ascontiguousarray(queries[qs : qs + query_batch_size]), dtype=torch.float32)
            qd = q.to(device=device, dtype=dtype)
            chunks = (
                (cs, _host_chunk(corpus, cs, corpus_chunk_size).to(device=device, dtype=dtype))
                for cs in range(0, n, corpus_chunk_size)
            )
            rows = chunk_candidates(qd, chunks, depth, score_budget_bytes)
            s, i = rescore_batches(q, corpus, rows.cpu(), k, ids)
            out_s.append(s)
            out_i.append(i)
    return _stack(out_s, out_i, queries.shape[0], min(k, n))


def _stack(out_s, out_i, nq: int, k: int):
    if not out_s:
        return np.empty((nq, k), np.float32), np.empty((nq, k), np.int64)
    return np.concatenate(out_s), np.concatenate(out_i)


class ResidentSearch:
    """Exact top-k by inner product over corpus embeddings moved to ``device`` once, at construction.

    The same algorithm as :func:`exact_search` (candidates by chunked ``q @ c.T`` + ``topk``, then exact fp32
    rescoring with ties by ``ids``), but the corpus upload is outside the timed call. The corpus stays in its
    stored precision on the device (exact); ``dtype`` (e.g. float16 on a GPU) finds candidates in a reduced
    precision copy instead, rescored from the stored vectors. Calling it with (nq, d) query embeddings (numpy or
    torch) returns (scores float32 (nq, k'), rows int64 (nq, k')) as numpy arrays, k' = min(k, n). ``corpus``
    may be a numpy array (or memory map) or a torch tensor. One (query batch x corpus rows) score matrix takes at
    most ``score_budget_bytes`` (:func:`ftstudy.topk.chunk_candidates`; None: a whole chunk).
    """

    def __init__(
        self,
        corpus: np.ndarray,
        k: int,
        device: str = "cpu",
        query_batch_size: int = 4096,
        corpus_chunk_size: int = 1_000_000,
        dtype=None,
        ids: np.ndarray | None = None,
        rescore_depth: int = 16,
        score_budget_bytes: int | None = SCORE_BUDGET_BYTES,
    ):

        from ftstudy.topk import candidate_depth

        self.device = str(device)
        self.n = int(corpus.shape[0])
        self.k = min(int(k), self.n)
        self.ids = ids
        self.query_batch_size = int(query_batch_size)
        self.corpus_chunk_size = int(corpus_chunk_size)
        self.score_budget_bytes = score_budget_bytes
        # The stored vectors, for the exact rescoring: on the CPU the caller's array or memory map itself (no copy:
        # at 8.8M x 384 fp32, np.array of a memory map held 13.6 GB of anonymous memory beside the mapped pages).
        self.stored = host_tensor(corpus).to(self.device)
        self.dtype = _candidate_dtype(dtype, self.stored.dtype, self.device)
        search_copy = self.stored if self.dtype == self.stored.dtype else self.stored.to(self.dtype)
        self.chunks = [
            (cs, search_copy[cs : cs + self.corpus_chunk_size]) for cs in range(0, self.n, corpus_chunk_size)
        ]
        self.depth = candidate_depth(self.k, self.n, rescore_depth, _is_reduced(self.dtype))

    @property
    def dtype_name(self) -> str:
        return str(self.dtype).replace("torch.", "")

    def __call__(self, queries) -> tuple[np.ndarray, np.ndarray]:
        import torch

        from ftstudy.topk import chunk_candidates, rescore_batches

        q_all = torch.as_tensor(queries).to(device=self.device, dtype=torch.float32)
        out_s, out_i = [], []
        with torch.inference_mode():
            for qs in range(0, q_all.shape[0], self.query_batch_size):
                q = q_all[qs : qs + self.query_batch_size]
                rows = chunk_candidates(q.to(self.dtype), self.chunks, self.depth, self.score_budget_bytes)
                s, i = rescore_batches(q, self.stored, rows, self.k, self.ids)
                out_s.append(s)
                out_i.append(i)
        return _stack(out_s, out_i, q_all.shape[0], self.k)


def fast_search(queries, corpus, k: int, score_budget_bytes: int = 8 << 30, dtype="float16", rescore_depth: int = 16):
    """Throughput-tuned exact search over a device-resident corpus: all queries in one batch, corpus chunks sized
    so each (nq, chunk) score matrix stays under ``score_budget_bytes``, candidates in ``dtype`` (fp16 by default)
    and the usual exact fp32 rescoring (:mod:`ftstudy.topk`; depth 2k + ``rescore_depth`` for reduced precision).

    queries (nq, d), corpus (n, d): torch tensors or numpy arrays. Returns (scores float32, rows int64) numpy
    arrays (nq, min(k, n)), identical to :func:`exact_search`'s.
    """
    import torch

    dt = _torch_dtype(dtype)
    nq = int(queries.shape[0])
    chunk = max(int(k), score_budget_bytes // (torch.finfo(dt).bits // 8 * max(1, nq)))
    device = corpus.device if isinstance(corpus, torch.Tensor) else "cpu"
    search = ResidentSearch(
        corpus, k, str(device), max(1, nq), int(chunk), dtype=dt, rescore_depth=rescore_depth,
        score_budget_bytes=score_budget_bytes,
    )  # fmt: skip
    return search(queries)


BACKENDS = ("auto", "faiss", "torch")
FAISS_DATABASE_BS = 16384


def faiss_gpu_available() -> bool:
    """True when the installed faiss is the GPU build and sees at least one GPU."""
    try:
        import faiss
    except ImportError:
        return False
    return hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0


def _faiss_installed() -> bool:
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


# The fastest exact backend measured on each device, and the measurement that decided it (docs/retrieval.md).
# On the CPU the order depends on the host's BLAS: on the AMD EPYC build machine (torch's MKL) faiss-cpu wins; a
# 26 Nov run on an earlier build machine had torch ahead (1.69x vs 0.67x at 10,000 x 1M). `retrieval.backend`
# overrides it; every exact backend returns the same top-k (ftstudy.topk), so the choice changes no output.
AUTO_BACKEND = {
    "cpu": (
        "faiss",
        "bench/bench_search.py, 2-core AMD EPYC build machine, 1 Dec 2026, quiet: 2,000 x 1M x 384, top-200, median "
        "of 3: faiss-cpu 2.06x NumPy brute force, torch 1.08x; 10,000 x 200,000: faiss-cpu 2.25x, torch 1.47x",
    ),
    "cuda": (
        "torch",
        "DESIGN.md's H200 anchor (torch chunks, 10,000 x 8,841,823, top-200: 0.86 s); faiss knn_gpu is not "
        "measured yet (bench/gpu_throughput.py, the GPU issue)",
    ),
}


def resolve_backend(backend: str = "auto", device: str | None = None) -> tuple[str, str]:
    """Pick ``(backend, device)`` for :func:`search`.

    ``auto``: the fastest exact backend measured for the device (:data:`AUTO_BACKEND`): faiss-cpu on the CPU
    (torch where faiss is not installed), torch on a GPU. ``faiss`` uses faiss-gpu where it is installed and sees
    a GPU, else faiss-cpu. ``device`` (cpu/cuda) forces the device; by default a visible GPU is used.
    """
    if backend not in BACKENDS:
        raise ValueError(f"retrieval backend '{backend}': expected one of {BACKENDS}")
    gpu = _cuda_available() if device is None else str(device).startswith("cuda")
    dev = "cuda" if gpu else "cpu"
    if backend == "auto":
        backend = AUTO_BACKEND[dev][0]
        if backend == "faiss" and not _faiss_installed():
            backend = "torch"
    if backend == "torch":
        return "torch", dev
    if not _faiss_installed():
        raise ImportError("retrieval backend 'faiss' needs faiss-cpu or faiss-gpu (pip install '.[cpu]')")
    return "faiss", ("cuda" if gpu and faiss_gpu_available() else "cpu")


def _larger_blas_blocks(faiss) -> None:
    """Larger database blocks for faiss's flat BLAS path: ~1.4x faster on CPU than its default 1024."""
    if faiss.cvar.distance_compute_blas_database_bs < FAISS_DATABASE_BS:
        faiss.cvar.distance_compute_blas_database_bs = FAISS_DATABASE_BS


def _faiss_exhaustive(queries: np.ndarray, corpus: np.ndarray, k: int, device: str, chunk: int = 1_000_000):
    """Exact top-``k`` by inner product over ``corpus`` read ``chunk`` rows at a time (faiss's own
    ``knn_ground_truth``: one flat block and a result heap), so a memory-mapped corpus is never copied whole:
    the working set is one block of float32 rows (1.5 GB at 1M x 384) beside the mapped pages. Returns (scores
    (nq, k'), rows (nq, k')), k' = min(k, n)."""
    import faiss
    from faiss.contrib.exhaustive_search import knn_ground_truth

    n = corpus.shape[0]
    blocks = (np.ascontiguousarray(corpus[s : s + chunk], dtype=np.float32) for s in range(0, n, chunk))
    _larger_blas_blocks(faiss)
    q = np.ascontiguousarray(queries, dtype=np.float32)
    ngpu = -1 if device.startswith("cuda") else 0
    scores, rows = knn_ground_truth(q, blocks, min(k, n), metric_type=faiss.METRIC_INNER_PRODUCT, ngpu=ngpu)
    return scores, rows


def _faiss_search(index, queries: np.ndarray, k: int, device: str, query_batch_size: int):
    import faiss

    if device.startswith("cuda"):
        res = faiss.StandardGpuResources()
        co = faiss.GpuClonerOptions()
        co.useFloat16 = False  # exact fp32 scores, the same top-k as faiss-cpu (8.8M x 384: 13.6 GB on the GPU)
        try:
            index = faiss.index_cpu_to_gpu(res, 0, index, co)
        except (RuntimeError, AttributeError) as exc:  # e.g. HNSW has no GPU implementation
            LOG.warning("faiss index %s cannot move to the GPU (%s); searching on CPU", type(index).__name__, exc)
    k_eff = min(k, index.ntotal)
    nq = queries.shape[0]
    _larger_blas_blocks(faiss)
    out_s = np.empty((nq, k_eff), dtype=np.float32)
    out_i = np.empty((nq, k_eff), dtype=np.int64)
    for s in range(0, nq, query_batch_size):
        q = np.ascontiguousarray(queries[s : s + query_batch_size], dtype=np.float32)
        sc, ix = index.search(q, k_eff)
        out_s[s : s + len(q)] = sc
        out_i[s : s + len(q)] = ix
    return out_s, out_i


def search(
    queries: np.ndarray,
    corpus: np.ndarray | None,
    k: int,
    backend: str = "auto",
    index=None,
    device: str | None = None,
    query_batch_size: int = 4096,
    corpus_chunk_size: int = 1_000_000,
    ids: np.ndarray | None = None,
    rescore_depth: int = 16,
    candidate_dtype=None,
    score_budget_bytes: int | None = SCORE_BUDGET_BYTES,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` rows of ``corpus`` by inner product (= cosine for L2-normalised rows), best first.

    queries: (nq, d); corpus: (n, d) stored vectors (a memory map works), or None when ``index`` is a faiss index
    over the same rows. backend: auto | faiss | torch (see :func:`resolve_backend`). torch is
    :func:`exact_search` (``score_budget_bytes`` caps its score matrices). faiss searches ``index`` if given
    (flat, IVF or HNSW), else ``corpus`` itself in blocks
    of ``corpus_chunk_size`` rows (:func:`_faiss_exhaustive`: no index file and no second copy of the vectors),
    ``k + rescore_depth`` deep; where ``corpus`` is given its candidates are rescored exactly too. Ties
    break by score, then ``ids`` (pids; default the row). Returns (scores float32 (nq, k'), rows int64 (nq, k'))
    with k' = min(k, n); an approximate index (IVF/HNSW) may return fewer hits (rows -1).
    """
    name, dev = resolve_backend(backend, device)
    if corpus is None and index is None:
        raise ValueError("search: give corpus or index")
    if name == "torch":
        if corpus is None:
            corpus = index.reconstruct_n(0, index.ntotal)  # flat index -> its vectors
        return exact_search(
            queries, corpus, k, dev, query_batch_size, corpus_chunk_size, ids, rescore_depth, candidate_dtype,
            score_budget_bytes,
        )  # fmt: skip
    depth = max(0, rescore_depth)
    if index is None:
        k_eff = min(k, corpus.shape[0])
        scores, rows = _faiss_exhaustive(queries, corpus, k_eff + depth, dev, corpus_chunk_size)
    else:
        k_eff = min(k, index.ntotal)
        scores, rows = _faiss_search(index, queries, k_eff + depth, dev, query_batch_size)
    if corpus is None:
        return scores[:, :k_eff], rows[:, :k_eff]
    import torch

    from ftstudy.topk import rescore_batches

    q = torch.as_tensor(np.ascontiguousarray(queries), dtype=torch.float32)
    return rescore_batches(q, corpus, torch.from_numpy(rows), k_eff, ids)
