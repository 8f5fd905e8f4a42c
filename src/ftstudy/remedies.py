"""The remedies table (results/tables/remedies.*) and the WiSE-FT curve: every remedy against base and against the
model it modifies, with paired bootstrap CIs and Holm-corrected randomisation tests.

A remedy (:func:`ftstudy.config.remedy_catalog`) is a trained variant with ``modifies``, a weight-space
interpolation ``{variant}_wise{NN}`` or a BM25 + dense fusion ``hybrid_{method}_{model}``. Its catalog entry names
its ``group`` (the id of its first seed's model: the seeds of one remedy share a row) and its ``reference`` (the
model it modifies, trained with the same seed; ``base`` for base-made ones).

* **Seeds.** A group's value and change are means across its seeds; the change of seed s is
  ``mean_q x_sq - mean_q r_sq`` (remedy x, reference r of that seed, over the eval set's judged queries), and its
  spread is the standard deviation across seeds (ddof 1) in ``*_sd`` columns (only when some group has several
  seeds). The CI and the p are computed on the per-query differences averaged over seeds,
  ``d_q = mean_s (x_sq - r_sq)``: :func:`ftstudy.significance.paired_tests` (a percentile paired bootstrap CI of
  the mean, scipy.stats.bootstrap; a two-sided paired randomisation test, scipy.stats.permutation_test).
* **Holm family.** Every comparison in the table (all groups, eval sets, measures, both references) is one family,
  separate from the paper's (significance.csv, Tables I-III). Where the reference is base itself, the comparison
  against the reference is the one against base: its columns stay empty and it is not counted twice.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

from ftstudy.significance import holm, marker, paired_tests
from ftstudy.tables import PROVENANCE_COLUMNS, join_values, provenance_note, provenance_row

MEASURES = ("MRR@10", "nDCG@10", "R@1000")
#: The two comparisons of every remedy: against ``base``, and against the model it modifies (``ref``).
AGAINST = ("base", "ref")
STATS = ("ci_low", "ci_high", "p", "p_holm")
NO_CHANGE = dict.fromkeys(("diff", "diff_sd", "ci_low", "ci_high", "p"), np.nan)


def remedy_groups(catalog: Mapping[str, Mapping]) -> dict[str, list[str]]:
    """Group id -> its models (one per seed), in catalog order."""
    groups: dict[str, list[str]] = {}
    for model, entry in catalog.items():
        groups.setdefault(entry["group"], []).append(model)
    return groups


def seed_matrix(per_query: Mapping[str, pd.DataFrame], models: list[str], measure: str) -> np.ndarray:
    """Per-query values of ``models`` on one eval set, shape (len(models), n_queries), rows in ``models`` order.

    ``per_query``: model -> wide frame (index qid, one column per measure; :func:`read_per_query` with the eval
    set's judged queries, so every frame has the same index). ValueError names the model, measure or qids that
    do not match."""
    rows = []
    index = None
    for m in models:
        if m not in per_query:
            raise ValueError(f"no per-query values for model '{m}' (expected results/metrics/{m}/...per_query)")
        frame = per_query[m]
        if measure not in frame.columns:
            raise ValueError(f"model '{m}': no per-query '{measure}' (has {sorted(frame.columns)})")
        if index is None:
            index = frame.index
        elif not frame.index.equals(index):
            raise ValueError(f"model '{m}': its queries differ from '{models[0]}'s; read both with the judged qids")
        rows.append(frame[measure].to_numpy(dtype=float))
    return np.vstack(rows)


def compare(x: np.ndarray, r: np.ndarray, n_resamples: int, seed: int) -> dict:
    """One group's change against its references. ``x``, ``r``: (n_seeds, n_queries) per-query values of the
    remedy's seed models and of each one's reference (same row order).

    Returns ``{"diff", "diff_sd", "ci_low", "ci_high", "p"}``: ``diff`` the mean over seeds of the per-seed mean
    difference, ``diff_sd`` its sd across seeds (NaN with one seed), the 95% paired bootstrap CI and the paired
    randomisation p of the per-query differences averaged over seeds."""
    per_seed = x.mean(axis=1) - r.mean(axis=1)
    res = paired_tests(x.mean(axis=0), r.mean(axis=0), n_resamples, seed)
    return {
        "diff": float(per_seed.mean()),
        "diff_sd": float(per_seed.std(ddof=1)) if len(per_seed) > 1 else np.nan,
        "ci_low": res["ci_low"],
        "ci_high": res["ci_high"],
        "p": res["p_randomisation"],
    }


def _group_row(frames, catalog, members, labels, n_resamples, seed) -> dict:
    """The numbers of one group on one eval set (no provenance, no Holm)."""
    refs = [catalog[m]["reference"] for m in members]
    first = catalog[members[0]]
    row = {"model": first["group"], "kind": first["kind"], "reference": labels.get(refs[0], refs[0])}
    row["n_seeds"] = len(members)
    for measure in MEASURES:
        x = seed_matrix(frames, members, measure)
        row["n_queries"] = x.shape[1]
        seed_means = x.mean(axis=1)
        row[measure] = float(seed_means.mean())
        row[f"{measure}_sd"] = float(seed_means.std(ddof=1)) if len(members) > 1 else np.nan
        for name, models in {"base": ["base"] * len(members), "ref": refs}.items():
            col = f"{measure}_vs_{name}"
            same = name == "ref" and all(r == "base" for r in refs)  # the reference is base: no second test
            res = NO_CHANGE if same else compare(x, seed_matrix(frames, models, measure), n_resamples, seed)
            row |= {col: res["diff"], f"{col}_sd": res["diff_sd"], **{f"{col}_{k}": res[k] for k in STATS[:3]}}
    return row


def change_columns() -> list[str]:
    """The change columns' stems in table order: ``MRR@10_vs_base``, ``MRR@10_vs_ref``, ``nDCG@10_vs_base``, ..."""
    return [f"{m}_vs_{a}" for m in MEASURES for a in AGAINST]


def remedies_table(
    per_query: Mapping[str, Mapping[str, pd.DataFrame]],
    catalog: Mapping[str, Mapping],
    labels: Mapping[str, str],
    n_resamples: int,
    seed: int,
    alpha: float = 0.05,
    info: Mapping[str, Mapping] | None = None,
    sources: Mapping[str, Mapping] | None = None,
    progress: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """One row per remedy group per eval set: the measures, the change against base and against the reference,
    each with ``_ci_low``/``_ci_high`` (95% paired bootstrap), ``_p`` (paired randomisation) and ``_p_holm`` (Holm
    over the remedy groups of one eval set, per change: the remedies' families, apart from the paper's), ``_sd``
    (across seeds, only when some group has several), provenance columns.

    ``per_query``: eval_set -> model -> wide per-query frame (judged queries) holding base, every remedy and its
    reference; ``catalog``: :func:`ftstudy.config.remedy_catalog`; ``labels``: reference model id -> the name shown
    in ``reference`` (its variant); ``info``: model -> {config_hash, seed, model_hash}; ``sources``: model -> its
    metrics JSON (versions, model_sha256); ``progress``: called with one line per group done (for the log)."""
    info, sources = info or {}, sources or {}
    groups = remedy_groups(catalog)
    rows = []
    for eval_set, frames in per_query.items():
        for group, members in groups.items():
            row = _group_row(frames, catalog, members, labels, n_resamples, seed) | {"eval_set": eval_set}
            prov = [provenance_row(m, sources.get(m, {}), info) for m in members]
            rows.append(row | {c: join_values(p[c] for p in prov) for c in PROVENANCE_COLUMNS})
            if progress:
                total = len(groups) * len(per_query)
                progress(f"{eval_set}: {group} ({len(members)} seed(s)) done, {len(rows)}/{total}; "
                         f"MRR@10 {row['MRR@10']:.4f}, vs base {row['MRR@10_vs_base']:+.4f}")  # fmt: skip
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    stems = change_columns()
    for c in stems:  # one Holm family per eval set and change (as significance.csv's families)
        df[f"{c}_p_holm"] = df.groupby("eval_set", sort=False)[f"{c}_p"].transform(lambda p: holm(p.to_numpy()))
        df[f"{c}_sig"] = [marker(p, alpha) for p in df[f"{c}_p_holm"]]
    if df["n_seeds"].max() == 1:
        df = df.drop(columns=[c for c in df.columns if c.endswith("_sd")])
    lead = ["model", "kind", "reference", "eval_set", "n_seeds", "n_queries"]
    body = [c for m in MEASURES for c in (m, f"{m}_sd")]
    body += [f"{s}{x}" for s in stems for x in ("", "_sd", *(f"_{t}" for t in STATS), "_sig")]
    return df[[c for c in [*lead, *body, *PROVENANCE_COLUMNS] if c in df.columns]]


# ---- Markdown ---------------------------------------------------------------------------------------------------
def _fmt(v: float, signed: bool = False) -> str:
    return "" if pd.isna(v) else (f"{v:+.4f}" if signed else f"{v:.4f}")


def change_cell(row: Mapping, stem: str) -> str:
    """``+0.0123 ± 0.0020 [-0.0040, +0.0300] p 0.031 *``: the change (its sd across seeds where there is one), the
    95% CI, the Holm-adjusted p and ``*`` where it is below alpha; empty where the comparison was not made."""
    if pd.isna(row.get(stem)):
        return ""
    sd = row.get(f"{stem}_sd", np.nan)
    spread = "" if pd.isna(sd) else f" ± {sd:.4f}"
    ci = f"[{_fmt(row[f'{stem}_ci_low'], True)}, {_fmt(row[f'{stem}_ci_high'], True)}]"
    star = " *" if row[f"{stem}_sig"] == "*" else ""
    return f"{_fmt(row[stem], True)}{spread} {ci} p {row[f'{stem}_p_holm']:.3g}{star}"


def remedies_markdown(df: pd.DataFrame, csv_name: str = "remedies.csv") -> str:
    """The remedies table as Markdown, one table per measure: the model, what it modifies, the measure (``mean ±
    sd`` across seeds) and one cell per change (:func:`change_cell`); then a legend and the provenance line."""
    if df.empty:
        return "_(no rows)_\n"
    parts = []
    for m in MEASURES:
        shown = df[["model", "kind", "reference", "eval_set", "n_seeds"]].copy()
        sd = df[f"{m}_sd"] if f"{m}_sd" in df else pd.Series(np.nan, index=df.index)
        shown[m] = [_fmt(v) + ("" if pd.isna(s) else f" ± {s:.4f}") for v, s in zip(df[m], sd, strict=True)]
        shown[f"Δ {m} vs base"] = [change_cell(row, f"{m}_vs_base") for _, row in df.iterrows()]
        shown[f"Δ {m} vs reference"] = [change_cell(row, f"{m}_vs_ref") for _, row in df.iterrows()]
        parts.append(f"**{m}**\n\n{shown.to_markdown(index=False)}")
    legend = (
        "_Δ: mean change across seeds (± sd across seeds) [95% paired bootstrap CI of the per-query differences "
        "averaged over seeds], Holm-adjusted paired randomisation p (one family per eval set and column: "
        "every remedy, apart from the paper's family), "
        "* below alpha. Reference: the model the remedy modifies (same seed); empty where that is base._"
    )
    return "\n\n".join([*parts, legend, provenance_note(df, csv_name)]) + "\n"


# ---- WiSE-FT -----------------------------------------------------------------------------------------------------
def wise_ft_points(wise: Mapping[str, Mapping], values: Mapping[tuple[str, str], float], eval_sets) -> pd.DataFrame:
    """MRR@10 (or any one measure) against the mixing weight w, per variant and eval set.

    ``wise``: interpolated model id -> {source, variant, seed, weight} (:func:`ftstudy.config.wise_models`);
    ``values``: (model, eval_set) -> the measure, for base, every source and every interpolated model.
    Returns columns variant, eval_set, weight, value, value_sd (across seeds, NaN with one), n_seeds: w = 0 is
    base, w = 1 the fine-tuned source, the interpolations in between; rows sorted by variant order and w."""
    missing = [k for k in [(m, e) for m in ("base", *wise, *(w["source"] for w in wise.values())) for e in eval_sets]
               if k not in values]  # fmt: skip
    if missing:
        raise ValueError(f"WiSE-FT curve: no value for (model, eval_set) {missing[:3]} (expected their metrics JSONs)")
    points = []
    for e in eval_sets:
        for model, m in wise.items():
            points.append((m["variant"], e, m["seed"], float(m["weight"]), values[(model, e)]))
        for source, m in {m["source"]: m for m in wise.values()}.items():
            points.append((m["variant"], e, m["seed"], 1.0, values[(source, e)]))
            points.append((m["variant"], e, m["seed"], 0.0, values[("base", e)]))
    df = pd.DataFrame(points, columns=["variant", "eval_set", "seed", "weight", "value"])
    order = list(dict.fromkeys(m["variant"] for m in wise.values()))
    g = df.groupby(["variant", "eval_set", "weight"], sort=False)["value"]
    out = g.agg(value="mean", value_sd=lambda s: s.std(ddof=1) if len(s) > 1 else np.nan, n_seeds="size")
    out = out.reset_index()
    out["_order"] = out["variant"].map(order.index)
    out = out.sort_values(["eval_set", "_order", "weight"], kind="stable").drop(columns="_order")
    return out.reset_index(drop=True)
