"""The study's tables (paper's Tables I-III, with more columns), built from the files other stages write.

Every table is written as CSV (full precision, every column) and Markdown (``pandas.DataFrame.to_markdown``: only
the columns a reader compares, plus one footnote line that summarises the provenance). Every CSV row carries its
provenance: ``config_hash`` (of the config slice that made it), ``seed``, ``versions`` and ``model_hash``
(sha256 of the model's weights, 12 hex digits). Trained models with several seeds (ids ``{variant}_seed{N}``)
are grouped by variant: numbers are the mean across seeds, ``*_sd`` columns the standard deviation (ddof=1),
``n_seeds`` the count; provenance columns list each seed's value, separated by ``;``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from ftstudy import paper
from ftstudy.atomic import atomic_path, write_text
from ftstudy.expected import Setting, expected_columns
from ftstudy.metrics import METRIC_NAMES
from ftstudy.significance import canonical_measure

PROVENANCE_COLUMNS = ["config_hash", "seed", "versions", "model_hash"]
VERSION_KEYS = ("torch", "sentence-transformers", "transformers", "peft", "faiss-cpu", "faiss-gpu", "bm25s",
                "ir-measures", "ranx")  # fmt: skip


# ---- reading -----------------------------------------------------------------------------------------------
def read_json(path, required: tuple[str, ...] = ()) -> dict:
    """A JSON object from ``path``; ValueError naming the file and the missing keys."""
    try:
        obj = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(obj).__name__}")
    missing = [k for k in required if k not in obj]
    if missing:
        raise ValueError(f"{path}: missing key(s) {missing}")
    return obj


def read_metrics(path) -> dict:
    """A metrics JSON with its measure names made canonical (``RR@10`` -> ``MRR@10``)."""
    obj = read_json(path, ("metrics",))
    obj["metrics"] = {canonical_measure(k): float(v) for k, v in obj["metrics"].items()}
    return obj


def compact_versions(versions: Mapping | None) -> str:
    """``torch=2.13.0 sentence-transformers=6.2.0 ...`` for the packages that change numbers."""
    if not isinstance(versions, Mapping):
        return ""
    return " ".join(f"{k}={versions[k]}" for k in VERSION_KEYS if k in versions)


def _find(obj: Mapping, *keys):
    """First of ``keys`` present in ``obj`` or in ``obj['provenance']``."""
    for src in (obj, obj.get("provenance") if isinstance(obj.get("provenance"), Mapping) else {}):
        for k in keys:
            if k in src and src[k] is not None:
                return src[k]
    return None


def provenance_row(model: str, source: Mapping, info: Mapping) -> dict:
    """Provenance columns of one model's row. ``info``: model -> {config_hash, seed, model_hash} from the rule;
    the source file's own provenance (``versions``, ``config_hash``, ``model_sha256``) fills what it lacks."""
    mine = info.get(model, {})
    model_hash = mine.get("model_hash") or _find(source, "model_sha256", "model_hash", "weights_sha256") or ""
    return {
        "config_hash": mine.get("config_hash") or _find(source, "config_hash") or "",
        "seed": mine.get("seed"),
        "versions": compact_versions(_find(source, "versions")),
        "model_hash": str(model_hash)[:12],
    }


# ---- grouping by variant ---------------------------------------------------------------------------------------
def group_of(model: str, trained: Mapping[str, Mapping]) -> str:
    """The row a model id belongs to: its variant for trained models, the id itself otherwise."""
    return trained[model]["variant"] if model in trained else model


def join_values(values) -> str:
    """The distinct non-missing values (floats that are integers printed as integers) joined with ``;``."""
    vals = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v)) and v != ""]
    vals = [int(v) if isinstance(v, float) and v.is_integer() else v for v in vals]
    return ";".join(dict.fromkeys(str(v) for v in vals))


def aggregate_seeds(df: pd.DataFrame, keys: list[str], numeric: list[str], sd_for: list[str]) -> pd.DataFrame:
    """Collapse rows that share ``keys`` (a variant's seeds): mean of ``numeric``, ``<col>_sd`` for ``sd_for``
    (only when some group has more than one seed), ``n_seeds``, other columns joined with ``;``."""
    if df.empty:
        return df
    out = []
    multi = df.groupby(keys, sort=False).size().max() > 1
    for _, g in df.groupby(keys, sort=False):
        row = {k: g[k].iloc[0] for k in keys}
        row["n_seeds"] = len(g)
        for col in df.columns:
            if col in keys:
                continue
            if col in numeric:
                vals = pd.to_numeric(g[col], errors="coerce")
                row[col] = float(vals.mean()) if vals.notna().any() else np.nan
                if multi and col in sd_for:
                    row[f"{col}_sd"] = float(vals.std(ddof=1)) if vals.notna().sum() > 1 else np.nan
            else:
                row[col] = join_values(g[col])
        out.append(row)
    return pd.DataFrame(out)


def _order(df: pd.DataFrame, first: list[str]) -> pd.DataFrame:
    cols = [c for c in first if c in df.columns]
    sds = [c for c in df.columns if c.endswith("_sd") and c not in cols]
    rest = [c for c in df.columns if c not in cols and c not in sds and c not in PROVENANCE_COLUMNS]
    return df[cols + sds + rest + [c for c in PROVENANCE_COLUMNS if c in df.columns]]


def pct_change(value: float, reference: float) -> float:
    """100 * (value - reference) / reference; NaN when the reference is 0 or missing."""
    if reference is None or not np.isfinite(reference) or reference == 0 or value is None:
        return float("nan")
    return 100.0 * (value - reference) / reference


# ---- Table I ---------------------------------------------------------------------------------------------------
def mrr_table(
    metrics_files: Mapping[tuple[str, str], str | Path],
    trained: Mapping[str, Mapping],
    info: Mapping[str, Mapping],
    significance: pd.DataFrame | None = None,
    reference: str = "base",
    expected_values: Mapping | None = None,
    settings: Mapping[tuple[str, str], Setting] | None = None,
) -> pd.DataFrame:
    """Table I: one row per model (variant, seeds averaged) per eval set.

    ``metrics_files``: (model, eval_set) -> metrics JSON. ``significance``: the significance table; its MRR@10
    rows give ``p_vs_base_holm`` (randomisation test, Holm-adjusted; with several seeds the largest p, so the
    marker needs every seed to differ) and ``sig_vs_base``. ``expected_values`` (the config key) and ``settings``
    ((model, eval_set) -> :class:`ftstudy.expected.Setting`) add the ``expected_*`` / ``mark_*`` columns of each
    row that has a reference (:func:`ftstudy.expected.expected_columns`).
    """
    rows = []
    for (model, eval_set), path in metrics_files.items():
        obj = read_metrics(path)
        row = {"model": group_of(model, trained), "eval_set": eval_set, "n_queries": obj.get("n_queries")}
        row |= {m: obj["metrics"].get(m, np.nan) for m in METRIC_NAMES}
        if significance is not None and model != reference and not significance.empty:
            hit = significance[
                (significance["model"] == model)
                & (significance["eval_set"] == eval_set)
                & (significance["measure"] == "MRR@10")
            ]
            if len(hit):
                row["p_vs_base_holm"] = float(hit["p_randomisation_holm"].iloc[0])
                row["p_ttest_vs_base_holm"] = float(hit["p_ttest_holm"].iloc[0])
                row["_sig"] = bool(hit["significant"].iloc[0])
        row |= provenance_row(model, obj, info)
        rows.append(row)
    per_model = pd.DataFrame(rows)
    df = aggregate_seeds(
        per_model.drop(columns=[c for c in ("p_vs_base_holm", "p_ttest_vs_base_holm", "_sig") if c in per_model]),
        ["model", "eval_set"],
        ["n_queries", *METRIC_NAMES],
        list(METRIC_NAMES),
    )
    if "_sig" in per_model:
        # With several seeds: the largest p across seeds, and significant only if every seed is.
        g = per_model.groupby(["model", "eval_set"], sort=False)
        worst = g[["p_vs_base_holm", "p_ttest_vs_base_holm"]].max()
        all_sig = g["_sig"].agg(lambda s: None if s.isna().all() else bool(s.notna().all() and s.astype(bool).all()))
        keys = list(zip(df["model"], df["eval_set"], strict=True))
        for col in worst.columns:
            df[col] = [worst[col].get(k, np.nan) for k in keys]
        df["sig_vs_base"] = ["" if all_sig.get(k) is None else ("*" if all_sig.get(k) else "n.s.") for k in keys]
    base = df[df["model"] == reference].set_index("eval_set")["MRR@10"]
    df["MRR@10_pct_vs_base"] = [
        pct_change(v, base.get(e, np.nan)) for v, e in zip(df["MRR@10"], df["eval_set"], strict=True)
    ]
    for key in ("MRR@10", "MRR@100"):
        df[f"paper_{key}"] = [
            paper.paper_value(paper.TABLE_I, m, key, e) for m, e in zip(df["model"], df["eval_set"], strict=True)
        ]
    if expected_values and expected_values.get("references"):
        marks = [
            expected_columns(m, e, row, expected_values, (settings or {}).get((m, e)))
            for m, e, row in zip(df["model"], df["eval_set"], df.to_dict("records"), strict=True)
        ]
        extra = pd.DataFrame(marks, index=df.index)
        df = pd.concat([df, extra[[c for c in extra.columns if c not in df.columns]]], axis=1)
    df = _order(
        df,
        ["model", "eval_set", "n_seeds", "n_queries", *METRIC_NAMES, "MRR@10_pct_vs_base", "p_vs_base_holm",
         "p_ttest_vs_base_holm", "sig_vs_base", "paper_MRR@10", "paper_MRR@100"],
    )  # fmt: skip
    return df.sort_values(["eval_set"], kind="stable").reset_index(drop=True)


# ---- Table II --------------------------------------------------------------------------------------------------
TIMING_KEYS = ("n_queries", "seconds", "qps")


def inference_table(
    timing_files: Mapping[tuple[str, str], str | Path],
    trained: Mapping[str, Mapping],
    info: Mapping[str, Mapping],
    reference: str = "base",
) -> pd.DataFrame:
    """Table II: timed queries, seconds, QPS, seconds per 10,000 queries, % change against base (merged weights).

    ``timing_files``: (model, weights) -> timing JSON, weights ``merged`` (``{model}.json``: a neural model as
    saved, LoRA merged), ``unmerged`` (``{model}.unmerged.json``, LoRA only) or ``none`` (bm25; not "n/a",
    which pandas reads back as NaN).
    """
    rows = []
    for (model, weights), path in timing_files.items():
        obj = read_json(path, TIMING_KEYS)
        row = {
            "model": group_of(model, trained),
            "weights": weights,
            "n_queries": int(obj["n_queries"]),
            "seconds": float(obj["seconds"]),
            "qps": float(obj["qps"]),
            "seconds_per_10k": float(obj["seconds"]) * paper.PAPER_TIMED_QUERIES / int(obj["n_queries"]),
            "device": obj.get("device", ""),
            "backend": obj.get("backend", ""),
            "dtype": obj.get("dtype", ""),
        }
        row |= provenance_row(model, obj, info)
        rows.append(row)
    df = aggregate_seeds(
        pd.DataFrame(rows),
        ["model", "weights"],
        ["n_queries", "seconds", "qps", "seconds_per_10k"],
        ["seconds", "qps"],
    )
    base = df[(df["model"] == reference) & (df["weights"] == "merged")]
    b_sec = float(base["seconds"].iloc[0]) if len(base) else np.nan
    b_qps = float(base["qps"].iloc[0]) if len(base) else np.nan
    df["seconds_pct_vs_base"] = [pct_change(v, b_sec) for v in df["seconds"]]
    df["qps_pct_vs_base"] = [pct_change(v, b_qps) for v in df["qps"]]
    df["paper_seconds"] = [paper.paper_value(paper.TABLE_II, m, "seconds") for m in df["model"]]
    df["paper_qps"] = [paper.paper_value(paper.TABLE_II, m, "qps") for m in df["model"]]
    return _order(
        df,
        ["model", "weights", "n_seeds", "n_queries", "seconds", "qps", "seconds_per_10k", "seconds_pct_vs_base",
         "qps_pct_vs_base", "paper_seconds", "paper_qps", "device", "backend", "dtype"],
    ).reset_index(drop=True)  # fmt: skip


# ---- Table III -------------------------------------------------------------------------------------------------
TRAIN_KEYS = ("final_train_loss", "eval_cosine_accuracy", "trainable_fraction", "triplets_per_s", "wall_time_s")


def training_table(
    summary_files: Mapping[str, str | Path], trained: Mapping[str, Mapping], info: Mapping[str, Mapping]
) -> pd.DataFrame:
    """Table III: final training loss, held-out triplet cosine accuracy, trainable fraction, triplets/s, wall time.

    ``summary_files``: trained model id -> train_summary.json. The loss column is only comparable with the
    paper's where the variant's ``loss`` matches what the paper ran (see docs/report.md).
    """
    rows = []
    for model, path in summary_files.items():
        obj = read_json(path, TRAIN_KEYS)
        cfg = obj.get("config") if isinstance(obj.get("config"), Mapping) else {}
        variant_cfg = cfg.get("variant", cfg) if isinstance(cfg, Mapping) else {}
        row = {
            "model": group_of(model, trained),
            "method": variant_cfg.get("method", ""),
            "negatives": variant_cfg.get("negatives", ""),
            "loss": variant_cfg.get("loss", ""),
        }
        row |= {k: float(obj[k]) for k in TRAIN_KEYS}
        row["trainable_params"] = obj.get("trainable_params")
        row["device"] = obj.get("device", "")
        row["dtype"] = obj.get("dtype", "")
        row |= provenance_row(model, obj, info)
        if not row["config_hash"] and cfg:
            from ftstudy.provenance import config_hash

            row["config_hash"] = config_hash(cfg)
        rows.append(row)
    df = aggregate_seeds(pd.DataFrame(rows), ["model"], [*TRAIN_KEYS, "trainable_params"], list(TRAIN_KEYS))
    for key in ("final_train_loss", "eval_cosine_accuracy", "trainable_fraction"):
        df[f"paper_{key}"] = [paper.paper_value(paper.TABLE_III, m, key) for m in df["model"]]
    return _order(
        df,
        ["model", "n_seeds", "method", "negatives", "loss", *TRAIN_KEYS, "trainable_params",
         "paper_final_train_loss", "paper_eval_cosine_accuracy", "paper_trainable_fraction"],
    ).reset_index(drop=True)  # fmt: skip


# ---- writing ---------------------------------------------------------------------------------------------------
# What the Markdown leaves out (the CSV keeps every column): provenance and run context, summarised in one
# footnote line, and the secondary tests, named there. The Markdown shows what a reader compares: the model, the
# metrics, the change against base, the (Holm-adjusted randomisation-test) p and the paper's value.
CONTEXT_COLUMNS = ("n_queries", "n_pairs", "dim", "device", "backend", "dtype")
SECONDARY_COLUMNS = ("p_randomisation", "p_ttest", "p_ttest_holm", "p_ttest_vs_base_holm", "significant",
                     "expected_source")  # fmt: skip
MARKDOWN_HIDDEN = (*PROVENANCE_COLUMNS, *CONTEXT_COLUMNS, *SECONDARY_COLUMNS)


def _distinct(values) -> list[str]:
    """Distinct non-empty values of a column, in order; ``;``-joined cells (a variant's seeds) count per part."""
    parts = (part for cell in values if not pd.isna(cell) for part in join_values([cell]).split(";"))
    return list(dict.fromkeys(p for p in parts if p))


def provenance_note(df: pd.DataFrame, csv_name: str) -> str:
    """One footnote line for a Markdown table: each provenance and context column's value (or how many distinct
    values it has), the secondary columns by name, and the CSV that has them all per row."""
    summary = []
    for col in (*PROVENANCE_COLUMNS, *CONTEXT_COLUMNS):
        vals = _distinct(df[col]) if col in df.columns else []
        if vals:
            summary.append(f"{col} {'/'.join(vals)}" if len(vals) <= 3 else f"{col}: {len(vals)} distinct")
    also = [c for c in SECONDARY_COLUMNS if c in df.columns]
    tail = f"; also {', '.join(also)}" if also else ""
    return f"_Provenance: {'; '.join(summary) or 'none recorded'}{tail}; per row in {csv_name}._"


def to_markdown(df: pd.DataFrame, csv_name: str = "the CSV") -> str:
    """A Markdown table of the columns a reader compares (4 significant digits) and one provenance footnote
    line; empty tables say so."""
    if df.empty:
        return "_(no rows)_\n"
    shown = _with_spread(df[[c for c in df.columns if c not in MARKDOWN_HIDDEN]])
    shown = shown.astype(object).where(shown.notna(), None)  # missing values print as empty cells, not nan
    table = shown.to_markdown(index=False, floatfmt=".4g", missingval="")
    return table + "\n\n" + provenance_note(df, csv_name) + "\n"


def _with_spread(df: pd.DataFrame) -> pd.DataFrame:
    """Each ``X`` with an ``X_sd`` column becomes one text column ``X ± sd``: ``0.27 ± 0.01414`` (4 significant
    digits; the mean alone where the sd is missing)."""
    out = df.copy()
    for col in [c for c in df.columns if f"{c}_sd" in df.columns]:
        cells = [("" if pd.isna(v) else f"{v:.4g}") + ("" if pd.isna(sd) else f" ± {sd:.4g}")
                 for v, sd in zip(df[col], df[f"{col}_sd"], strict=True)]  # fmt: skip
        out = out.drop(columns=f"{col}_sd").rename(columns={col: f"{col} ± sd"})
        out[f"{col} ± sd"] = cells
    return out


def write_table(df: pd.DataFrame, csv_path, md_path, markdown: str | None = None) -> None:
    """Write ``df`` as CSV (every column, full precision) and Markdown (``markdown``, or :func:`to_markdown` of
    ``df``), each atomically."""
    with atomic_path(csv_path) as tmp:
        df.to_csv(tmp, index=False)
    write_text(md_path, to_markdown(df, Path(csv_path).name) if markdown is None else markdown)
