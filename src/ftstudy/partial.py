"""Resumable state that survives a kill: one folder per job, keyed by what feeds its output.

Snakemake deletes the declared outputs of a failed job, so a job that can resume keeps its finished pieces
(encoded chunks, mined batches, training checkpoints) outside them, under ``results/.partial/{rule}/...``.
The pattern is the same everywhere:

1. :func:`open_partial` opens ``<root>/<key>``: ``key`` is a short hash of everything that changes the output
   (config slice, input signatures). A ``stamp`` (a JSON-able dict) is stored as ``key.json``; the folder's pieces
   are reused only when the stored stamp equals the new one, otherwise the folder is emptied first.
2. The job writes its pieces atomically into the folder (see :mod:`ftstudy.atomic`) and skips those present.
3. :func:`close_partial` deletes ``root`` on success, every key under it (older keys are stale once the output
   exists), and the parents that are left empty, up to ``results/.partial``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

from ftstudy.atomic import write_json

LOG = logging.getLogger(__name__)
STAMP = "key.json"


def _normalised(stamp: dict) -> dict:
    """``stamp`` as it reads back from JSON (tuples -> lists, keys sorted, non-JSON values as strings)."""
    return json.loads(json.dumps(stamp, sort_keys=True, default=str))


def open_partial(root: str | os.PathLike, key: str, stamp: dict | None = None) -> Path:
    """The folder ``root/key``, created if needed, holding only pieces made under the same ``stamp``.

    ``stamp`` (JSON-able) describes the inputs behind ``key`` in full; a folder whose stored stamp differs (or
    is missing or unreadable) is emptied, so pieces of different inputs are never mixed. Returns the folder.
    """
    folder = Path(root) / key
    stamp = _normalised(stamp or {"key": key})
    stamp_file = folder / STAMP
    if folder.exists():
        try:
            same = json.loads(stamp_file.read_text()) == stamp
        except (OSError, ValueError):
            same = False
        if same:
            n = sum(1 for p in folder.iterdir() if p.name != STAMP)
            if n:
                LOG.info("resuming from %s: %d finished pieces", folder, n)
            return folder
        LOG.info("partial state %s was made from other inputs; starting afresh", folder)
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_json(stamp_file, stamp)
    return folder


def close_partial(root: str | os.PathLike) -> None:
    """After success: delete ``root`` with every key under it (older keys are stale once the output exists), then
    each parent while it is empty, stopping below the ``.partial`` folder itself."""
    root = Path(root)
    shutil.rmtree(root, ignore_errors=True)
    parent = root.parent
    while parent.name not in (".partial", "") and parent != parent.parent:
        try:
            parent.rmdir()
        except OSError:
            break
        parent = parent.parent
