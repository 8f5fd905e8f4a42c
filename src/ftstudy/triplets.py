"""A seeded, streaming sample of ``triples.train.small.tsv`` (the "random negatives" training set).

The official file has 39.8M lines (27 GB). It is read once, line by line; every line is validated (three
non-empty tab-separated UTF-8 fields) and a reservoir (Li's Algorithm L) keeps a uniform sample of ``n`` raw
lines. Memory grows with ``n`` (the reservoir holds bytes), never with the file. The sample is written in
file order, in row groups, atomically. Where ``n`` is at least the number of lines, every line is taken.
"""

from __future__ import annotations

import logging
import math
import os
import random
from collections.abc import Callable, Iterable
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from .atomic import atomic_path
from .parquet_meta import with_provenance
from .tsv import TSVError, iter_lines, parse_triple

log = logging.getLogger(__name__)

TRIPLETS_SCHEMA = pa.schema([("query", pa.string()), ("positive", pa.string()), ("negative", pa.string())])


def _uniform(rng: random.Random) -> float:
    """A uniform draw in the open interval (0, 1) (logs of it stay finite)."""
    while True:
        u = rng.random()
        if u > 0.0:
            return u


def reservoir_sample(items: Iterable[Any], k: int, rng: random.Random) -> tuple[list[tuple[int, Any]], int]:
    """Uniform sample without replacement of ``k`` items from a stream of unknown length (Algorithm L).

    Returns ``([(index, item), ...] in stream order, number of items seen)``. Random draws happen only at the
    ``O(k log(N/k))`` replacement points, so skipping lines costs no random numbers.
    """
    if k < 1:
        raise ValueError(f"sample size must be >= 1, got {k}")
    reservoir: list[tuple[int, Any]] = []
    w = math.exp(math.log(_uniform(rng)) / k)
    next_i = k + math.floor(math.log(_uniform(rng)) / math.log1p(-w))
    n = 0
    for i, item in enumerate(items):
        n = i + 1
        if i < k:
            reservoir.append((i, item))
        elif i == next_i:
            reservoir[rng.randrange(k)] = (i, item)
            w *= math.exp(math.log(_uniform(rng)) / k)
            next_i += math.floor(math.log(_uniform(rng)) / math.log1p(-w)) + 1
    reservoir.sort(key=lambda t: t[0])
    return reservoir, n


def _validated_lines(path: str | os.PathLike, progress: bool):
    """Every line of the triples file as raw bytes, after checking that it parses."""
    for lineno, line in iter_lines(path, progress=progress):
        parse_triple(line, path, lineno)
        yield line


def sample_triplets(
    tsv: str | os.PathLike,
    out: str | os.PathLike,
    n: int,
    seed: int,
    row_group_size: int = 50_000,
    progress: bool = True,
    warn: Callable[[str], None] | None = None,
) -> dict:
    """Write a seeded uniform sample of ``n`` lines of ``tsv`` to ``out`` (query, positive, negative).

    Where the file has no more than ``n`` lines every line is taken, and that is warned through ``warn``
    (default ``log.warning``; the workflow's script also prints it on the terminal). Returns
    ``{"n_requested", "n_lines", "n_sampled", "took_all", "seed", "source"}``; ``out`` records the same dict as
    its provenance (:func:`ftstudy.parquet_meta.read_provenance`). Text is kept byte for byte.
    """
    rng = random.Random(seed)
    sample, n_lines = reservoir_sample(_validated_lines(tsv, progress), n, rng)
    took_all = n >= n_lines
    if took_all:
        (warn or log.warning)(
            f"{tsv} has {n_lines} lines, not more than the {n} requested (triplets.random.n): "
            f"taking every line, so training sees {n_lines} triplets"
        )
    else:
        log.info("%s: sampled %d of %d lines (seed %d)", tsv, len(sample), n_lines, seed)
    stats = {
        "n_requested": n,
        "n_lines": n_lines,
        "n_sampled": len(sample),
        "took_all": took_all,
        "seed": seed,
        "source": str(tsv),
    }
    with atomic_path(out) as tmp, pq.ParquetWriter(tmp, with_provenance(TRIPLETS_SCHEMA, stats)) as writer:
        for start in range(0, len(sample), row_group_size):
            cols: tuple[list[str], list[str], list[str]] = ([], [], [])
            for idx, line in sample[start : start + row_group_size]:
                try:
                    fields = line.decode("utf-8").split("\t")
                except UnicodeDecodeError as exc:  # validated above; kept for safety
                    raise TSVError(tsv, idx + 1, "invalid UTF-8") from exc
                for col, f in zip(cols, fields, strict=True):
                    col.append(f)
            writer.write_table(pa.table(list(cols), schema=writer.schema))
    return stats
