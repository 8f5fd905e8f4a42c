"""Inference timing, the paper's Table II done right.

One protocol for every model:

- the same ``n_queries`` queries, sampled with ``timing.seed`` from the eval set's judged queries (with
  replacement only where fewer exist), encoded with the same batch size and precision;
- the timed region is exactly query encoding + similarity + top-``k`` ranking (:func:`time_queries`); model
  loading, reading files and moving the corpus embeddings to the device happen before it;
- a warm-up pass first, ``torch.cuda.synchronize()`` around every timed stage on a GPU, the median of
  ``repeats`` passes reported with every pass's time;
- search is exact: a chunked matrix product + top-k in torch, rescored in fp32
  (:class:`ftstudy.search.ResidentSearch`), over the corpus embeddings resident on the device in their stored
  precision, with the same chunking for every model;
- LoRA models are timed merged (their ``model/`` folder) and unmerged (base + adapter through peft,
  :func:`load_unmerged_lora`);
- BM25 is timed on the CPU: query tokenisation + scoring + top-k over the persisted index, loaded before timing.

:func:`time_kind` is what each timing rule runs: one of :data:`KINDS`.

Every JSON records the device name, backend, dtype, library versions, threads, sizes and every repeat's time.
"""

from __future__ import annotations

import logging
import os
import platform
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ftstudy.provenance import versions
from ftstudy.topk import SCORE_BUDGET_BYTES

LOG = logging.getLogger(__name__)
# What a timing rule times: a model folder as is (LoRA variants: merged weights), a LoRA variant unmerged (base
# model + adapter through peft), or BM25 on the CPU.
KINDS = ("merged", "unmerged", "bm25")

TIMED_REGION = "query encoding + similarity + top-k ranking (model loading, file I/O, corpus upload excluded)"


# ---- queries -------------------------------------------------------------------------------------------------
def sample_queries(qids: Sequence[int], texts: Sequence[str], n: int, seed: int) -> tuple[np.ndarray, list[str], bool]:
    """``n`` queries drawn with ``numpy.random.default_rng(seed)``: without replacement when at least ``n`` exist,
    with replacement otherwise. Returns (qids int64 (n,), texts, with_replacement)."""
    if len(qids) != len(texts):
        raise ValueError(f"sample_queries: {len(qids)} qids but {len(texts)} texts")
    if len(qids) == 0:
        raise ValueError("sample_queries: no queries to sample from")
    if n < 1:
        raise ValueError(f"sample_queries: n must be >= 1, got {n}")
    replace = n > len(qids)
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(qids), size=n, replace=replace)
    return np.asarray(qids, dtype=np.int64)[pick], [texts[i] for i in pick], replace


# ---- the timed region ----------------------------------------------------------------------------------------
def _noop() -> None:
    return None


def time_queries(
    encode_fn: Callable[[list[str]], Any],
    search_fn: Callable[[Any], Any],
    queries: Sequence[str],
    repeats: int = 3,
    sync: Callable[[], None] | None = None,
    warmup: int = 1,
    clock: Callable[[], float] = time.perf_counter,
) -> dict:
    """Time ``search_fn(encode_fn(queries))`` ``repeats`` times after ``warmup`` untimed passes.

    ``encode_fn`` maps the list of query texts to embeddings (or tokens), ``search_fn`` maps those to the top-k
    results; everything they need must be prepared before this call, since only they are timed. ``sync`` (e.g.
    ``torch.cuda.synchronize``) is called before each clock reading so asynchronous GPU work is counted.

    Returns ``{"n_queries", "seconds" (median total), "qps", "repeat_seconds", "encode_seconds",
    "search_seconds" (medians of each stage), "repeat_encode_seconds", "repeat_search_seconds", "repeats",
    "warmup"}``.
    """
    if repeats < 1:
        raise ValueError(f"time_queries: repeats must be >= 1, got {repeats}")
    queries = list(queries)
    if not queries:
        raise ValueError("time_queries: no queries")
    sync = sync or _noop
    for _ in range(warmup):
        search_fn(encode_fn(queries))
    sync()
    totals, encodes, searches = [], [], []
    for _ in range(repeats):
        sync()
        t0 = clock()
        emb = encode_fn(queries)
        sync()
        t1 = clock()
        search_fn(emb)
        sync()
        t2 = clock()
        totals.append(t2 - t0)
        encodes.append(t1 - t0)
        searches.append(t2 - t1)
    seconds = statistics.median(totals)
    return {
        "n_queries": len(queries),
        "seconds": seconds,
        "qps": len(queries) / seconds if seconds > 0 else float("inf"),
        "repeat_seconds": totals,
        "encode_seconds": statistics.median(encodes),
        "search_seconds": statistics.median(searches),
        "repeat_encode_seconds": encodes,
        "repeat_search_seconds": searches,
        "repeats": repeats,
        "warmup": warmup,
    }


# ---- devices -------------------------------------------------------------------------------------------------
def device_name(device: str) -> str:
    """Human-readable name of ``device``: the GPU's name, or the CPU model and core count."""
    if str(device).startswith("cuda"):
        import torch

        return torch.cuda.get_device_name(torch.device(device))
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"CPU: {model} ({os.cpu_count()} logical cores)"


def sync_fn(device: str) -> Callable[[], None]:
    """``torch.cuda.synchronize`` on a GPU, a no-op on the CPU."""
    if str(device).startswith("cuda"):
        import torch

        return torch.cuda.synchronize
    return _noop


# ---- models --------------------------------------------------------------------------------------------------
def _transformer_holder(model):
    """(module, attribute name) of the Hugging Face transformer inside a SentenceTransformer's first module.

    sentence-transformers 6 keeps it in ``model[0].model`` (``auto_model`` is a read-only alias); older versions
    in ``model[0].auto_model``.
    """
    import torch

    first = model[0]
    for attr in ("model", "auto_model"):
        prop = getattr(type(first), attr, None)
        if isinstance(prop, property) and prop.fset is None:
            continue
        if isinstance(getattr(first, attr, None), torch.nn.Module):
            return first, attr
    raise TypeError(f"{type(first).__name__}: no transformer attribute ('model' or 'auto_model')")


def load_unmerged_lora(base_dir: str, adapter_dir: str, device: str = "cpu"):
    """The base SentenceTransformer with the LoRA adapter at ``adapter_dir`` attached, not merged.

    The adapter is what ``PeftModel.save_pretrained`` wrote for ``peft.get_peft_model(model[0].model, ...)``.
    Every forward pass then computes ``W x + B A x`` for the adapted layers: the unmerged inference cost.
    """
    from peft import PeftModel

    from ftstudy.models import load_model

    model = load_model(str(base_dir), device)
    holder, attr = _transformer_holder(model)
    peft_model = PeftModel.from_pretrained(getattr(holder, attr), str(adapter_dir), is_trainable=False)
    setattr(holder, attr, peft_model)
    model.to(device)
    model.eval()
    return model


def query_encoder(model, batch_size: int, dtype: str) -> Callable[[list[str]], np.ndarray]:
    """``texts -> float32 (n, d)`` L2-normalised embeddings, the same code path as retrieval's query encoding."""
    from ftstudy.encode import encode_texts_dtype

    return lambda texts: encode_texts_dtype(model, texts, batch_size=batch_size, dtype=dtype)


# ---- whole measurements --------------------------------------------------------------------------------------
def time_neural(
    model,
    corpus: np.ndarray,
    queries: Sequence[str],
    *,
    device: str,
    top_k: int,
    batch_size: int,
    dtype: str,
    repeats: int,
    query_batch_size: int = 4096,
    corpus_chunk_size: int = 1_000_000,
    warmup: int = 1,
    score_budget_bytes: int | None = SCORE_BUDGET_BYTES,
) -> dict:
    """Time one SentenceTransformer (already loaded on ``device``) against its corpus embeddings (n, d).

    The corpus is uploaded to ``device`` before timing; one score matrix takes at most ``score_budget_bytes``
    (:class:`ftstudy.search.ResidentSearch`). Returns :func:`time_queries`' dict plus the settings.
    """
    from ftstudy.encode import resolve_dtype
    from ftstudy.search import ResidentSearch

    compute_dtype = resolve_dtype(dtype, device)
    search = ResidentSearch(
        corpus, top_k, device, query_batch_size, corpus_chunk_size, score_budget_bytes=score_budget_bytes
    )
    encode_fn = query_encoder(model, batch_size, compute_dtype)
    result = time_queries(encode_fn, search, queries, repeats=repeats, sync=sync_fn(device), warmup=warmup)
    result.update(
        device=device_name(device),
        device_type="cuda" if str(device).startswith("cuda") else "cpu",
        backend="torch-exact",
        dtype=compute_dtype,
        corpus_dtype=search.dtype_name,
        corpus_size=search.n,
        embedding_dim=int(corpus.shape[1]),
        top_k=search.k,
        batch_size=batch_size,
        query_batch_size=query_batch_size,
        corpus_chunk_size=corpus_chunk_size,
        score_budget_mb=None if score_budget_bytes is None else score_budget_bytes / (1 << 20),
    )
    return result


def time_bm25(index, queries: Sequence[str], *, top_k: int, repeats: int, n_threads: int = 1, warmup: int = 1) -> dict:
    """Time BM25 on the CPU: query tokenisation + scoring + top-k over an index built beforehand (``index`` from
    :func:`ftstudy.bm25.build_bm25`)."""
    from ftstudy.bm25 import retrieval_backend

    k = min(int(top_k), index.n_docs)
    index.retriever.backend = retrieval_backend(index.n_docs)  # as bm25_retrieve searches it

    def encode_fn(texts):
        return index.tokenize(texts, return_ids=False)

    def search_fn(tokens):
        return index.retriever.retrieve(tokens, k=k, show_progress=False, n_threads=max(1, n_threads))

    result = time_queries(encode_fn, search_fn, queries, repeats=repeats, sync=None, warmup=warmup)
    result.update(
        device=device_name("cpu"),
        device_type="cpu",
        backend="bm25s",
        dtype="float32",
        corpus_size=index.n_docs,
        top_k=k,
        batch_size=len(queries),
        bm25=index.describe(),
        bm25s_backend=index.retriever.backend,
    )
    return result


# ---- what each timing rule times -----------------------------------------------------------------------------
def load_timed_model(kind: str, paths: Mapping[str, Any], device: str) -> tuple[Any, dict]:
    """The SentenceTransformer a neural ``kind`` times, loaded on ``device``, and what its JSON records about it.

    ``merged``: the model folder ``paths["model"]`` (a LoRA variant's merged weights, or a full model).
    ``unmerged``: the base model folder ``paths["model"]`` with the LoRA adapter ``paths["adapter"]`` attached by
    peft (:func:`load_unmerged_lora`), truncated at the merged model ``paths["merged"]``'s ``max_seq_length`` so
    both timings encode the same tokens (where sentence-transformers keeps it differs by version).
    Returns (model, {"merged": bool} plus {"adapter": path} when unmerged).
    """
    from ftstudy.models import load_model

    if kind == "merged":
        return load_model(str(paths["model"]), device), {"merged": True}
    if kind == "unmerged":
        model = load_unmerged_lora(paths["model"], paths["adapter"], device)
        model.max_seq_length = load_model(str(paths["merged"]), "cpu").max_seq_length
        return model, {"merged": False, "adapter": str(paths["adapter"])}
    raise ValueError(f"load_timed_model: kind must be 'merged' or 'unmerged', got {kind!r}")


def time_kind(
    kind: str,
    paths: Mapping[str, Any],
    texts: Sequence[str],
    settings: Mapping[str, Any],
    *,
    threads: int,
    bm25: Mapping[str, Any] | None = None,
    query_batch_size: int = 4096,
    corpus_chunk_size: int = 1_000_000,
    score_budget_bytes: int | None = SCORE_BUDGET_BYTES,
) -> tuple[dict, dict]:
    """Time one of :data:`KINDS` on the sampled query ``texts`` with the shared protocol.

    ``paths``: the rule's inputs. ``bm25`` memory-maps the persisted index ``paths["index"]`` (rule bm25_index),
    or else indexes ``paths["collection"]`` (parquet with a ``text`` column) with the ``bm25`` settings (k1, b,
    stemmer, stopwords), before timing; then times on the CPU with ``threads``. The neural kinds load
    :func:`load_timed_model`'s model on the GPU when there is one and search ``paths["embeddings"]/vectors.npy``
    (n, d). ``settings``: ``{"timing": {top_k, batch_size, repeats, ...}, "dtype": encoding dtype}``.
    ``query_batch_size`` / ``corpus_chunk_size`` / ``score_budget_bytes``: execution knobs of the resident search
    (they change no result).
    Returns (:func:`time_neural` / :func:`time_bm25`'s result, the extra JSON fields: ``kind``, and for neural
    kinds ``merged`` [, ``adapter``]).
    """
    t = settings["timing"]
    if kind not in KINDS:
        raise ValueError(f"time_kind: kind must be one of {KINDS}, got {kind!r}")
    if kind == "bm25":
        if "index" not in paths and bm25 is None:
            raise ValueError(
                "time_kind: kind 'bm25' needs the bm25 settings (k1, b, stemmer, stopwords) to index "
                "paths['collection'], or paths['index'] (rule bm25_index's folder)"
            )
        index = _bm25_index(paths, bm25)
        return time_bm25(index, texts, top_k=t["top_k"], repeats=t["repeats"], n_threads=threads), {"kind": kind}
    from ftstudy.models import pick_device

    device = pick_device()
    model, extra = load_timed_model(kind, paths, device)
    corpus = np.load(Path(paths["embeddings"]) / "vectors.npy", mmap_mode="r")
    LOG.info("%s model on %s; corpus embeddings %s %s", kind, device, corpus.shape, corpus.dtype)
    result = time_neural(
        model,
        corpus,
        texts,
        device=device,
        top_k=t["top_k"],
        batch_size=t["batch_size"],
        dtype=settings["dtype"],
        repeats=t["repeats"],
        query_batch_size=query_batch_size,
        corpus_chunk_size=corpus_chunk_size,
        score_budget_bytes=score_budget_bytes,
    )
    return result, {"kind": kind, **extra}


def _bm25_index(paths: Mapping[str, Any], bm25: Mapping[str, Any] | None):
    """The persisted BM25 index ``paths["index"]``, memory-mapped (the workflow's rule), or one built in memory
    over the ``text`` column of the collection parquet ``paths["collection"]`` with the ``bm25`` settings."""
    from ftstudy.bm25 import build_bm25, load_bm25_index

    if "index" in paths:
        index = load_bm25_index(paths["index"])
        LOG.info("bm25 index %s loaded (memory-mapped): %s; timing on the CPU", paths["index"], index.describe())
        return index
    import pandas as pd

    texts = pd.read_parquet(paths["collection"], columns=["text"])["text"].tolist()
    index = build_bm25(texts, bm25["k1"], bm25["b"], stemmer=bm25["stemmer"], stopwords=bm25["stopwords"])
    LOG.info("bm25 index built: %s; timing on the CPU", index.describe())
    return index


def timing_record(model_id: str, result: dict, *, threads: int, extra: dict | None = None) -> dict:
    """The JSON written to ``results/timing/{model}.json``: ``result`` plus model id, threads, region and versions."""
    return {
        "model": model_id,
        **result,
        "threads": int(threads),
        "timed_region": TIMED_REGION,
        "versions": versions(),
        **(extra or {}),
    }
