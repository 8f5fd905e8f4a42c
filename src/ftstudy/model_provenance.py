"""Which config made each model: its config slice and that slice's hash, the provenance columns of every table row.

Light on purpose (the config helpers and hashlib only; no NumPy, pandas or SciPy): ``workflow/rules/report.smk``
calls :func:`row_info` while Snakemake builds the DAG, on every dry run.
"""

from __future__ import annotations

from collections.abc import Mapping

from ftstudy.config import (
    encoding_slice,
    hybrid_models,
    model_ids,
    search_slice,
    trained_models,
    training_slice,
    wise_models,
)
from ftstudy.provenance import config_hash


def fusion_slice(config: Mapping, method: str) -> dict:
    """The fusion settings that change a ``hybrid_{method}_*`` run (rrf: k; wsum: the grid, folds, metric, seed)."""
    fusion = config["fusion"]
    keys = ("rrf_k",) if method == "rrf" else ("wsum_weights", "cv_folds", "cv_metric", "seed")
    return {"method": method, **{k: fusion[k] for k in keys}}


def model_slice(config: Mapping, model: str) -> dict:
    """The config slice that made a model: its training branch, the BM25 settings, the base model id, or (for an
    interpolated or fused model) its weight or fusion settings with the slices of the models it is made from."""
    if model in {m["model_id"] for m in trained_models(config)}:
        return training_slice(config, model)
    if model == "bm25":
        return {"bm25": config["bm25"]}
    wise = {m["model_id"]: m for m in wise_models(config)}
    if model in wise:
        return {"wise_ft": wise[model]["weight"], "source": model_slice(config, wise[model]["source"])}
    hybrid = {m["model_id"]: m for m in hybrid_models(config)}
    if model in hybrid:
        m = hybrid[model]
        return {
            "fusion": fusion_slice(config, m["method"]),
            "dense": model_slice(config, m["dense"]),
            "bm25": model_slice(config, "bm25"),
        }
    return {"base_model": config["base_model"]}


def row_info(config: Mapping) -> dict[str, dict]:
    """Per model id: ``config_hash`` (12 hex digits) of its slice plus the encoding and retrieval settings that
    change a run (no execution knob), and its ``seed`` (None for base and bm25). These are the provenance columns
    of every table row."""
    seeds = {m["model_id"]: m["seed"] for m in trained_models(config)}
    return {
        m: {
            "config_hash": config_hash(
                {"model": model_slice(config, m), "retrieval": search_slice(config), "encoding": encoding_slice(config)}
            ),
            "seed": seeds.get(m),
        }
        for m in model_ids(config)
    }
