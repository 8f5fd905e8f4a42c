"""Paired significance tests: planted differences are found, absent ones are not, Holm matches a hand computation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

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
    assert res["p_ttest"] == pytest.approx(stats.ttest_rel(model, base).pvalue)


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


def test_significance_table_families_and_holm():
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
    assert df["p_randomisation_holm"].to_numpy() == pytest.approx(holm(df["p_randomisation"]))
    assert df["p_ttest_holm"].to_numpy() == pytest.approx(holm(df["p_ttest"]))
    sig = df.set_index("model")["significant"]
    assert sig["better"] and not sig["same1"] and not sig["same2"]
    row = df.set_index("model").loc["better"]
    assert row["diff"] == pytest.approx(frames["better"].mean() - base.mean())
    assert row["pct_change"] == pytest.approx(100 * row["diff"] / base.mean())
    assert row["marker"] == "*"
