"""Diagnosing the paper's negatives (issue 14): an eval set's queries mined as the training queries are, with the
judgments hidden, and the judged fractions counted by hand on a tiny graded qrels set."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest

from ftstudy.candidates import dense_retriever
from ftstudy.config import schema_defaults
from ftstudy.mining import mine_hard_negatives
from ftstudy.negative_diagnosis import diagnose_negatives, draw_hidden
from ftstudy.negatives import MiningSettings

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture
def graded(tmp_path):
    """20 passages on a quarter circle: query 1 ranks pids 100, 101, ..., 119; query 2 the reverse."""
    angles = np.linspace(0, np.pi / 2, 20)
    vec = np.stack([np.cos(angles), np.sin(angles)], 1).astype(np.float32)
    pids = np.arange(100, 120, dtype=np.int64)
    qemb = {"query one": np.array([1, 0], np.float32), "query two": np.array([0, 1], np.float32)}
    queries = pd.DataFrame({"qid": [1, 2], "text": ["query one", "query two"]})
    qrels = pd.DataFrame(
        [
            (1, 102, 2),  # rank 3
            (1, 104, 1),  # rank 5
            (1, 105, 0),  # rank 6: judged, not relevant
            (1, 100, 3),  # rank 1: outside the range
            (1, 115, 2),  # rank 16: outside the top 10
            (2, 116, 1),  # rank 4 for query two
            (2, 119, 3),  # rank 1
        ],
        columns=["qid", "pid", "relevance"],
    ).astype({"relevance": "int8"})
    queries.to_parquet(tmp_path / "queries.parquet")
    qrels.to_parquet(tmp_path / "qrels.parquet")
    pd.DataFrame({"pid": pids, "text": [f"p{p}" for p in pids]}).to_parquet(tmp_path / "collection.parquet")
    return {"dir": tmp_path, "vec": vec, "pids": pids, "embed": lambda t: np.stack([qemb[x] for x in t])}


def _settings(**changes):
    return MiningSettings.from_config({**schema_defaults()["mining"], "top_k": 10, "rank_range": [3, 8], **changes})


def _diagnose(g, settings, name="dl"):
    out = g["dir"] / f"{name}.json"
    diagnose_negatives(
        g["dir"] / "queries.parquet",
        g["dir"] / "qrels.parquet",
        out,
        settings,
        g["embed"],
        dense_retriever(g["vec"], g["pids"], settings.top_k),
        query_batch_size=1,
        eval_set=name,
    )
    return json.loads(out.read_text())


def test_judged_fractions_by_hand(graded):
    """Every in-range candidate drawn (6 of ranks 3-8 per query, 12 in all). Judged among them, by hand:
    query one 102 (2), 104 (1), 105 (0); query two 116 (1): 4 judged, 3 with relevance >= 1, 1 with >= 2.
    The judged passages are drawn: nothing judged is removed before the draw."""
    res = _diagnose(graded, _settings(negatives_per_query=6))
    assert res["n_queries"] == 2 and res["n_queries_mined"] == 2 and res["n_drawn_negatives"] == 12
    for key in ("drawn", "candidates_in_range"):
        part = res[key]
        assert part["n"] == 12
        assert (part["judged"]["count"], part["relevance_ge_1"]["count"], part["relevance_ge_2"]["count"]) == (4, 3, 1)
        assert part["judged"]["fraction"] == pytest.approx(4 / 12)
        assert part["relevance_ge_1"]["fraction"] == pytest.approx(3 / 12)
        assert part["relevance_ge_2"]["fraction"] == pytest.approx(1 / 12)
    assert res["judgments_hidden_from_miner"] is True and "hidden" in res["note"]
    # one negative per query: two drawn; the candidates in the range are counted as before
    one = _diagnose(graded, _settings(negatives_per_query=1, seed=4), name="dl1")
    assert one["n_drawn_negatives"] == 2 and one["candidates_in_range"]["n"] == 12
    assert one["candidates_in_range"]["relevance_ge_1"]["count"] == 3


def test_the_draw_is_the_training_queries_draw(graded, tmp_path):
    """Where a query's judged positive lies outside the top_k, the training miner removes nothing either: then the
    diagnosis draws exactly the negatives that mine_hard_negatives draws for it (same seed, ranks, code path)."""
    d = graded["dir"]
    pd.DataFrame({"qid": [1, 2], "pid": [115, 101], "relevance": [1, 1]}).astype({"relevance": "int8"}).to_parquet(
        tmp_path / "far_qrels.parquet"
    )  # 115 is rank 16 for query one, 101 rank 19 for query two: both outside the top 10
    s = _settings(negatives_per_query=2, seed=7)
    mine_hard_negatives(
        d / "queries.parquet",
        tmp_path / "far_qrels.parquet",
        d / "collection.parquet",
        tmp_path / "hard.parquet",
        tmp_path / "hard_stats.json",
        s,
        graded["embed"],
        dense_retriever(graded["vec"], graded["pids"], 10),
        graded["vec"],
        graded["pids"],
        tmp_path / "partial",
        2,
        progress=False,
    )
    hard = pd.read_parquet(tmp_path / "hard.parquet")
    _, cand = dense_retriever(graded["vec"], graded["pids"], 10)(graded["embed"](["query one", "query two"]), [])
    drawn, in_range, skipped = draw_hidden(np.array([1, 2]), cand, s)
    assert drawn["qid"] == hard.qid.tolist() and drawn["pid"] == hard.neg_pid.tolist()
    assert drawn["rank"] == hard.neg_rank.tolist()
    assert in_range["pid"] == [*range(102, 108), *range(117, 111, -1)] and sum(skipped.values()) == 0


def test_margin_is_not_applied_and_recorded(graded):
    res = _diagnose(graded, _settings(negatives_per_query=6, margin=0.05))
    assert res["margin_applied"] is False and res["paper_margin"] == 0.05
    assert res["n_drawn_negatives"] == 12  # nothing dropped: there is no positive to measure a margin from
