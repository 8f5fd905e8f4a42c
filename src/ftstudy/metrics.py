"""Ranking metrics of a run against graded qrels, with ir-measures (pytrec_eval underneath).

Measures (the contract's names -> ir-measures): MRR@10 = RR(rel=m)@10, MRR@100 = RR(rel=m)@100,
nDCG@10 = nDCG@10 (graded gains, trec_eval's linear gain), R@100 = R(rel=m)@100, R@1000 = R(rel=m)@1000, where
m = the eval set's ``min_relevance``. The query set is the judged queries: those with at least one qrel of
relevance >= m. Every judged query counts in the denominator; a judged query missing from the run, or with no
relevant passage retrieved, scores 0. Queries in the run that are not judged are ignored.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ftstudy.runs import evaluation_scores

LOG = logging.getLogger(__name__)
# The contract's measures, in report order: the one definition (significance, tables and tests import it).
METRIC_NAMES = ("MRR@10", "MRR@100", "nDCG@10", "R@100", "R@1000")


def ir_measures_for(min_relevance: int = 1) -> dict:
    """Contract name -> ir-measures measure object."""
    from ir_measures import RR, R, nDCG

    m = int(min_relevance)
    return {
        "MRR@10": RR(rel=m) @ 10,
        "MRR@100": RR(rel=m) @ 100,
        "nDCG@10": nDCG @ 10,
        "R@100": R(rel=m) @ 100,
        "R@1000": R(rel=m) @ 1000,
    }


def describe_measures(min_relevance: int = 1) -> str:
    """The ir-measures measures behind :data:`METRIC_NAMES`, as written in a metrics file's provenance, e.g.
    ``"ir-measures: RR(rel=2)@10, RR(rel=2)@100, nDCG@10, R(rel=2)@100, R(rel=2)@1000"``."""
    return "ir-measures: " + ", ".join(str(m) for m in ir_measures_for(min_relevance).values())


def judged_qids(qrels: pd.DataFrame, min_relevance: int = 1) -> np.ndarray:
    """Sorted qids with at least one qrel of relevance >= min_relevance."""
    return np.unique(qrels.loc[qrels["relevance"] >= min_relevance, "qid"].to_numpy(dtype=np.int64))


@dataclass(frozen=True)
class EvaluatedQueries:
    """The queries an eval set is scored on. ``qids``: sorted unique int64 (n,), the metrics' denominator;
    ``n_unjudged``: distinct qids of the query file with no qrel of relevance >= min_relevance (not evaluated);
    ``n_judged_not_in_queries``: distinct judged qids of the qrels that the query file lacks (not evaluated)."""

    qids: np.ndarray
    n_unjudged: int
    n_judged_not_in_queries: int


def evaluated_queries(
    query_qids, qrels: pd.DataFrame, min_relevance: int = 1, queries_name: str = "queries", qrels_name: str = "qrels"
) -> EvaluatedQueries:
    """The judged queries of an eval set: qids both in the query file and judged in ``qrels``.

    ``query_qids``: the query file's qids, any int sequence (n,); ``qrels``: DataFrame (qid, pid, relevance).
    Judged = at least one qrel with relevance >= ``min_relevance``. ``queries_name`` / ``qrels_name`` (e.g. the
    files' paths) name the inputs in the error. Raises ValueError when no query is judged.
    """
    queries = np.unique(np.asarray(query_qids, dtype=np.int64))
    judged = judged_qids(qrels, min_relevance)
    qids = np.intersect1d(queries, judged)
    if len(qids) == 0:
        raise ValueError(
            f"{queries_name}: none of its {len(queries)} queries is judged (has a qrel with relevance >= "
            f"{min_relevance}) in {qrels_name}"
        )
    return EvaluatedQueries(qids, len(queries) - len(qids), len(judged) - len(qids))


def evaluate_run(
    run: pd.DataFrame,
    qrels: pd.DataFrame,
    min_relevance: int = 1,
    qids: np.ndarray | None = None,
) -> tuple[dict[str, float], pd.DataFrame]:
    """Score ``run`` (qid, pid, score[, rank]) against ``qrels`` (qid, pid, relevance).

    ``qids``: the evaluated queries (default: the judged ones in ``qrels``); each must be judged.
    Returns (means {metric name: float}, per-query DataFrame with columns qid int64, measure str,
    value float64: one row per (judged query, metric)). Raises ValueError when no query is judged.
    """
    import ir_measures

    judged = judged_qids(qrels, min_relevance)
    if qids is not None:
        qids = np.unique(np.asarray(qids, dtype=np.int64))
        unjudged = np.setdiff1d(qids, judged)
        if len(unjudged):
            raise ValueError(
                f"{len(unjudged)} evaluated queries have no qrel with relevance >= {min_relevance} "
                f"(e.g. qid {unjudged[0]})"
            )
        judged = qids
    if len(judged) == 0:
        raise ValueError(f"no judged query (no qrel with relevance >= {min_relevance})")

    measures = ir_measures_for(min_relevance)
    by_measure = {repr(m): name for name, m in measures.items()}
    q = qrels[qrels["qid"].isin(judged)]
    r = run[run["qid"].isin(judged)]
    qrels_ir = pd.DataFrame(
        {"query_id": q["qid"].astype(str), "doc_id": q["pid"].astype(str), "relevance": q["relevance"].astype(int)}
    )
    run_ir = pd.DataFrame(
        {"query_id": r["qid"].astype(str), "doc_id": r["pid"].astype(str), "score": evaluation_scores(r)}
    )
    values = {name: dict.fromkeys(judged.tolist(), 0.0) for name in measures}
    if len(run_ir):
        for res in ir_measures.iter_calc(list(measures.values()), qrels_ir, run_ir):
            values[by_measure[repr(res.measure)]][int(res.query_id)] = float(res.value)
    missing = len(np.setdiff1d(judged, r["qid"].unique()))
    if missing:
        LOG.warning("%d of %d judged queries are missing from the run; they score 0", missing, len(judged))
    per_query = pd.DataFrame(
        [(qid, name, val) for name in METRIC_NAMES for qid, val in values[name].items()],
        columns=["qid", "measure", "value"],
    ).astype({"qid": "int64", "measure": "str", "value": "float64"})
    means = {name: float(np.mean(list(values[name].values()))) for name in METRIC_NAMES}
    return means, per_query
