"""Provenance stored inside a parquet file: one JSON object under one key of the file's schema metadata.

The data stage's outputs keep their contract paths and columns; what made them (the counts a user should see:
qrels naming passages missing from the collection, a triplet sample smaller than asked for) travels in the
file itself, readable with ``pyarrow.parquet.read_schema(path).metadata`` or :func:`read_provenance`.
"""

from __future__ import annotations

import json
import os

import pyarrow as pa
import pyarrow.parquet as pq

PROVENANCE_KEY = b"ftstudy.provenance"


def with_provenance(schema: pa.Schema, info: dict) -> pa.Schema:
    """``schema`` with ``info`` (JSON-serialisable; keys sorted, so equal info gives equal bytes) added to its
    metadata under :data:`PROVENANCE_KEY`; other metadata is kept."""
    meta = dict(schema.metadata or {})
    meta[PROVENANCE_KEY] = json.dumps(info, sort_keys=True).encode("utf-8")
    return schema.with_metadata(meta)


def read_provenance(path: str | os.PathLike) -> dict:
    """The provenance dict of a parquet file written with :func:`with_provenance` (``{}`` where there is none).

    Reads only the file's footer, not its data."""
    meta = pq.read_schema(path).metadata or {}
    raw = meta.get(PROVENANCE_KEY)
    return json.loads(raw) if raw else {}
