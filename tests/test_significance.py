"""Paired significance tests: planted differences are found, absent ones are not, Holm matches a hand computation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from ftstudy.metrics import METRIC_NAMES
from ftstudy.significance import canonical_measure, holm, paired_tests, read_per_query, significance_table

N_RESAMPLES = 2000


def _rr_like(rng, n):
    """Per-query values shaped like reciprocal ranks: many zeros, the rest in {1, 1/2, ..., 1/10}."""
    ranks = rng.integers(1, 16, n)
    return np.where(ranks <= 10, 1.0 / ranks, 0.0)


def test_planted_difference_is_found():
    rng = np.random.default_rng(1)
    base = _rr_like(rng, 300)
    model = np.clip(base + 0.2 + rng.normal(0, 0.2, 300), 0, 1)
    res = paired_tests(model, base, N_RESAMPLES, seed=7)
    assert res["p_randomisation"] < 0.01
    assert res["p_ttest"] < 0.01
    true_diff = model.mean() - base.mean()
    assert res["diff"] == pytest.approx(true_diff)
    assert res["ci_low"] < true_diff < res["ci_high"]
    assert res["ci_low"] > 0  # the CI excludes "no difference"
    d = model - base  # independent paired t: mean of differences / (sd / sqrt(n)), two-sided p from t(n - 1)
    t = d.mean() / (d.std(ddof=1) / np.sqrt(len(d)))
    assert res["p_ttest"] == pytest.approx(2 * stats.t.sf(abs(t), len(d) - 1), rel=1e-9)


# Student's sleep data (Cushny & Peebles 1905; R's `sleep`): extra hours of sleep under drug 1 and drug 2 for the
# same 10 patients. The textbook paired t-test, R's t.test(extra ~ group, sleep, paired = TRUE): t = -4.0621,
# df = 9, p-value = 0.002833.
SLEEP_DRUG1 = np.array([0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0])
SLEEP_DRUG2 = np.array([1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4])


def test_paired_t_matches_the_textbook_sleep_example():
    res = paired_tests(SLEEP_DRUG2, SLEEP_DRUG1, N_RESAMPLES, seed=0)
    assert res["p_ttest"] == pytest.approx(0.002833, abs=5e-7)
    assert res["diff"] == pytest.approx(1.58)


def test_absent_difference_is_not_found():
    rng = np.random.default_rng(2)
    base = _rr_like(rng, 300)
    model = _rr_like(rng, 300)  # same distribution, independent draws
    res = paired_tests(model, base, N_RESAMPLES, seed=7)
    assert res["p_randomisation"] > 0.05
    assert res["p_ttest"] > 0.05
    assert res["ci_low"] < 0 < res["ci_high"]


def test_identical_values_give_p_one():
    x = np.array([0.0, 0.5, 1.0, 0.25])
    res = paired_tests(x, x.copy(), N_RESAMPLES, seed=0)
    assert res["p_randomisation"] == 1.0 and res["p_ttest"] == 1.0 and res["diff"] == 0.0


def test_tests_are_seeded():
    rng = np.random.default_rng(3)
    a, b = rng.random(100), rng.random(100)
    assert paired_tests(a, b, 500, seed=11) == paired_tests(a, b, 500, seed=11)


def test_randomisation_p_matches_an_exact_enumeration():
    # 10 pairs: 2^10 sign flips; with more resamples than that scipy enumerates them all (exact test).
    rng = np.random.default_rng(4)
    x, y = rng.random(10), rng.random(10)
    d = x - y
    signs = np.array(np.meshgrid(*[[-1, 1]] * 10)).reshape(10, -1).T
    null = (signs * d).mean(axis=1)
    exact = np.mean(np.abs(null) >= abs(d.mean()) - 1e-12)
    assert paired_tests(x, y, 5000, seed=0)["p_randomisation"] == pytest.approx(exact)


def test_holm_matches_a_hand_computation():
    # sorted: 0.005*4=0.02, 0.01*3=0.03, 0.03*2=0.06, 0.04*1=0.04 -> monotone 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # capped at 1
    out = holm([0.02, np.nan, 0.01])  # NaN stays out of the family (m = 2)
    assert np.isnan(out[1]) and out[[0, 2]] == pytest.approx([0.02, 0.02])


def test_measure_names_are_canonical():
    assert canonical_measure("RR@10") == "MRR@10"
    assert canonical_measure("RR(rel=2)@100") == "MRR@100"
    assert canonical_measure("MRR@10") == "MRR@10"
    assert canonical_measure("R(rel=1)@1000") == "R@1000"
    assert canonical_measure("Recall@100") == "R@100"
    assert canonical_measure("nDCG@10") == "nDCG@10"


def test_read_per_query_fills_unretrieved_queries_with_zero(tmp_path):
    path = tmp_path / "pq.parquet"
    pd.DataFrame({"qid": [1, 1, 2, 9], "measure": ["RR@10", "nDCG@10", "RR@10", "RR@10"],
                  "value": [0.5, 0.6, 1.0, 0.3]}).to_parquet(path)  # fmt: skip
    wide = read_per_query(path, qids=[1, 2, 3])
    assert list(wide.index) == [1, 2, 3]  # qid 9 is not judged: dropped; qid 3 missing: zero
    assert wide.loc[3, "MRR@10"] == 0.0 and wide.loc[2, "nDCG@10"] == 0.0 and wide.loc[1, "MRR@10"] == 0.5


def test_read_per_query_names_the_file_on_bad_columns(tmp_path):
    path = tmp_path / "bad.parquet"
    pd.DataFrame({"qid": [1], "value": [0.5]}).to_parquet(path)
    with pytest.raises(ValueError, match="bad.parquet.*measure"):
        read_per_query(path)


def _exact_randomisation_p(d):
    """Two-sided sign-flip p of the mean difference, enumerating all 2^n sign vectors (small n only)."""
    signs = np.array(np.meshgrid(*[[-1, 1]] * len(d))).reshape(len(d), -1).T
    return np.mean(np.abs((signs * d).mean(axis=1)) >= abs(d.mean()) - 1e-12)


def _holm_by_definition(p):
    """Holm's adjusted p_i = max over j ranked at or before i of min(1, (m - rank_j + 1) p_j), ranks from 1."""
    rank = np.argsort(np.argsort(p, kind="stable"), kind="stable") + 1
    m = len(p)
    return np.array([max(min(1.0, (m - rank[j] + 1) * p[j]) for j in range(m) if rank[j] <= rank[i]) for i in range(m)])


def test_significance_table_applies_holm_to_known_p_values():
    """Three models whose paired t-test p against base is 0.01, 0.04 and 0.03 by construction: Holm's step-down
    gives 0.01*3 = 0.03, then 0.03*2 = 0.06, then max(0.06, 0.04*1) = 0.06, in the table's rows."""
    n = 10
    rng = np.random.default_rng(6)
    base = rng.random(n)
    noise = rng.standard_normal(n)
    noise = (noise - noise.mean()) / noise.std(ddof=1)  # mean 0, sd 1: the t statistic is mean(d) * sqrt(n)
    models = {"base": base}
    for name, p in (("a", 0.01), ("b", 0.04), ("c", 0.03)):
        models[name] = base + noise + stats.t.isf(p / 2, n - 1) / np.sqrt(n)
    qids = pd.Index(np.arange(n), name="qid")
    frames = {m: pd.DataFrame({name: v for name in METRIC_NAMES}, index=qids) for m, v in models.items()}
    df = significance_table({"dev": frames}, 5000, seed=0, alpha=0.05)  # 5000 > 2^10: scipy enumerates exactly
    assert set(df["measure"]) == set(METRIC_NAMES)  # the default measures: one family per measure
    one = df[df["measure"] == "MRR@10"].set_index("model").loc[["a", "b", "c"]]
    assert one["p_ttest"].to_numpy() == pytest.approx([0.01, 0.04, 0.03], rel=1e-9)
    assert one["p_ttest_holm"].to_numpy() == pytest.approx([0.03, 0.06, 0.06], rel=1e-9)
    p_rand = np.array([_exact_randomisation_p(models[m] - base) for m in "abc"])
    assert one["p_randomisation"].to_numpy() == pytest.approx(p_rand)
    assert one["p_randomisation_holm"].to_numpy() == pytest.approx(_holm_by_definition(p_rand))
    assert list(one["significant"]) == list(_holm_by_definition(p_rand) < 0.05)


def test_significance_table_finds_the_planted_difference():
    rng = np.random.default_rng(5)
    qids = pd.Index(np.arange(300), name="qid")
    base = _rr_like(rng, 300)
    frames = {
        "base": base,
        "better": np.clip(base + 0.2 + rng.normal(0, 0.2, 300), 0, 1),
        "same1": _rr_like(rng, 300),
        "same2": _rr_like(rng, 300),
    }
    per_query = {"dev": {m: pd.DataFrame({"MRR@10": v}, index=qids) for m, v in frames.items()}}
    df = significance_table(per_query, N_RESAMPLES, seed=3, alpha=0.05, measures=["MRR@10"])
    assert list(df["model"]) == ["better", "same1", "same2"]
    sig = df.set_index("model")["significant"]
    assert sig["better"] and not sig["same1"] and not sig["same2"]
    row = df.set_index("model").loc["better"]
    assert row["diff"] == pytest.approx(frames["better"].mean() - base.mean())
    assert row["pct_change"] == pytest.approx(100 * row["diff"] / base.mean())
    assert row["marker"] == "*"
