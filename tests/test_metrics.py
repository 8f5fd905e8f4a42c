"""Metrics: ir-measures through ftstudy.metrics against a hand-written NumPy computation on real MS MARCO data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ftstudy.metrics import METRIC_NAMES, describe_measures, evaluate_run, evaluated_queries
from ftstudy.runs import RunFormatError, read_run, write_run


def _qrels(mini) -> pd.DataFrame:
    q = pd.read_csv(mini / "qrels.dev.small.tsv", sep="\t", header=None, names=["qid", "it", "pid", "relevance"])
    return q.drop(columns="it")


def reference(run: pd.DataFrame, qrels: pd.DataFrame, min_rel: int) -> dict[str, dict[int, float]]:
    """Independent per-query metrics: each query's list sorted by score (ties: pid string descending, as
    trec_eval), binary relevance = grade >= min_rel, nDCG@10 with linear gains and the ideal from all grades."""
    rel_of = {(int(a), int(b)): int(c) for a, b, c in qrels[["qid", "pid", "relevance"]].itertuples(index=False)}
    judged = sorted(qrels.loc[qrels.relevance >= min_rel, "qid"].unique().tolist())
    out = {m: {} for m in METRIC_NAMES}
    for qid in judged:
        r = run[run.qid == qid]
        docs = sorted(zip(r.score.tolist(), r.pid.astype(str).tolist(), strict=True), reverse=True)
        pids = [int(p) for _, p in docs]
        grades = np.array([rel_of.get((qid, p), 0) for p in pids], dtype=float)
        binary = grades >= min_rel
        n_rel = sum(1 for (q, _), g in rel_of.items() if q == qid and g >= min_rel)
        for cut, name in ((10, "MRR@10"), (100, "MRR@100")):
            hits = np.flatnonzero(binary[:cut])
            out[name][qid] = 1.0 / (hits[0] + 1) if len(hits) else 0.0
        for cut, name in ((100, "R@100"), (1000, "R@1000")):
            out[name][qid] = binary[:cut].sum() / n_rel
        gains = np.clip(grades[:10], 0, None)
        dcg = float((gains / np.log2(np.arange(2, len(gains) + 2))).sum())
        ideal = np.sort([g for (q, _), g in rel_of.items() if q == qid and g > 0])[::-1][:10].astype(float)
        idcg = float((ideal / np.log2(np.arange(2, len(ideal) + 2))).sum())
        out["nDCG@10"][qid] = dcg / idcg if idcg > 0 else 0.0
    return out


def _check(run, qrels, min_rel):
    means, per_query = evaluate_run(run, qrels, min_relevance=min_rel)
    ref = reference(run, qrels, min_rel)
    assert per_query["qid"].dtype == np.int64 and per_query["value"].dtype == np.float64
    assert set(per_query["measure"]) == set(METRIC_NAMES)
    for name in METRIC_NAMES:
        got = per_query[per_query.measure == name].set_index("qid")["value"]
        exp = pd.Series(ref[name])
        assert sorted(got.index) == sorted(exp.index), name
        np.testing.assert_allclose(got.loc[exp.index].to_numpy(), exp.to_numpy(), atol=1e-9, err_msg=name)
        assert means[name] == pytest.approx(exp.mean(), abs=1e-12), name
    return means, ref


def test_bm25_run_binary_qrels_match_numpy(mini_msmarco):
    run = read_run(mini_msmarco / "bm25.dev.small.run")
    qrels = _qrels(mini_msmarco)
    means, ref = _check(run, qrels, 1)
    assert len(ref["MRR@10"]) == qrels.qid.nunique() == 270
    assert 0.1 < means["MRR@10"] < 1.0  # a real BM25 run: neither empty nor perfect


def test_graded_qrels_min_relevance_2_and_missing_queries(mini_msmarco):
    """Grades 0-3 as in TREC DL; queries missing from the run count 0; queries judged only below 2 are dropped."""
    run = read_run(mini_msmarco / "bm25.dev.small.run")
    qrels = _qrels(mini_msmarco)
    rng = np.random.default_rng(7)
    qrels["relevance"] = rng.integers(1, 4, size=len(qrels))  # graded positives: 1, 2 or 3
    extra = run.groupby("qid").head(8).sample(frac=0.5, random_state=3)[["qid", "pid"]]  # extra judged docs
    extra = extra.merge(qrels[["qid", "pid"]], how="left", indicator=True).query("_merge == 'left_only'")
    extra = extra[["qid", "pid"]].assign(relevance=rng.integers(0, 4, size=len(extra)))
    graded = pd.concat([qrels, extra], ignore_index=True)
    dropped_from_run = graded.qid.drop_duplicates().iloc[:15].tolist()
    partial_run = run[~run.qid.isin(dropped_from_run)]
    means, ref = _check(partial_run, graded, 2)
    judged2 = graded.loc[graded.relevance >= 2, "qid"].nunique()
    assert len(ref["MRR@10"]) == judged2 < graded.qid.nunique()  # some queries only judged 1: dropped
    _, per_query = evaluate_run(partial_run, graded, min_relevance=2)
    missing = per_query[per_query.qid.isin(dropped_from_run)]
    assert len(missing) and (missing.value == 0).all()
    # graded nDCG differs from a binarised one: grades are used
    binarised = graded.assign(relevance=(graded.relevance >= 2).astype(int))
    m_bin, _ = evaluate_run(partial_run, binarised, min_relevance=1)
    assert m_bin["nDCG@10"] != pytest.approx(means["nDCG@10"])
    assert m_bin["MRR@10"] == pytest.approx(means["MRR@10"])


def test_no_judged_query_is_an_error():
    qrels = pd.DataFrame({"qid": [1], "pid": [2], "relevance": [1]})
    run = pd.DataFrame({"qid": [1], "pid": [2], "score": [1.0]})
    with pytest.raises(ValueError, match="no judged query"):
        evaluate_run(run, qrels, min_relevance=2)


def test_evaluated_queries_are_the_judged_queries_of_the_query_file():
    # qid 1: judged 2; qid 2: judged only 1 (unjudged at min_relevance 2); qid 3: no qrel; qid 4: judged 3 but
    # not in the query file; qid 5: judged 2 and listed twice in the query file.
    qrels = pd.DataFrame({"qid": [1, 1, 2, 4, 5], "pid": [10, 11, 20, 40, 50], "relevance": [0, 2, 1, 3, 2]})
    sel = evaluated_queries([5, 3, 1, 2, 5], qrels, min_relevance=2)
    assert sel.qids.dtype == np.int64 and sel.qids.tolist() == [1, 5]
    assert sel.n_unjudged == 2  # qids 2 and 3 (distinct qids: the duplicate 5 is one query)
    assert sel.n_judged_not_in_queries == 1  # qid 4
    at1 = evaluated_queries([5, 3, 1, 2, 5], qrels, min_relevance=1)
    assert at1.qids.tolist() == [1, 2, 5] and at1.n_unjudged == 1


def test_evaluated_queries_none_judged_names_both_files():
    qrels = pd.DataFrame({"qid": [1], "pid": [2], "relevance": [1]})
    with pytest.raises(ValueError, match=r"dev/queries\.parquet: none of its 2 queries .* >= 2\) in dev/qrels"):
        evaluated_queries([1, 7], qrels, 2, "dev/queries.parquet", "dev/qrels.parquet")


def test_provenance_names_the_measures_with_min_relevance():
    assert describe_measures(2) == "ir-measures: RR(rel=2)@10, RR(rel=2)@100, nDCG@10, R(rel=2)@100, R(rel=2)@1000"


def test_run_round_trip_and_bad_line(tmp_path):
    path = tmp_path / "r.trec"
    pids = np.array([[5, 3, -1], [7, 8, 9]])
    scores = np.array([[0.9, 0.5, 0.0], [0.8, 0.7, 0.1]], dtype=np.float32)
    write_run(path, np.array([11, 12]), pids, scores, "base")
    lines = path.read_text().splitlines()
    assert lines[0].split() == ["11", "Q0", "5", "1", "0.900000", "base"]
    assert len(lines) == 5  # the -1 padding is skipped
    df = read_run(path)
    assert df.qid.dtype == np.int64 and df["rank"].tolist() == [1, 2, 1, 2, 3]
    path.write_text("\n".join(lines[:2] + ["12 Q0 x7 1 0.8 base"] + lines[3:]) + "\n")
    with pytest.raises(RunFormatError, match=r"r\.trec, line 3"):
        read_run(path)
