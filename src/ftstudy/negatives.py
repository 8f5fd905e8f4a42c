"""Drawing hard negatives from one query's ranked candidates: the paper's rule, the margin guard, skip reasons.

The rule (the paper's defaults live in the config schema): from a query's top ``top_k`` candidates, remove every
judged positive, then draw ``negatives_per_query`` negatives from the ORIGINAL ranks ``rank_range`` (1-based,
inclusive, counted before the positives are removed). Where a query has several judged positives, the positive
is drawn too. Every random choice of a query comes from ``numpy.random.default_rng([seed, qid])``, so a query's
draw never depends on which batch it sits in.

The margin guard (``mining.margin``, off by default) drops candidates whose base-model cosine is above
:func:`margin_limit` of the drawn positive's: ``pos - m`` (``margin_mode: absolute``) or ``(1 - m) * pos``
(``relative``, NV-Retriever's TopK-PercPos). :func:`eligible_pool` is the part before the draw (used as is by the
filtered sets and the diagnosis), :func:`draw_from_pool` the seeded draw, :func:`draw_query` both.

Also here: which queries and positives are mined (:func:`judged_positives`, :func:`select_queries`,
:func:`positives_in_corpus`) and the pid -> corpus row lookup they need (:class:`PidIndex`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ftstudy.config import check_mining

# Reasons a judged query yields no triplet (keys of hard_stats.json "skipped").
SKIP_POSITIVE_MISSING = "positive_not_in_collection"
SKIP_FEW_CANDIDATES = "fewer_candidates_than_range_start"
SKIP_NO_CANDIDATE = "no_candidate_left_in_range"
SKIP_REASONS = (SKIP_POSITIVE_MISSING, SKIP_FEW_CANDIDATES, SKIP_NO_CANDIDATE)


@dataclass(frozen=True)
class MiningSettings:
    """What decides the mined triplets: the resolved ``mining`` config without its execution knobs.

    Every field is required: the defaults (the paper's values) live in the config schema only; build the
    settings from a resolved config with :meth:`from_config`.
    """

    miner: str
    top_k: int
    rank_range: tuple[int, int]
    negatives_per_query: int
    margin: float | None
    margin_mode: str  # absolute | relative (see margin_limit)
    max_queries: int | None
    seed: int

    @classmethod
    def from_config(cls, mining: Mapping) -> MiningSettings:
        """The settings of a resolved ``mining`` config slice; other keys (execution knobs) are ignored.

        Raises ValueError naming the missing keys when ``mining`` was not resolved against the schema.
        """
        names = [f.name for f in fields(cls)]
        missing = [n for n in names if n not in mining]
        if missing:
            raise ValueError(
                f"mining config lacks {missing}: expected the config resolved against the schema "
                "(which fills in the defaults), e.g. ftstudy.config.schema_defaults()['mining']"
            )
        known = {n: mining[n] for n in names}
        known["rank_range"] = tuple(int(x) for x in known["rank_range"])
        return cls(**known)

    def validate(self) -> None:
        """Raise ValueError (a ConfigError naming the key) if ``rank_range`` cannot be drawn from."""
        check_mining(asdict(self))


@dataclass
class QueryDraw:
    """What was drawn for one query. ``neg_ranks`` are original 1-based ranks."""

    pos_pid: int
    neg_pids: np.ndarray
    neg_ranks: np.ndarray
    positives_excluded: int  # judged positives found among the top_k candidates
    margin_dropped: int  # in-range non-positive candidates dropped by the margin guard


@dataclass
class QueryPool:
    """One query's candidates that survive the rank range, the positives and the margin guard, before the draw.

    ``pool``: (m,) ascending indices into the query's candidate list (0-based: rank - 1), possibly empty.
    ``rng``: the query's generator, already past the positive's draw, so the negatives are drawn from it next.
    ``pos_index``: the drawn positive's index in ``positive_pids`` (None when the judgments are hidden, pos_pid
    -1).
    """

    rng: np.random.Generator
    pos_index: int | None
    pos_pid: int
    pool: np.ndarray
    in_range: int  # in-range candidates that are not judged positives (the pool before the margin guard)
    positives_excluded: int
    margin_dropped: int


def query_rng(seed: int, qid: int) -> np.random.Generator:
    """The per-query generator: depends only on (seed, qid), never on batch boundaries."""
    return np.random.default_rng([int(seed), int(qid)])


def margin_limit(positive_score: float, margin: float, mode: str) -> float:
    """The highest candidate score the margin guard keeps: candidates scoring above it are dropped.

    absolute: ``positive_score - margin`` (cosine units). relative: ``(1 - margin) * positive_score``,
    NV-Retriever's TopK-PercPos (Moreira et al. 2024, arXiv 2407.15831; m = 0.05 there), meant for positive
    scores (a cosine of a judged positive under a retriever is).
    """
    if mode == "absolute":
        return float(positive_score) - float(margin)
    if mode == "relative":
        return (1.0 - float(margin)) * float(positive_score)
    raise ValueError(f"mining margin_mode '{mode}': expected 'absolute' or 'relative'")


def eligible_pool(
    qid: int,
    cand_pids: np.ndarray,
    positive_pids: np.ndarray | None,
    settings: MiningSettings,
    cand_cos: np.ndarray | None = None,
    positive_cos: np.ndarray | None = None,
    is_pos: np.ndarray | None = None,
) -> QueryPool | str:
    """Draw the positive and keep the candidates a negative may be drawn from (the pool may be empty: every
    in-range candidate was a positive or fell to the margin), or return a skip reason.

    Arguments as in :func:`draw_query`. ``positive_pids`` None hides the judgments (the diagnosis of an eval set):
    no positive is drawn or removed, and a margin cannot apply (ValueError).
    """
    hidden = positive_pids is None
    if hidden and settings.margin is not None:
        raise ValueError("a margin needs a positive's score; with hidden judgments there is none")
    if not hidden and positive_pids.size == 0:
        return SKIP_POSITIVE_MISSING
    start, end = settings.rank_range
    if cand_pids.size < start:
        return SKIP_FEW_CANDIDATES
    rng = query_rng(settings.seed, qid)
    p = None if hidden else (int(rng.integers(positive_pids.size)) if positive_pids.size > 1 else 0)
    if hidden:
        is_pos = np.zeros(cand_pids.size, bool)
    elif is_pos is None:
        is_pos = np.isin(cand_pids, positive_pids)
    keep = np.zeros(cand_pids.size, bool)
    keep[start - 1 : end] = True  # original ranks start..end (1-based, inclusive)
    keep &= ~is_pos
    in_range = int(keep.sum())
    margin_dropped = 0
    if settings.margin is not None:
        if cand_cos is None or positive_cos is None:
            raise ValueError("mining.margin needs candidate and positive cosines")
        limit = margin_limit(positive_cos[p], settings.margin, settings.margin_mode)
        too_close = keep & (np.asarray(cand_cos) > limit)
        margin_dropped = int(too_close.sum())
        keep &= ~too_close
    pos_pid = -1 if hidden else int(positive_pids[p])
    return QueryPool(rng, p, pos_pid, np.flatnonzero(keep), in_range, int(is_pos.sum()), margin_dropped)


def draw_from_pool(rng: np.random.Generator, pool: np.ndarray, n: int) -> np.ndarray:
    """``min(n, len(pool))`` entries of ``pool`` drawn without replacement with ``rng``, ascending."""
    n = min(n, pool.size)
    if n == 1:
        return pool[[int(rng.integers(pool.size))]]
    return np.sort(rng.choice(pool, size=n, replace=False))


def draw_query(
    qid: int,
    cand_pids: np.ndarray,
    positive_pids: np.ndarray | None,
    settings: MiningSettings,
    cand_cos: np.ndarray | None = None,
    positive_cos: np.ndarray | None = None,
    is_pos: np.ndarray | None = None,
) -> QueryDraw | str:
    """Draw one query's positive and negatives, or return the skip reason (one of SKIP_REASONS).

    cand_pids: (k,) candidate pids in rank order (rank 1 first); may be shorter than top_k.
    positive_pids: (p,) judged positive pids present in the collection, ascending (None: judgments hidden, see
    :func:`eligible_pool`).
    cand_cos / positive_cos: base-model cosines of the candidates / positives; needed only with a margin.
    is_pos: optional precomputed ``np.isin(cand_pids, positive_pids)`` (the batch loop vectorises it).
    """
    pool = eligible_pool(qid, cand_pids, positive_pids, settings, cand_cos, positive_cos, is_pos)
    if isinstance(pool, str):
        return pool
    if pool.pool.size == 0:
        return SKIP_NO_CANDIDATE
    chosen = draw_from_pool(pool.rng, pool.pool, settings.negatives_per_query)
    return QueryDraw(
        pos_pid=pool.pos_pid,
        neg_pids=cand_pids[chosen].astype(np.int64),
        neg_ranks=(chosen + 1).astype(np.int64),
        positives_excluded=pool.positives_excluded,
        margin_dropped=pool.margin_dropped,
    )


# ---- which queries and positives ---------------------------------------------------------------------------
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
