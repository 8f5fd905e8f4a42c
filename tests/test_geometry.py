"""Geometry numbers on hand-made embeddings with known answers, and the seeded pair sample."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ftstudy.geometry import (
    alignment,
    anisotropy,
    attach_texts,
    effective_rank,
    geometry_metrics,
    pair_pids,
    sample_pairs,
    uniformity,
)


def test_identical_vectors():
    x = np.tile([[3.0, 4.0, 0.0]], (6, 1))  # not unit length: normalised inside
    assert anisotropy(x) == pytest.approx(1.0)
    assert effective_rank(x) == pytest.approx(1.0)
    assert uniformity(x) == pytest.approx(0.0)  # every distance 0: log mean exp(0) = 0
    assert alignment(x, x) == pytest.approx(0.0)


def test_orthonormal_basis():
    d = 7
    e = np.eye(d)
    assert anisotropy(e) == pytest.approx(0.0)
    assert effective_rank(e) == pytest.approx(d)
    assert uniformity(e) == pytest.approx(-4.0)  # ||e_i - e_j||^2 = 2, t = 2
    assert alignment(e, np.roll(e, 1, axis=0)) == pytest.approx(2.0)


def test_antipodal_pair_and_scaling():
    x = np.array([[1.0, 0.0], [-1.0, 0.0]])
    assert anisotropy(x) == pytest.approx(-1.0)
    # two orthogonal directions with equal energy: effective rank 2; unequal energy: between 1 and 2
    assert effective_rank(np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])) == pytest.approx(2.0)
    r = effective_rank(np.array([[2.0, 0.0], [0.0, 1.0]]))
    p = np.array([2, 1]) / 3
    assert r == pytest.approx(np.exp(-(p * np.log(p)).sum()))


def test_anisotropy_matches_a_direct_mean_of_cosines():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20, 5)) + 1.0
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    cos = xn @ xn.T
    assert anisotropy(x) == pytest.approx(cos[~np.eye(20, dtype=bool)].mean())


def test_geometry_metrics_cosine_gap():
    q = np.eye(4)
    p = np.eye(4)  # each positive equals its query
    r = np.roll(np.eye(4), 1, axis=0)  # random passages orthogonal to their queries
    out = geometry_metrics(q, p, r)
    assert out["cos_query_positive"] == pytest.approx(1.0)
    assert out["cos_query_random"] == pytest.approx(0.0)
    assert out["cos_gap"] == pytest.approx(1.0)
    assert out["alignment"] == pytest.approx(0.0)
    assert out["n_pairs"] == 4 and out["dim"] == 4


def test_zero_vector_is_rejected():
    with pytest.raises(ValueError, match="zero norm"):
        anisotropy(np.zeros((3, 2)))


def _pairs_inputs():
    queries = pd.DataFrame({"qid": [1, 2, 3, 4, 5], "text": list("abcde")})
    qrels = pd.DataFrame({"qid": [1, 1, 2, 3, 4, 5], "pid": [10, 11, 20, 30, 40, 50],
                          "relevance": [1, 1, 1, 1, 0, 1]})  # fmt: skip
    pids = np.arange(10, 60)
    return queries, qrels, pids


def test_sample_pairs_is_seeded_and_judged():
    queries, qrels, pids = _pairs_inputs()
    a = sample_pairs(queries, qrels, pids, n_pairs=3, seed=1)
    b = sample_pairs(queries, qrels, pids, n_pairs=3, seed=1)
    pd.testing.assert_frame_equal(a, b)
    assert len(a) == 3 and a["qid"].is_unique
    assert 4 not in set(a["qid"])  # qid 4 has no judged positive at relevance >= 1
    judged = set(map(tuple, qrels[qrels.relevance >= 1][["qid", "pid"]].to_numpy()))
    for row in a.itertuples():
        assert (row.qid, row.pid) in judged
        assert (row.qid, row.rand_pid) not in judged and row.rand_pid in set(pids)


def test_sample_pairs_caps_at_the_judged_queries():
    queries, qrels, pids = _pairs_inputs()
    assert len(sample_pairs(queries, qrels, pids, n_pairs=100, seed=0)) == 4


def test_attach_texts_gives_each_pair_its_three_texts():
    queries, qrels, pids = _pairs_inputs()
    pairs = sample_pairs(queries, qrels, pids, n_pairs=4, seed=3)
    assert pair_pids(pairs) == sorted(set(pairs["pid"]) | set(pairs["rand_pid"]))
    passages = pd.DataFrame({"pid": [*pids, 10], "text": [f"passage {p}" for p in pids] + ["a repeat of 10"]})
    out = attach_texts(pairs, queries, passages)
    query_text = dict(zip(queries["qid"], queries["text"], strict=True))
    for row in out.itertuples():
        assert row.query == query_text[row.qid]
        assert (row.passage, row.rand_passage) == (f"passage {row.pid}", f"passage {row.rand_pid}")
    assert list(out.columns) == ["qid", "pid", "rand_pid", "query", "passage", "rand_passage"]
    assert list(pairs.columns) == ["qid", "pid", "rand_pid"]  # the input is not modified


def test_attach_texts_names_the_collection_and_the_missing_pids():
    queries, qrels, pids = _pairs_inputs()
    pairs = sample_pairs(queries, qrels, pids, n_pairs=4, seed=3)
    first = pair_pids(pairs)[0]
    passages = pd.DataFrame({"pid": [p for p in pids if p != first], "text": "x"})
    with pytest.raises(ValueError, match=rf"collection.parquet: 1 pid\(s\) .* not in the collection, e.g. \[{first}\]"):
        attach_texts(pairs, queries, passages, "collection.parquet")
