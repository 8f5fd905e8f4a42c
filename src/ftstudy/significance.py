"""Paired significance tests of each model against base on per-query values.

For one eval set and one measure, every model is compared with ``base`` on the same queries:

* a two-sided paired randomisation (sign-flip) test: :func:`scipy.stats.permutation_test` with
  ``permutation_type="samples"`` on the mean difference;
* a paired t-test: :func:`scipy.stats.ttest_rel`;
* a 95% bootstrap confidence interval of the mean difference: :func:`scipy.stats.bootstrap` with ``paired=True``.

The Holm family is all models compared with base on one eval set and one measure. Neither scipy nor ranx has
Holm's step-down correction (scipy has Benjamini-Hochberg only, ranx none, statsmodels is not a dependency), so
:func:`holm` implements it in a few lines; it is tested against a hand computation.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd
from scipy import stats

from ftstudy.metrics import METRIC_NAMES

_RR = re.compile(r"^M?RR(\(.*\))?@(\d+)$", re.IGNORECASE)
_RECALL = re.compile(r"^(R|Recall)(\(.*\))?@(\d+)$", re.IGNORECASE)
_NDCG = re.compile(r"^nDCG(\(.*\))?@(\d+)$", re.IGNORECASE)


def canonical_measure(name: str) -> str:
    """Map ir-measures / trec_eval style names onto the contract's: ``RR@10`` -> ``MRR@10``, ``Recall@100`` ->
    ``R@100``, ``nDCG_cut_10``-free names unchanged. Unknown names come back unchanged."""
    name = str(name).strip()
    if m := _RR.match(name):
        return f"MRR@{m.group(2)}"
    if m := _RECALL.match(name):
        return f"R@{m.group(3)}"
    if m := _NDCG.match(name):
        return f"nDCG@{m.group(2)}"
    return name


def read_per_query(path, qids: Iterable[int] | None = None) -> pd.DataFrame:
    """A per-query parquet (qid, measure, value) as a wide frame: index qid, one column per canonical measure.

    ``qids``: the judged queries of the eval set (the metrics' denominator). Queries missing from the file (no
    relevant passage retrieved; ir-measures leaves them out) get 0 for every measure; rows for other qids are
    dropped. Raises ValueError naming the file when a column is missing.
    """
    df = pd.read_parquet(path)
    missing = {"qid", "measure", "value"} - set(df.columns)
    if missing:
        raise ValueError(f"{path}: missing column(s) {sorted(missing)}; expected qid, measure, value")
    df = df.assign(measure=df["measure"].map(canonical_measure), qid=df["qid"].astype("int64"))
    dup = df.duplicated(["qid", "measure"])
    if dup.any():
        row = df[dup].iloc[0]
        raise ValueError(f"{path}: duplicate value for qid {row['qid']} measure {row['measure']}")
    wide = df.pivot(index="qid", columns="measure", values="value").astype("float64")
    if qids is not None:
        wide = wide.reindex(pd.Index(sorted(set(int(q) for q in qids)), name="qid"))
    return wide.fillna(0.0)


def holm(pvalues: Iterable[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values, in the input order (NaN stays NaN and does not count in the family).

    Sorted ascending, p_(i) becomes max_{j<=i} min(1, (m - j + 1) p_(j)) for j, i counted from 1.
    """
    p = np.asarray(list(pvalues), dtype=float)
    out = np.full_like(p, np.nan)
    ok = ~np.isnan(p)
    m = int(ok.sum())
    if m == 0:
        return out
    order = np.argsort(p[ok], kind="stable")
    scaled = (m - np.arange(m)) * p[ok][order]
    adjusted = np.minimum(1.0, np.maximum.accumulate(scaled))
    vals = np.empty(m)
    vals[order] = adjusted
    out[ok] = vals
    return out


def _mean_diff(x, y, axis=-1):
    return np.mean(x, axis=axis) - np.mean(y, axis=axis)


def paired_tests(
    x: np.ndarray, y: np.ndarray, n_resamples: int, seed: int, confidence: float = 0.95, batch: int = 500
) -> dict:
    """Compare paired per-query values ``x`` (model) and ``y`` (base), shape (n,) each.

    Returns ``{"n", "mean_x", "mean_y", "diff", "p_randomisation", "p_ttest", "ci_low", "ci_high"}``: a two-sided
    paired randomisation test of the mean difference, a paired t-test, and the percentile bootstrap CI of the mean
    difference, each seeded with ``seed``.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"paired values must be 1-d and the same length, got {x.shape} and {y.shape}")
    n = len(x)
    diff = float(x.mean() - y.mean()) if n else float("nan")
    out = {"n": n, "mean_x": float(x.mean()), "mean_y": float(y.mean()), "diff": diff}
    if n < 2 or np.allclose(x, y):
        # No variation in the differences: nothing to test (every permutation gives the same statistic).
        return out | {"p_randomisation": 1.0, "p_ttest": 1.0, "ci_low": diff, "ci_high": diff}
    perm = stats.permutation_test(
        (x, y),
        _mean_diff,
        permutation_type="samples",
        vectorized=True,
        n_resamples=n_resamples,
        alternative="two-sided",
        batch=batch,
        rng=np.random.default_rng(seed),
    )
    ttest = stats.ttest_rel(x, y)
    boot = stats.bootstrap(
        (x, y),
        _mean_diff,
        paired=True,
        vectorized=True,
        n_resamples=n_resamples,
        confidence_level=confidence,
        method="percentile",
        batch=batch,
        rng=np.random.default_rng(seed),
    )
    p_t = float(ttest.pvalue)
    return out | {
        "p_randomisation": float(perm.pvalue),
        "p_ttest": p_t if np.isfinite(p_t) else 1.0,
        "ci_low": float(boot.confidence_interval.low),
        "ci_high": float(boot.confidence_interval.high),
    }


def mean_ci(values: np.ndarray, n_resamples: int, seed: int, confidence: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean of per-query values (scipy.stats.bootstrap), seeded."""
    v = np.asarray(values, dtype=float)
    if len(v) < 2 or np.all(v == v[0]):
        m = float(v.mean()) if len(v) else float("nan")
        return m, m
    res = stats.bootstrap(
        (v,),
        np.mean,
        vectorized=True,
        n_resamples=n_resamples,
        confidence_level=confidence,
        method="percentile",
        batch=500,
        rng=np.random.default_rng(seed),
    )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def marker(p_adjusted: float, alpha: float) -> str:
    """``*`` where the Holm-adjusted p-value is below ``alpha``, ``n.s.`` otherwise, empty when untested."""
    if p_adjusted is None or not np.isfinite(p_adjusted):
        return ""
    return "*" if p_adjusted < alpha else "n.s."


def significance_table(
    per_query: Mapping[str, Mapping[str, pd.DataFrame]],
    n_resamples: int,
    seed: int,
    alpha: float = 0.05,
    measures: Iterable[str] = METRIC_NAMES,
    reference: str = "base",
) -> pd.DataFrame:
    """All models against ``reference``, per eval set and measure, with Holm correction within each family.

    ``per_query``: eval_set -> model -> wide per-query frame (:func:`read_per_query`, same qid index).
    One row per (eval_set, measure, model != reference). Columns: eval_set, measure, model, n_queries,
    mean_base, mean_model, diff, pct_change, ci_low, ci_high, p_randomisation, p_ttest, p_randomisation_holm,
    p_ttest_holm, significant (randomisation test, Holm-adjusted, at ``alpha``), marker.
    """
    rows = []
    for eval_set, models in per_query.items():
        if reference not in models:
            raise ValueError(f"eval set '{eval_set}': no per-query values for the reference model '{reference}'")
        ref = models[reference]
        for measure in measures:
            if measure not in ref.columns:
                continue
            family = []
            for model, frame in models.items():
                if model == reference or measure not in frame.columns:
                    continue
                joined = pd.concat({"ref": ref[measure], "model": frame[measure]}, axis=1, join="inner")
                res = paired_tests(joined["model"].to_numpy(), joined["ref"].to_numpy(), n_resamples, seed)
                family.append(
                    {
                        "eval_set": eval_set,
                        "measure": measure,
                        "model": model,
                        "n_queries": res["n"],
                        "mean_base": res["mean_y"],
                        "mean_model": res["mean_x"],
                        "diff": res["diff"],
                        "pct_change": 100.0 * res["diff"] / res["mean_y"] if res["mean_y"] else float("nan"),
                        "ci_low": res["ci_low"],
                        "ci_high": res["ci_high"],
                        "p_randomisation": res["p_randomisation"],
                        "p_ttest": res["p_ttest"],
                    }
                )
            if not family:
                continue
            adj_r = holm([r["p_randomisation"] for r in family])
            adj_t = holm([r["p_ttest"] for r in family])
            for r, pr, pt in zip(family, adj_r, adj_t, strict=True):
                r["p_randomisation_holm"] = float(pr)
                r["p_ttest_holm"] = float(pt)
                r["significant"] = bool(pr < alpha)
                r["marker"] = marker(pr, alpha)
            rows += family
    cols = [
        "eval_set", "measure", "model", "n_queries", "mean_base", "mean_model", "diff", "pct_change", "ci_low",
        "ci_high", "p_randomisation", "p_ttest", "p_randomisation_holm", "p_ttest_holm", "significant", "marker",
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=cols)
