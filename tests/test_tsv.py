"""Strict TSV parsing: every kind of bad input gives an error naming file, line and expectation, and leaves no
output behind; real MS MARCO bytes (quotes, mojibake) come through unchanged."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from ftstudy.prepare import prepare_collection, prepare_eval_set, prepare_train
from ftstudy.triplets import sample_triplets
from ftstudy.tsv import IdSet, TSVError, iter_id_text, iter_qrels, iter_triples


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _assert_nothing_written(out_dir: Path) -> None:
    assert not out_dir.exists() or list(out_dir.iterdir()) == [], "a failed job must leave no (partial) output"


def _assert_bad_input(call, path: Path, line: int, message: str, out_dir: Path) -> TSVError:
    """``call()`` raises TSVError naming ``path``, ``line`` and ``message``, and leaves ``out_dir`` empty."""
    with pytest.raises(TSVError) as err:
        call()
    assert f"{path}, line {line}:" in str(err.value) and message in str(err.value)
    assert err.value.line == line
    _assert_nothing_written(out_dir)
    return err.value


# ---- collection ------------------------------------------------------------------------------------------
COLLECTION_CASES = {
    "wrong_field_count": (b"0\tfirst passage\n1\tsecond\textra field\n", 2, "3 tab-separated fields; expected 2"),
    "missing_text": (b"0\tfirst passage\n1\n", 2, "1 tab-separated fields; expected 2"),
    "non_integer_id": (b"0\tfirst\nx12\tsecond\n", 2, "pid 'x12' is not an integer"),
    "negative_id": (b"0\tfirst\n-3\tsecond\n", 2, "pid '-3' is not an integer"),
    "duplicate_pid": (b"0\tfirst\n1\tsecond\n0\tthird\n", 3, "duplicate pid 0"),
    "empty_text": (b"0\tfirst\n1\t\n", 2, "field 2 is empty"),
    "blank_text": (b"0\tfirst\n1\t   \n", 2, "field 2 is empty"),
    "blank_line": (b"0\tfirst\n\n1\tsecond\n", 2, "1 tab-separated fields; expected 2"),
    "invalid_utf8": (b"0\tfirst\n1\tbad \xff\xfe bytes\n", 2, "invalid UTF-8 at byte"),
    "empty_file": (b"", 1, "empty file"),
    "id_above_int64": (b"0\tfirst\n9223372036854775808\tsecond\n", 2, "pid '9223372036854775808' is above int64"),
    "id_far_above_int64": (b"0\tfirst\n" + b"9" * 30 + b"\tsecond\n", 2, "expected an integer id within int64"),
}
INT64_MAX_ID = 9223372036854775807  # 2**63 - 1, written out: the largest id the int64 columns hold


@pytest.mark.parametrize("case", sorted(COLLECTION_CASES))
def test_bad_collection_names_file_line_and_expectation(tmp_path, case):
    data, line, message = COLLECTION_CASES[case]
    tsv = _write(tmp_path / "collection.tsv", data)
    out = tmp_path / "out"
    _assert_bad_input(
        lambda: prepare_collection(tsv, out / "c.parquet", row_group_size=1, progress=False), tsv, line, message, out
    )


def test_collection_error_after_row_groups_leaves_no_output(tmp_path):
    """The error comes after several row groups were already written to the temporary file."""
    rows = b"".join(b"%d\tpassage number %d\n" % (i, i) for i in range(50))
    tsv = _write(tmp_path / "collection.tsv", rows + b"7\tduplicate late\n")
    out_dir = tmp_path / "out"
    for row_group_size in (8, 1000):  # the duplicate in a later row group, and inside the first one
        with pytest.raises(TSVError, match="line 51: duplicate pid 7"):
            prepare_collection(tsv, out_dir / "collection.parquet", row_group_size=row_group_size, progress=False)
        _assert_nothing_written(out_dir)


def test_collection_text_is_kept_byte_for_byte(tmp_path):
    texts = ['He said "hi" and left', "donâ\x80\x99t \u2028 line-sep \x85 NEL", "  padded  ", "tab-free 'quote"]
    data = "".join(f"{i}\t{t}\n" for i, t in enumerate(texts)).encode()
    tsv = _write(tmp_path / "collection.tsv", data[:-1])  # no final newline
    out = tmp_path / "collection.parquet"
    stats = prepare_collection(tsv, out, row_group_size=3, progress=False)
    table = pq.read_table(out)
    assert stats["n_passages"] == 4
    assert str(table.schema.field("pid").type) == "int64" and str(table.schema.field("text").type) == "string"
    assert table.column("text").to_pylist() == texts
    assert pq.ParquetFile(out).metadata.num_row_groups == 2


def test_ids_up_to_int64_max_are_kept_exactly(tmp_path):
    """The boundary: 2**63 - 1 (19 digits) and a zero-padded 25-digit small id are valid ids."""
    tsv = _write(tmp_path / "collection.tsv", b"9223372036854775807\tlargest\n0000000000000000000000042\tpadded\n")
    prepare_collection(tsv, tmp_path / "c.parquet", progress=False)
    assert pq.read_table(tmp_path / "c.parquet").column("pid").to_pylist() == [INT64_MAX_ID, 42]


def test_query_id_above_int64_names_file_line_and_expectation(tmp_path):
    queries = _write(tmp_path / "queries.tsv", b"1\tfirst\n18446744073709551616\tsecond\n")
    qrels = _write(tmp_path / "qrels.tsv", b"1 0 10 1\n")
    out = tmp_path / "out"
    err = _assert_bad_input(
        lambda: prepare_train(queries, qrels, out / "q.parquet", out / "r.parquet"), queries, 2, "qid", out
    )
    assert str(err) == (
        f"{queries}, line 2: qid '18446744073709551616' is above int64's maximum {INT64_MAX_ID} "
        "(expected an integer id within int64)"
    )


def test_crlf_line_endings_are_line_endings(tmp_path):
    tsv = _write(tmp_path / "q.tsv", b"1\tfirst\r\n2\tsecond\r\n")
    assert [t for _, _, t in iter_id_text(tsv, "qid", progress=False)] == ["first", "second"]


# ---- qrels -----------------------------------------------------------------------------------------------
def test_qrels_tabs_spaces_and_grades(tmp_path):
    q = _write(tmp_path / "qrels.txt", b"1\t0\t10\t1\n1 Q0 11 3\n2  0   12\t0\n")
    assert list(iter_qrels(q)) == [(1, 1, 10, 1), (2, 1, 11, 3), (3, 2, 12, 0)]


QRELS_CASES = {
    "three_fields": (b"1 0 10 1\n1 0 11\n", 2, "3 fields; expected 4 fields"),
    "non_integer_qid": (b"q1 0 10 1\n", 1, "qid 'q1' is not an integer"),
    "non_integer_pid": (b"1 0 D10 1\n", 1, "pid 'D10' is not an integer"),
    "non_integer_relevance": (b"1 0 10 1.5\n", 1, "relevance '1.5' is not an integer"),
    "empty_file": (b"", 1, "empty file"),
    "invalid_utf8": (b"1 0 10 1\n1 0 1\xc3 1\n", 2, "invalid UTF-8"),
    "qid_above_int64": (b"1 0 10 1\n9223372036854775808 0 11 1\n", 2, "qid '9223372036854775808' is above int64"),
    "pid_above_int64": (b"1 0 10 1\n2 0 99999999999999999999 1\n", 2, "expected an integer id within int64"),
}


@pytest.mark.parametrize("case", sorted(QRELS_CASES))
def test_bad_qrels(tmp_path, case):
    data, line, message = QRELS_CASES[case]
    queries = _write(tmp_path / "queries.tsv", b"1\tfirst query\n2\tsecond query\n")
    qrels = _write(tmp_path / "qrels.tsv", data)
    out = tmp_path / "out"
    _assert_bad_input(
        lambda: prepare_train(queries, qrels, out / "q.parquet", out / "r.parquet"), qrels, line, message, out
    )


def test_qrels_naming_unknown_query(tmp_path):
    queries = _write(tmp_path / "queries.tsv", b"1\tfirst query\n2\tsecond query\n")
    qrels = _write(tmp_path / "qrels.tsv", b"1 0 10 1\n2 0 11 1\n99 0 12 1\n")
    out_dir = tmp_path / "out"
    for call in (
        lambda: prepare_train(queries, qrels, out_dir / "q.parquet", out_dir / "r.parquet"),
        lambda: prepare_eval_set(queries, qrels, out_dir / "q.parquet", out_dir / "r.parquet"),
    ):
        with pytest.raises(TSVError) as err:
            call()
        msg = str(err.value)
        assert f"{qrels}, line 3:" in msg and "qid 99 is not in the queries file" in msg and str(queries) in msg
        _assert_nothing_written(out_dir)


def test_conflicting_duplicate_qrels_is_an_error_and_exact_duplicates_are_dropped(tmp_path, caplog):
    queries = _write(tmp_path / "queries.tsv", b"1\tfirst query\n")
    out = tmp_path / "out"
    dup = _write(tmp_path / "dup.tsv", b"1 0 10 1\n1 0 10 1\n1 0 11 1\n")
    stats = prepare_train(queries, dup, out / "q.parquet", out / "r.parquet")
    assert stats["n_qrels"] == 2 and stats["n_duplicate_qrels"] == 1
    conflict = _write(tmp_path / "conflict.tsv", b"1 0 10 1\n1 0 10 2\n")
    with pytest.raises(TSVError, match=r"line 2: qid 1 pid 10 has relevance 2 here and 1 on line 1"):
        prepare_train(queries, conflict, tmp_path / "o2" / "q.parquet", tmp_path / "o2" / "r.parquet")


def test_duplicate_qid_in_queries(tmp_path):
    queries = _write(tmp_path / "queries.tsv", b"1\tfirst\n2\tsecond\n1\tagain\n")
    qrels = _write(tmp_path / "qrels.tsv", b"1 0 10 1\n")
    with pytest.raises(TSVError, match=r"queries.tsv, line 3: duplicate qid 1 \(first on line 1"):
        prepare_train(queries, qrels, tmp_path / "o" / "q.parquet", tmp_path / "o" / "r.parquet")


# ---- triples ---------------------------------------------------------------------------------------------
TRIPLE_CASES = {
    "two_fields": (b"q\tp\tn\nq\tp\n", 2, "2 tab-separated fields; expected 3"),
    "four_fields": (b"q\tp\tn\tx\n", 1, "4 tab-separated fields; expected 3"),
    "empty_negative": (b"q\tp\tn\nq\tp\t\n", 2, "field 3 is empty"),
    "invalid_utf8": (b"q\tp\tn\nq\tp\xe2\x80\tn\n", 2, "invalid UTF-8"),
    "empty_file": (b"", 1, "empty file"),
}


@pytest.mark.parametrize("case", sorted(TRIPLE_CASES))
def test_bad_triples(tmp_path, case):
    data, line, message = TRIPLE_CASES[case]
    tsv = _write(tmp_path / "triples.train.small.tsv", data)
    out = tmp_path / "out"
    _assert_bad_input(
        lambda: sample_triplets(tsv, out / "r.parquet", n=10, seed=1, progress=False), tsv, line, message, out
    )


def test_head100_loads_to_100_rows_byte_for_byte(tmp_path, mini_msmarco):
    head100 = mini_msmarco / "triples.train.small.head100.tsv"
    raw_lines = head100.read_bytes().split(b"\n")
    assert raw_lines[-1] == b""
    expected = [tuple(f.decode("utf-8") for f in line.split(b"\t")) for line in raw_lines[:-1]]
    parsed = [t[1:] for t in iter_triples(head100, progress=False)]
    assert len(parsed) == 100 and parsed == expected
    out = tmp_path / "random.parquet"
    stats = sample_triplets(head100, out, n=1000, seed=42, progress=False)
    assert (stats["n_lines"], stats["n_sampled"], stats["took_all"], stats["seed"]) == (100, 100, True, 42)
    table = pq.read_table(out)
    rows = list(zip(*(table.column(c).to_pylist() for c in ("query", "positive", "negative")), strict=True))
    assert rows == expected  # every line, file order, unchanged text
    # Re-encoding the parquet text gives back the file's bytes exactly (damaged characters included).
    assert b"".join(b"\t".join(s.encode() for s in r) + b"\n" for r in rows) == head100.read_bytes()
    assert any("â" in q + p + n for q, p, n in rows)  # the real encoding damage is there, untouched


def test_idset_dense_and_large_ids():
    s = IdSet(dense_limit=1000)
    assert s.add(0) and s.add(7) and s.add(8) and s.add(999) and s.add(10**12)
    assert not s.add(7) and not s.add(999) and not s.add(10**12) and not s.add(0)
    assert s.add(6) and s.add(1000)
    # batches: the first repeated position, whether repeated inside the batch or against earlier ids
    b = IdSet(dense_limit=1000)
    assert b.add_many([5, 3, 10**9, 2000]) == -1
    assert b.add_many([1, 4, 4, 3]) == 2
    assert IdSet(dense_limit=1000).add_many([9, 10**9, 8, 10**9]) == 3
    c = IdSet()
    assert c.add_many([1, 2]) == -1 and c.add_many([7, 8, 2]) == 2 and c.add_many([]) == -1
