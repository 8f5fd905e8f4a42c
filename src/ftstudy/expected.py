"""Expected values: each full-scale result beside a published reference, marked matching, off or n/a.

Pyserini's reproduction matrix puts every number beside the value it should reproduce. The config key
``expected_values`` (``config/msmarco.yaml``) lists references, each for one (model, eval set): the published
metric values, where they come from, and what identifies the setting they were measured in (the model's weights
sha256, or BM25's k1/b, and the collection). :func:`mark` compares a result with its reference:

- ``matching``: the setting is the reference's and ``|value - expected| <= tolerance`` (default 0.002);
- ``off``: the setting is the reference's and the value is further away;
- ``n/a``: the setting is not the reference's (other weights, as in a stand-in run; other BM25 settings; another
  collection), so the comparison says nothing.

The collection's identity (:class:`CollectionFacts`) is what the data stage records in the prepared collection's
parquet metadata: its passage count, the sha256 of its ``collection.tsv``, and whether the dataset folder holds a
generator's manifest (:data:`GENERATED_MANIFEST`, which ``ftstudy.scale_dataset`` writes).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

MATCHING, OFF, NA = "matching", "off", "n/a"
#: The file a data generator writes into the dataset folder it fills; its presence marks a collection as generated.
GENERATED_MANIFEST = "scale_manifest.json"


@dataclass(frozen=True)
class CollectionFacts:
    """What identifies a prepared collection: ``n_passages`` (count), ``sha256`` (of its TSV; None = unknown) and
    ``generated`` (a generator's manifest sat beside the TSV)."""

    n_passages: int
    sha256: str | None = None
    generated: bool = False


@dataclass(frozen=True)
class Setting:
    """What a result was measured in: the model's weights sha256 (dense models; None for bm25), the BM25 settings
    (bm25 only) and the collection."""

    collection: CollectionFacts
    model_sha256: str | None = None
    bm25: Mapping[str, float] | None = None


def setting_mismatch(reference: Mapping, setting: Setting) -> str | None:
    """Why ``setting`` is not the reference's (a short reason), or None when it is.

    ``reference``: one entry of ``expected_values.references`` (schema defaults applied)."""
    want = reference["collection"]
    got = setting.collection
    if got.generated:
        return "generated collection"
    if int(want["n_passages"]) != got.n_passages:
        return f"collection has {got.n_passages} passages, the reference {want['n_passages']}"
    if want.get("sha256") and want["sha256"] != got.sha256:
        return "collection sha256 differs"
    if reference.get("model_sha256") and reference["model_sha256"] != setting.model_sha256:
        return "model weights differ"
    for key, value in (reference.get("bm25") or {}).items():
        mine = (setting.bm25 or {}).get(key)
        if mine is None or not math.isclose(float(mine), float(value), abs_tol=1e-12):
            return f"bm25 {key}={mine}, the reference {value}"
    return None


def mark(value: float, expected: float, tolerance: float, mismatch: str | None) -> str:
    """``n/a`` when the setting differs (``mismatch`` is a reason), else ``matching`` when ``|value - expected| <=
    tolerance`` (metric units, e.g. 0.002 of MRR@10; a tiny float slack keeps exact-boundary values matching),
    else ``off``. A NaN value is ``off``."""
    if mismatch is not None:
        return NA
    if not math.isfinite(value):
        return OFF
    return MATCHING if abs(value - expected) <= tolerance + 1e-12 else OFF


def find_reference(references: Sequence[Mapping], model: str, eval_set: str) -> Mapping | None:
    """The reference for (model, eval_set), or None."""
    for ref in references:
        if ref["model"] == model and ref["eval_set"] == eval_set:
            return ref
    return None


def expected_columns(
    model: str, eval_set: str, values: Mapping[str, float], expected_values: Mapping, setting: Setting | None
) -> dict:
    """Table I's expected-value columns for one row: ``expected_{metric}`` and ``mark_{metric}`` for each metric
    the reference has, ``expected_source``, and ``expected_note`` (why n/a). Empty when there is no reference."""
    ref = find_reference(expected_values.get("references", []), model, eval_set)
    if ref is None:
        return {}
    if setting is None:
        mismatch = "setting unknown"
    else:
        mismatch = setting_mismatch(ref, setting)
    tol = float(expected_values.get("tolerance", 0.002))
    row: dict = {}
    for metric, want in ref["metrics"].items():
        row[f"expected_{metric}"] = float(want)
        row[f"mark_{metric}"] = mark(float(values.get(metric, math.nan)), float(want), tol, mismatch)
    row["expected_source"] = ref["source"]
    row["expected_note"] = mismatch or ""
    return row


def collection_facts(parquet) -> CollectionFacts:
    """The identity of a prepared collection parquet (:func:`ftstudy.prepare.prepare_collection`): its row count
    and the source TSV's sha256 and generated flag from its metadata (None / False for a file written before they
    were recorded). Reads the footer only."""
    import pyarrow.parquet as pq

    from ftstudy.parquet_meta import read_provenance

    info = read_provenance(parquet)
    return CollectionFacts(
        n_passages=int(pq.ParquetFile(parquet).metadata.num_rows),
        sha256=info.get("source_sha256"),
        generated=bool(info.get("generated", False)),
    )
