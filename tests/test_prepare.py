"""The data stage on the real MS MARCO slice, and eval-set filtering (judged queries, min_relevance)."""

from __future__ import annotations

import logging
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from ftstudy.parquet_meta import read_provenance
from ftstudy.prepare import prepare_collection, prepare_eval_set, prepare_train
from ftstudy.triplets import sample_triplets
from ftstudy.tsv import TSVError


def _lines(path: Path) -> list[list[str]]:
    """Independent reading: the file's lines split on tabs (no validation, no shared code)."""
    return [line.split("\t") for line in path.read_text(encoding="utf-8").split("\n") if line]


def _qrels(path: Path) -> list[list[str]]:
    return [line.split() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_data_stage_on_mini_msmarco(tmp_path, caplog, mini_msmarco):
    mini = mini_msmarco
    caplog.set_level(logging.INFO)
    res = tmp_path / "results"
    coll = res / "data" / "collection.parquet"
    stats = prepare_collection(mini / "collection.tsv", coll, row_group_size=4000, progress=False)
    coll_lines = _lines(mini / "collection.tsv")
    table = pq.read_table(coll)
    assert stats["n_passages"] == table.num_rows == len(coll_lines) == 11809
    assert table.schema.names == ["pid", "text"]
    assert str(table.schema.field("pid").type) == "int64" and str(table.schema.field("text").type) == "string"
    assert table.column("pid").to_pylist() == [int(f[0]) for f in coll_lines]
    assert table.column("text").to_pylist() == [f[1] for f in coll_lines]

    train = prepare_train(
        mini / "queries.train.tsv",
        mini / "qrels.train.tsv",
        res / "data" / "queries.train.parquet",
        res / "data" / "qrels.train.parquet",
        collection=coll,
    )
    q_lines, r_lines = _lines(mini / "queries.train.tsv"), _qrels(mini / "qrels.train.tsv")
    qrels = pq.read_table(res / "data" / "qrels.train.parquet")
    assert train["n_queries"] == pq.read_table(res / "data" / "queries.train.parquet").num_rows == len(q_lines)
    assert qrels.num_rows == len({(r[0], r[2]) for r in r_lines}) == 270
    assert [str(t) for t in qrels.schema.types] == ["int64", "int64", "int8"]
    assert train["n_judged_queries"] == len({r[0] for r in r_lines if int(r[3]) >= 1})
    pids = {f[0] for f in coll_lines}
    assert train["n_qrels_missing_passage"] == sum(r[2] not in pids for r in r_lines)

    dev = prepare_eval_set(
        mini / "queries.dev.small.tsv",
        mini / "qrels.dev.small.tsv",
        res / "data/eval/dev/queries.parquet",
        res / "data/eval/dev/qrels.parquet",
        min_relevance=1,
        collection=coll,
        name="dev",
    )
    dq = _lines(mini / "queries.dev.small.tsv")
    dr = _qrels(mini / "qrels.dev.small.tsv")
    judged = {r[0] for r in dr if int(r[3]) >= 1}
    got = pq.read_table(res / "data/eval/dev/queries.parquet")
    assert dev["n_queries"] == got.num_rows == len({q[0] for q in dq} & judged)
    assert dev["n_dropped_queries"] == len(dq) - got.num_rows
    assert set(got.column("qid").to_pylist()) == {int(q) for q in judged}
    assert any("eval set 'dev'" in r.message and "dropped" in r.message for r in caplog.records)

    trip = sample_triplets(
        mini / "triples.train.small.tsv", res / "triplets/random.parquet", n=500, seed=42, progress=False
    )
    t_lines = _lines(mini / "triples.train.small.tsv")
    sample = pq.read_table(res / "triplets/random.parquet")
    assert trip["n_lines"] == len(t_lines) == 2700 and sample.num_rows == 500 and not trip["took_all"]
    all_rows = {tuple(f) for f in t_lines}
    rows = list(zip(*(sample.column(c).to_pylist() for c in ("query", "positive", "negative")), strict=True))
    assert len(set(rows)) == 500 and set(rows) <= all_rows


def _eval_files(tmp_path: Path, qrels: bytes) -> tuple[Path, Path]:
    queries = tmp_path / "queries.tsv"
    queries.write_bytes(b"1\tq one\n2\tq two\n3\tq three\n4\tq four\n")
    q = tmp_path / "qrels.txt"
    q.write_bytes(qrels)
    return queries, q


def test_eval_set_keeps_only_queries_judged_at_min_relevance(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    queries, qrels = _eval_files(tmp_path, b"1 0 10 3\n1 0 11 0\n2 0 12 1\n3 0 13 2\n3 0 14 0\n")
    out = tmp_path / "out"
    stats = prepare_eval_set(queries, qrels, out / "q.parquet", out / "r.parquet", min_relevance=2, name="dl")
    assert pq.read_table(out / "q.parquet").column("qid").to_pylist() == [1, 3]
    r = pq.read_table(out / "r.parquet")
    # every grade of the kept queries is kept (nDCG needs the 0s); the dropped query's qrels go
    assert sorted(
        zip(r.column("qid").to_pylist(), r.column("pid").to_pylist(), r.column("relevance").to_pylist(), strict=True)
    ) == [(1, 10, 3), (1, 11, 0), (3, 13, 2), (3, 14, 0)]
    assert stats["n_dropped_queries"] == 2
    assert any("2 judged queries kept, 2 dropped" in rec.message for rec in caplog.records)
    stats1 = prepare_eval_set(queries, qrels, out / "q1.parquet", out / "r1.parquet", min_relevance=1)
    assert stats1["n_queries"] == 3


def test_eval_set_without_judged_query_is_an_error(tmp_path):
    queries, qrels = _eval_files(tmp_path, b"1 0 10 1\n2 0 11 0\n")
    out = tmp_path / "out"
    with pytest.raises(TSVError, match=r"qrels.txt: eval set 'dl': no query has a qrel with relevance >= 2"):
        prepare_eval_set(queries, qrels, out / "q.parquet", out / "r.parquet", min_relevance=2, name="dl")
    assert not out.exists() or not list(out.iterdir())


def test_qrels_naming_missing_passages_warn_with_count_and_record_it(tmp_path, caplog):
    coll = tmp_path / "collection.tsv"
    coll.write_bytes(b"10\tpassage ten\n11\tpassage eleven\n")
    prepare_collection(coll, tmp_path / "c.parquet", progress=False)
    queries, qrels = _eval_files(tmp_path, b"1 0 10 1\n1 0 77 1\n2 0 78 0\n")  # pids 77 and 78 are not in it
    out = tmp_path / "out"
    stats = prepare_eval_set(queries, qrels, out / "q.parquet", out / "r.parquet", collection=tmp_path / "c.parquet")
    assert stats["n_qrels_missing_passage"] == 2
    warned = [r.message for r in caplog.records if r.levelname == "WARNING"]
    assert len(warned) == 1 and "2 of 3 qrels name passages missing" in warned[0]
    assert "pid 77 on line 2" in warned[0]
    # the count travels with both outputs (the user who only has the parquet files can read it)
    for name in ("q.parquet", "r.parquet"):
        prov = read_provenance(out / name)
        assert prov["n_qrels_missing_passage"] == 2 and prov["collection"] == str(tmp_path / "c.parquet")
    assert pq.read_table(out / "r.parquet").num_rows == 2  # query 2 has no relevant qrel: dropped with its qrels


def test_train_warnings_go_to_the_given_callback_and_the_provenance(tmp_path):
    coll = tmp_path / "collection.tsv"
    coll.write_bytes(b"10\tpassage ten\n")
    prepare_collection(coll, tmp_path / "c.parquet", progress=False)
    queries, qrels = _eval_files(tmp_path, b"1 0 10 1\n1 0 10 1\n2 0 55 1\n3 0 56 1\n4 0 10 1\n")
    out = tmp_path / "out"
    seen: list[str] = []
    stats = prepare_train(
        queries, qrels, out / "q.parquet", out / "r.parquet", collection=tmp_path / "c.parquet", warn=seen.append
    )
    assert len(seen) == 2
    assert "1 duplicate qrels lines dropped" in seen[0]
    assert "2 of 4 qrels name passages missing" in seen[1]  # 55 and 56, counted after the duplicate is dropped
    prov = read_provenance(out / "r.parquet")
    assert prov == read_provenance(out / "q.parquet") == stats
    assert (prov["n_qrels_missing_passage"], prov["n_duplicate_qrels"], prov["n_qrels"]) == (2, 1, 4)


def test_no_missing_passage_no_warning_and_zero_recorded(tmp_path):
    coll = tmp_path / "collection.tsv"
    coll.write_bytes(b"10\tpassage ten\n11\tpassage eleven\n")
    prepare_collection(coll, tmp_path / "c.parquet", progress=False)
    queries, qrels = _eval_files(tmp_path, b"1 0 10 1\n2 0 11 1\n")
    seen: list[str] = []
    out = tmp_path / "out"
    prepare_train(
        queries, qrels, out / "q.parquet", out / "r.parquet", collection=tmp_path / "c.parquet", warn=seen.append
    )
    assert seen == [] and read_provenance(out / "r.parquet")["n_qrels_missing_passage"] == 0
