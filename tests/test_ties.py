"""Ties break deterministically (score, then pid), and the metric library scores the order that was retrieved."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ftstudy.metrics import evaluate_run
from ftstudy.runs import read_run, write_run
from ftstudy.search import search


def _tied_run(tmp_path):
    """Query 1: pids 9 and 10 tie at 0.9 (9 first by pid) and 9 is relevant. Query 2: 8, 20, 30 tie and 8 (first
    by pid) is relevant. As strings, "10" < "9" and "20" < "30" < "8": a docno tie-break reorders both."""
    path = tmp_path / "run.trec"
    pids = np.array([[9, 10, 11], [8, 20, 30]])
    write_run(path, np.array([1, 2]), pids, np.array([[0.9, 0.9, 0.1], [0.5, 0.5, 0.5]]), "m")
    qrels = pd.DataFrame({"qid": [1, 2], "pid": [9, 8], "relevance": [1, 1]})
    return read_run(path), qrels


def test_trec_eval_would_reorder_ties_by_docno(tmp_path):
    """The hazard is real: given the raw tied scores, trec_eval (via ir-measures) re-sorts ties by docno string."""
    import ir_measures
    from ir_measures import RR

    run, qrels = _tied_run(tmp_path)
    run_ir = pd.DataFrame({"query_id": run.qid.astype(str), "doc_id": run.pid.astype(str), "score": run.score})
    qrels_ir = pd.DataFrame({"query_id": ["1", "2"], "doc_id": ["9", "8"], "relevance": [1, 1]})
    raw = {r.query_id: r.value for r in ir_measures.iter_calc([RR @ 10], qrels_ir, run_ir)}
    assert raw == {"1": 0.5, "2": 1 / 3}  # both retrieved at rank 1


def test_evaluated_order_is_the_retrieved_order(tmp_path):
    run, qrels = _tied_run(tmp_path)
    means, per_query = evaluate_run(run, qrels)
    rr = per_query[per_query.measure == "MRR@10"].set_index("qid")["value"]
    # Independent: 1 / (position of the first relevant pid in the file's order).
    assert rr[1] == 1.0 and rr[2] == 1.0 and means["MRR@10"] == 1.0


def test_search_breaks_ties_by_pid_end_to_end(tmp_path):
    """Duplicate vectors under pids 30, 10, 20 (rows 0, 1, 2) come back as 10, 20, 30, in the run file too."""
    v = np.eye(4, dtype=np.float32)[[0, 0, 0, 1]]
    pids = np.array([30, 10, 20, 40])
    scores, rows = search(v[:1], v, 3, backend="torch", device="cpu", ids=pids)
    assert pids[rows[0]].tolist() == [10, 20, 30] and scores[0].tolist() == [1.0, 1.0, 1.0]
    path = tmp_path / "r.trec"
    write_run(path, np.array([7]), pids[rows], scores, "m")
    assert read_run(path).pid.tolist() == [10, 20, 30]


def test_every_run_is_written_by_score_then_pid(tmp_path):
    """A retriever that returns ties in another order (BM25's internal order) still gets them written by pid."""
    path = tmp_path / "bm25.trec"
    write_run(path, np.array([1]), np.array([[30, 10, 20, 5]]), np.array([[0.5, 0.5, 0.9, 0.5]]), "bm25")
    run = read_run(path)
    assert run.pid.tolist() == [20, 5, 10, 30] and run["rank"].tolist() == [1, 2, 3, 4]
