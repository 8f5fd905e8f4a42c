"""The retrieved candidate lists on disk: ``results/mining/candidates.parquet``, written by the mining step.

One row per mined training query, in ascending qid order::

    qid         int64
    pids        list<int64>    the top_k candidates in rank order (rank 1 first; fewer where the miner found fewer)
    scores      list<float32>  their base-model cosines with the query (the margin guard's unit, whatever the miner)
    pos_pids    list<int64>    the query's judged positives that are in the corpus, ascending (empty: none)
    pos_scores  list<float32>  their base-model cosines with the query

Further mined sets (:mod:`ftstudy.negative_filters`) are drawn from it with no second retrieval. Row groups hold a
fixed number of queries (:data:`ROW_GROUP_QUERIES`), so the file is read one group at a time and never held whole
(503k queries x 200 candidates at full scale); the writer streams too.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ftstudy.atomic import atomic_path

CANDIDATES_SCHEMA = pa.schema(
    [
        ("qid", pa.int64()),
        ("pids", pa.list_(pa.int64())),
        ("scores", pa.list_(pa.float32())),
        ("pos_pids", pa.list_(pa.int64())),
        ("pos_scores", pa.list_(pa.float32())),
    ]
)
ROW_GROUP_QUERIES = 1024


@dataclass
class QueryCandidates:
    """Candidate lists of b queries in flat (CSR) form.

    qid (b,) int64; offsets (b + 1,): query i's candidates are ``pids[offsets[i]:offsets[i + 1]]`` with
    ``scores`` (float32 cosines) alongside; pos_offsets / pos_pids / pos_scores the same for its positives.
    """

    qid: np.ndarray
    offsets: np.ndarray
    pids: np.ndarray
    scores: np.ndarray
    pos_offsets: np.ndarray
    pos_pids: np.ndarray
    pos_scores: np.ndarray

    def __len__(self) -> int:
        return int(self.qid.size)

    def query(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(candidate pids, their cosines, positive pids, their cosines) of query i."""
        a, b = self.offsets[i], self.offsets[i + 1]
        c, d = self.pos_offsets[i], self.pos_offsets[i + 1]
        return self.pids[a:b], self.scores[a:b], self.pos_pids[c:d], self.pos_scores[c:d]

    def save(self, path: os.PathLike) -> None:
        """Write as one ``.npz`` atomically (a resumable piece)."""
        with atomic_path(path, suffix=".npz") as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, **self.__dict__)

    @classmethod
    def load(cls, path: os.PathLike) -> QueryCandidates:
        """Read a piece written by :meth:`save`."""
        with np.load(path) as z:
            return cls(**{k: z[k] for k in z.files})

    @classmethod
    def from_lists(cls, qid, pids, scores, pos_pids, pos_scores) -> QueryCandidates:
        """From per-query lists of arrays (b lists each)."""

        def flat(parts, dtype):
            sizes = np.fromiter((len(p) for p in parts), np.int64, len(parts))
            values = np.concatenate(parts).astype(dtype) if parts else np.empty(0, dtype)
            return np.r_[0, np.cumsum(sizes)].astype(np.int64), values

        offsets, p = flat(pids, np.int64)
        _, s = flat(scores, np.float32)
        pos_offsets, pp = flat(pos_pids, np.int64)
        _, ps = flat(pos_scores, np.float32)
        return cls(np.asarray(qid, np.int64), offsets, p, s, pos_offsets, pp, ps)

    def slice(self, start: int, stop: int) -> QueryCandidates:
        """Queries ``start:stop`` (offsets rebased to 0)."""
        a, b = self.offsets[start], self.offsets[stop]
        c, d = self.pos_offsets[start], self.pos_offsets[stop]
        return QueryCandidates(
            self.qid[start:stop],
            self.offsets[start : stop + 1] - a,
            self.pids[a:b],
            self.scores[a:b],
            self.pos_offsets[start : stop + 1] - c,
            self.pos_pids[c:d],
            self.pos_scores[c:d],
        )


def concat(parts: list[QueryCandidates]) -> QueryCandidates:
    """Queries of ``parts``, in order, as one :class:`QueryCandidates`."""

    def offs(key: str) -> np.ndarray:
        sizes = np.concatenate([np.diff(getattr(p, key)) for p in parts]) if parts else np.empty(0, np.int64)
        return np.r_[0, np.cumsum(sizes)].astype(np.int64)

    def cat(key: str, dtype) -> np.ndarray:
        return np.concatenate([getattr(p, key) for p in parts]).astype(dtype) if parts else np.empty(0, dtype)

    return QueryCandidates(
        cat("qid", np.int64),
        offs("offsets"),
        cat("pids", np.int64),
        cat("scores", np.float32),
        offs("pos_offsets"),
        cat("pos_pids", np.int64),
        cat("pos_scores", np.float32),
    )


def _list_array(offsets: np.ndarray, values: np.ndarray, dtype: pa.DataType) -> pa.ListArray:
    return pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), pa.array(values, dtype))


def _to_table(c: QueryCandidates) -> pa.Table:
    return pa.table(
        [
            pa.array(c.qid, pa.int64()),
            _list_array(c.offsets, c.pids, pa.int64()),
            _list_array(c.offsets, c.scores, pa.float32()),
            _list_array(c.pos_offsets, c.pos_pids, pa.int64()),
            _list_array(c.pos_offsets, c.pos_scores, pa.float32()),
        ],
        schema=CANDIDATES_SCHEMA,
    )


class _Writer:
    def __init__(self, writer: pq.ParquetWriter, group: int):
        self.writer, self.group, self.pending = writer, group, []

    def write(self, cands: QueryCandidates) -> None:
        """Queue b queries (ascending qids, after those written so far); full row groups are written now."""
        self.pending.append(cands)
        buffered = concat(self.pending)
        full = len(buffered) // self.group * self.group
        for s in range(0, full, self.group):
            self.writer.write_table(_to_table(buffered.slice(s, s + self.group)), row_group_size=self.group)
        self.pending = [buffered.slice(full, len(buffered))] if full < len(buffered) else []

    def flush(self) -> None:
        rest = concat(self.pending)
        if len(rest):
            self.writer.write_table(_to_table(rest), row_group_size=self.group)
        self.pending = []


@contextlib.contextmanager
def candidate_writer(path: str | os.PathLike, row_group_queries: int = ROW_GROUP_QUERIES) -> Iterator[_Writer]:
    """Stream candidate lists into ``path`` (atomically: the file appears complete or not at all).

    Yields an object whose ``write(QueryCandidates)`` takes the queries in ascending qid order; rows are written
    in row groups of exactly ``row_group_queries`` queries (the last may be shorter), so the file depends only
    on its rows, not on how they were handed in.
    """
    with atomic_path(path) as tmp:
        with pq.ParquetWriter(tmp, CANDIDATES_SCHEMA, compression="zstd") as pw:
            w = _Writer(pw, row_group_queries)
            yield w
            w.flush()


def _from_table(t: pa.Table) -> QueryCandidates:
    def csr(name: str, dtype) -> tuple[np.ndarray, np.ndarray]:
        col = t[name].combine_chunks()
        lengths = pc.list_value_length(col).fill_null(0).to_numpy(zero_copy_only=False)
        values = pc.list_flatten(col).to_numpy(zero_copy_only=False).astype(dtype)
        return np.r_[0, np.cumsum(lengths)].astype(np.int64), values

    offsets, pids = csr("pids", np.int64)
    _, scores = csr("scores", np.float32)
    pos_offsets, pos_pids = csr("pos_pids", np.int64)
    _, pos_scores = csr("pos_scores", np.float32)
    if scores.size != pids.size or pos_scores.size != pos_pids.size:
        raise ValueError("candidate lists: every pid needs one score (pids/scores, pos_pids/pos_scores lengths)")
    return QueryCandidates(
        t["qid"].to_numpy().astype(np.int64), offsets, pids, scores, pos_offsets, pos_pids, pos_scores
    )


def _open(path: str | os.PathLike) -> pq.ParquetFile:
    """The candidates file, checked; a missing file or another kind of file names itself in the error."""
    try:
        pf = pq.ParquetFile(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: candidates file not found (rule mine_hard_negatives writes it)") from None
    except (pa.ArrowInvalid, OSError) as exc:
        raise ValueError(f"{path}: not a readable parquet file ({exc})") from None
    names = pf.schema_arrow.names
    if names != CANDIDATES_SCHEMA.names:
        raise ValueError(f"{path}: expected the columns {CANDIDATES_SCHEMA.names} of a candidates file, got {names}")
    return pf


def iter_candidate_groups(path: str | os.PathLike) -> Iterator[QueryCandidates]:
    """Each row group of a candidates file, in order."""
    pf = _open(path)
    for g in range(pf.num_row_groups):
        try:
            yield _from_table(pf.read_row_group(g))
        except ValueError as exc:
            raise ValueError(f"{path}: row group {g}: {exc}") from None


def n_queries(path: str | os.PathLike) -> int:
    """How many queries a candidates file holds (from its metadata)."""
    return _open(path).metadata.num_rows


def n_row_groups(path: str | os.PathLike) -> int:
    """How many row groups a candidates file has (from its metadata)."""
    return _open(path).metadata.num_row_groups
