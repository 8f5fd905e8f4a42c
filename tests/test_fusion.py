"""BM25 + dense fusion by ranx: RRF and the min-max weighted sum against hand computations on small run files, and
the weighted sum's cross-validation, which must never tune a query's weight on that query's own fold."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ftstudy import fusion
from ftstudy.fusion import cross_validated_wsum, cv_folds, fuse_runs, hybrid_run, to_matrix
from ftstudy.runs import read_run, write_run


def _run_file(tmp_path, name, rows: dict[int, dict[int, float]]):
    """Write {qid: {pid: score}} with write_run (score desc, then pid) and read it back as the rules do."""
    depth = max(len(d) for d in rows.values())
    qids = np.array(sorted(rows))
    pids = np.full((len(qids), depth), -1)
    scores = np.zeros((len(qids), depth))
    for i, q in enumerate(qids):
        pids[i, : len(rows[q])], scores[i, : len(rows[q])] = list(rows[q]), list(rows[q].values())
    path = tmp_path / f"{name}.trec"
    write_run(path, qids, pids, scores, name)
    return read_run(path)


# q1: pids 4 and 2 tie in BM25 (2 is ranked first, by pid); 7 only in BM25, 9 only in dense.
# q2: no BM25 result at all (BM25 writes no line for a score of 0): it must come from the dense run alone.
BM25 = {1: {4: 5.0, 2: 5.0, 7: 3.0, 5: 1.0}, 3: {10: 2.0, 11: 1.0}}
DENSE = {1: {5: 0.9, 4: 0.8, 9: 0.7, 2: 0.1}, 2: {20: 0.5, 21: 0.4}, 3: {11: 0.6, 10: 0.6}}


def _ranks(rows):
    """{qid: {pid: rank}} in the study's order: score descending, then pid."""
    return {q: {p: r for r, (p, _) in enumerate(sorted(d.items(), key=lambda x: (-x[1], x[0])), 1)}
            for q, d in rows.items()}  # fmt: skip


def _by_hand_order(scores: dict[int, dict[int, float]], depth: int) -> list[tuple[int, int, float]]:
    return [
        (q, p, s) for q in sorted(scores) for p, s in sorted(scores[q].items(), key=lambda x: (-x[1], x[0]))[:depth]
    ]


def _as_tuples(df):
    return list(zip(df.qid.tolist(), df.pid.tolist(), df.score.tolist(), strict=True))


def test_rrf_is_the_sum_of_reciprocal_ranks_of_the_run_files(tmp_path):
    bm25, dense = _run_file(tmp_path, "bm25", BM25), _run_file(tmp_path, "dense", DENSE)
    k, depth = 60, 4
    want: dict[int, dict[int, float]] = {}
    for run in (_ranks(BM25), _ranks(DENSE)):
        for q, d in run.items():
            for p, r in d.items():
                want.setdefault(q, {})[p] = want.get(q, {}).get(p, 0.0) + 1.0 / (k + r)
    got = fuse_runs(bm25, dense, "rrf", depth, rrf_k=k)
    expected = _by_hand_order(want, depth)
    assert [(q, p) for q, p, _ in _as_tuples(got)] == [(q, p) for q, p, _ in expected]
    np.testing.assert_allclose(got.score.to_numpy(), [s for _, _, s in expected], rtol=1e-12)
    # BM25's tie (pids 2 and 4 at 5.0) counted in the file's order: 2 at rank 1, 4 at rank 2.
    q1 = dict(zip(got[got.qid == 1].pid, got[got.qid == 1].score, strict=True))
    assert q1[2] == pytest.approx(1 / 61 + 1 / 64) and q1[4] == pytest.approx(1 / 62 + 1 / 62)


def test_rrf_ties_break_by_pid_and_depth_cuts_the_list(tmp_path):
    """Pid 7 (BM25 rank 3 only) and 9 (dense rank 3 only) tie at 1/63: 7 comes first; depth 3 drops the rest."""
    got = fuse_runs(_run_file(tmp_path, "b", BM25), _run_file(tmp_path, "d", DENSE), "rrf", 5, rrf_k=60)
    q1 = got[got.qid == 1]
    assert q1.pid.tolist()[-2:] == [7, 9] and q1.score.iat[-1] == q1.score.iat[-2]
    assert (
        fuse_runs(_run_file(tmp_path, "b", BM25), _run_file(tmp_path, "d", DENSE), "rrf", 3).groupby("qid").size().max()
        == 3
    )


def _minmax(d: dict[int, float]) -> dict[int, float]:
    v = np.array(list(d.values()))
    return dict(zip(d, (v - v.min()) / max(v.max() - v.min(), 1e-9), strict=True))


@pytest.mark.parametrize("w", [0.0, 0.3, 0.75, 1.0])
def test_wsum_is_a_weighted_sum_of_min_max_normalised_scores(tmp_path, w):
    bm25, dense = _run_file(tmp_path, "bm25", BM25), _run_file(tmp_path, "dense", DENSE)
    want = {}
    for q in sorted(set(BM25) | set(DENSE)):
        nb, nd = _minmax(BM25.get(q, {})) if q in BM25 else {}, _minmax(DENSE[q])
        want[q] = {p: w * nb.get(p, 0.0) + (1 - w) * nd.get(p, 0.0) for p in set(nb) | set(nd)}
    depth = 4
    got = fuse_runs(bm25, dense, "wsum", depth, bm25_weight=w)
    expected = _by_hand_order(want, depth)
    assert [(q, p) for q, p, _ in _as_tuples(got)] == [(q, p) for q, p, _ in expected]
    np.testing.assert_allclose(got.score.to_numpy(), [s for _, _, s in expected], rtol=1e-12, atol=1e-12)


def test_to_matrix_pads_short_and_missing_queries_for_write_run(tmp_path):
    fused = fuse_runs(_run_file(tmp_path, "b", BM25), _run_file(tmp_path, "d", DENSE), "rrf", 6)
    pids, scores = to_matrix(fused, np.array([1, 2, 3, 4]), 6)
    assert pids.shape == (4, 6) and (pids[3] == -1).all() and (pids[1, 2:] == -1).all()
    write_run(tmp_path / "f.trec", np.array([1, 2, 3, 4]), pids, scores, "hybrid_rrf_base")
    back = read_run(tmp_path / "f.trec")
    assert _as_tuples(back[["qid", "pid", "score"]].round(6)) == _as_tuples(fused.round(6))


# ---- cross-validation ------------------------------------------------------------------------------------------
def _two_kinds_of_query(tmp_path, dense_good: np.ndarray, bm25_good: np.ndarray):
    """Per query, passages r (relevant, pid 100 q), x, y. On ``dense_good`` queries the dense run ranks r first
    and BM25 last; on ``bm25_good`` queries the other way round. MRR@10 at BM25 weight 0 / 0.5 / 1: 1 / 0.5 / 1/3
    on dense_good queries, 1/3 / 0.5 / 1 on bm25_good ones."""
    good, bad = {"r": 1.0, "x": 0.5, "y": 0.0}, {"x": 3.0, "y": 2.0, "r": 1.0}
    b, d = {}, {}
    for q in np.concatenate([dense_good, bm25_good]).tolist():
        pid = {"r": 100 * q, "x": 100 * q + 1, "y": 100 * q + 2}
        first, second = (good, bad) if q in dense_good else (bad, good)
        d[q] = {pid[n]: s for n, s in first.items()}
        b[q] = {pid[n]: s for n, s in second.items()}
    qrels = pd.DataFrame({"qid": list(d), "pid": [100 * q for q in d], "relevance": 1})
    return _run_file(tmp_path, "bm25", b), _run_file(tmp_path, "dense", d), qrels


FUSION = {"wsum_weights": [1.0, 0.0, 0.5], "cv_folds": 2, "cv_metric": "MRR@10", "seed": 7}


def test_each_fold_gets_the_weight_tuned_on_the_other_fold(tmp_path):
    judged = np.arange(1, 21)
    folds = cv_folds(judged, 2, FUSION["seed"])
    bm25, dense, qrels = _two_kinds_of_query(tmp_path, dense_good=folds[0], bm25_good=folds[1])
    fused, record = cross_validated_wsum(bm25, dense, qrels, judged, FUSION, min_relevance=1, depth=3)
    # Fold 0's own best is 0 (dense) but fold 1's is 1 (BM25), and vice versa: a leak would pick each fold's own.
    assert [f["bm25_weight"] for f in record["folds"]] == [1.0, 0.0]
    assert [f["n_queries"] for f in record["folds"]] == [10, 10]
    assert record["folds"][0]["train_metric"] == pytest.approx({0.0: 1 / 3, 0.5: 0.5, 1.0: 1.0})
    first = fused.groupby("qid").head(1).set_index("qid")["pid"]
    # Every query is fused with the weight that is wrong for it: its relevant passage (pid 100 q) ranks third.
    assert all(first[q] != 100 * q for q in judged)
    assert record["unjudged"] is None


def test_cv_tunes_only_on_the_other_folds_queries(tmp_path, monkeypatch):
    """Spy on the weight choice: the training queries of each call never include the fold that is then fused."""
    judged = np.arange(1, 16)
    bm25, dense, qrels = _two_kinds_of_query(tmp_path, dense_good=judged[:7], bm25_good=judged[7:])
    seen, fused_qids = [], []
    real_choose, real_subset = fusion.choose_weight, fusion._fuse_subset
    monkeypatch.setattr(
        fusion, "choose_weight", lambda pq, train: seen.append(set(train.tolist())) or real_choose(pq, train)
    )
    monkeypatch.setattr(
        fusion, "_fuse_subset", lambda b, d, q, w, k: fused_qids.append(set(q.tolist())) or real_subset(b, d, q, w, k)
    )
    cross_validated_wsum(bm25, dense, qrels, judged, {**FUSION, "cv_folds": 3}, min_relevance=1, depth=3)
    assert len(seen) == 3 and len(fused_qids) == 3
    for train, test in zip(seen, fused_qids, strict=True):
        assert not train & test and train | test == set(judged.tolist())
    assert set().union(*fused_qids) == set(judged.tolist())


def test_folds_are_determined_by_the_seed():
    qids = np.arange(100, 140)
    a, b, c = cv_folds(qids, 2, 1), cv_folds(qids[::-1], 2, 1), cv_folds(qids, 2, 2)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[0], c[0])
    assert sorted(np.concatenate(a).tolist()) == qids.tolist() and abs(len(a[0]) - len(a[1])) <= 1
    with pytest.raises(ValueError, match="3 judged queries cannot fill 4 folds"):
        cv_folds(np.arange(3), 4, 0)


def test_grid_ties_go_to_the_smaller_weight_and_unjudged_queries_use_all_judged(tmp_path):
    """All queries alike: every weight ranks r first, so the metric ties across the grid and 0.0 is chosen. An
    unjudged query (9) in the runs is fused with the weight chosen on all judged queries."""
    rows = {q: {100 * q: 2.0, 100 * q + 1: 1.0} for q in (1, 2, 3, 4, 9)}
    bm25, dense = _run_file(tmp_path, "b", rows), _run_file(tmp_path, "d", rows)
    qrels = pd.DataFrame({"qid": [1, 2, 3, 4], "pid": [100, 200, 300, 400], "relevance": 1})
    fused, record = hybrid_run("wsum", bm25, dense, qrels, np.array([1, 2, 3, 4]), FUSION, 1, 2)
    assert [f["bm25_weight"] for f in record["folds"]] == [0.0, 0.0]
    assert record["unjudged"] == {"n_queries": 1, "bm25_weight": 0.0}
    assert sorted(fused.qid.unique().tolist()) == [1, 2, 3, 4, 9]


def test_the_whole_cv_is_deterministic(tmp_path):
    judged = np.arange(1, 13)
    bm25, dense, qrels = _two_kinds_of_query(tmp_path, dense_good=judged[::2], bm25_good=judged[1::2])
    one = cross_validated_wsum(bm25, dense, qrels, judged, FUSION, 1, 3)
    two = cross_validated_wsum(bm25, dense, qrels, judged, FUSION, 1, 3)
    pd.testing.assert_frame_equal(one[0], two[0])
    assert one[1] == two[1]


def test_bad_method_and_weight_are_refused(tmp_path):
    b, d = _run_file(tmp_path, "b", BM25), _run_file(tmp_path, "d", DENSE)
    with pytest.raises(ValueError, match="method must be one of"):
        fuse_runs(b, d, "combmnz", 3)
    with pytest.raises(ValueError, match="bm25_weight in"):
        fuse_runs(b, d, "wsum", 3)


def test_the_grid_is_scored_exactly_as_evaluate_scores_the_full_depth_run(tmp_path):
    """grid_metrics scores each fused list at the metric's cut-off only (10 of depth 15 here); the values equal
    evaluate_run's on the list at full depth."""
    from ftstudy.fusion import grid_metrics, metric_cutoff
    from ftstudy.metrics import evaluate_run

    rng = np.random.default_rng(5)
    qs = list(range(1, 13))
    rows_b = {q: {int(p): float(rng.random()) for p in rng.choice(40, 10, replace=False)} for q in qs}
    rows_d = {q: {int(p): float(rng.random()) for p in rng.choice(40, 10, replace=False)} for q in qs}
    bm25, dense = _run_file(tmp_path, "b", rows_b), _run_file(tmp_path, "d", rows_d)
    rel = [int(rng.choice(list(rows_b[q]) + list(rows_d[q]))) for q in qs]
    qrels = pd.DataFrame({"qid": qs, "pid": rel, "relevance": rng.integers(1, 3, len(qs))})
    judged = np.array(qs)
    for metric in ("MRR@10", "nDCG@10"):
        got = grid_metrics(bm25, dense, qrels, judged, [0.2, 0.6], metric, 1, depth=15)
        for w in (0.2, 0.6):
            _, pq = evaluate_run(fuse_runs(bm25, dense, "wsum", 15, bm25_weight=w), qrels, 1, judged)
            want = pq[pq.measure == metric].set_index("qid")["value"]
            np.testing.assert_array_equal(got[w].loc[judged].to_numpy(), want.loc[judged].to_numpy())
            assert (want > 0).any() and (want < 1).any()  # a mix of hits and misses: the check can fail
    assert metric_cutoff("R@1000") == 1000
    with pytest.raises(ValueError, match="no @<cutoff>"):
        metric_cutoff("MRR")
