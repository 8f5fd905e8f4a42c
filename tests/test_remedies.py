"""The remedies table: its changes, seed averaging, CIs, p-values and Holm family against independent computations
on synthetic per-query values; its Markdown; the WiSE-FT curve's points; the rules a config schedules."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from ftstudy.remedies import MEASURES, remedies_markdown, remedies_table, seed_matrix, wise_ft_points

N = 60  # queries
QIDS = pd.Index(np.arange(100, 100 + N), name="qid")
RESAMPLES = 999

# Two seeds of an L2-SP remedy of full_hard, a WiSE-FT interpolation of full_hard (two seeds) and an RRF fusion of
# base (one model): what ftstudy.config.remedy_catalog gives for such a config.
CATALOG = {
    "full_hard_l2sp": {"kind": "variant", "group": "full_hard_l2sp", "seed": 1, "reference": "full_hard"},
    "full_hard_l2sp_seed2": {"kind": "variant", "group": "full_hard_l2sp", "seed": 2, "reference": "full_hard_seed2"},
    "full_hard_wise50": {"kind": "wise", "group": "full_hard_wise50", "seed": 1, "reference": "full_hard"},
    "full_hard_seed2_wise50": {"kind": "wise", "group": "full_hard_wise50", "seed": 2, "reference": "full_hard_seed2"},
    "hybrid_rrf_base": {"kind": "hybrid", "group": "hybrid_rrf_base", "seed": None, "reference": "base"},
}
LABELS = {"base": "base", "full_hard": "full_hard", "full_hard_seed2": "full_hard"}
MODELS = ["base", "full_hard", "full_hard_seed2", *CATALOG]


def _rr_like(rng, n=N):
    ranks = rng.integers(1, 16, n)
    return np.where(ranks <= 10, 1.0 / ranks, 0.0)


def _frames(seed=0, shift=None):
    """model -> wide per-query frame (MRR@10, nDCG@10, R@1000); ``shift``: model -> added to every value."""
    rng = np.random.default_rng(seed)
    shift = shift or {}
    return {m: pd.DataFrame({k: _rr_like(rng) + shift.get(m, 0.0) for k in MEASURES}, index=QIDS) for m in MODELS}


def _table(per_query, n_resamples=RESAMPLES, **kw):
    return remedies_table(per_query, CATALOG, LABELS, n_resamples, seed=7, **kw)


def _row(df, model, eval_set="dev"):
    return df[(df["model"] == model) & (df["eval_set"] == eval_set)].iloc[0]


def test_one_row_per_group_and_eval_set_with_seeds_averaged():
    frames = {"dev": _frames(0), "dl19": _frames(1)}
    lines: list[str] = []
    df = _table(frames, progress=lines.append)
    assert len(lines) == 6 and lines[-1].startswith("dl19: hybrid_rrf_base (1 seed(s)) done, 6/6")
    assert sorted(zip(df["model"], df["eval_set"], strict=True)) == sorted(
        (g, e) for g in ("full_hard_l2sp", "full_hard_wise50", "hybrid_rrf_base") for e in ("dev", "dl19")
    )
    dev = frames["dev"]
    row = _row(df, "full_hard_l2sp")
    assert row["kind"] == "variant" and row["reference"] == "full_hard" and row["n_seeds"] == 2
    for m in MEASURES:
        seed_means = [dev["full_hard_l2sp"][m].mean(), dev["full_hard_l2sp_seed2"][m].mean()]
        assert row[m] == pytest.approx(np.mean(seed_means))
        assert row[f"{m}_sd"] == pytest.approx(np.std(seed_means, ddof=1))
        vs_base = [s - dev["base"][m].mean() for s in seed_means]
        assert row[f"{m}_vs_base"] == pytest.approx(np.mean(vs_base))
        assert row[f"{m}_vs_base_sd"] == pytest.approx(np.std(vs_base, ddof=1))
        # against the reference of the same seed: seed 1 vs full_hard, seed 2 vs full_hard_seed2
        vs_ref = [seed_means[0] - dev["full_hard"][m].mean(), seed_means[1] - dev["full_hard_seed2"][m].mean()]
        assert row[f"{m}_vs_ref"] == pytest.approx(np.mean(vs_ref))
        assert row[f"{m}_vs_ref_sd"] == pytest.approx(np.std(vs_ref, ddof=1))
    hybrid = _row(df, "hybrid_rrf_base", "dl19")
    assert hybrid["MRR@10_vs_base"] == pytest.approx(
        frames["dl19"]["hybrid_rrf_base"]["MRR@10"].mean() - frames["dl19"]["base"]["MRR@10"].mean()
    )
    assert pd.isna(hybrid["MRR@10_sd"]) and pd.isna(hybrid["MRR@10_vs_base_sd"])  # one seed: no spread


def test_ci_is_the_percentile_bootstrap_of_the_seed_averaged_differences():
    """Written out with NumPy: resample the queries (the same index draws scipy makes from the same seed), mean of
    the per-query differences averaged over seeds, 2.5th and 97.5th percentiles."""
    dev = _frames(2)
    row = _row(_table({"dev": dev}), "full_hard_l2sp")
    d = ((dev["full_hard_l2sp"] - dev["full_hard"]) + (dev["full_hard_l2sp_seed2"] - dev["full_hard_seed2"])) / 2
    for m in MEASURES:
        idx = np.random.default_rng(7).integers(0, N, (RESAMPLES, N))
        low, high = np.percentile(d[m].to_numpy()[idx].mean(axis=1), [2.5, 97.5])
        assert (row[f"{m}_vs_ref_ci_low"], row[f"{m}_vs_ref_ci_high"]) == (pytest.approx(low), pytest.approx(high))
        assert row[f"{m}_vs_ref_ci_low"] <= row[f"{m}_vs_ref"] <= row[f"{m}_vs_ref_ci_high"]


def test_p_is_an_exact_sign_flip_test_on_the_seed_averaged_differences():
    """10 queries: with more resamples than 2^10 scipy enumerates every sign vector, as this test does."""
    rng = np.random.default_rng(3)
    q = pd.Index(np.arange(10), name="qid")
    frames = {m: pd.DataFrame({k: rng.random(10) for k in MEASURES}, index=q) for m in MODELS}
    df = remedies_table({"dev": frames}, CATALOG, LABELS, 5000, seed=0)
    d = ((frames["full_hard_wise50"] - frames["base"]) + (frames["full_hard_seed2_wise50"] - frames["base"])) / 2
    signs = np.array(np.meshgrid(*[[-1, 1]] * 10)).reshape(10, -1).T
    for m in MEASURES:
        x = d[m].to_numpy()
        exact = np.mean(np.abs((signs * x).mean(axis=1)) >= abs(x.mean()) - 1e-12)
        assert _row(df, "full_hard_wise50")[f"{m}_vs_base_p"] == pytest.approx(exact)


def _holm_by_definition(p):
    """Holm's adjusted p_i = max over j ranked at or before i of min(1, (m - rank_j + 1) p_j), ranks from 1."""
    rank = np.argsort(np.argsort(p, kind="stable"), kind="stable") + 1
    m = len(p)
    return np.array([max(min(1.0, (m - rank[j] + 1) * p[j]) for j in range(m) if rank[j] <= rank[i]) for i in range(m)])


def test_holm_families_are_one_eval_set_and_one_change_column_each():
    # a planted gain for the L2-SP remedy so that some adjusted p are below 1
    frames = {"dev": _frames(4, {"full_hard_l2sp": 0.3, "full_hard_l2sp_seed2": 0.3}), "dl19": _frames(5)}
    df = _table(frames, n_resamples=4999, alpha=0.05)  # the smallest p (1/5000) times 3 tests is below alpha
    stems = [f"{m}_vs_{a}" for m in MEASURES for a in ("base", "ref")]
    for eval_set in ("dev", "dl19"):
        rows = df[df["eval_set"] == eval_set]
        for s in stems:
            raw, adjusted = rows[f"{s}_p"].to_numpy(), rows[f"{s}_p_holm"].to_numpy()
            tested = ~np.isnan(raw)
            # 3 groups, minus the fusion of base for the reference column (its reference is base itself)
            assert tested.sum() == (2 if s.endswith("_ref") else 3)
            assert np.isnan(adjusted[~tested]).all()
            assert adjusted[tested] == pytest.approx(_holm_by_definition(raw[tested]))
    row = _row(df, "full_hard_l2sp")
    assert row["MRR@10_vs_ref_p_holm"] < 0.05 and row["MRR@10_vs_ref_sig"] == "*"
    assert row["MRR@10_vs_ref_ci_low"] > 0
    hybrid = _row(df, "hybrid_rrf_base")
    assert pd.isna(hybrid["MRR@10_vs_ref"]) and hybrid["reference"] == "base" and hybrid["MRR@10_vs_ref_sig"] == ""


def test_single_seed_tables_have_no_spread_columns():
    catalog = {m: e for m, e in CATALOG.items() if "seed2" not in m}
    df = remedies_table({"dev": _frames(6)}, catalog, LABELS, 200, seed=1)
    assert not [c for c in df.columns if c.endswith("_sd")] and set(df["n_seeds"]) == {1}


def test_provenance_columns_list_each_seed(tmp_path):
    info = {"full_hard_l2sp": {"config_hash": "a" * 12, "seed": 1},
            "full_hard_l2sp_seed2": {"config_hash": "b" * 12, "seed": 2}}  # fmt: skip
    sources = {"full_hard_l2sp": {"provenance": {"versions": {"torch": "2.13.0"}, "model_sha256": "c" * 64}}}
    row = _row(_table({"dev": _frames(7)}, info=info, sources=sources), "full_hard_l2sp")
    assert row["config_hash"] == "a" * 12 + ";" + "b" * 12 and row["seed"] == "1;2"
    assert row["versions"] == "torch=2.13.0" and row["model_hash"] == "c" * 12


def test_missing_or_misaligned_models_are_named():
    frames = _frames(8)
    del frames["full_hard_seed2"]
    with pytest.raises(ValueError, match="full_hard_seed2"):
        _table({"dev": frames})
    frames = _frames(8)
    frames["full_hard"] = frames["full_hard"].iloc[1:]
    with pytest.raises(ValueError, match="'full_hard'.*queries differ"):
        seed_matrix(frames, ["base", "full_hard"], "MRR@10")


def test_markdown_has_one_readable_table_per_measure():
    df = _table({"dev": _frames(9, {"full_hard_l2sp": 0.3, "full_hard_l2sp_seed2": 0.3})}, alpha=0.05)
    md = remedies_markdown(df, "remedies.csv")
    headers = [ln for ln in md.splitlines() if ln.startswith("| model")]
    assert len(headers) == len(MEASURES)
    cells = [c.strip() for c in headers[0].strip("|").split("|")]
    assert cells == ["model", "kind", "reference", "eval_set", "n_seeds", "MRR@10", "Δ MRR@10 vs base",
                     "Δ MRR@10 vs reference"]  # fmt: skip
    row = _row(df, "full_hard_l2sp")
    line = next(ln for ln in md.splitlines() if ln.startswith("| full_hard_l2sp"))
    cell = [c.strip() for c in line.strip("|").split("|")][7]
    match = re.fullmatch(r"([+-]\d\.\d{4}) ± (\d\.\d{4}) \[([+-]\d\.\d{4}), ([+-]\d\.\d{4})\] p (\S+) \*", cell)
    assert match, cell
    assert float(match[1]) == pytest.approx(row["MRR@10_vs_ref"], abs=1e-4)
    assert float(match[3]) == pytest.approx(row["MRR@10_vs_ref_ci_low"], abs=1e-4)
    assert float(match[5]) == pytest.approx(row["MRR@10_vs_ref_p_holm"], rel=1e-2)
    hybrid = next(ln for ln in md.splitlines() if ln.startswith("| hybrid_rrf_base"))
    assert [c.strip() for c in hybrid.strip().strip("|").split("|")][-1] == ""  # its reference is base: no test
    assert "one family per eval set and column" in md and md.rstrip().endswith("per row in remedies.csv._")
    assert not re.search(r"\bnan\b", md)


def test_wise_ft_points_put_base_at_zero_and_the_variant_at_one():
    wise = {
        "full_hard_wise50": {"source": "full_hard", "variant": "full_hard", "seed": 1, "weight": 0.5},
        "full_hard_seed2_wise50": {"source": "full_hard_seed2", "variant": "full_hard", "seed": 2, "weight": 0.5},
        "lora_hard_wise25": {"source": "lora_hard", "variant": "lora_hard", "seed": 1, "weight": 0.25},
    }
    values = {("base", "dev"): 0.30, ("full_hard", "dev"): 0.20, ("full_hard_seed2", "dev"): 0.24,
              ("full_hard_wise50", "dev"): 0.31, ("full_hard_seed2_wise50", "dev"): 0.33,
              ("lora_hard", "dev"): 0.25, ("lora_hard_wise25", "dev"): 0.29}  # fmt: skip
    df = wise_ft_points(wise, values, ["dev"])
    full = df[df["variant"] == "full_hard"].set_index("weight")
    assert list(full.index) == [0.0, 0.5, 1.0]
    assert full.loc[0.0, "value"] == pytest.approx(0.30) and full.loc[1.0, "value"] == pytest.approx(0.22)
    assert full.loc[0.5, "value"] == pytest.approx(0.32) and full.loc[0.5, "value_sd"] == pytest.approx(
        np.std([0.31, 0.33], ddof=1)
    )
    assert full.loc[0.5, "n_seeds"] == 2
    lora = df[df["variant"] == "lora_hard"]
    assert list(lora["weight"]) == [0.0, 0.25, 1.0] and list(lora["value"]) == pytest.approx([0.30, 0.29, 0.25])
    del values[("lora_hard", "dev")]
    with pytest.raises(ValueError, match=r"\('lora_hard', 'dev'\)"):
        wise_ft_points(wise, values, ["dev"])


# ---- what a config schedules (dry runs, a few seconds each) ------------------------------------------------------
REPORT_REMEDY_RULES = ("remedies_table", "figure_remedies", "figure_wise_ft")


def _scheduled(tmp_path, *args) -> dict[str, int]:
    """rule -> job count of a dry run of config/test.yaml with ``args`` (more configfiles, --config ...)."""
    from conftest import make_workdir, snakemake

    wd = make_workdir(tmp_path / "wd")
    out = snakemake(wd, "-n", "--cores", "1", "--configfile", "config/test.yaml", *args).stdout
    stats = out[out.index("Job stats:") :].split("total")[0]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", stats, re.M)}


def test_paper_config_schedules_no_remedy_rule(tmp_path):
    jobs = _scheduled(tmp_path, "--config", "remedies=False")  # whatever remedies the embedded default carries
    assert not set(REPORT_REMEDY_RULES) & set(jobs) and jobs["significance"] == 1


def test_a_remedy_variant_schedules_the_remedies_table_and_forest_plot(tmp_path):
    (tmp_path / "remedy.yaml").write_text(
        "remedies: true\nwise_ft: {weights: []}\nfusion: {methods: []}\n"
        "variants:\n  full_hard_l2sp: {method: full, negatives: hard, loss: triplet_cosine, epochs: 1,\n"
        "                   modifies: full_hard, training: {l2sp: 0.1}}\n"
    )
    jobs = _scheduled(tmp_path, str(tmp_path / "remedy.yaml"))
    assert jobs["remedies_table"] == 1 and jobs["figure_remedies"] == 1 and "figure_wise_ft" not in jobs
