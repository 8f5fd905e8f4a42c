"""Hard-negative mining: for each judged training query, one (or more) negatives drawn from a rank range.

The paper's procedure (the default): retrieve the top ``mining.top_k`` (200) passages with the base model,
remove every judged positive of the query, and draw ``mining.negatives_per_query`` (1) negatives from the
original ranks ``mining.rank_range`` ([51, 200]; 1-based, inclusive, counted *before* positives are removed).
Where a query has several judged positives, the positive is drawn too.

Determinism: every random choice of a query comes from ``numpy.random.default_rng([seed, qid])``, and queries
are processed in ascending qid order, so the output is byte for byte the same for the same config, whatever
``query_batch_size`` is. Parquet row groups have a fixed size for the same reason.

Scale: queries are searched ``query_batch_size`` at a time; only the mined ids (a few int64 per query) are kept,
in per-batch files under a resumable ``partial_dir``; passage texts are joined at the end by scanning the
collection parquet once and keeping only the passages that were drawn; ``hard.parquet`` is written row group by
row group to a temporary file and renamed into place.

Margin guard (``mining.margin``, off by default): candidates whose cosine with the query under the base model
exceeds ``cos(query, drawn positive) - margin`` are dropped before the draw. For the base miner this cosine is
the retrieval score itself; for the BM25 miner it is computed from the base corpus embeddings, so the margin is
in cosine units for both miners.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ftstudy.atomic import atomic_path

log = logging.getLogger(__name__)

#: Column order and types of ``results/triplets/hard.parquet`` (DESIGN.md's contract).
HARD_SCHEMA = pa.schema(
    [
        ("query", pa.string()),
        ("positive", pa.string()),
        ("negative", pa.string()),
        ("qid", pa.int64()),
        ("pos_pid", pa.int64()),
        ("neg_pid", pa.int64()),
        ("neg_rank", pa.int64()),
    ]
)
ROW_GROUP_SIZE = 65_536
SKIP_QID_CAP = 1000

# Reasons a judged query yields no triplet (keys of hard_stats.json "skipped").
SKIP_POSITIVE_MISSING = "positive_not_in_collection"
SKIP_FEW_CANDIDATES = "fewer_candidates_than_range_start"
SKIP_NO_CANDIDATE = "no_candidate_left_in_range"
SKIP_REASONS = (SKIP_POSITIVE_MISSING, SKIP_FEW_CANDIDATES, SKIP_NO_CANDIDATE)


@dataclass(frozen=True)
class MiningSettings:
    """The ``mining`` config slice (defaults: the paper's values)."""

    miner: str = "base"
    top_k: int = 200
    rank_range: tuple[int, int] = (51, 200)
    negatives_per_query: int = 1
    margin: float | None = None
    max_queries: int | None = None
    query_batch_size: int = 4096
    seed: int = 42

    @classmethod
    def from_config(cls, mining: dict) -> MiningSettings:
        known = {k: v for k, v in mining.items() if k in cls.__dataclass_fields__}
        if "rank_range" in known:
            known["rank_range"] = tuple(int(x) for x in known["rank_range"])
        return cls(**known)

    def validate(self) -> None:
        """Raise ValueError naming ``mining.rank_range`` if the range cannot be drawn from."""
        start, end = self.rank_range
        if start < 1 or start > end or end > self.top_k:
            raise ValueError(
                f"mining.rank_range {list(self.rank_range)}: need 1 <= start <= end <= mining.top_k ({self.top_k})"
            )


@dataclass
class QueryDraw:
    """What was drawn for one query. ``neg_ranks`` are original 1-based ranks."""

    pos_pid: int
    neg_pids: np.ndarray
    neg_ranks: np.ndarray
    positives_excluded: int  # judged positives found among the top_k candidates
    margin_dropped: int  # in-range non-positive candidates dropped by the margin guard


def query_rng(seed: int, qid: int) -> np.random.Generator:
    """The per-query generator: depends only on (seed, qid), never on batch boundaries."""
    return np.random.default_rng([int(seed), int(qid)])


def draw_query(
    qid: int,
    cand_pids: np.ndarray,
    positive_pids: np.ndarray,
    settings: MiningSettings,
    cand_cos: np.ndarray | None = None,
    positive_cos: np.ndarray | None = None,
    is_pos: np.ndarray | None = None,
) -> QueryDraw | str:
    """Draw one query's positive and negatives, or return the skip reason (one of SKIP_REASONS).

    cand_pids: (k,) candidate pids in rank order (rank 1 first); may be shorter than top_k.
    positive_pids: (p,) judged positive pids present in the collection, ascending.
    cand_cos / positive_cos: base-model cosines of the candidates / positives; needed only with a margin.
    is_pos: optional precomputed ``np.isin(cand_pids, positive_pids)`` (the batch loop vectorises it).
    """
    if positive_pids.size == 0:
        return SKIP_POSITIVE_MISSING
    start, end = settings.rank_range
    if cand_pids.size < start:
        return SKIP_FEW_CANDIDATES
    rng = query_rng(settings.seed, qid)
    p = int(rng.integers(positive_pids.size)) if positive_pids.size > 1 else 0
    pos_pid = int(positive_pids[p])
    if is_pos is None:
        is_pos = np.isin(cand_pids, positive_pids)
    keep = np.zeros(cand_pids.size, bool)
    keep[start - 1 : end] = True  # original ranks start..end (1-based, inclusive)
    keep &= ~is_pos
    margin_dropped = 0
    if settings.margin is not None:
        if cand_cos is None or positive_cos is None:
            raise ValueError("mining.margin needs candidate and positive cosines")
        limit = float(positive_cos[p]) - float(settings.margin)
        too_close = keep & (np.asarray(cand_cos) > limit)
        margin_dropped = int(too_close.sum())
        keep &= ~too_close
    pool = np.flatnonzero(keep)
    if pool.size == 0:
        return SKIP_NO_CANDIDATE
    n = min(settings.negatives_per_query, pool.size)
    if n == 1:
        chosen = pool[[int(rng.integers(pool.size))]]
    else:
        chosen = np.sort(rng.choice(pool, size=n, replace=False))
    return QueryDraw(
        pos_pid=pos_pid,
        neg_pids=cand_pids[chosen].astype(np.int64),
        neg_ranks=(chosen + 1).astype(np.int64),
        positives_excluded=int(is_pos.sum()),
        margin_dropped=margin_dropped,
    )


# ---- inputs ----------------------------------------------------------------------------------------------
class PidIndex:
    """Vectorised pid -> row lookup for large id arrays (no Python dict of millions of ints)."""

    def __init__(self, ids: np.ndarray):
        ids = np.asarray(ids, dtype=np.int64)
        self.order = np.argsort(ids, kind="stable")
        self.sorted = ids[self.order]

    def rows(self, pids: np.ndarray) -> np.ndarray:
        """Row of each pid, -1 where absent."""
        pids = np.asarray(pids, dtype=np.int64)
        pos = np.searchsorted(self.sorted, pids)
        pos_c = np.minimum(pos, max(self.sorted.size - 1, 0))
        found = (pos < self.sorted.size) & (self.sorted[pos_c] == pids) if self.sorted.size else pos < 0
        return np.where(found, self.order[pos_c], -1)


def _read_table(path: str | os.PathLike, columns: dict[str, pa.DataType]) -> pa.Table:
    """Read ``columns`` of a parquet file, cast to the expected types; a clear error names the file."""
    try:
        table = pq.read_table(path, columns=list(columns))
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: file not found") from None
    except (pa.ArrowInvalid, KeyError) as exc:
        raise ValueError(f"{path}: expected parquet with columns {list(columns)} ({exc})") from None
    try:
        return table.cast(pa.schema([(k, v) for k, v in columns.items()]))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise ValueError(
            f"{path}: columns {list(columns)} must have types {list(map(str, columns.values()))} ({exc})"
        ) from None


def judged_positives(qrels: pa.Table, min_relevance: int = 1) -> dict[int, np.ndarray]:
    """qid -> ascending unique pids with relevance >= min_relevance."""
    mask = pc.greater_equal(qrels["relevance"], min_relevance)
    qids = qrels["qid"].filter(mask).to_numpy()
    pids = qrels["pid"].filter(mask).to_numpy()
    order = np.lexsort((pids, qids))
    qids, pids = qids[order], pids[order]
    out: dict[int, np.ndarray] = {}
    if qids.size == 0:
        return out
    bounds = np.flatnonzero(np.diff(qids)) + 1
    for q, group in zip(qids[np.r_[0, bounds]], np.split(pids, bounds), strict=True):
        out[int(q)] = np.unique(group)
    return out


def select_queries(
    query_qids: np.ndarray, positives: dict[int, np.ndarray], max_queries: int | None, seed: int
) -> tuple[np.ndarray, dict]:
    """Judged training qids to mine, ascending; a seeded sample of ``max_queries`` of them when set.

    Returns (qids, counts) where counts says how many queries were read, judged, unjudged, selected, and how
    many qrels qids have no query text (those cannot be mined and are left out).
    """
    query_qids = np.asarray(query_qids, dtype=np.int64)
    judged_all = np.fromiter(positives.keys(), dtype=np.int64, count=len(positives))
    judged = np.intersect1d(np.unique(query_qids), judged_all)
    counts = {
        "training_queries": int(query_qids.size),
        "judged_queries": int(judged.size),
        "unjudged_queries": int(np.unique(query_qids).size - judged.size),
        "qrels_qids_without_query": int(np.setdiff1d(judged_all, judged).size),
    }
    if max_queries is not None and max_queries < judged.size:
        judged = np.sort(np.random.default_rng(seed).choice(judged, size=max_queries, replace=False))
    counts["selected_queries"] = int(judged.size)
    return judged, counts


# ---- the batch loop ----------------------------------------------------------------------------------------
# A retriever maps (query embeddings (b, d) float32, query texts) -> (scores (b, k), candidate pids (b, k) int64)
# in rank order. pids < 0 mark missing candidates (a corpus smaller than k).
Retriever = Callable[[np.ndarray, list[str]], tuple[np.ndarray, np.ndarray]]


def dense_retriever(
    corpus_vectors: np.ndarray,
    corpus_ids: np.ndarray,
    top_k: int,
    search_fn: Callable | None = None,
    device: str | None = None,
    backend: str = "auto",
) -> Retriever:
    """Exact cosine retrieval over L2-normalised ``corpus_vectors`` (the base miner).

    Default: ``ftstudy.search.search``. On a GPU the ``auto`` backend is torch's chunked exact fp16 search (the
    corpus is not cloned into a faiss-gpu index per batch); on CPU an exact faiss ``IndexFlatIP`` is built once
    and searched batch by batch. ``search_fn(queries, k) -> (scores, row indices)`` replaces all of it (tests).
    """
    fn = search_fn
    if fn is None:
        from ftstudy import search as search_mod

        name, dev = search_mod.resolve_backend(backend, device)
        if backend == "auto" and dev == "cuda":
            name = "torch"
        index = None
        if name == "faiss":
            from ftstudy.index import build_index

            index = build_index(corpus_vectors, "flat")
        log.info("dense mining search: backend %s on %s", name, dev)
        if name == "torch":
            # The corpus goes to the device once, not once per query batch (8.8M x 384 fp16: 6.8 GB).
            resident = search_mod.ResidentSearch(corpus_vectors, top_k, dev)

            def fn(q: np.ndarray, k: int):
                return resident(q)

            return _dense(fn, corpus_ids, top_k)

        def fn(q: np.ndarray, k: int):
            return search_mod.search(
                q,
                None if index is not None else corpus_vectors,
                k,
                backend=name,
                index=index,
                device=dev,
                query_batch_size=max(1, len(q)),
            )

    return _dense(fn, corpus_ids, top_k)


def _dense(fn: Callable, corpus_ids: np.ndarray, top_k: int) -> Retriever:
    def retrieve(q_emb: np.ndarray, _texts: list[str]):
        scores, idx = fn(q_emb, top_k)
        return _sorted_candidates(np.asarray(scores, np.float32), np.asarray(idx, np.int64), corpus_ids)

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
        return _sorted_candidates(scores, idx, corpus_ids)

    return retrieve


def _sorted_candidates(scores: np.ndarray, idx: np.ndarray, corpus_ids: np.ndarray):
    """Map row indices to pids and order each row by (score desc, pid asc): exact ties break the same way on
    every backend and batch size. Invalid indices (< 0) become pid -1 and go last."""
    valid = idx >= 0
    pids = np.where(valid, corpus_ids[np.where(valid, idx, 0)], -1).astype(np.int64)
    s = np.where(valid, scores, -np.inf)
    order = np.lexsort((pids, -s), axis=-1)
    return np.take_along_axis(s, order, 1), np.take_along_axis(pids, order, 1)


@dataclass
class BatchResult:
    qid: np.ndarray
    pos_pid: np.ndarray
    neg_pid: np.ndarray
    neg_rank: np.ndarray
    pos_cos: np.ndarray
    neg_cos: np.ndarray
    skipped_qid: np.ndarray
    skipped_reason: np.ndarray  # index into SKIP_REASONS
    positives_excluded: int
    margin_dropped: int
    fewer_negatives: int  # queries that got fewer than negatives_per_query negatives

    def save(self, path: Path) -> None:
        with atomic_path(path, suffix=".npz") as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, **{k: np.asarray(v) for k, v in asdict(self).items()})

    @classmethod
    def load(cls, path: Path) -> BatchResult:
        with np.load(path) as z:
            d = {k: z[k] for k in z.files}
        for k in ("positives_excluded", "margin_dropped", "fewer_negatives"):
            d[k] = int(d[k])
        return cls(**d)


def mine_batch(
    qids: np.ndarray,
    texts: list[str],
    positives: dict[int, np.ndarray],
    settings: MiningSettings,
    embed: Callable[[list[str]], np.ndarray],
    retrieve: Retriever,
    corpus_vectors: np.ndarray,
    pid_index: PidIndex,
    retrieval_is_cosine: bool,
) -> BatchResult:
    """Mine one batch of queries. Cosines are under the base model (``embed`` + ``corpus_vectors``).

    ``positives`` must hold only pids that have a row in ``pid_index`` (see :func:`positives_in_corpus`).
    The positive test and the cosines are vectorised over the batch; only the seeded draw runs per query.
    """
    q_emb = np.asarray(embed(texts), dtype=np.float32)
    scores, cand = retrieve(q_emb, texts)
    pos_lists = [positives[q] for q in qids.tolist()]
    width = max((p.size for p in pos_lists), default=0)
    pos_mat = np.full((len(pos_lists), max(width, 1)), -2, np.int64)  # -2 never matches a pid or the -1 padding
    for i, p in enumerate(pos_lists):
        pos_mat[i, : p.size] = p
    is_pos_all = (cand[:, :, None] == pos_mat[:, None, :]).any(-1) if cand.size else np.zeros(cand.shape, bool)
    n_valid = (cand >= 0).sum(1)

    def cosines(i: int, pids: np.ndarray) -> np.ndarray:
        return np.asarray(corpus_vectors[_rows(pid_index, pids)], np.float32) @ q_emb[i]

    out_q, out_pos, out_neg, out_rank, out_i = [], [], [], [], []
    skipped_q, skipped_r = [], []
    excluded = dropped = fewer = 0
    for i, qid in enumerate(qids.tolist()):
        pos = pos_lists[i]
        c = cand[i, : n_valid[i]]  # candidates are sorted with the -1 padding last
        cand_cos = pos_cos = None
        if settings.margin is not None and pos.size and c.size >= settings.rank_range[0]:
            pos_cos = cosines(i, pos)
            cand_cos = scores[i, : c.size] if retrieval_is_cosine else cosines(i, c)
        res = draw_query(qid, c, pos, settings, cand_cos, pos_cos, is_pos=is_pos_all[i, : c.size])
        if isinstance(res, str):
            skipped_q.append(qid)
            skipped_r.append(SKIP_REASONS.index(res))
            continue
        n = res.neg_pids.size
        fewer += n < settings.negatives_per_query
        excluded += res.positives_excluded
        dropped += res.margin_dropped
        out_q.append(np.full(n, qid, np.int64))
        out_pos.append(np.full(n, res.pos_pid, np.int64))
        out_neg.append(res.neg_pids)
        out_rank.append(res.neg_ranks)
        out_i.append(np.full(n, i, np.int64))

    def cat(parts):
        return np.concatenate(parts) if parts else np.empty(0, np.int64)

    qi, pos_pid, neg_pid = cat(out_i), cat(out_pos), cat(out_neg)
    return BatchResult(
        qid=cat(out_q),
        pos_pid=pos_pid,
        neg_pid=neg_pid,
        neg_rank=cat(out_rank),
        pos_cos=_row_cosines(corpus_vectors, _rows(pid_index, pos_pid), q_emb[qi]),
        neg_cos=_row_cosines(corpus_vectors, _rows(pid_index, neg_pid), q_emb[qi]),
        skipped_qid=np.asarray(skipped_q, np.int64),
        skipped_reason=np.asarray(skipped_r, np.int64),
        positives_excluded=excluded,
        margin_dropped=dropped,
        fewer_negatives=fewer,
    )


def _rows(pid_index: PidIndex, pids: np.ndarray) -> np.ndarray:
    r = pid_index.rows(pids)
    if (r < 0).any():
        raise ValueError(f"pids {pids[r < 0][:5].tolist()} have no base-model embedding")
    return r


def _row_cosines(corpus_vectors: np.ndarray, rows: np.ndarray, q: np.ndarray) -> np.ndarray:
    """cos(q[j], corpus[rows[j]]) for each j, float32; rows are read in ascending order (memory maps)."""
    if rows.size == 0:
        return np.empty(0, np.float32)
    order = np.argsort(rows, kind="stable")
    vec = np.empty((rows.size, corpus_vectors.shape[1]), np.float32)
    vec[order] = corpus_vectors[rows[order]]
    return np.einsum("ij,ij->i", vec, q).astype(np.float32)


def positives_in_corpus(positives: dict[int, np.ndarray], pid_index: PidIndex) -> tuple[dict, int]:
    """Drop judged positives that have no corpus row (vectorised); returns (positives, number dropped)."""
    if not positives:
        return {}, 0
    keys = list(positives)
    sizes = np.fromiter((positives[k].size for k in keys), np.int64, len(keys))
    flat = np.concatenate([positives[k] for k in keys])
    ok = pid_index.rows(flat) >= 0
    parts = np.split(flat, np.cumsum(sizes)[:-1])
    oks = np.split(ok, np.cumsum(sizes)[:-1])
    return {k: p[m] for k, p, m in zip(keys, parts, oks, strict=True)}, int((~ok).sum())


def mine_ids(
    qids: np.ndarray,
    query_text: Callable[[np.ndarray], list[str]],
    positives: dict[int, np.ndarray],
    settings: MiningSettings,
    embed: Callable[[list[str]], np.ndarray],
    retrieve: Retriever,
    corpus_vectors: np.ndarray,
    corpus_ids: np.ndarray,
    partial_dir: str | os.PathLike,
    retrieval_is_cosine: bool = True,
    progress: bool = True,
    pid_index: PidIndex | None = None,
) -> Iterator[BatchResult]:
    """Mine ``qids`` (ascending) batch by batch; each finished batch is saved under ``partial_dir`` and reused
    on a rerun (the caller keys ``partial_dir`` by the config slice, including query_batch_size)."""
    from tqdm.auto import tqdm

    settings.validate()
    partial = Path(partial_dir)
    partial.mkdir(parents=True, exist_ok=True)
    pid_index = pid_index or PidIndex(corpus_ids)
    positives, _ = positives_in_corpus({int(q): positives[int(q)] for q in qids}, pid_index)
    bs = settings.query_batch_size
    n_batches = (qids.size + bs - 1) // bs
    bar = tqdm(total=int(qids.size), desc="mining", unit="q", disable=not progress, mininterval=10)
    for b in range(n_batches):
        path = partial / f"batch_{b:06d}.npz"
        batch = qids[b * bs : (b + 1) * bs]
        if path.exists():
            res = BatchResult.load(path)
        else:
            res = mine_batch(
                batch,
                query_text(batch),
                positives,
                settings,
                embed,
                retrieve,
                corpus_vectors,
                pid_index,
                retrieval_is_cosine,
            )
            res.save(path)
        bar.update(batch.size)
        yield res
    bar.close()


# ---- output ------------------------------------------------------------------------------------------------
def collection_texts(collection_path: str | os.PathLike, pids: np.ndarray, batch_rows: int = 262_144) -> pa.Table:
    """(pid, text) of the wanted ``pids`` only, sorted by pid, from one streaming scan of the collection.

    Raises ValueError naming the file if a wanted pid is missing.
    """
    want = pa.array(np.unique(np.asarray(pids, np.int64)))
    parts = []
    pf = pq.ParquetFile(collection_path)
    for rb in pf.iter_batches(batch_size=batch_rows, columns=["pid", "text"]):
        pid_col = rb.column(0).cast(pa.int64())
        mask = pc.is_in(pid_col, value_set=want)
        if pc.any(mask).as_py():
            parts.append(pa.table({"pid": pid_col.filter(mask), "text": rb.column(1).cast(pa.string()).filter(mask)}))
    table = (
        pa.concat_tables(parts)
        if parts
        else pa.table({"pid": pa.array([], pa.int64()), "text": pa.array([], pa.string())})
    )
    table = table.sort_by("pid")
    got = table["pid"].to_numpy()
    missing = np.setdiff1d(want.to_numpy(), got)
    if missing.size:
        raise ValueError(
            f"{collection_path}: {missing.size} mined pids are not in the collection (first: {missing[:5].tolist()})"
        )
    # Duplicated pids in the collection: keep the first occurrence.
    first = np.r_[True, got[1:] != got[:-1]] if got.size else np.zeros(0, bool)
    return table.filter(pa.array(first))


def _take_text(table: pa.Table, pids: np.ndarray) -> pa.Array:
    pos = np.searchsorted(table["pid"].to_numpy(), pids)
    return table["text"].take(pa.array(pos)).combine_chunks()


def write_hard_parquet(
    path: str | os.PathLike,
    qid: np.ndarray,
    pos_pid: np.ndarray,
    neg_pid: np.ndarray,
    neg_rank: np.ndarray,
    query_texts: pa.Table,
    passage_texts: pa.Table,
    row_group_size: int = ROW_GROUP_SIZE,
) -> None:
    """Write hard.parquet row group by row group to a temporary file, then rename it into place.

    query_texts / passage_texts: (qid|pid, text) tables sorted by id. Row groups have a fixed size, so the file
    depends only on the rows.
    """
    q_sorted = query_texts.rename_columns(["pid", "text"])
    with atomic_path(path) as tmp:
        with pq.ParquetWriter(tmp, HARD_SCHEMA, compression="zstd") as writer:
            for s in range(0, max(qid.size, 1), row_group_size):
                sl = slice(s, s + row_group_size)
                batch = pa.table(
                    [
                        _take_text(q_sorted, qid[sl]),
                        _take_text(passage_texts, pos_pid[sl]),
                        _take_text(passage_texts, neg_pid[sl]),
                        pa.array(qid[sl], pa.int64()),
                        pa.array(pos_pid[sl], pa.int64()),
                        pa.array(neg_pid[sl], pa.int64()),
                        pa.array(neg_rank[sl], pa.int64()),
                    ],
                    schema=HARD_SCHEMA,
                )
                writer.write_table(batch, row_group_size=row_group_size)


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


def summarise(results: list[BatchResult], settings: MiningSettings, counts: dict) -> tuple[dict, dict]:
    """(stats dict for hard_stats.json, concatenated id arrays for the parquet)."""
    cat = {
        k: np.concatenate([getattr(r, k) for r in results]) if results else np.empty(0)
        for k in ("qid", "pos_pid", "neg_pid", "neg_rank", "pos_cos", "neg_cos", "skipped_qid", "skipped_reason")
    }
    skipped = {}
    for i, reason in enumerate(SKIP_REASONS):
        q = cat["skipped_qid"][cat["skipped_reason"] == i].astype(np.int64)
        skipped[reason] = {
            "count": int(q.size),
            "qids": q[:SKIP_QID_CAP].tolist(),
            "qids_truncated": bool(q.size > SKIP_QID_CAP),
        }
    n_mined = int(np.unique(cat["qid"]).size)
    pos_cos = cat["pos_cos"]
    stats = {
        **counts,
        "queries_mined": n_mined,
        "queries_skipped": int(cat["skipped_qid"].size),
        "skipped": skipped,
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


# ---- the whole step ---------------------------------------------------------------------------------------
def read_queries(path: str | os.PathLike) -> pa.Table:
    """(qid, text) sorted by qid; duplicated qids are an error naming the file."""
    table = _read_table(path, {"qid": pa.int64(), "text": pa.string()}).sort_by("qid")
    q = table["qid"].to_numpy()
    dup = q[1:][q[1:] == q[:-1]]
    if dup.size:
        raise ValueError(f"{path}: qid {int(dup[0])} appears more than once (expected one row per query)")
    return table


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
    partial_dir: str | os.PathLike,
    retrieval_is_cosine: bool = True,
    provenance: dict | None = None,
    min_relevance: int = 1,
    progress: bool = True,
    partial_key: dict | None = None,
) -> dict:
    """Mine every judged training query and write ``hard.parquet`` and ``hard_stats.json``; returns the stats.

    embed: texts -> (n, d) L2-normalised base-model embeddings. retrieve: see :data:`Retriever`.
    corpus_vectors / corpus_ids: the base model's corpus embeddings (rows L2-normalised) and their pids; used
    for the cosines in the stats and for the margin guard. ``partial_dir`` holds finished batches (resume) and
    is removed on success; ``partial_key`` (the settings plus input signatures) is stored there and finished
    batches are only reused when it matches (and query_batch_size is the same).
    """
    import shutil

    from ftstudy.atomic import write_json

    settings.validate()
    queries = read_queries(queries_path)
    qrels = _read_table(qrels_path, {"qid": pa.int64(), "pid": pa.int64(), "relevance": pa.int8()})
    positives = judged_positives(qrels, min_relevance)
    qids, counts = select_queries(queries["qid"].to_numpy(), positives, settings.max_queries, settings.seed)
    log.info(
        "mining %d of %d judged training queries (%s miner, top_k %d, ranks %s)",
        qids.size,
        counts["judged_queries"],
        settings.miner,
        settings.top_k,
        list(settings.rank_range),
    )
    q_ids_sorted = queries["qid"].to_numpy()

    def query_text(batch: np.ndarray) -> list[str]:
        return queries["text"].take(pa.array(np.searchsorted(q_ids_sorted, batch))).to_pylist()

    _prepare_partial(Path(partial_dir), {"key": partial_key, "settings": asdict(settings)})
    pid_index = PidIndex(corpus_ids)
    _, n_missing = positives_in_corpus({int(q): positives[int(q)] for q in qids}, pid_index)
    results = list(
        mine_ids(
            qids,
            query_text,
            positives,
            settings,
            embed,
            retrieve,
            corpus_vectors,
            corpus_ids,
            partial_dir,
            retrieval_is_cosine,
            progress,
            pid_index,
        )
    )
    stats, cat = summarise(results, settings, counts)
    stats["min_relevance"] = min_relevance
    stats["judged_positives_not_in_corpus"] = n_missing
    stats["provenance"] = provenance or {}
    passages = collection_texts(collection_path, np.concatenate([cat["pos_pid"], cat["neg_pid"]]))
    write_hard_parquet(
        out_parquet,
        cat["qid"].astype(np.int64),
        cat["pos_pid"].astype(np.int64),
        cat["neg_pid"].astype(np.int64),
        cat["neg_rank"].astype(np.int64),
        queries,
        passages,
    )
    write_json(out_stats, stats)
    shutil.rmtree(partial_dir, ignore_errors=True)
    with contextlib.suppress(OSError):
        Path(partial_dir).parent.rmdir()  # results/.partial/<rule>/ if now empty
    log.info(
        "mined %d triplets from %d queries; skipped %d (%s)",
        stats["triplets"],
        stats["queries_mined"],
        stats["queries_skipped"],
        {k: v["count"] for k, v in stats["skipped"].items()},
    )
    return stats


def _prepare_partial(partial: Path, key: dict) -> None:
    """Keep ``partial``'s finished batches only if they were made with the same ``key``; else start afresh."""
    import json
    import shutil

    from ftstudy.atomic import write_json

    key = json.loads(json.dumps(key, sort_keys=True, default=str))
    stamp = partial / "key.json"
    if partial.exists():
        try:
            same = json.loads(stamp.read_text()) == key
        except (OSError, ValueError):
            same = False
        if same:
            n = len(list(partial.glob("batch_*.npz")))
            log.info("resuming from %s: %d finished batches", partial, n)
            return
        shutil.rmtree(partial)
    partial.mkdir(parents=True, exist_ok=True)
    write_json(stamp, key)


def file_signature(path: str | os.PathLike) -> list:
    """(size, mtime_ns) of a file, or of every file in a folder: changes when an input is rewritten."""
    p = Path(path)
    files = sorted(x for x in p.rglob("*") if x.is_file()) if p.is_dir() else [p]
    return [[str(f.relative_to(p)) if p.is_dir() else f.name, f.stat().st_size, f.stat().st_mtime_ns] for f in files]
