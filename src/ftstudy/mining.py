"""Hard-negative mining, the whole step: judged training queries -> ``hard.parquet`` + ``hard_stats.json``.

The pieces live in their own modules:

- :mod:`ftstudy.negatives`: the draw (rank range, positives removed, margin guard, skip reasons, per-query seed)
  and :class:`~ftstudy.negatives.MiningSettings`;
- :mod:`ftstudy.candidates`: the candidate retrievers (dense base model, BM25) and the ``mining.miner`` choice;
- :mod:`ftstudy.mining_batches`: one batch at a time, each finished batch kept in a resumable partial folder
  (:mod:`ftstudy.partial`);
- :mod:`ftstudy.mining_io`: reading the inputs, writing ``hard.parquet``;
- :mod:`ftstudy.candidate_file`: the retrieved candidate lists, written beside ``hard.parquet`` so that further
  mined sets (:mod:`ftstudy.negative_filters`) need no second retrieval.

Here: :func:`mine_hard_negatives` (the step, given an embedder and a retriever), its statistics, and
:func:`mine_for_workflow` (the rule's job: loads the base model and embeddings, picks the miner); with
``mining.shards`` > 1, :func:`mine_shard` / :func:`mine_shard_for_workflow` mine one block of query batches
into the same partial folder first (:mod:`ftstudy.shards`), and the step's job only assembles.

Determinism: queries are processed in ascending qid order with a per-query RNG, and parquet row groups have a
fixed size, so the output is byte for byte the same for the same settings and inputs, whatever the execution
knobs (``mining.query_batch_size``, ``encoding.batch_size``) are; those change the stats' cosines at rounding
level at most.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from ftstudy.atomic import write_json
from ftstudy.candidate_file import candidate_writer
from ftstudy.candidates import Retriever
from ftstudy.mining_batches import BatchMiner, BatchResult, batch_done, mine_batches
from ftstudy.mining_io import collection_texts, file_signature, read_qrels, read_queries, write_hard_parquet
from ftstudy.negatives import (
    SKIP_REASONS,
    MiningSettings,
    PidIndex,
    judged_positives,
    positives_in_corpus,
    select_queries,
)
from ftstudy.partial import close_partial, open_partial
from ftstudy.provenance import config_hash

log = logging.getLogger(__name__)

SKIP_QID_CAP = 1000
ID_COLUMNS = ("qid", "pos_pid", "neg_pid", "neg_rank", "pos_cos", "neg_cos", "skipped_qid", "skipped_reason")


# ---- statistics --------------------------------------------------------------------------------------------
def rank_histogram(ranks: np.ndarray) -> dict:
    """Exact counts of the drawn ranks: ``{"ranks": [r, ...], "counts": [n, ...]}``, ascending ranks."""
    r, c = np.unique(np.asarray(ranks, np.int64), return_counts=True)
    return {"ranks": r.tolist(), "counts": c.tolist()}


def rank_bins(ranks: np.ndarray, rank_range: Sequence[int], bin_width: int = 10) -> dict:
    """Counts of drawn ranks in bins of ``bin_width`` over the rank range: ``[edge_i, edge_{i+1})``."""
    start, end = int(rank_range[0]), int(rank_range[1])
    edges = list(range(start, end + 1, bin_width))
    edges.append(end + 1)
    counts, _ = np.histogram(ranks, bins=edges)
    return {"bin_edges": edges, "counts": counts.astype(int).tolist(), "note": "bins are [edge_i, edge_{i+1})"}


def _skipped(qids: np.ndarray, reasons: np.ndarray) -> dict:
    out = {}
    for i, reason in enumerate(SKIP_REASONS):
        q = qids[reasons == i].astype(np.int64)
        out[reason] = {
            "count": int(q.size),
            "qids": q[:SKIP_QID_CAP].tolist(),
            "qids_truncated": bool(q.size > SKIP_QID_CAP),
        }
    return out


def summarise(results: list[BatchResult], settings: MiningSettings, counts: dict) -> tuple[dict, dict]:
    """(stats dict for hard_stats.json, the batches' arrays concatenated: :data:`ID_COLUMNS` -> (n,))."""
    cat = {k: np.concatenate([getattr(r, k) for r in results]) if results else np.empty(0) for k in ID_COLUMNS}
    pos_cos = cat["pos_cos"]
    stats = {
        **counts,
        "queries_mined": int(np.unique(cat["qid"]).size),
        "queries_skipped": int(cat["skipped_qid"].size),
        "skipped": _skipped(cat["skipped_qid"], cat["skipped_reason"]),
        "skipped_qid_cap": SKIP_QID_CAP,
        "triplets": int(cat["qid"].size),
        "positives_excluded": int(sum(r.positives_excluded for r in results)),
        "positives_excluded_note": "judged positives found among the top_k candidates and removed before the draw",
        "margin_dropped": int(sum(r.margin_dropped for r in results)),
        "queries_with_fewer_negatives_than_requested": int(sum(r.fewer_negatives for r in results)),
        "drawn_rank_histogram": rank_histogram(cat["neg_rank"]),
        "drawn_rank_bins": rank_bins(cat["neg_rank"], settings.rank_range),
        "mean_cosine": {
            "query_positive": float(np.mean(pos_cos, dtype=np.float64)) if pos_cos.size else None,
            "query_negative": float(np.mean(cat["neg_cos"], dtype=np.float64)) if pos_cos.size else None,
            "model": "base",
            "note": "per triplet row; cosine of L2-normalised base-model embeddings",
        },
        "settings": asdict(settings),
    }
    return stats, cat


def write_triplets(out_parquet: str | os.PathLike, cat: dict, queries: pa.Table, collection_path) -> None:
    """Write the drawn rows ``cat`` (from :func:`summarise`) as a hard.parquet-shaped file, texts joined from
    ``queries`` (qid, text sorted by qid) and one streaming scan of the collection parquet."""
    passages = collection_texts(collection_path, np.concatenate([cat["pos_pid"], cat["neg_pid"]]))
    ids = [cat[k].astype(np.int64) for k in ("qid", "pos_pid", "neg_pid", "neg_rank")]
    write_hard_parquet(out_parquet, *ids, queries, passages)


# ---- the step ----------------------------------------------------------------------------------------------
def open_mining_partial(
    partial_root: str | os.PathLike,
    settings: MiningSettings,
    query_batch_size: int,
    partial_key: dict | None,
    shared: bool = False,
) -> Path:
    """The resumable folder ``partial_root/<hash>``: keyed by the settings, ``partial_key`` (the caller's config
    slice and input signatures) and ``query_batch_size``, which is in the stamp too, so batches of another size
    (or other inputs) are never reused. ``shared``: opened by a shard job that may run beside the other shards
    (:func:`ftstudy.shards.open_shared_partial`; the key covers the stamp, so no job ever empties it)."""
    from ftstudy.shards import open_shared_partial

    stamp = {"key": partial_key, "settings": asdict(settings), "query_batch_size": int(query_batch_size)}
    return (open_shared_partial if shared else open_partial)(partial_root, config_hash(stamp), stamp)


@dataclass
class MiningRun:
    """What every batch of a mining run needs: the queries (qid, text sorted by qid), the selected qids
    (ascending), the selection counts, the batch miner, the partial folder and how many judged positives have
    no corpus row."""

    queries: pa.Table
    qids: np.ndarray
    counts: dict
    miner: BatchMiner
    folder: Path
    n_missing: int

    def query_text(self, batch: np.ndarray) -> list[str]:
        """Texts of the qids ``batch`` (each in ``queries``)."""
        q_ids_sorted = self.queries["qid"].to_numpy()
        return self.queries["text"].take(pa.array(np.searchsorted(q_ids_sorted, batch))).to_pylist()


def prepare_mining(
    queries_path, qrels_path, settings: MiningSettings, embed, retrieve, corpus_vectors, corpus_ids,
    partial_root, query_batch_size: int, retrieval_is_cosine: bool = True, min_relevance: int = 1,
    partial_key: dict | None = None, shared: bool = False,
) -> MiningRun:  # fmt: skip
    """Read the queries and judgments, select the queries to mine and open the partial folder (see
    :func:`mine_hard_negatives` for the arguments; ``shared``: a shard job's open, :func:`open_mining_partial`)."""
    settings.validate()
    queries = read_queries(queries_path)
    positives = judged_positives(read_qrels(qrels_path), min_relevance)
    qids, counts = select_queries(queries["qid"].to_numpy(), positives, settings.max_queries, settings.seed)
    log.info(
        "mining %d of %d judged training queries (%s miner, top_k %d, ranks %s)",
        qids.size,
        counts["judged_queries"],
        settings.miner,
        settings.top_k,
        list(settings.rank_range),
    )
    folder = open_mining_partial(partial_root, settings, query_batch_size, partial_key, shared=shared)
    pid_index = PidIndex(corpus_ids)
    positives, n_missing = positives_in_corpus({int(q): positives[int(q)] for q in qids}, pid_index)
    miner = BatchMiner(settings, positives, embed, retrieve, corpus_vectors, pid_index, retrieval_is_cosine)
    return MiningRun(queries, qids, counts, miner, folder, n_missing)


def mine_hard_negatives(
    queries_path: str | os.PathLike,
    qrels_path: str | os.PathLike,
    collection_path: str | os.PathLike,
    out_parquet: str | os.PathLike,
    out_stats: str | os.PathLike,
    settings: MiningSettings,
    embed: Callable[[list[str]], np.ndarray],
    retrieve: Retriever,
    corpus_vectors: np.ndarray,
    corpus_ids: np.ndarray,
    partial_root: str | os.PathLike,
    query_batch_size: int,
    retrieval_is_cosine: bool = True,
    provenance: dict | None = None,
    min_relevance: int = 1,
    progress: bool = True,
    partial_key: dict | None = None,
    out_candidates: str | os.PathLike | None = None,
) -> dict:
    """Mine every judged training query and write ``hard.parquet`` and ``hard_stats.json``; returns the stats.

    ``out_candidates``: also stream every query's candidate lists there (:mod:`ftstudy.candidate_file`).

    embed: texts -> (n, d) L2-normalised base-model embeddings. retrieve: see :data:`ftstudy.candidates.Retriever`.
    corpus_vectors / corpus_ids: the base model's corpus embeddings (n, d) (rows L2-normalised) and their pids
    (n,); used for the cosines in the stats and for the margin guard. Queries are mined ``query_batch_size`` at a
    time (an execution knob: the output does not depend on it). Finished batches are kept under
    ``partial_root`` (see :func:`open_mining_partial`) for a rerun after a kill, and batches that shard jobs
    (:func:`mine_shard`) left there are used as they are; it is removed on success.
    """
    run = prepare_mining(
        queries_path, qrels_path, settings, embed, retrieve, corpus_vectors, corpus_ids, partial_root,
        query_batch_size, retrieval_is_cosine, min_relevance, partial_key,
    )  # fmt: skip
    results = []
    writer = candidate_writer(out_candidates) if out_candidates else contextlib.nullcontext()
    with writer as cand_out:
        for res, cands in mine_batches(run.miner, run.qids, run.query_text, run.folder, query_batch_size, progress):
            results.append(res)  # a few int64 per query; the candidate lists go to disk as they come
            if cand_out is not None:
                cand_out.write(cands)
    stats, cat = summarise(results, settings, run.counts)
    stats.update(min_relevance=min_relevance, judged_positives_not_in_corpus=run.n_missing, provenance=provenance or {})
    write_triplets(out_parquet, cat, run.queries, collection_path)
    write_json(out_stats, stats)
    close_partial(partial_root)
    log.info(
        "mined %d triplets from %d queries; skipped %d (%s)",
        stats["triplets"],
        stats["queries_mined"],
        stats["queries_skipped"],
        {k: v["count"] for k, v in stats["skipped"].items()},
    )
    return stats


def mine_shard(run: MiningRun, query_batch_size: int, shard: int, n_shards: int, progress: bool = True) -> dict:
    """Shard ``shard`` of ``n_shards``: mine its block of query batches (:func:`ftstudy.shards.shard_range` over
    the ``ceil(len(qids) / query_batch_size)`` batches, ascending qids) into ``run.folder`` (opened with
    ``shared=True``), where :func:`mine_hard_negatives` finds them. Batches already there are kept (a killed
    shard resumes). Returns a record: shard, n_shards, batches [first, stop), queries, batches mined now."""
    import time

    from ftstudy.shards import shard_range

    n_batches = -(-run.qids.size // query_batch_size)
    batches = shard_range(n_batches, n_shards, shard)
    log.info("shard %d/%d: query batches %d-%d of %d", shard + 1, n_shards, batches.start, batches.stop - 1, n_batches)
    t0 = time.perf_counter()
    done_before = sum(1 for b in batches if batch_done(run.folder, b))
    for _ in mine_batches(run.miner, run.qids, run.query_text, run.folder, query_batch_size, progress, batches):
        pass  # each batch is saved in run.folder as it is mined
    n_queries = max(0, min(run.qids.size, batches.stop * query_batch_size) - batches.start * query_batch_size)
    return {
        "shard": shard,
        "n_shards": n_shards,
        "batches": [batches.start, batches.stop],
        "batches_mined": len(batches) - done_before,
        "batches_reused": done_before,
        "queries": n_queries,
        "seconds": round(time.perf_counter() - t0, 3),
    }


# ---- the workflow's job ------------------------------------------------------------------------------------
def base_query_encoder(
    model_dir: str | os.PathLike, encoding: Mapping, batch_size: int
) -> tuple[Callable[[list[str]], np.ndarray], str, str]:
    """(embed, device, dtype): ``embed(texts) -> (n, d)`` float32 L2-normalised embeddings of the model in
    ``model_dir`` on ``device`` (a GPU where there is one), with ``encoding["max_seq_length"]`` and the compute
    precision ``dtype`` resolved from ``encoding["dtype"]``; ``batch_size`` texts per forward pass (an execution
    knob)."""
    from ftstudy.encode import encode_texts_dtype, resolve_dtype
    from ftstudy.models import load_model, pick_device

    device = pick_device()
    dtype = resolve_dtype(encoding["dtype"], device)
    model = load_model(str(model_dir), device)
    model.max_seq_length = encoding["max_seq_length"]

    def embed(texts: list[str]) -> np.ndarray:
        return encode_texts_dtype(model, texts, batch_size=batch_size, dtype=dtype)

    return embed, device, dtype


@dataclass
class WorkflowMiner:
    """What the workflow's mining jobs search with: the base model's query encoder, the ``mining.miner``
    retriever, the base corpus embeddings (vectors (N, d), pids (N,)) and where they ran."""

    embed: Callable[[list[str]], np.ndarray]
    retrieve: Retriever
    retrieval_is_cosine: bool
    vectors: np.ndarray
    ids: np.ndarray
    embeddings_meta: dict
    device: str
    dtype: str


def load_miner(
    inputs: Mapping[str, str], job_slice: Mapping, encoding_batch_size: int, threads: int, backend: str
) -> WorkflowMiner:
    """The miner of a job slice (``mining``, ``encoding``, ``bm25``): inputs ``model``, ``embeddings`` and
    ``collection`` (read only by the bm25 miner). Used by the training queries' mining and by the diagnosis, so
    both search the same way."""
    from ftstudy.candidates import make_retriever
    from ftstudy.encode import load_embeddings

    settings = MiningSettings.from_config(job_slice["mining"])
    embed, device, dtype = base_query_encoder(inputs["model"], job_slice["encoding"], encoding_batch_size)
    vectors, ids, emb_meta = load_embeddings(inputs["embeddings"])
    log.info("base corpus embeddings %s from %s; query dtype %s", vectors.shape, inputs["embeddings"], dtype)
    retrieve, cosine = make_retriever(
        settings.miner,
        settings.top_k,
        vectors,
        ids,
        inputs["collection"],
        device,
        backend,
        job_slice.get("bm25"),
        threads,
    )
    return WorkflowMiner(embed, retrieve, cosine, vectors, ids, emb_meta, device, dtype)


def mine_shard_for_workflow(
    inputs: Mapping[str, str],
    job_slice: Mapping,
    shard: int,
    n_shards: int,
    query_batch_size: int,
    encoding_batch_size: int,
    partial_root: str | os.PathLike,
    threads: int = 1,
    backend: str = "auto",
) -> dict:
    """Rule ``mine_hard_negatives_shard`` (``mining.shards`` > 1): the miner of :func:`mine_for_workflow` (same
    ``inputs``, ``job_slice`` and execution knobs, so the same partial folder) mining shard ``shard`` of
    ``n_shards`` (:func:`mine_shard`). Returns the shard's record, with the device and query dtype."""
    job_slice = dict(job_slice)
    settings = MiningSettings.from_config(job_slice["mining"])
    m = load_miner(inputs, job_slice, encoding_batch_size, threads, backend)
    run = prepare_mining(
        inputs["queries"], inputs["qrels"], settings, m.embed, m.retrieve, m.vectors, m.ids, partial_root,
        query_batch_size, m.retrieval_is_cosine, partial_key=workflow_partial_key(inputs, job_slice), shared=True,
    )  # fmt: skip
    return {**mine_shard(run, query_batch_size, shard, n_shards), "device": m.device, "query_dtype": m.dtype}


def workflow_partial_key(inputs: Mapping[str, str], job_slice: Mapping) -> dict:
    """What keys the workflow's mining partial folder besides the settings: the inputs' signatures
    (:func:`ftstudy.mining_io.file_signature`) and the job's config slice."""
    return {"inputs": {k: file_signature(v) for k, v in inputs.items()}, "params": dict(job_slice)}


def mine_for_workflow(
    inputs: Mapping[str, str],
    out_parquet: str | os.PathLike,
    out_stats: str | os.PathLike,
    job_slice: Mapping,
    query_batch_size: int,
    encoding_batch_size: int,
    partial_root: str | os.PathLike,
    threads: int = 1,
    backend: str = "auto",
    out_candidates: str | os.PathLike | None = None,
) -> dict:
    """Rule ``mine_hard_negatives``: load the base model and its corpus embeddings, pick the miner, mine.

    inputs: ``queries``, ``qrels``, ``collection`` (parquet), ``model`` (SentenceTransformer folder),
    ``embeddings`` (the base model's corpus embeddings). job_slice: the config that feeds the output
    (``mining`` without execution knobs, ``base_model``, ``encoding`` dtype and max_seq_length, ``bm25`` k1/b for
    the bm25 miner). query_batch_size / encoding_batch_size / threads / backend (``retrieval.backend``: every
    exact backend returns the same candidates, :mod:`ftstudy.topk`): execution knobs, recorded in the provenance
    only. out_candidates: where the candidate lists go (``results/mining/candidates.parquet``).
    """
    from ftstudy.provenance import model_weights_sha256, versions

    job_slice = dict(job_slice)
    settings = MiningSettings.from_config(job_slice["mining"])
    m = load_miner(inputs, job_slice, encoding_batch_size, threads, backend)
    embed, retrieve, cosine, vectors, ids = m.embed, m.retrieve, m.retrieval_is_cosine, m.vectors, m.ids
    device, dtype, emb_meta = m.device, m.dtype, m.embeddings_meta
    execution = {"query_batch_size": query_batch_size, "encoding_batch_size": encoding_batch_size, "threads": threads,
                 "backend": backend}  # fmt: skip
    return mine_hard_negatives(
        inputs["queries"],
        inputs["qrels"],
        inputs["collection"],
        out_parquet,
        out_stats,
        settings,
        embed,
        retrieve,
        vectors,
        ids,
        partial_root,
        query_batch_size,
        retrieval_is_cosine=cosine,
        partial_key=workflow_partial_key(inputs, job_slice),
        out_candidates=out_candidates,
        provenance={
            "config_hash": config_hash(job_slice),
            "config": job_slice,
            "base_model_sha256": model_weights_sha256(inputs["model"]),
            "embeddings_meta": emb_meta,
            "device": device,
            "query_dtype": dtype,
            "execution": execution,
            "versions": versions(),
        },
    )
