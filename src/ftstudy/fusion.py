"""Hybrid lexical + dense retrieval: BM25 fused with a dense run by ranx (``hybrid_rrf_*``, ``hybrid_wsum_*``).

- **RRF** (Cormack et al., SIGIR 2009): score(d) = sum over the two runs of 1 / (k + rank(d)), a run that did not
  retrieve d adding nothing. ranx ranks each run by sorting its scores with an unstable sort, so tied scores
  would get an arbitrary rank; ranx is therefore given ``-rank`` from the run file (ties already broken by pid,
  as every run of the study is written), and its rank is the file's rank.
- **Weighted sum** (``wsum``): w * mm(bm25) + (1 - w) * mm(dense), mm = ranx's per-query min-max normalisation
  over that run's retrieved list ((s - min) / max(max - min, 1e-9): a query whose scores are all equal gets 0);
  a passage that one run did not retrieve gets 0 from it, the value of that run's lowest retrieved passage.
  w is chosen by cross-validation over the eval set's judged queries (:func:`cross_validated_wsum`).
- Depth: each fused list keeps its top ``depth`` passages (the runs' retrieval.k) by fused score, then pid
  ascending for ties (ties are common in RRF: rank r in one run only, either run). A query missing from one run
  (BM25 leaves out passages with score 0) is fused with an empty list there.
"""

from __future__ import annotations

import functools
import logging
import re

import numpy as np
import pandas as pd

from ftstudy.metrics import evaluate_run

LOG = logging.getLogger(__name__)
METHODS = ("rrf", "wsum")
#: How ties are handled, as recorded in every ``.fusion.json``.
TIE_BREAK = (
    "RRF reads each input run's file rank (ties there already broken by pid), not its scores; the fused list is "
    "ordered by fused score descending, then pid ascending, and cut at the depth"
)


def to_ranx(run: pd.DataFrame, by: str, name: str):
    """A ranx Run from a run DataFrame (qid, pid, score, rank: :func:`ftstudy.runs.read_run`).

    ``by="score"``: ranx sees the scores; ``by="rank"``: it sees ``-rank``, so its (unstable) sort reproduces the
    file's order exactly. Ids become strings, as ranx requires."""
    import ranx

    if by not in ("score", "rank"):
        raise ValueError(f"to_ranx: by must be 'score' or 'rank', got {by!r}")
    if run.empty:
        return ranx.Run(name=name)
    values = -run["rank"].to_numpy(np.float64) if by == "rank" else run["score"].to_numpy(np.float64)
    qids, pids = run["qid"].to_numpy(np.int64), run["pid"].to_numpy(np.int64)
    order = np.argsort(qids, kind="stable")
    starts = np.flatnonzero(np.diff(qids[order], prepend=qids[order][0] - 1))
    groups = np.split(order, starts[1:])
    as_dict = {
        str(qids[g[0]]): dict(zip(pids[g].astype(str).tolist(), values[g].tolist(), strict=True)) for g in groups
    }
    return ranx.Run.from_dict(as_dict, name=name)


def align_queries(runs: list) -> None:
    """Give every ranx run the union of the runs' queries, in place (a query a run lacks gets an empty list), as
    ranx.fuse needs. Uses ``Run.make_comparable``, which reads only the query ids of the Qrels it is given."""
    import ranx

    qids = sorted(set().union(*(set(r.keys()) for r in runs)))
    stub = ranx.Qrels.from_dict({q: {"-": 1} for q in qids})
    for r in runs:
        r.make_comparable(stub)


def ranx_pair(bm25: pd.DataFrame, dense: pd.DataFrame, by: str) -> list:
    """[BM25, dense] as ranx Runs (:func:`to_ranx` with ``by``) over the same queries (:func:`align_queries`)."""
    runs = [to_ranx(bm25, by, "bm25"), to_ranx(dense, by, "dense")]
    align_queries(runs)
    return runs


def fuse_pair(pair: list, method: str, *, rrf_k: int = 60, bm25_weight: float | None = None):
    """ranx.fuse of a :func:`ranx_pair`: ``rrf`` (pair built ``by="rank"``; k = ``rrf_k``) or ``wsum`` (pair built
    ``by="score"``; weights [``bm25_weight``, 1 - ``bm25_weight``] after ranx's min-max norm). A ranx Run."""
    import ranx

    if method == "rrf":
        return ranx.fuse(pair, norm=None, method="rrf", params={"k": int(rrf_k)})
    if method == "wsum":
        if bm25_weight is None or not 0.0 <= bm25_weight <= 1.0:
            raise ValueError(f"fuse_runs: wsum needs a bm25_weight in [0, 1], got {bm25_weight}")
        weights = [float(bm25_weight), 1.0 - float(bm25_weight)]
        return ranx.fuse(pair, norm="min-max", method="wsum", params={"weights": weights})
    raise ValueError(f"fuse_runs: method must be one of {METHODS}, got {method!r}")


def fuse_runs(bm25: pd.DataFrame, dense: pd.DataFrame, method: str, depth: int, *, rrf_k: int = 60,
              bm25_weight: float | None = None) -> pd.DataFrame:  # fmt: skip
    """Fuse a BM25 run with a dense run (DataFrames: qid, pid, score, rank) by ranx; keep the top ``depth``.

    ``method``: ``rrf`` (with ``rrf_k``) or ``wsum`` (``bm25_weight`` w in [0, 1]: w * bm25 + (1 - w) * dense,
    each min-max normalised per query). Returns a DataFrame (qid int64, pid int64, score float64) sorted by qid,
    score descending, pid ascending, at most ``depth`` rows per query.
    """
    if method not in METHODS:
        raise ValueError(f"fuse_runs: method must be one of {METHODS}, got {method!r}")
    pair = ranx_pair(bm25, dense, "rank" if method == "rrf" else "score")
    return top_k(ranx_frame(fuse_pair(pair, method, rrf_k=rrf_k, bm25_weight=bm25_weight)), depth)


def ranx_frame(run) -> pd.DataFrame:
    """A ranx Run as a DataFrame (qid int64, pid int64, score float64), in the run's own order.

    ranx's ``Run.to_dataframe`` walks the numba dicts from Python, about 50 us a line (23 s for 200 queries x
    2,000 fused passages on the build machine, so hours for 6,980 dev queries over an 11-point grid);
    :func:`_flatten` walks them inside numba. Ids must be decimal integers, as :func:`to_ranx` writes them."""
    from numba.typed import List

    qids, pids, scores = _flatten()(run.run, List(run.run.keys()))
    return pd.DataFrame({"qid": qids, "pid": pids, "score": scores})


@functools.cache
def _flatten():
    """The numba function behind :func:`ranx_frame` (compiled on first use, cached beside this file)."""
    import numba

    @numba.njit(cache=True)
    def to_int(text):
        value = 0
        for c in text:
            digit = ord(c) - 48
            if digit < 0 or digit > 9:
                raise ValueError("ranx_frame: an id is not a decimal integer")
            value = value * 10 + digit
        return value

    @numba.njit(cache=True)
    def flatten(run, keys):
        n = 0
        for q in keys:
            n += len(run[q])
        qids, pids, scores = np.empty(n, np.int64), np.empty(n, np.int64), np.empty(n, np.float64)
        i = 0
        for q in keys:
            qid = to_int(q)
            for doc, score in run[q].items():
                qids[i], pids[i], scores[i] = qid, to_int(doc), score
                i += 1
        return qids, pids, scores

    return flatten


def top_k(fused: pd.DataFrame, depth: int) -> pd.DataFrame:
    """The top ``depth`` rows per query of a fused DataFrame (qid, pid, score), by score descending, then pid
    ascending. Returns (qid int64, pid int64, score float64), sorted by qid, then so."""
    order = np.lexsort((fused["pid"].to_numpy(), -fused["score"].to_numpy(), fused["qid"].to_numpy()))
    df = fused.iloc[order].reset_index(drop=True)
    return df[df.groupby("qid", sort=False).cumcount().to_numpy() < int(depth)].reset_index(drop=True)


def to_matrix(fused: pd.DataFrame, qids: np.ndarray, depth: int) -> tuple[np.ndarray, np.ndarray]:
    """(pids, scores), each (len(qids), depth), of a fused DataFrame for :func:`ftstudy.runs.write_run`; a query
    with fewer than ``depth`` passages (or none) is padded with pid -1, which write_run leaves out."""
    pids = np.full((len(qids), depth), -1, dtype=np.int64)
    scores = np.full((len(qids), depth), -np.inf, dtype=np.float64)
    row = pd.Series(np.arange(len(qids)), index=np.asarray(qids, dtype=np.int64))
    r = row.reindex(fused["qid"].to_numpy()).to_numpy(np.float64)
    if np.isnan(r).any():
        raise ValueError("to_matrix: the fused run holds a query that is not in qids")
    r = r.astype(np.int64)
    col = fused.groupby("qid", sort=False).cumcount().to_numpy()
    pids[r, col], scores[r, col] = fused["pid"].to_numpy(), fused["score"].to_numpy()
    return pids, scores


def cv_folds(qids: np.ndarray, n_folds: int, seed: int) -> list[np.ndarray]:
    """Split ``qids`` (int, any order) into ``n_folds`` folds of near-equal size by a permutation drawn with
    ``numpy.random.default_rng(seed)`` of the sorted qids. Returns the folds, each sorted. Raises ValueError when
    there are fewer queries than folds."""
    qids = np.unique(np.asarray(qids, dtype=np.int64))
    if len(qids) < n_folds:
        raise ValueError(f"cross-validation: {len(qids)} judged queries cannot fill {n_folds} folds")
    perm = np.random.default_rng(seed).permutation(qids)
    return [np.sort(f) for f in np.array_split(perm, n_folds)]


def choose_weight(per_query: pd.DataFrame, train_qids: np.ndarray) -> tuple[float, dict[float, float]]:
    """The grid weight with the highest mean metric over ``train_qids``; ties go to the smaller weight.

    ``per_query``: DataFrame indexed by qid, one column per grid weight (the metric of each query's fused list at
    that weight). Returns (weight, {weight: mean over train_qids})."""
    means = per_query.loc[np.asarray(train_qids, dtype=np.int64)].mean(axis=0)
    grid = sorted(float(w) for w in per_query.columns)
    values = np.array([means[w] for w in grid])
    best = grid[int(np.flatnonzero(values == values.max())[0])]
    return best, {w: float(means[w]) for w in grid}


def metric_cutoff(metric: str) -> int:
    """The rank cut-off of a metric name: ``MRR@10`` -> 10, ``R@1000`` -> 1000."""
    found = re.fullmatch(r"[A-Za-z]+@(\d+)", metric)
    if not found:
        raise ValueError(f"fusion.cv_metric: '{metric}' has no @<cutoff>")
    return int(found.group(1))


def grid_metrics(bm25: pd.DataFrame, dense: pd.DataFrame, qrels: pd.DataFrame, qids: np.ndarray, grid,
                 metric: str, min_relevance: int, depth: int) -> pd.DataFrame:  # fmt: skip
    """The per-query ``metric`` (a :data:`ftstudy.metrics.METRIC_NAMES` name, scored by
    :func:`ftstudy.metrics.evaluate_run` at ``min_relevance``) of the wsum fusion at each grid weight, for the
    judged ``qids``. Returns a DataFrame indexed by qid with one column per weight (floats).

    The runs are converted to ranx once; each fused list is scored at its top min(depth, cut-off of ``metric``)
    passages, which give the metric exactly (what lies below the cut-off does not change it)."""
    keep = min(int(depth), metric_cutoff(metric))
    pair = ranx_pair(bm25[bm25["qid"].isin(qids)], dense[dense["qid"].isin(qids)], "score")
    cols = {}
    for w in sorted({float(x) for x in grid}):
        fused = top_k(ranx_frame(fuse_pair(pair, "wsum", bm25_weight=w)), keep)
        _, per_query = evaluate_run(fused, qrels, min_relevance=min_relevance, qids=qids)
        cols[w] = per_query[per_query["measure"] == metric].set_index("qid")["value"]
        LOG.info("wsum, BM25 weight %.3f: %s %.4f over %d judged queries", w, metric, cols[w].mean(), len(qids))
    return pd.DataFrame(cols)


def cross_validated_wsum(bm25: pd.DataFrame, dense: pd.DataFrame, qrels: pd.DataFrame, judged: np.ndarray,
                         fusion: dict, min_relevance: int, depth: int) -> tuple[pd.DataFrame, dict]:  # fmt: skip
    """The weighted-sum fusion with its BM25 weight chosen by ``fusion["cv_folds"]``-fold cross-validation.

    ``judged``: the eval set's judged qids (the folds' queries); ``fusion``: ``wsum_weights`` (the grid),
    ``cv_folds``, ``cv_metric``, ``seed``. Each fold's queries are fused with the weight that maximises the mean
    ``cv_metric`` over the OTHER folds' queries (ties: the smaller weight), never over their own. Queries of the
    runs that are not judged (never scored) take the weight chosen on all judged queries. Returns (fused run
    DataFrame as :func:`fuse_runs`, record with each fold's query count, chosen weight and training curve).
    """
    per_query = grid_metrics(bm25, dense, qrels, judged, fusion["wsum_weights"], fusion["cv_metric"],
                             min_relevance, depth)  # fmt: skip
    folds = cv_folds(judged, int(fusion["cv_folds"]), int(fusion["seed"]))
    parts, record = [], []
    for i, fold in enumerate(folds):
        train = np.concatenate([f for j, f in enumerate(folds) if j != i])
        w, curve = choose_weight(per_query, train)
        parts.append(_fuse_subset(bm25, dense, fold, w, depth))
        record.append({"fold": i, "n_queries": len(fold), "n_train_queries": len(train), "bm25_weight": w,
                       "train_metric": curve, "test_metric": float(per_query.loc[fold, w].mean())})  # fmt: skip
        LOG.info("fold %d (%d queries): BM25 weight %.3f, chosen on the other %d queries", i, len(fold), w, len(train))
    rest = np.setdiff1d(np.union1d(bm25["qid"].unique(), dense["qid"].unique()), judged)
    unjudged = None
    if len(rest):
        w, _ = choose_weight(per_query, judged)
        parts.append(_fuse_subset(bm25, dense, rest, w, depth))
        unjudged = {"n_queries": len(rest), "bm25_weight": w}
    fused = pd.concat(parts).sort_values(["qid", "score", "pid"], ascending=[True, False, True], kind="stable")
    return fused.reset_index(drop=True), {"folds": record, "unjudged": unjudged}


def _fuse_subset(bm25: pd.DataFrame, dense: pd.DataFrame, qids: np.ndarray, w: float, depth: int) -> pd.DataFrame:
    """wsum fusion of the queries ``qids`` only, at BM25 weight ``w``."""
    keep_b, keep_d = bm25["qid"].isin(qids), dense["qid"].isin(qids)
    return fuse_runs(bm25[keep_b], dense[keep_d], "wsum", depth, bm25_weight=w)


def hybrid_run(method: str, bm25: pd.DataFrame, dense: pd.DataFrame, qrels: pd.DataFrame, judged: np.ndarray,
               fusion: dict, min_relevance: int, depth: int) -> tuple[pd.DataFrame, dict]:  # fmt: skip
    """One ``hybrid_{method}_*`` run of an eval set: RRF with ``fusion["rrf_k"]``, or the cross-validated weighted
    sum (:func:`cross_validated_wsum`; ``qrels``, ``judged`` and ``min_relevance`` feed only its tuning).
    Returns (fused DataFrame as :func:`fuse_runs`, record for the run's ``.fusion.json``)."""
    if method == "rrf":
        fused = fuse_runs(bm25, dense, "rrf", depth, rrf_k=int(fusion["rrf_k"]))
        return fused, {"rrf_k": int(fusion["rrf_k"])}
    if method == "wsum":
        return cross_validated_wsum(bm25, dense, qrels, judged, fusion, min_relevance, depth)
    raise ValueError(f"hybrid_run: method must be one of {METHODS}, got {method!r}")
