"""Further mined sets drawn from the paper's retrieved candidates: positive-aware filters, no second retrieval.

A set (``mining.filtered_sets.<name>``, resolved by :func:`ftstudy.config.filtered_set`) reads
``results/mining/candidates.parquet`` (:mod:`ftstudy.candidate_file`) one row group at a time and draws each
query's negatives with its own ``rank_range``, ``negatives_per_query``, ``seed`` and filter:

- the margin guard of :func:`ftstudy.negatives.margin_limit` (``margin_mode: relative`` by default for a set:
  NV-Retriever's TopK-PercPos, drop candidates scoring above ``(1 - m) x`` the positive's cosine); without a
  cross-encoder the draw is exactly the paper's (:func:`ftstudy.negatives.draw_query`), so a set with the paper's
  settings reproduces ``hard.parquet``;
- with ``cross_encoder``, sentence-transformers' MS MARCO recipe (``train_bi-encoder_mnrl.py``): the eligible
  candidates are put in the set's seeded draw order (a permutation from the query's generator, after the
  positive's draw), the first ``cross_encoder_candidates`` are scored with the query by the cross-encoder (raw
  logits) together with the positive, those scoring above ``pos - cross_encoder_margin`` are dropped, and the
  negatives are the first ``negatives_per_query`` that remain.

The stats also say how many of the paper's own negatives (``hard.parquet``) each filter would have removed. Each
finished row group is kept as a piece under a :mod:`ftstudy.partial` folder, so a killed job resumes.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ftstudy.atomic import write_json
from ftstudy.candidate_file import QueryCandidates, iter_candidate_groups, n_queries, n_row_groups
from ftstudy.mining_batches import BatchResult
from ftstudy.mining_io import collection_texts, read_queries
from ftstudy.negatives import (
    SKIP_NO_CANDIDATE,
    SKIP_REASONS,
    MiningSettings,
    QueryPool,
    draw_from_pool,
    eligible_pool,
    margin_limit,
)
from ftstudy.partial import close_partial, open_partial
from ftstudy.provenance import config_hash

log = logging.getLogger(__name__)

#: (query texts, passage texts) -> (n,) float32 relevance scores (a cross-encoder's raw logits).
PairScorer = Callable[[list[str], list[str]], np.ndarray]
#: The counts of one row group (and their totals).
COUNT_KEYS = ("in_range", "margin_removed", "ce_scored", "ce_removed", "ce_pairs")
COUNT_KEYS += ("paper_rows", "paper_margin", "paper_ce", "paper_either")


@dataclass(frozen=True)
class FilteredSet:
    """One filtered set's settings: the draw (``mining``: the paper's miner, top_k and max_queries with the set's
    rank_range, negatives_per_query, seed, margin and margin_mode) and the cross-encoder filter."""

    name: str
    mining: MiningSettings
    cross_encoder: str | None
    cross_encoder_margin: float
    cross_encoder_candidates: int

    @classmethod
    def from_config(cls, name: str, mining: Mapping, filtered: Mapping) -> FilteredSet:
        """From the paper's resolved ``mining`` slice and the set's resolved settings (``filtered_set``)."""
        ms = MiningSettings.from_config({**mining, **filtered})
        ms.validate()
        return cls(
            name,
            ms,
            filtered["cross_encoder"],
            float(filtered["cross_encoder_margin"]),
            int(filtered["cross_encoder_candidates"]),
        )


@dataclass
class Planned:
    """One query's plan: its eligible pool (or skip reason) and, with a cross-encoder, the candidate indices to
    score in the seeded draw order."""

    qid: int
    pool: QueryPool | str
    ce_order: np.ndarray | None


def plan_group(cands: QueryCandidates, fs: FilteredSet) -> list[Planned]:
    """The positive and eligible candidates of each query of a group (pure; the same on every call)."""
    out = []
    for i, qid in enumerate(cands.qid.tolist()):
        pids, scores, pos, pos_s = cands.query(i)
        pool = eligible_pool(qid, pids, pos, fs.mining, scores, pos_s)
        order = None
        if fs.cross_encoder and not isinstance(pool, str):
            order = pool.pool[pool.rng.permutation(pool.pool.size)][: fs.cross_encoder_candidates]
        out.append(Planned(qid, pool, order))
    return out


# ---- the paper's negatives --------------------------------------------------------------------------------
def read_paper_ids(hard_path: str | os.PathLike) -> dict[str, np.ndarray]:
    """qid, pos_pid, neg_pid, neg_rank of ``hard.parquet`` (int64, sorted by qid then rank)."""
    cols = ("qid", "pos_pid", "neg_pid", "neg_rank")
    try:
        t = pq.read_table(hard_path, columns=list(cols))
    except (pa.ArrowInvalid, KeyError) as exc:
        raise ValueError(f"{hard_path}: expected hard.parquet with columns {list(cols)} ({exc})") from None
    ids = {k: t[k].to_numpy().astype(np.int64) for k in cols}
    order = np.lexsort((ids["neg_rank"], ids["qid"]))
    return {k: v[order] for k, v in ids.items()}


def paper_rows(paper: dict[str, np.ndarray], cands: QueryCandidates, hard_path: str) -> dict[str, np.ndarray]:
    """The paper's rows whose qid is in this group, with ``neg_cos`` and ``pos_cos`` (the candidates file's
    cosines); a row that the candidates do not hold is an error naming both files' origin."""
    if not len(cands):
        return {**{k: v[:0] for k, v in paper.items()}, "neg_cos": np.empty(0, np.float32), "pos_cos": np.empty(0)}
    lo = np.searchsorted(paper["qid"], cands.qid[0], "left")
    hi = np.searchsorted(paper["qid"], cands.qid[-1], "right")
    rows = {k: v[lo:hi] for k, v in paper.items()}
    index = {q: i for i, q in enumerate(cands.qid.tolist())}
    neg_cos, pos_cos = np.empty(hi - lo, np.float32), np.empty(hi - lo, np.float32)
    for j, (q, pos, neg, rank) in enumerate(zip(*(rows[k].tolist() for k in paper), strict=True)):
        pids, scores, pp, ps = cands.query(index[q]) if q in index else (np.empty(0),) * 4
        at = np.flatnonzero(pp == pos)
        if rank > pids.size or pids[rank - 1] != neg or not at.size:
            raise ValueError(
                f"{hard_path}: qid {q} (positive {pos}, negative {neg} at rank {rank}) is not in the candidates "
                "file: hard.parquet and candidates.parquet come from different mining runs"
            )
        neg_cos[j], pos_cos[j] = scores[rank - 1], ps[at[0]]
    return {**rows, "neg_cos": neg_cos, "pos_cos": pos_cos}


# ---- cross-encoder scores -----------------------------------------------------------------------------------
def ce_pairs(cands: QueryCandidates, plans: list[Planned], paper: dict | None) -> list[tuple[int, int]]:
    """The (qid, pid) pairs the cross-encoder scores for a group, unique and sorted: each planned query's
    positive and its first ``cross_encoder_candidates`` in draw order, and the paper's (positive, negative)."""
    pairs = set()
    for i, pl in enumerate(plans):
        if pl.ce_order is not None:
            pairs.add((pl.qid, pl.pool.pos_pid))
            pairs.update((pl.qid, int(p)) for p in cands.query(i)[0][pl.ce_order])
    if paper is not None:
        for q, pos, neg in zip(*(paper[k].tolist() for k in ("qid", "pos_pid", "neg_pid")), strict=True):
            pairs.update(((q, pos), (q, neg)))
    return sorted(pairs)


@dataclass
class Texts:
    """Query texts (qid, text sorted by qid) and passage texts (pid, text sorted by pid) for the scorer."""

    queries: pa.Table
    passages: pa.Table

    def of(self, pairs: list[tuple[int, int]]) -> tuple[list[str], list[str]]:
        """(query texts, passage texts) of ``pairs``."""
        q = np.asarray([a for a, _ in pairs], np.int64)
        p = np.asarray([b for _, b in pairs], np.int64)

        def take(table: pa.Table, key: str, ids: np.ndarray) -> list[str]:
            return table["text"].take(pa.array(np.searchsorted(table[key].to_numpy(), ids))).to_pylist()

        return take(self.queries, "qid", q), take(self.passages, "pid", p)


def score_pairs(pairs: list[tuple[int, int]], texts: Texts, scorer: PairScorer) -> dict[tuple[int, int], float]:
    """(qid, pid) -> the scorer's score of that query and passage."""
    if not pairs:
        return {}
    scores = np.asarray(scorer(*texts.of(pairs)), np.float32).reshape(-1)
    if scores.size != len(pairs):
        raise ValueError(f"the pair scorer returned {scores.size} scores for {len(pairs)} pairs")
    return dict(zip(pairs, scores.tolist(), strict=True))


# ---- one group ------------------------------------------------------------------------------------------------
def draw_group(
    cands: QueryCandidates, plans: list[Planned], fs: FilteredSet, ce: dict | None
) -> tuple[BatchResult, dict]:
    """Draw every planned query of a group: the paper's draw, or (with cross-encoder scores ``ce``: (qid, pid) ->
    logit) the first ``negatives_per_query`` of the scored candidates that the cross-encoder keeps. Returns the
    draws and the filter's counts (``in_range``, ``margin_removed``, ``ce_scored``, ``ce_removed``)."""
    out = {k: [] for k in ("qid", "pos_pid", "neg_pid", "neg_rank", "pos_cos", "neg_cos")}
    skipped, counts = [], dict.fromkeys(("in_range", "margin_removed", "ce_scored", "ce_removed"), 0)
    excluded = dropped = fewer = 0
    npq = fs.mining.negatives_per_query
    for i, pl in enumerate(plans):
        if isinstance(pl.pool, str):
            skipped.append((pl.qid, SKIP_REASONS.index(pl.pool)))
            continue
        pool, (pids, scores, _, pos_s) = pl.pool, cands.query(i)
        counts["in_range"] += pool.in_range
        counts["margin_removed"] += pool.margin_dropped
        if pl.ce_order is None:
            chosen = draw_from_pool(pool.rng, pool.pool, npq) if pool.pool.size else pool.pool
        else:
            cand_ce = np.asarray([ce[pl.qid, int(p)] for p in pids[pl.ce_order]], np.float32)
            kept = pl.ce_order[cand_ce <= ce[pl.qid, pool.pos_pid] - fs.cross_encoder_margin]
            counts["ce_scored"] += int(pl.ce_order.size)
            counts["ce_removed"] += int(pl.ce_order.size - kept.size)
            chosen = np.sort(kept[:npq])
        if chosen.size == 0:
            skipped.append((pl.qid, SKIP_REASONS.index(SKIP_NO_CANDIDATE)))
            continue
        excluded += pool.positives_excluded
        dropped += pool.margin_dropped
        fewer += int(chosen.size < npq)
        for k, v in zip(
            ("qid", "pos_pid", "neg_pid", "neg_rank"), (pl.qid, pool.pos_pid, pids[chosen], chosen + 1), strict=True
        ):
            out[k].append(np.broadcast_to(np.asarray(v, np.int64), chosen.shape))
        out["pos_cos"].append(np.full(chosen.size, pos_s[pool.pos_index], np.float32))
        out["neg_cos"].append(scores[chosen].astype(np.float32))
    cols = {k: np.concatenate(v) if v else np.empty(0, np.float32 if "cos" in k else np.int64) for k, v in out.items()}
    sk = np.asarray(skipped, np.int64).reshape(-1, 2)
    result = BatchResult(**cols, skipped_qid=sk[:, 0], skipped_reason=sk[:, 1], positives_excluded=excluded,
                         margin_dropped=dropped, fewer_negatives=fewer)  # fmt: skip
    return result, counts


def paper_removed(rows: dict[str, np.ndarray], fs: FilteredSet, ce: dict | None) -> dict:
    """How many of the paper's negatives (``rows`` from :func:`paper_rows`) the set's filters would remove: by
    the margin (the paper's positive's cosine, the set's margin and mode), by the cross-encoder, by either."""
    m = fs.mining
    n = rows["qid"].size
    margin = np.zeros(n, bool)
    if m.margin is not None:  # scalar float32 vs float comparisons, exactly as the draw's guard makes them
        pairs = zip(rows["neg_cos"], rows["pos_cos"], strict=True)
        margin = np.array([c > margin_limit(p, m.margin, m.margin_mode) for c, p in pairs], bool)
    by_ce = np.zeros(n, bool)
    if ce is not None:
        q, pos, neg = (rows[k].tolist() for k in ("qid", "pos_pid", "neg_pid"))
        by_ce = np.array(
            [ce[a, c] > ce[a, b] - fs.cross_encoder_margin for a, b, c in zip(q, pos, neg, strict=True)], bool
        )
    return {
        "paper_rows": int(n),
        "paper_margin": int(margin.sum()),
        "paper_ce": int(by_ce.sum()),
        "paper_either": int((margin | by_ce).sum()),
    }


def filter_group(
    cands: QueryCandidates,
    fs: FilteredSet,
    paper: dict[str, np.ndarray],
    texts: Texts | None,
    scorer: PairScorer | None,
    hard_path: str,
) -> tuple[BatchResult, dict]:
    """One row group of candidates: plan, score with the cross-encoder where the set has one, draw, and count
    what the filters removed, among the candidates and among the paper's negatives of these queries."""
    plans = plan_group(cands, fs)
    rows = paper_rows(paper, cands, hard_path)
    ce = None
    if fs.cross_encoder:
        if scorer is None or texts is None:
            raise ValueError(f"filtered set '{fs.name}' has a cross_encoder but no scorer was given")
        pairs = ce_pairs(cands, plans, rows)
        ce = score_pairs(pairs, texts, scorer)
    result, counts = draw_group(cands, plans, fs, ce)
    counts.update(paper_removed(rows, fs, ce), ce_pairs=len(ce or {}))
    return result, counts


# ---- the step -------------------------------------------------------------------------------------------------
def _texts_for(candidates_path, todo: set[int], fs: FilteredSet, paper, queries: pa.Table, collection_path, hard_path):
    """Texts of every pair the cross-encoder will score in the unfinished row groups ``todo``: a first pass over
    the candidates (plans are pure, so the second pass makes the same ones), then one scan of the collection."""
    pids = []
    for g, cands in enumerate(iter_candidate_groups(candidates_path)):
        if g in todo:
            pairs = ce_pairs(cands, plan_group(cands, fs), paper_rows(paper, cands, hard_path))
            pids.append(np.asarray([p for _, p in pairs], np.int64))
    wanted = np.unique(np.concatenate(pids)) if pids else np.empty(0, np.int64)
    log.info("reading the texts of %d passages for the cross-encoder", wanted.size)
    return Texts(queries, collection_texts(collection_path, wanted))


def filter_stats(fs: FilteredSet, base: dict, totals: dict) -> dict:
    """The set's stats: :func:`ftstudy.mining.summarise`'s keys with the filter's and the paper's counts."""
    removed = totals["margin_removed"] + totals["ce_removed"]
    paper_n = totals["paper_rows"]
    return {
        **base,
        "name": fs.name,
        "filter": {
            "candidates_in_range": totals["in_range"],
            "margin": fs.mining.margin,
            "margin_mode": fs.mining.margin_mode,
            "margin_removed": totals["margin_removed"],
            "cross_encoder": fs.cross_encoder,
            "cross_encoder_margin": fs.cross_encoder_margin if fs.cross_encoder else None,
            "cross_encoder_candidates": fs.cross_encoder_candidates if fs.cross_encoder else None,
            "cross_encoder_scored": totals["ce_scored"],
            "cross_encoder_removed": totals["ce_removed"],
            "cross_encoder_pairs_scored": totals["ce_pairs"],
            "removed": removed,
            "removed_fraction": removed / totals["in_range"] if totals["in_range"] else None,
            "note": "in-range candidates that are not judged positives, over every query with a positive and enough "
            "candidates; the cross-encoder scores at most cross_encoder_candidates of them per query (draw order), "
            "raw logits",
        },
        "paper_negatives": {
            "rows": paper_n,
            "removed_by_margin": totals["paper_margin"],
            "removed_by_cross_encoder": totals["paper_ce"] if fs.cross_encoder else None,
            "removed": totals["paper_either"],
            "removed_fraction": totals["paper_either"] / paper_n if paper_n else None,
            "note": "hard.parquet's negatives that this set's filters would remove, judged against hard.parquet's "
            "own positive of each row",
        },
    }


def _group_piece(folder: Path, g: int, make: Callable[[], tuple[BatchResult, dict]]) -> tuple[BatchResult, dict]:
    """Row group ``g``'s result from ``folder`` if finished, else made and saved (counts last: the done mark)."""
    import json

    piece, counts_path = folder / f"group_{g:06d}.npz", folder / f"group_{g:06d}.json"
    if piece.exists() and counts_path.exists():
        return BatchResult.load(piece), json.loads(counts_path.read_text())
    result, counts = make()
    result.save(piece)
    write_json(counts_path, counts)
    return result, counts


def filter_negatives(
    candidates_path: str | os.PathLike,
    hard_path: str | os.PathLike,
    queries_path: str | os.PathLike,
    collection_path: str | os.PathLike,
    out_parquet: str | os.PathLike,
    out_stats: str | os.PathLike,
    fs: FilteredSet,
    partial_root: str | os.PathLike,
    scorer: PairScorer | None = None,
    provenance: dict | None = None,
    partial_key: dict | None = None,
) -> dict:
    """Draw the filtered set ``fs`` from the candidates file; write ``{name}.parquet`` (hard.parquet's columns)
    and ``{name}_stats.json``; returns the stats. ``scorer``: the cross-encoder (needed when ``fs`` has one).
    Finished row groups are kept under ``partial_root`` (keyed by ``fs`` and ``partial_key``) until success."""
    from ftstudy.mining import summarise, write_triplets

    paper, queries = read_paper_ids(hard_path), read_queries(queries_path)
    key = {"key": partial_key, "set": asdict(fs)}
    folder = open_partial(partial_root, config_hash(key), key)
    n_groups, n_q = n_row_groups(candidates_path), n_queries(candidates_path)
    todo = {g for g in range(n_groups) if not (folder / f"group_{g:06d}.json").exists()}
    texts = (
        _texts_for(candidates_path, todo, fs, paper, queries, collection_path, str(hard_path))
        if fs.cross_encoder and todo
        else None
    )
    log.info("filtered set '%s': %d queries in %d row groups (%d to do)", fs.name, n_q, n_groups, len(todo))
    results, totals, t0, done = [], dict.fromkeys(COUNT_KEYS, 0), time.perf_counter(), 0
    for g, cands in enumerate(iter_candidate_groups(candidates_path)):
        res, counts = _group_piece(folder, g, lambda c=cands: filter_group(c, fs, paper, texts, scorer, str(hard_path)))
        results.append(res)
        totals = {k: totals[k] + counts[k] for k in COUNT_KEYS}
        done += len(cands)
        rate = totals["ce_pairs"] / max(time.perf_counter() - t0, 1e-9)
        log.info("group %d/%d: %d of %d queries drawn; %d cross-encoder pairs scored (%.0f pairs/s)",
                 g + 1, n_groups, done, n_q, totals["ce_pairs"], rate)  # fmt: skip
    base, cat = summarise(results, fs.mining, {"candidate_queries": n_q})
    stats = filter_stats(fs, base, totals)
    stats["provenance"] = provenance or {}
    if stats["triplets"] == 0:
        log.warning("filtered set '%s' drew no triplet: its filters removed every candidate (%s)", fs.name,
                    {k: v["count"] for k, v in stats["skipped"].items()})  # fmt: skip
    write_triplets(out_parquet, cat, queries, collection_path)
    write_json(out_stats, stats)
    close_partial(partial_root)
    log.info(
        "filtered set '%s': %d triplets; filter removed %d of %d in-range candidates; %d of the paper's %d negatives",
        fs.name,
        stats["triplets"],
        stats["filter"]["removed"],
        totals["in_range"],
        totals["paper_either"],
        totals["paper_rows"],
    )
    return stats


# ---- the workflow's job -----------------------------------------------------------------------------------------
def filter_for_workflow(
    inputs: Mapping[str, str],
    out_parquet: str | os.PathLike,
    out_stats: str | os.PathLike,
    job_slice: Mapping,
    partial_root: str | os.PathLike,
    cross_encoder_batch_size: int = 64,
) -> dict:
    """Rule ``filter_negatives``: one filtered set from the candidates of rule ``mine_hard_negatives``.

    inputs: ``candidates``, ``hard`` (hard.parquet), ``queries``, ``collection`` (and ``cross_encoder`` when it is
    a local folder). job_slice: the paper's mining slice (``mining``, ``base_model``, ``encoding``, ...) with
    ``name`` and ``filtered`` (the set's resolved settings). cross_encoder_batch_size: pairs per forward pass, an
    execution knob. The cross-encoder runs on a GPU where there is one, in ``encoding.dtype`` (auto: bf16 there,
    fp32 on the CPU).
    """
    from ftstudy.cross_encoder_filter import cross_encoder_scorer, load_cross_encoder, model_signature
    from ftstudy.encode import resolve_dtype
    from ftstudy.mining_io import file_signature
    from ftstudy.models import pick_device
    from ftstudy.provenance import versions

    job_slice = dict(job_slice)
    fs = FilteredSet.from_config(job_slice["name"], job_slice["mining"], job_slice["filtered"])
    scorer, ce_meta = None, None
    if fs.cross_encoder:
        device = pick_device()
        dtype = resolve_dtype(job_slice["encoding"]["dtype"], device)
        log.info(
            "cross-encoder %s on %s (%s), %d pairs per batch", fs.cross_encoder, device, dtype, cross_encoder_batch_size
        )
        scorer = cross_encoder_scorer(load_cross_encoder(fs.cross_encoder, device, dtype), cross_encoder_batch_size)
        ce_meta = {**model_signature(fs.cross_encoder), "device": device, "dtype": dtype}
    return filter_negatives(
        inputs["candidates"],
        inputs["hard"],
        inputs["queries"],
        inputs["collection"],
        out_parquet,
        out_stats,
        fs,
        partial_root,
        scorer,
        provenance={
            "config_hash": config_hash(job_slice),
            "config": job_slice,
            "cross_encoder": ce_meta,
            "execution": {"cross_encoder_batch_size": cross_encoder_batch_size},
            "versions": versions(),
        },
        partial_key={"inputs": {k: file_signature(v) for k, v in inputs.items()}, "params": job_slice},
    )
