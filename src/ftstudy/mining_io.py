"""Reading the mining step's inputs and writing ``results/triplets/hard.parquet``.

Inputs are parquet files (DESIGN.md's contract): queries (qid, text), qrels (qid, pid, relevance) and the
collection (pid, text); a bad file gives an error that names it and the expected columns. The mined triplets
are written row group by row group (a fixed size, so the file depends only on the rows) to a temporary file
that is renamed into place; passage texts are joined by one streaming scan of the collection.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ftstudy.atomic import atomic_path

#: Column order and types of ``results/triplets/hard.parquet`` (DESIGN.md's contract).
HARD_SCHEMA = pa.schema(
    [
        ("query", pa.string()),
        ("positive", pa.string()),
        ("negative", pa.string()),
        ("qid", pa.int64()),
        ("pos_pid", pa.int64()),
        ("neg_pid", pa.int64()),
        ("neg_rank", pa.int64()),
    ]
)
ROW_GROUP_SIZE = 65_536
QRELS_COLUMNS = {"qid": pa.int64(), "pid": pa.int64(), "relevance": pa.int8()}


def read_table(path: str | os.PathLike, columns: dict[str, pa.DataType]) -> pa.Table:
    """Read ``columns`` of a parquet file, cast to the expected types; a clear error names the file."""
    try:
        table = pq.read_table(path, columns=list(columns))
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: file not found") from None
    except (pa.ArrowInvalid, KeyError) as exc:
        raise ValueError(f"{path}: expected parquet with columns {list(columns)} ({exc})") from None
    try:
        return table.cast(pa.schema([(k, v) for k, v in columns.items()]))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise ValueError(
            f"{path}: columns {list(columns)} must have types {list(map(str, columns.values()))} ({exc})"
        ) from None


def read_queries(path: str | os.PathLike) -> pa.Table:
    """(qid, text) sorted by qid; duplicated qids are an error naming the file."""
    table = read_table(path, {"qid": pa.int64(), "text": pa.string()}).sort_by("qid")
    q = table["qid"].to_numpy()
    dup = q[1:][q[1:] == q[:-1]]
    if dup.size:
        raise ValueError(f"{path}: qid {int(dup[0])} appears more than once (expected one row per query)")
    return table


def read_qrels(path: str | os.PathLike) -> pa.Table:
    """(qid int64, pid int64, relevance int8) of a qrels parquet."""
    return read_table(path, QRELS_COLUMNS)


def collection_texts(collection_path: str | os.PathLike, pids: np.ndarray, batch_rows: int = 262_144) -> pa.Table:
    """(pid, text) of the wanted ``pids`` only, sorted by pid, from one streaming scan of the collection.

    Raises ValueError naming the file if a wanted pid is missing.
    """
    want = pa.array(np.unique(np.asarray(pids, np.int64)))
    parts = []
    pf = pq.ParquetFile(collection_path)
    for rb in pf.iter_batches(batch_size=batch_rows, columns=["pid", "text"]):
        pid_col = rb.column(0).cast(pa.int64())
        mask = pc.is_in(pid_col, value_set=want)
        if pc.any(mask).as_py():
            parts.append(pa.table({"pid": pid_col.filter(mask), "text": rb.column(1).cast(pa.string()).filter(mask)}))
    table = (
        pa.concat_tables(parts)
        if parts
        else pa.table({"pid": pa.array([], pa.int64()), "text": pa.array([], pa.string())})
    )
    table = table.sort_by("pid")
    got = table["pid"].to_numpy()
    missing = np.setdiff1d(want.to_numpy(), got)
    if missing.size:
        raise ValueError(
            f"{collection_path}: {missing.size} mined pids are not in the collection (first: {missing[:5].tolist()})"
        )
    # Duplicated pids in the collection: keep the first occurrence.
    first = np.r_[True, got[1:] != got[:-1]] if got.size else np.zeros(0, bool)
    return table.filter(pa.array(first))


def _take_text(table: pa.Table, pids: np.ndarray) -> pa.Array:
    pos = np.searchsorted(table["pid"].to_numpy(), pids)
    return table["text"].take(pa.array(pos)).combine_chunks()


def write_hard_parquet(
    path: str | os.PathLike,
    qid: np.ndarray,
    pos_pid: np.ndarray,
    neg_pid: np.ndarray,
    neg_rank: np.ndarray,
    query_texts: pa.Table,
    passage_texts: pa.Table,
    row_group_size: int = ROW_GROUP_SIZE,
) -> None:
    """Write hard.parquet row group by row group to a temporary file, then rename it into place.

    qid / pos_pid / neg_pid / neg_rank: (n,) int64, one entry per triplet row. query_texts / passage_texts:
    (qid|pid, text) tables sorted by id. Row groups have a fixed size, so the file depends only on the rows.
    """
    q_sorted = query_texts.rename_columns(["pid", "text"])
    with atomic_path(path) as tmp:
        with pq.ParquetWriter(tmp, HARD_SCHEMA, compression="zstd") as writer:
            for s in range(0, max(qid.size, 1), row_group_size):
                sl = slice(s, s + row_group_size)
                batch = pa.table(
                    [
                        _take_text(q_sorted, qid[sl]),
                        _take_text(passage_texts, pos_pid[sl]),
                        _take_text(passage_texts, neg_pid[sl]),
                        pa.array(qid[sl], pa.int64()),
                        pa.array(pos_pid[sl], pa.int64()),
                        pa.array(neg_pid[sl], pa.int64()),
                        pa.array(neg_rank[sl], pa.int64()),
                    ],
                    schema=HARD_SCHEMA,
                )
                writer.write_table(batch, row_group_size=row_group_size)


def file_signature(path: str | os.PathLike) -> list:
    """(name, size, mtime_ns) of a file, or of every file in a folder: changes when an input is rewritten."""
    p = Path(path)
    files = sorted(x for x in p.rglob("*") if x.is_file()) if p.is_dir() else [p]
    return [[str(f.relative_to(p)) if p.is_dir() else f.name, f.stat().st_size, f.stat().st_mtime_ns] for f in files]
