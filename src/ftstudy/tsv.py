"""Strict, streaming readers for MS MARCO's TSV files.

MS MARCO files are tab-separated, UTF-8, without a header and without quoting: a passage may hold quotes and
damaged ("mojibake") characters, and both must come through byte for byte. So lines are read as bytes, split
only on ``\\n`` (never on the Unicode line separators that ``str.splitlines`` honours), and decoded one line at
a time. A trailing ``\\r`` (a CRLF file) is the only byte removed.

Every problem raises :class:`TSVError`, whose message names the file, the 1-based line number and what was
expected. Readers are generators: memory stays flat whatever the size of the file.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from tqdm import tqdm

INT8_RANGE = (-128, 127)
INT64_MAX = np.iinfo(np.int64).max  # ids are stored as int64 (DESIGN.md's contract)
ID_MAX_SAFE_DIGITS = len(str(INT64_MAX)) - 1  # an id with fewer digits always fits int64


class TSVError(ValueError):
    """Bad input: the message names the file, the line and what was expected."""

    def __init__(self, path: str | os.PathLike, line: int | None, message: str):
        self.path = str(path)
        self.line = line
        where = f"{self.path}, line {line}" if line is not None else self.path
        super().__init__(f"{where}: {message}")


def _progress(path: Path, desc: str | None, enabled: bool):
    """A tqdm bar over the file's bytes (into stderr, which the workflow sends to the rule's log)."""
    return tqdm(
        total=path.stat().st_size,
        unit="B",
        unit_scale=True,
        desc=desc or path.name,
        disable=not enabled,
        file=sys.stderr,
    )


def iter_lines(path: str | os.PathLike, desc: str | None = None, progress: bool = True) -> Iterator[tuple[int, bytes]]:
    """Yield ``(line_number, line)`` for every line of ``path``: bytes, without the ``\\n`` (and a final ``\\r``).

    Raises TSVError for an empty file. A missing final newline is accepted.
    """
    p = Path(path)
    if not p.is_file():
        raise TSVError(p, None, "file not found (expected an MS MARCO TSV file)")
    if p.stat().st_size == 0:
        raise TSVError(p, 1, "empty file (expected at least one line)")
    with open(p, "rb", buffering=1 << 20) as fh, _progress(p, desc, progress) as bar:
        done = 0
        lineno = 0
        for lineno, raw in enumerate(fh, start=1):
            done += len(raw)
            if lineno % 65536 == 0:
                bar.update(done)
                done = 0
            line = raw[:-1] if raw.endswith(b"\n") else raw
            if line.endswith(b"\r"):
                line = line[:-1]
            yield lineno, line
        bar.update(done)


def decode(line: bytes, path: str | os.PathLike, lineno: int) -> str:
    """Decode one line as strict UTF-8; the error names the byte offset."""
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TSVError(
            path,
            lineno,
            f"invalid UTF-8 at byte {exc.start} ({line[exc.start : exc.start + 4]!r}); expected UTF-8 text",
        ) from None


def parse_id(field: str | bytes, path: str | os.PathLike, lineno: int, name: str) -> int:
    """A non-negative decimal integer id within int64 (digits only: no sign, spaces or underscores)."""
    shown = field.decode("utf-8", "replace") if isinstance(field, bytes) else field
    if not field or not field.isdigit() or not field.isascii():
        raise TSVError(path, lineno, f"{name} {shown[:40]!r} is not an integer (expected a non-negative integer id)")
    value = int(field)
    if value > INT64_MAX:
        raise TSVError(
            path,
            lineno,
            f"{name} {shown[:40]!r} is above int64's maximum {INT64_MAX} (expected an integer id within int64)",
        )
    return value


def split_fields(text: str, n: int, path: str | os.PathLike, lineno: int, expected: str) -> list[str]:
    """Split a decoded line on tabs; exactly ``n`` fields, none of them empty or blank."""
    fields = text.split("\t")
    if len(fields) != n:
        raise TSVError(path, lineno, f"{len(fields)} tab-separated fields; expected {n} ({expected})")
    for i, f in enumerate(fields):
        if not f or f.isspace():
            raise TSVError(path, lineno, f"field {i + 1} is empty; expected {expected} with non-empty text")
    return fields


def iter_id_text(
    path: str | os.PathLike, id_name: str = "pid", progress: bool = True
) -> Iterator[tuple[int, int, str]]:
    """Yield ``(line_number, id, text)`` from a two-column ``id<TAB>text`` file (collection or queries).

    The text is returned exactly as in the file (no stripping, no repair). Duplicate ids are the caller's
    check (see :class:`IdSet`).
    """
    expected = f"{id_name}<TAB>text"
    for lineno, line in iter_lines(path, progress=progress):
        fields = split_fields(decode(line, path, lineno), 2, path, lineno, expected)
        yield lineno, parse_id(fields[0], path, lineno, id_name), fields[1]


def parse_triple(line: bytes, path: str | os.PathLike, lineno: int) -> tuple[str, str, str]:
    """One line of triples.train.small.tsv: ``query<TAB>positive<TAB>negative``, all non-empty."""
    q, p, n = split_fields(decode(line, path, lineno), 3, path, lineno, "query<TAB>positive<TAB>negative")
    return q, p, n


def iter_triples(path: str | os.PathLike, progress: bool = True) -> Iterator[tuple[int, str, str, str]]:
    """Yield ``(line_number, query, positive, negative)``, validating every line."""
    for lineno, line in iter_lines(path, progress=progress):
        yield (lineno, *parse_triple(line, path, lineno))


def iter_qrels(path: str | os.PathLike, progress: bool = False) -> Iterator[tuple[int, int, int, int]]:
    """Yield ``(line_number, qid, pid, relevance)`` from a TREC qrels file ``qid iter pid relevance``.

    Fields are separated by tabs or spaces (any run of them). Relevance is a graded integer that fits int8
    (0-3 in TREC Deep Learning, 1 in MS MARCO's own qrels).
    """
    expected = "4 fields 'qid 0 pid relevance' separated by tabs or spaces"
    for lineno, line in iter_lines(path, progress=progress):
        fields = decode(line, path, lineno).split()
        if len(fields) != 4:
            raise TSVError(path, lineno, f"{len(fields)} fields; expected {expected}")
        qid = parse_id(fields[0], path, lineno, "qid")
        pid = parse_id(fields[2], path, lineno, "pid")
        rel_s = fields[3]
        body = rel_s[1:] if rel_s[:1] in ("-", "+") else rel_s
        if not body.isdigit() or not body.isascii():
            raise TSVError(
                path, lineno, f"relevance {rel_s[:40]!r} is not an integer (expected a graded label, e.g. 0-3)"
            )
        rel = int(rel_s)
        if not INT8_RANGE[0] <= rel <= INT8_RANGE[1]:
            raise TSVError(path, lineno, f"relevance {rel} is out of range (expected {INT8_RANGE[0]}..{INT8_RANGE[1]})")
        yield lineno, qid, pid, rel


class IdSet:
    """Membership of non-negative integer ids; memory grows with the largest id, not with the row count.

    A dense boolean array (one byte per possible id: MS MARCO's 8.8M pids take 8.8 MB) with a set for ids at or
    beyond ``dense_limit``. Ids are added a batch at a time (vectorised).
    """

    def __init__(self, dense_limit: int = 1 << 28):
        self._seen = np.zeros(0, dtype=bool)
        self._limit = dense_limit
        self._big: set[int] = set()

    def add_many(self, ids) -> int:
        """Add ``ids``; return the position of the first id that was already present (earlier in the set or
        earlier in ``ids``), or -1 if all are new. After a duplicate the set's state is unspecified."""
        ids = np.asarray(ids, dtype=np.int64)
        if ids.size == 0:
            return -1
        order = np.argsort(ids, kind="stable")
        srt = ids[order]
        dup_pos = order[1:][srt[1:] == srt[:-1]]
        first = int(dup_pos.min()) if dup_pos.size else -1
        dense = ids < self._limit
        d = ids[dense]
        if d.size:
            need = int(d.max()) + 1
            if need > self._seen.size:
                grown = np.zeros(max(need, 2 * self._seen.size), dtype=bool)
                grown[: self._seen.size] = self._seen
                self._seen = grown
            hit = np.flatnonzero(dense)[self._seen[d]]
            if hit.size:
                first = int(hit[0]) if first < 0 else min(first, int(hit[0]))
            self._seen[d] = True
        for pos in np.flatnonzero(~dense):
            i = int(ids[pos])
            if i in self._big:
                first = int(pos) if first < 0 else min(first, int(pos))
            self._big.add(i)
        return first

    def add(self, i: int) -> bool:
        """Add one id; False if it was already present."""
        return self.add_many([i]) < 0
