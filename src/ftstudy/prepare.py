"""MS MARCO TSV files -> typed parquet files (the data stage).

Outputs (DESIGN.md's contract):

- collection: ``pid int64, text string``, written in row groups while the TSV streams (flat memory);
- queries: ``qid int64, text string``;
- qrels: ``qid int64, pid int64, relevance int8``.

Every writer is atomic (a temporary sibling moved into place on success), so bad input leaves no output.
Text is stored exactly as in the file.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .atomic import atomic_path
from .expected import GENERATED_MANIFEST
from .parquet_meta import with_provenance
from .provenance import sha256_file
from .tsv import (
    ID_MAX_SAFE_DIGITS,
    IdSet,
    TSVError,
    decode,
    iter_id_text,
    iter_lines,
    iter_qrels,
    parse_id,
    split_fields,
)

log = logging.getLogger(__name__)

COLLECTION_SCHEMA = pa.schema([("pid", pa.int64()), ("text", pa.string())])
QUERIES_SCHEMA = pa.schema([("qid", pa.int64()), ("text", pa.string())])
QRELS_SCHEMA = pa.schema([("qid", pa.int64()), ("pid", pa.int64()), ("relevance", pa.int8())])


def write_table(table: pa.Table, path: str | os.PathLike) -> None:
    """Write a pyarrow table to parquet atomically."""
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


# ---- collection ------------------------------------------------------------------------------------------
def prepare_collection(
    tsv: str | os.PathLike, out: str | os.PathLike, row_group_size: int = 100_000, progress: bool = True
) -> dict:
    """Stream ``pid<TAB>passage`` lines into ``out`` (parquet, row groups of ``row_group_size``).

    Duplicate pids are an error (naming the line); memory grows with the largest pid (see IdSet), never with
    the number of lines. The parquet's metadata (:mod:`ftstudy.parquet_meta`) records what identifies the source:
    the TSV's sha256 and whether a data generator's manifest (:data:`ftstudy.expected.GENERATED_MANIFEST`) sits
    beside it; :func:`ftstudy.expected.collection_facts` reads them back (the expected-value marks need them).
    Returns ``{"n_passages": int, "source_sha256": str, "generated": bool}``.
    """
    identity = {
        "source_sha256": sha256_file(tsv),
        "generated": (Path(tsv).parent / GENERATED_MANIFEST).is_file(),
    }
    schema = with_provenance(COLLECTION_SCHEMA, identity)
    seen = IdSet()
    n = 0
    expected = "pid<TAB>text"

    def flush(pids: list[int], texts: list[str], first_line: int) -> None:
        dup = seen.add_many(pids)
        if dup >= 0:
            raise TSVError(tsv, first_line + dup, f"duplicate pid {pids[dup]} (expected each pid once)")
        writer.write_table(pa.table([pids, texts], schema=COLLECTION_SCHEMA))

    with atomic_path(out) as tmp:
        writer = pq.ParquetWriter(tmp, schema)
        try:
            pids: list[int] = []
            texts: list[str] = []
            first_line = 1
            for lineno, line in iter_lines(tsv, progress=progress):
                # Fast path for a well-formed line; anything else goes through the strict parser, which raises.
                try:
                    text = line.decode("utf-8")
                except UnicodeDecodeError:
                    decode(line, tsv, lineno)
                pid_s, sep, passage = text.partition("\t")
                if (
                    not (sep and pid_s.isdigit() and pid_s.isascii() and passage)
                    or len(pid_s) > ID_MAX_SAFE_DIGITS
                    or passage.isspace()
                    or ("\t" in passage)
                ):
                    fields = split_fields(text, 2, tsv, lineno, expected)
                    parse_id(fields[0], tsv, lineno, "pid")
                pids.append(int(pid_s))
                texts.append(passage)
                if len(pids) >= row_group_size:
                    flush(pids, texts, first_line)
                    n += len(pids)
                    pids, texts, first_line = [], [], lineno + 1
            if pids:
                flush(pids, texts, first_line)
                n += len(pids)
        finally:
            writer.close()
    log.info("%s: %d passages -> %s (sha256 %s)", tsv, n, out, identity["source_sha256"])
    return {"n_passages": n, **identity}


def collection_pids(parquet: str | os.PathLike) -> np.ndarray:
    """The pid column of a prepared collection (int64)."""
    return pq.read_table(parquet, columns=["pid"]).column("pid").to_numpy()


# ---- queries and qrels -----------------------------------------------------------------------------------
def read_queries(tsv: str | os.PathLike) -> pa.Table:
    """``qid<TAB>text`` -> table (qid int64, text string); duplicate qids are an error."""
    qids: list[int] = []
    texts: list[str] = []
    seen: dict[int, int] = {}
    for lineno, qid, text in iter_id_text(tsv, "qid", progress=False):
        if qid in seen:
            raise TSVError(tsv, lineno, f"duplicate qid {qid} (first on line {seen[qid]}; expected each qid once)")
        seen[qid] = lineno
        qids.append(qid)
        texts.append(text)
    return pa.table([qids, texts], schema=QUERIES_SCHEMA)


Warn = Callable[[str], None]
"""Where a user-facing warning goes: ``log.warning`` by default; the workflow's scripts pass one that also
prints it on the terminal (``workflow/scripts/_common.warn_user``)."""


@dataclass
class Qrels:
    """Parsed qrels with the line number of each row (for error messages)."""

    qid: np.ndarray
    pid: np.ndarray
    relevance: np.ndarray
    line: np.ndarray
    n_duplicates: int = 0
    path: str = ""

    def table(self, mask: np.ndarray | None = None) -> pa.Table:
        m = slice(None) if mask is None else mask
        return pa.table([self.qid[m], self.pid[m], self.relevance[m]], schema=QRELS_SCHEMA)


def read_qrels(path: str | os.PathLike, warn: Warn | None = None) -> Qrels:
    """TREC qrels (``qid 0 pid rel``; tabs or spaces; graded). Exact duplicate lines are dropped with a
    warning (through ``warn``); the same (qid, pid) with two different grades is an error."""
    rows: dict[tuple[int, int], tuple[int, int]] = {}
    dups = 0
    for lineno, qid, pid, rel in iter_qrels(path):
        key = (qid, pid)
        if key in rows:
            first_line, first_rel = rows[key]
            if first_rel != rel:
                raise TSVError(
                    path,
                    lineno,
                    f"qid {qid} pid {pid} has relevance {rel} here and {first_rel} on line "
                    f"{first_line} (expected one judgment per pair)",
                )
            dups += 1
            continue
        rows[key] = (lineno, rel)
    if dups:
        (warn or log.warning)(f"{path}: {dups} duplicate qrels lines dropped")
    keys = np.array(list(rows.keys()), dtype=np.int64).reshape(-1, 2)
    vals = np.array(list(rows.values()), dtype=np.int64).reshape(-1, 2)
    return Qrels(keys[:, 0], keys[:, 1], vals[:, 1].astype(np.int8), vals[:, 0], dups, str(path))


def check_qrels_queries(qrels: Qrels, qids: np.ndarray, queries_path: str | os.PathLike) -> None:
    """Every qrels qid must name a query of the queries file; the error names the first offending line."""
    bad = ~np.isin(qrels.qid, qids)
    if bad.any():
        i = int(np.argmin(np.where(bad, qrels.line, np.iinfo(np.int64).max)))
        raise TSVError(
            qrels.path,
            int(qrels.line[i]),
            f"qid {int(qrels.qid[i])} is not in the queries file "
            f"{queries_path} ({int(bad.sum())} qrels lines name unknown queries; expected qids "
            "of that file)",
        )


def warn_missing_passages(qrels: Qrels, collection: str | os.PathLike | None, warn: Warn | None = None) -> int:
    """Count the qrels that name passages absent from the prepared ``collection`` parquet (0 without one);
    a non-zero count is warned (through ``warn``) with the first missing pid and its line. Returns the count."""
    if collection is None:
        return 0
    absent = ~np.isin(qrels.pid, collection_pids(collection))
    missing = int(absent.sum())
    if missing:
        first = int(np.argmin(np.where(absent, qrels.line, np.iinfo(np.int64).max)))
        (warn or log.warning)(
            f"{qrels.path}: {missing} of {len(qrels.pid)} qrels name passages missing from the collection "
            f"{collection} (first: pid {int(qrels.pid[first])} on line {int(qrels.line[first])}); "
            "they can never be retrieved, so they lower recall and MRR"
        )
    return missing


def _read_judged_queries(
    queries_tsv: str | os.PathLike,
    qrels_tsv: str | os.PathLike,
    collection: str | os.PathLike | None,
    warn: Warn | None,
) -> tuple[pa.Table, Qrels, dict]:
    """Queries and qrels, checked against each other and the collection. Returns the queries table, the
    qrels and the counts every output records: ``n_duplicate_qrels``, ``n_qrels_missing_passage``, inputs."""
    queries = read_queries(queries_tsv)
    qrels = read_qrels(qrels_tsv, warn)
    check_qrels_queries(qrels, queries.column("qid").to_numpy(), queries_tsv)
    counts = {
        "queries_tsv": str(queries_tsv),
        "qrels_tsv": str(qrels_tsv),
        "collection": None if collection is None else str(collection),
        "n_duplicate_qrels": qrels.n_duplicates,
        "n_qrels_missing_passage": warn_missing_passages(qrels, collection, warn),
    }
    return queries, qrels, counts


def _write_with_stats(queries: pa.Table, qrels: pa.Table, out_queries, out_qrels, stats: dict) -> None:
    """Write both outputs, each carrying ``stats`` as its provenance (:mod:`ftstudy.parquet_meta`)."""
    for table, out in ((queries, out_queries), (qrels, out_qrels)):
        write_table(table.replace_schema_metadata(with_provenance(table.schema, stats).metadata), out)


def prepare_train(
    queries_tsv: str | os.PathLike,
    qrels_tsv: str | os.PathLike,
    out_queries: str | os.PathLike,
    out_qrels: str | os.PathLike,
    collection: str | os.PathLike | None = None,
    warn: Warn | None = None,
) -> dict:
    """Training queries (all of them) and qrels -> parquet. Nothing is written unless both parse.

    Returns the counts, which both outputs also record as provenance: ``n_queries``, ``n_judged_queries``,
    ``n_qrels``, ``n_duplicate_qrels``, ``n_qrels_missing_passage`` (warned through ``warn`` when non-zero)."""
    queries, qrels, counts = _read_judged_queries(queries_tsv, qrels_tsv, collection, warn)
    qids = queries.column("qid").to_numpy()
    stats = {
        "n_queries": len(qids),
        "n_judged_queries": int(np.isin(qids, qrels.qid[qrels.relevance >= 1]).sum()),
        "n_qrels": len(qrels.qid),
        **counts,
    }
    _write_with_stats(queries, qrels.table(), out_queries, out_qrels, stats)
    log.info("train: %s", stats)
    return stats


def prepare_eval_set(
    queries_tsv: str | os.PathLike,
    qrels_tsv: str | os.PathLike,
    out_queries: str | os.PathLike,
    out_qrels: str | os.PathLike,
    min_relevance: int = 1,
    collection: str | os.PathLike | None = None,
    name: str = "eval",
    warn: Warn | None = None,
) -> dict:
    """An evaluation set: only judged queries (>= 1 qrel with relevance >= ``min_relevance``) are kept.

    The dropped count is logged; a set without any judged query is an error. The qrels of the kept queries are
    written with every grade (nDCG uses them). Returns counts, which both outputs also record as provenance
    (``n_qrels_missing_passage``, over all qrels of the file, is warned through ``warn`` when non-zero).
    """
    queries, qrels, counts = _read_judged_queries(queries_tsv, qrels_tsv, collection, warn)
    qids = queries.column("qid").to_numpy()
    judged_qids = np.unique(qrels.qid[qrels.relevance >= min_relevance])
    keep = np.isin(qids, judged_qids)
    if not keep.any():
        raise TSVError(
            qrels_tsv,
            None,
            f"eval set '{name}': no query has a qrel with relevance >= {min_relevance} "
            "(expected at least one judged query)",
        )
    dropped = int((~keep).sum())
    log.info(
        "eval set '%s': %d judged queries kept, %d dropped (no qrel with relevance >= %d)",
        name,
        int(keep.sum()),
        dropped,
        min_relevance,
    )
    qmask = np.isin(qrels.qid, judged_qids)
    stats = {
        "eval_set": name,
        "min_relevance": min_relevance,
        "n_queries": int(keep.sum()),
        "n_dropped_queries": dropped,
        "n_qrels": int(qmask.sum()),
        **counts,
    }
    _write_with_stats(queries.filter(pa.array(keep)), qrels.table(qmask), out_queries, out_qrels, stats)
    log.info("eval set '%s': %s", name, stats)
    return stats
