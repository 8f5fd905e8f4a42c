"""Shards: one encoding or mining job split into N jobs (``encoding.shards``, ``mining.shards``), one GPU each.

A sharded step keeps the resumable layout of the unsharded one (:mod:`ftstudy.partial`): shard ``i`` of ``n``
computes a contiguous block of the step's pieces (encoded chunks, mined query batches) and writes them into the
*same* partial folder that the step's own job reads, under the same key. The step's job (rule ``encode_corpus``,
``mine_hard_negatives``) then finds every piece done and only assembles its outputs, so they are the bytes that
one job would write. A piece that no shard made (a shard that was never run) is computed by the step's job itself.

- :func:`shard_range`: which pieces shard ``i`` of ``n`` computes (contiguous, balanced, in order);
- :func:`open_shared_partial`: the partial folder, opened by several live jobs at once without a race;
- :func:`write_gathered`: the record of every shard that the gather checkpoint writes;
- :func:`build_is_sharded`: whether the workflow shards a build (the rule files' input functions ask it).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

from ftstudy.atomic import write_json
from ftstudy.partial import STAMP


def shard_range(n_pieces: int, n_shards: int, shard: int) -> range:
    """The pieces ``[floor(shard * P / N), floor((shard + 1) * P / N))`` of ``n_pieces`` P split into
    ``n_shards`` N: contiguous, in order, sizes differing by at most one, together exactly ``range(P)``. A shard
    gets no piece where N > P."""
    if n_shards < 1:
        raise ValueError(f"shards must be >= 1, got {n_shards}")
    if not 0 <= shard < n_shards:
        raise ValueError(f"shard {shard} is not in [0, {n_shards})")
    if n_pieces < 0:
        raise ValueError(f"n_pieces must be >= 0, got {n_pieces}")
    return range(shard * n_pieces // n_shards, (shard + 1) * n_pieces // n_shards)


def _normalised(stamp: dict) -> dict:
    return json.loads(json.dumps(stamp, sort_keys=True, default=str))


def open_shared_partial(root: str | os.PathLike, key: str, stamp: dict) -> Path:
    """The folder ``root/key`` for a shard job, which may run beside the other shards of the same step.

    Unlike :func:`ftstudy.partial.open_partial` it never empties the folder (another live shard may be writing
    into it): ``key`` must already cover everything in ``stamp``, so a folder with another stamp is an error.
    Concurrent callers write the same stamp atomically. Returns the folder.
    """
    folder = Path(root) / key
    folder.mkdir(parents=True, exist_ok=True)
    want = _normalised(stamp)
    stamp_file = folder / STAMP
    if stamp_file.exists():
        got = json.loads(stamp_file.read_text())
        if got != want:
            raise ValueError(
                f"{stamp_file}: partial state made with other settings ({got}); expected {want}. "
                "Its key should have differed: delete the folder and rerun."
            )
    else:
        write_json(stamp_file, want)
    return folder


def write_gathered(out: str | os.PathLike, shard_files: Sequence[str | os.PathLike]) -> dict:
    """Write the records of every shard (the JSON files the shard jobs wrote, in shard order) as one JSON
    ``{"n_shards": N, "shards": [record, ...]}`` to ``out``; returns it."""
    records = [json.loads(Path(p).read_text()) for p in shard_files]
    gathered = {"n_shards": len(records), "shards": records}
    write_json(out, gathered)
    return gathered


def build_is_sharded(n_shards: int, outputs: Sequence[str | os.PathLike]) -> bool:
    """Whether the workflow builds a step in ``n_shards`` shard jobs: more than one shard and one of the step's
    ``outputs`` is missing.

    Only a missing output: the step waits for its shards through a checkpoint, and Snakemake does not check the
    params and inputs of a job that waits for a checkpoint not yet run, so an output that exists (up to date or
    not) must keep its plain inputs. One that is out of date is rebuilt by the step's own job, which computes
    every missing piece itself; an up-to-date one is never rebuilt because of its shard count.
    """
    return n_shards > 1 and not all(Path(p).exists() for p in outputs)
