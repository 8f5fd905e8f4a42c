"""The study's figures (seaborn / matplotlib, Agg backend). Each function returns the matplotlib Figure (so tests
can read its panels, titles, points and legends); :func:`save` writes it as PNG and PDF and closes it.

* :func:`umap_grid` -- Fig. 1: one panel per model, queries and positive passages in two colours, coordinates
  from :func:`ftstudy.geometry.aligned_umap` (one frame shared by every panel).
* :func:`training_loss` -- Fig. 2: training loss against step for every trained variant, raw and smoothed.
* :func:`mrr_ci` -- MRR@10 per model with 95% bootstrap confidence intervals (and the paper's value).
* :func:`rank_histogram` -- the original ranks from which the mined hard negatives were drawn.
* :func:`forest` -- the remedies' change in MRR@10 against base with 95% CIs (results/figures/remedies.*).
* :func:`wise_ft` -- MRR@10 against the WiSE-FT mixing weight per variant (results/figures/wise_ft.*).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from ftstudy.atomic import atomic_path  # noqa: E402

QUERY_COLOUR, PASSAGE_COLOUR = "#1f77b4", "#ff7f0e"


def _theme() -> None:
    sns.set_theme(context="paper", style="whitegrid", font_scale=1.2)


def save(fig: Figure, png_path, pdf_path, dpi: int = 150) -> None:
    """Save ``fig`` as PNG and PDF (atomically) and close it."""
    for path, kw in ((png_path, {"dpi": dpi}), (pdf_path, {})):
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=Path(path).suffix.lstrip("."), bbox_inches="tight", **kw)
    plt.close(fig)


def _grid(n: int, max_cols: int = 3) -> tuple[int, int]:
    cols = min(n, max_cols)
    return math.ceil(n / cols), cols


# ---- Fig. 1 ------------------------------------------------------------------------------------------------------
def umap_grid(coords: Mapping[str, np.ndarray], n_pairs: int, title: str = "") -> Figure:
    """One panel per model. ``coords``: model -> (2 n_pairs, 2), rows 0..n-1 the queries, n..2n-1 their positives
    (same rows in every model; the panels share axes limits because AlignedUMAP put them in one frame)."""
    _theme()
    models = list(coords)
    rows, cols = _grid(len(models))
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 4.0 * rows + 0.6), squeeze=False, sharex=True,
                             sharey=True)  # fmt: skip
    size = max(4, min(18, 3000 / max(n_pairs, 1)))
    for ax, model in zip(axes.flat, models, strict=False):
        xy = np.asarray(coords[model])
        ax.scatter(xy[:n_pairs, 0], xy[:n_pairs, 1], s=size, c=QUERY_COLOUR, alpha=0.6, linewidths=0, label="query")
        ax.scatter(xy[n_pairs:, 0], xy[n_pairs:, 1], s=size, c=PASSAGE_COLOUR, alpha=0.6, linewidths=0,
                   label="positive passage")  # fmt: skip
        ax.set_title(model)
        ax.set_xlabel("UMAP 1")
        ax.set_ylabel("UMAP 2")
    for ax in list(axes.flat)[len(models) :]:
        ax.set_visible(False)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=2, markerscale=2.5, frameon=False,
               bbox_to_anchor=(0.5, 1.0))  # fmt: skip
    if title:
        fig.suptitle(title, y=1.05)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    return fig


# ---- Fig. 2 ------------------------------------------------------------------------------------------------------
def smooth(values: np.ndarray, span: int) -> np.ndarray:
    """Exponential moving average (pandas ``ewm(span=...)``, bias-corrected)."""
    return pd.Series(np.asarray(values, dtype=float)).ewm(span=max(1, span), adjust=True).mean().to_numpy()


def read_train_log(path) -> pd.DataFrame:
    """A train_log.csv (step, epoch, loss, learning_rate, grad_norm); rows without a loss are dropped."""
    df = pd.read_csv(path)
    missing = {"step", "loss"} - set(df.columns)
    if missing:
        raise ValueError(f"{path}: missing column(s) {sorted(missing)}; expected step, epoch, loss, learning_rate, "
                         "grad_norm")  # fmt: skip
    return df.dropna(subset=["loss"]).sort_values("step")


def training_loss(
    logs: Mapping[str, pd.DataFrame], groups: Mapping[str, str], span: int | None = None,
    losses: Mapping[str, str] | None = None,
) -> Figure:  # fmt: skip
    """Loss against optimiser step. ``logs``: model id -> train log; ``groups``: model id -> variant (one colour
    per variant, one panel per loss function because their scales differ). Raw values are thin and faint, the
    EMA-smoothed curve (span = ``span`` or 1/20 of the points) is thick; seeds of a variant share its colour."""
    _theme()
    losses = losses or {}
    variants = list(dict.fromkeys(groups[m] for m in logs))
    palette = dict(zip(variants, sns.color_palette("colorblind", len(variants)), strict=True))
    loss_names = list(dict.fromkeys(losses.get(m, "") for m in logs)) or [""]
    fig, axes = plt.subplots(1, len(loss_names), figsize=(9.0 * len(loss_names), 4.8), squeeze=False)
    styles = ["-", "--", ":", "-."]
    for ax, loss_name in zip(axes.flat, loss_names, strict=True):
        seen: dict[str, int] = {}
        for model, df in logs.items():
            if losses.get(model, "") != loss_name or df.empty:
                continue
            variant = groups[model]
            colour = palette[variant]
            nth = seen.get(variant, 0)
            seen[variant] = nth + 1
            k = span or max(5, len(df) // 10)
            ax.plot(df["step"], df["loss"], color=colour, alpha=0.25, linewidth=0.8)
            ax.plot(df["step"], smooth(df["loss"], k), color=colour, linewidth=2.2, linestyle=styles[nth % 4],
                    label=variant if nth == 0 else None)  # fmt: skip
        ax.set_xlabel("optimiser step")
        ax.set_ylabel(f"training loss ({loss_name})" if loss_name else "training loss")
        handles, labels = ax.get_legend_handles_labels()
        handles += [
            plt.Line2D([], [], color="grey", alpha=0.35, linewidth=0.8),
            plt.Line2D([], [], color="grey", linewidth=2.2),
        ]
        labels += ["raw", "smoothed (EMA)"]
        if max(seen.values(), default=1) > 1:
            handles += [plt.Line2D([], [], color="grey", linewidth=2.2, linestyle=styles[1])]
            labels += ["further seeds"]
        ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False)
    fig.tight_layout()
    return fig


# ---- MRR@10 with CIs ---------------------------------------------------------------------------------------------
def mrr_ci(df: pd.DataFrame, measure: str = "MRR@10") -> Figure:
    """Point-and-interval plot. ``df``: columns model, eval_set, mean, ci_low, ci_high, paper (NaN where the
    paper has no value). One panel per eval set; models on the y axis."""
    _theme()
    eval_sets = list(dict.fromkeys(df["eval_set"]))
    models = list(dict.fromkeys(df["model"]))
    fig, axes = plt.subplots(1, len(eval_sets), figsize=(6.0 * len(eval_sets), 0.55 * len(models) + 1.8),
                             squeeze=False, sharey=True)  # fmt: skip
    palette = dict(zip(models, sns.color_palette("colorblind", len(models)), strict=True))
    for ax, eval_set in zip(axes.flat, eval_sets, strict=True):
        sub = df[df["eval_set"] == eval_set].set_index("model").reindex(models)
        y = np.arange(len(models))
        for i, (model, row) in enumerate(sub.iterrows()):
            if pd.isna(row["mean"]):
                continue
            ax.errorbar(row["mean"], i, xerr=[[row["mean"] - row["ci_low"]], [row["ci_high"] - row["mean"]]],
                        fmt="o", color=palette[model], capsize=4, markersize=7,
                        label="ours (95% bootstrap CI)")  # fmt: skip
        if "paper" in sub and sub["paper"].notna().any():
            ax.scatter(sub["paper"], y, marker="x", color="black", s=50, zorder=3, label="paper")
        ax.set_yticks(y, models)
        ax.set_xlabel(f"{measure} on {eval_set}")
        ax.set_ylabel("model")
    axes.flat[0].invert_yaxis()  # first model on top (once: the panels share the y axis)
    _shared_legend(fig, axes)
    return fig


# ---- hard-negative ranks -----------------------------------------------------------------------------------------
def rank_histogram(ranks: np.ndarray, rank_range: tuple[int, int] | None) -> Figure:
    """Histogram of the original (1-based) ranks of the mined negatives, one bin per rank up to 100 ranks wide,
    with the configured ``rank_range`` shaded."""
    _theme()
    ranks = np.asarray(ranks, dtype=np.int64)
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    if len(ranks):
        lo, hi = int(ranks.min()), int(ranks.max())
        width = max(1, math.ceil((hi - lo + 1) / 100))
        bins = np.arange(lo, hi + width + 1, width) - 0.5
        sns.histplot(x=ranks, bins=bins, ax=ax, color="#4c72b0", label=f"drawn negatives (n = {len(ranks):,})")
    if rank_range is not None:
        ax.axvspan(rank_range[0] - 0.5, rank_range[1] + 0.5, color="#dd8452", alpha=0.15,
                   label=f"configured rank range {rank_range[0]}-{rank_range[1]}")  # fmt: skip
    ax.set_xlabel("rank of the negative in the miner's list (1 = top)")
    ax.set_ylabel("number of triplets")
    ax.set_ylim(0, ax.get_ylim()[1] * 1.2)
    ax.legend(loc="upper center", ncol=2, fontsize="small", framealpha=0.9)
    fig.tight_layout()
    return fig


HISTOGRAM_KEY = "drawn_rank_histogram"  # hard_stats.json's exact rank counts (ftstudy mining's summary)


def ranks_from_stats(stats: Mapping, source: str = "hard_stats.json") -> np.ndarray:
    """The drawn ranks (int64, ascending, one entry per triplet) rebuilt from hard_stats.json's exact histogram
    ``{"drawn_rank_histogram": {"ranks": [r, ...], "counts": [n, ...]}}``; ValueError naming ``source`` otherwise."""
    hist = stats.get(HISTOGRAM_KEY)
    expected = f'expected {{"{HISTOGRAM_KEY}": {{"ranks": [...], "counts": [...]}}}} of equal length'
    if not isinstance(hist, Mapping) or not {"ranks", "counts"} <= set(hist):
        raise ValueError(f"{source}: no rank histogram; {expected}")
    ranks, counts = np.asarray(hist["ranks"]), np.asarray(hist["counts"])
    integers = all(a.ndim == 1 and (a.size == 0 or np.issubdtype(a.dtype, np.integer)) for a in (ranks, counts))
    if not integers or ranks.shape != counts.shape or (counts < 0).any():
        raise ValueError(f"{source}: {HISTOGRAM_KEY} has ranks {hist['ranks']!r:.60} and counts "
                         f"{hist['counts']!r:.60}; {expected}, integers, counts >= 0")  # fmt: skip
    return np.repeat(ranks.astype(np.int64), counts.astype(np.int64))


# ---- remedies: forest plot ---------------------------------------------------------------------------------------
KIND_LABELS = {"variant": "trained remedy", "wise": "WiSE-FT interpolation", "hybrid": "BM25 + dense fusion"}


def forest(df: pd.DataFrame, measure: str = "MRR@10", against: str = "base") -> Figure:
    """Forest plot of the remedies' change in ``measure`` against ``against`` (``base`` or ``ref``), read from the
    remedies table (:func:`ftstudy.remedies.remedies_table`; columns model, kind, eval_set, ``{measure}_vs_
    {against}`` and its ``_ci_low`` / ``_ci_high``). One panel per eval set, one row per remedy group, its 95% CI
    as a bar, a vertical line at 0 (no change); colours by kind (trained, interpolated, fused)."""
    _theme()
    col = f"{measure}_vs_{against}"
    eval_sets = list(dict.fromkeys(df["eval_set"]))
    models = list(dict.fromkeys(df["model"]))
    kinds = list(dict.fromkeys([*KIND_LABELS, *df["kind"]]))  # one colour per kind, the same in every run
    palette = dict(zip(kinds, sns.color_palette("colorblind", len(kinds)), strict=True))
    fig, axes = plt.subplots(1, len(eval_sets), figsize=(6.0 * len(eval_sets), 0.45 * len(models) + 2.0),
                             squeeze=False, sharey=True)  # fmt: skip
    for ax, eval_set in zip(axes.flat, eval_sets, strict=True):
        sub = df[df["eval_set"] == eval_set].set_index("model").reindex(models)
        for i, (_, row) in enumerate(sub.iterrows()):
            if pd.isna(row[col]):
                continue
            err = [[row[col] - row[f"{col}_ci_low"]], [row[f"{col}_ci_high"] - row[col]]]
            ax.errorbar(row[col], i, xerr=err, fmt="o", color=palette[row["kind"]], capsize=4, markersize=7,
                        label=KIND_LABELS.get(row["kind"], row["kind"]))  # fmt: skip
        ax.axvline(0.0, color="black", linewidth=1.0, linestyle="--", label="no change")
        ax.set_yticks(np.arange(len(models)), models)
        ax.set_xlabel(f"change in {measure} vs {'base' if against == 'base' else 'the modified model'} on {eval_set}")
        ax.set_ylabel("remedy")
    axes.flat[0].invert_yaxis()  # first remedy on top (once: the panels share the y axis)
    _shared_legend(fig, axes)
    return fig


def _shared_legend(fig: Figure, axes, bottom: float = 0.08) -> None:
    """One legend below the panels (``bottom``: the figure fraction kept free for it), each label once."""
    handles: dict = {}
    for ax in axes.flat:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(lab, h)
    fig.tight_layout(rect=(0, bottom, 1, 1))
    fig.legend(list(handles.values()), list(handles), loc="lower center", ncol=len(handles), frameon=False)


# ---- WiSE-FT ---------------------------------------------------------------------------------------------------
def wise_ft(df: pd.DataFrame, measure: str = "MRR@10") -> Figure:
    """``measure`` against the mixing weight w per variant (:func:`ftstudy.remedies.wise_ft_points`: columns
    variant, eval_set, weight, value, value_sd): w = 0 is base, w = 1 the fine-tuned variant. One panel per eval
    set, one line per variant (mean across seeds, the sd across seeds as a band where there are several)."""
    _theme()
    eval_sets = list(dict.fromkeys(df["eval_set"]))
    variants = list(dict.fromkeys(df["variant"]))
    palette = dict(zip(variants, sns.color_palette("colorblind", len(variants)), strict=True))
    fig, axes = plt.subplots(1, len(eval_sets), figsize=(6.0 * len(eval_sets), 4.8), squeeze=False)
    for ax, eval_set in zip(axes.flat, eval_sets, strict=True):
        for variant in variants:
            sub = df[(df["eval_set"] == eval_set) & (df["variant"] == variant)].sort_values("weight")
            ax.plot(sub["weight"], sub["value"], marker="o", color=palette[variant], label=variant)
            if "value_sd" in sub and sub["value_sd"].notna().any():
                sd = sub["value_sd"].fillna(0.0)
                ax.fill_between(sub["weight"], sub["value"] - sd, sub["value"] + sd, color=palette[variant],
                                alpha=0.15, linewidth=0)  # fmt: skip
        ax.set_xlim(-0.03, 1.03)
        ax.set_xticks([0.0, 0.25, 0.5, 0.75, 1.0], ["0\n(base)", "0.25", "0.5", "0.75", "1\n(fine-tuned)"])
        ax.set_xlabel("mixing weight w: (1 - w) base + w fine-tuned")
        ax.set_ylabel(f"{measure} on {eval_set}")
    _shared_legend(fig, axes)
    return fig
