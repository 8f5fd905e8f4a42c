"""Tables I-III follow from the metrics, timing and training-summary files (fake files built here)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from ftstudy import paper
from ftstudy.metrics import METRIC_NAMES as MEASURES
from ftstudy.tables import inference_table, mrr_table, training_table, write_table

TRAINED = {
    "full_random": {"variant": "full_random", "seed": 42},
    "full_random_seed43": {"variant": "full_random", "seed": 43},
    "lora_hard": {"variant": "lora_hard", "seed": 42},
}
INFO = {
    "base": {"config_hash": "aaaaaaaaaaaa", "seed": None},
    "bm25": {"config_hash": "bbbbbbbbbbbb", "seed": None},
    "full_random": {"config_hash": "cccccccccccc", "seed": 42},
    "full_random_seed43": {"config_hash": "dddddddddddd", "seed": 43},
    "lora_hard": {"config_hash": "eeeeeeeeeeee", "seed": 42},
}
VALUES = {  # model -> MRR@10 on dev; other measures derived from it
    "base": 0.30,
    "bm25": 0.18,
    "full_random": 0.26,
    "full_random_seed43": 0.28,
    "lora_hard": 0.21,
}


def _write(path, obj):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))
    return path


def _metrics_files(tmp_path, eval_sets=("dev",)):
    files = {}
    for e in eval_sets:
        for m, v in VALUES.items():
            metrics = {"MRR@10": v, "MRR@100": v + 0.01, "nDCG@10": v + 0.05, "R@100": 0.8, "R@1000": 0.9}
            if m == "bm25":  # ir-measures names are accepted too
                metrics = {"RR@10": v, "RR@100": v + 0.01, "nDCG@10": v + 0.05, "R@100": 0.8, "R@1000": 0.9}
            prov = {"versions": {"torch": "2.13.0", "python": "3.11"}, "model_sha256": f"{m[:3]}{'0' * 61}"}
            files[(m, e)] = _write(tmp_path / "metrics" / m / f"{e}.json",
                                   {"model": m, "eval_set": e, "n_queries": 270, "metrics": metrics,
                                    "provenance": prov})  # fmt: skip
    return files


def _significance():
    rows = [
        ("full_random", 0.001, 0.002, True),
        ("full_random_seed43", 0.20, 0.30, False),
        ("lora_hard", 0.0001, 0.0001, True),
        ("bm25", 0.0001, 0.0001, True),
    ]
    return pd.DataFrame(
        [{"eval_set": "dev", "measure": "MRR@10", "model": m, "p_randomisation_holm": p, "p_ttest_holm": t,
          "significant": s} for m, p, t, s in rows]
    )  # fmt: skip


def test_mrr_table_follows_from_the_metrics_files(tmp_path):
    df = mrr_table(_metrics_files(tmp_path, ("dev", "dl19")), TRAINED, INFO, _significance())
    assert len(df) == 4 * 2  # base, bm25, full_random (2 seeds), lora_hard on each of two eval sets
    dev = df[df.eval_set == "dev"].set_index("model")
    assert dev.loc["base", "MRR@10"] == pytest.approx(0.30)
    assert dev.loc["bm25", "MRR@10"] == pytest.approx(0.18)  # RR@10 read as MRR@10
    assert dev.loc["full_random", "MRR@10"] == pytest.approx(0.27)  # mean of the two seeds
    assert dev.loc["full_random", "MRR@10_sd"] == pytest.approx(np.std([0.26, 0.28], ddof=1))
    assert dev.loc["full_random", "n_seeds"] == 2
    assert dev.loc["full_random", "MRR@10_pct_vs_base"] == pytest.approx(100 * (0.27 - 0.30) / 0.30)
    assert dev.loc["lora_hard", "MRR@10_pct_vs_base"] == pytest.approx(-30.0)
    assert dev.loc["base", "MRR@10_pct_vs_base"] == pytest.approx(0.0)
    for m in ("base", "bm25", "full_random", "lora_hard"):
        assert dev.loc[m, "nDCG@10"] == pytest.approx(dev.loc[m, "MRR@10"] + 0.05)
    # significance: the larger p across seeds, significant only if every seed is
    assert dev.loc["full_random", "p_vs_base_holm"] == pytest.approx(0.20)
    assert dev.loc["full_random", "sig_vs_base"] == "n.s."
    assert dev.loc["lora_hard", "sig_vs_base"] == "*"
    # the paper's values beside ours, only on its eval set
    assert dev.loc["lora_hard", "paper_MRR@10"] == paper.TABLE_I["lora_hard"]["MRR@10"]
    assert dev.loc["base", "paper_MRR@100"] == paper.TABLE_I["base"]["MRR@100"]
    assert pd.isna(dev.loc["bm25", "paper_MRR@10"])
    assert df[df.eval_set == "dl19"]["paper_MRR@10"].isna().all()
    # provenance on every row
    assert dev.loc["full_random", "config_hash"] == "cccccccccccc;dddddddddddd"
    assert dev.loc["full_random", "seed"] == "42;43"
    assert dev.loc["lora_hard", "model_hash"] == "lor" + "0" * 9
    assert dev.loc["base", "versions"] == "torch=2.13.0"


def test_single_seed_has_no_spread_columns(tmp_path):
    files = {k: v for k, v in _metrics_files(tmp_path).items() if k[0] != "full_random_seed43"}
    df = mrr_table(files, TRAINED, INFO)
    assert not [c for c in df.columns if c.endswith("_sd")]
    assert set(df["n_seeds"]) == {1}


def _timing(tmp_path, model, seconds, n=300, suffix=""):
    return _write(tmp_path / "timing" / f"{model}{suffix}.json",
                  {"n_queries": n, "seconds": seconds, "qps": n / seconds, "device": "cpu", "backend": "torch",
                   "dtype": "fp32", "versions": {"torch": "2.13.0"}})  # fmt: skip


def test_inference_table_follows_from_the_timing_files(tmp_path):
    files = {
        ("base", "merged"): _timing(tmp_path, "base", 10.0),
        ("bm25", "none"): _timing(tmp_path, "bm25", 4.0),
        ("lora_hard", "merged"): _timing(tmp_path, "lora_hard", 10.5),
        ("lora_hard", "unmerged"): _timing(tmp_path, "lora_hard", 12.0, suffix=".unmerged"),
    }
    df = inference_table(files, TRAINED, INFO).set_index(["model", "weights"])
    assert df.loc[("lora_hard", "merged"), "seconds"] == 10.5
    assert df.loc[("lora_hard", "unmerged"), "seconds_pct_vs_base"] == pytest.approx(20.0)
    assert df.loc[("lora_hard", "merged"), "qps_pct_vs_base"] == pytest.approx(100 * (300 / 10.5 - 30) / 30)
    assert df.loc[("base", "merged"), "seconds_per_10k"] == pytest.approx(10.0 * 10_000 / 300)
    assert df.loc[("lora_hard", "unmerged"), "paper_seconds"] == paper.TABLE_II["lora_hard"]["seconds"]
    assert df.loc[("bm25", "none"), "device"] == "cpu"
    assert df.loc[("lora_hard", "merged"), "config_hash"] == "eeeeeeeeeeee"


def _summary(tmp_path, model, loss, acc, variant_cfg):
    return _write(tmp_path / "models" / model / "train_summary.json",
                  {"final_train_loss": loss, "eval_cosine_accuracy": acc, "trainable_params": 100,
                   "trainable_fraction": 0.0065, "wall_time_s": 60.0, "triplets_per_s": 50.0, "device": "cpu",
                   "dtype": "fp32", "versions": {"torch": "2.13.0"}, "config": {"variant": variant_cfg, "seed": 1},
                   "start_weights_sha256": "0" * 64})  # fmt: skip


def test_training_table_follows_from_the_summaries(tmp_path):
    cfg = {"method": "full", "negatives": "random", "loss": "triplet_cosine"}
    files = {
        "full_random": _summary(tmp_path, "full_random", 0.10, 0.90, cfg),
        "full_random_seed43": _summary(tmp_path, "full_random_seed43", 0.20, 0.80, cfg),
        "lora_hard": _summary(tmp_path, "lora_hard", 0.5, 0.7, {"method": "lora", "negatives": "hard",
                                                                 "loss": "triplet_euclidean"}),
    }  # fmt: skip
    df = training_table(files, TRAINED, INFO).set_index("model")
    assert df.loc["full_random", "final_train_loss"] == pytest.approx(0.15)
    assert df.loc["full_random", "eval_cosine_accuracy_sd"] == pytest.approx(np.std([0.9, 0.8], ddof=1))
    assert df.loc["lora_hard", "loss"] == "triplet_euclidean"
    assert df.loc["lora_hard", "paper_final_train_loss"] == paper.TABLE_III["lora_hard"]["final_train_loss"]
    assert df.loc["lora_hard", "paper_trainable_fraction"] == pytest.approx(0.039)
    assert df.loc["lora_hard", "seed"] == "42"


def test_bad_files_are_named(tmp_path):
    bad = tmp_path / "metrics" / "base" / "dev.json"
    bad.parent.mkdir(parents=True)
    bad.write_text('{"model": "base", ')
    with pytest.raises(ValueError, match="dev.json.*not valid JSON"):
        mrr_table({("base", "dev"): bad}, {}, {})
    missing = _write(tmp_path / "t.json", {"n_queries": 3, "seconds": 1.0})
    with pytest.raises(ValueError, match=r"t.json.*qps"):
        inference_table({("base", "merged"): missing}, {}, {})


def _read_markdown(path):
    """(header, rows, footnote lines) of a Markdown table file written by write_table."""
    lines = path.read_text().splitlines()
    table = [ln for ln in lines if ln.startswith("|")]
    cells = [[c.strip() for c in ln.strip("|").split("|")] for ln in table]
    notes = [ln for ln in lines if ln and not ln.startswith("|")]
    return cells[0], cells[2:], notes


def test_markdown_shows_what_a_reader_compares_and_the_csv_keeps_provenance(tmp_path):
    df = mrr_table(_metrics_files(tmp_path), TRAINED, INFO, _significance())
    write_table(df, tmp_path / "mrr.csv", tmp_path / "mrr.md")
    header, rows, notes = _read_markdown(tmp_path / "mrr.md")
    assert header == ["model", "eval_set", "n_seeds", *(f"{m} ± sd" for m in MEASURES), "MRR@10_pct_vs_base",
                      "p_vs_base_holm", "sig_vs_base", "paper_MRR@10", "paper_MRR@100"]  # fmt: skip
    by_model = {r[0]: dict(zip(header, r, strict=True)) for r in rows}
    assert set(by_model) == {"base", "bm25", "full_random", "lora_hard"}
    mean, sd = by_model["full_random"]["MRR@10 ± sd"].split(" ± ")  # 4 significant digits, seeds' spread beside
    assert (float(mean), float(sd)) == (0.27, pytest.approx(np.std([0.26, 0.28], ddof=1), rel=1e-3))
    assert by_model["base"]["MRR@10 ± sd"] == "0.3" and by_model["base"]["n_seeds"] == "1"
    assert float(by_model["lora_hard"]["MRR@10_pct_vs_base"]) == pytest.approx(-30.0)
    assert by_model["lora_hard"]["paper_MRR@10"] == f"{paper.TABLE_I['lora_hard']['MRR@10']:.4g}"
    assert by_model["bm25"]["paper_MRR@10"] == "" and by_model["base"]["p_vs_base_holm"] == ""  # not "nan"
    assert not any("cccccccccccc" in r or "torch=" in r for row in rows for r in row), "provenance in a row"
    (note,) = notes  # one footnote line
    assert "config_hash: 5 distinct" in note and "seed 42/43" in note and "versions torch=2.13.0" in note
    assert "model_hash: 4 distinct" in note and "n_queries 270" in note and note.endswith("per row in mrr.csv._")
    assert "p_ttest_vs_base_holm" in note  # the secondary test is named, its values are in the CSV
    back = pd.read_csv(tmp_path / "mrr.csv", dtype={"seed": str}).set_index("model")
    assert list(back.reset_index().columns) == list(df.columns)
    assert {"config_hash", "seed", "versions", "model_hash", "n_queries", "p_ttest_vs_base_holm"} <= set(back.columns)
    assert (
        back.loc["full_random", "config_hash"] == "cccccccccccc;dddddddddddd"
        and back.loc["full_random", "seed"] == "42;43"
    )
    assert back["MRR@10"].to_numpy() == pytest.approx(df["MRR@10"].to_numpy())


def test_markdown_of_a_per_model_table_with_missing_seeds(tmp_path):
    """Like geometry.csv: an integer seed column with a gap (base has none) and run-context columns."""
    df = pd.DataFrame({"model": ["base", "full_random"], "n_pairs": 24, "dim": 384, "alignment": [0.5, 0.25],
                       "config_hash": ["aaaaaaaaaaaa", "cccccccccccc"],
                       "seed": pd.array([None, 42], dtype="Int64")})  # fmt: skip
    write_table(df, tmp_path / "geometry.csv", tmp_path / "geometry.md")
    header, rows, (note,) = _read_markdown(tmp_path / "geometry.md")
    assert header == ["model", "alignment"] and [r[1] for r in rows] == ["0.5", "0.25"]
    assert "config_hash aaaaaaaaaaaa/cccccccccccc" in note and "seed 42;" in note and "n_pairs 24" in note
    assert list(pd.read_csv(tmp_path / "geometry.csv").columns) == list(df.columns)
    write_table(df.iloc[:0], tmp_path / "e.csv", tmp_path / "e.md")
    assert (tmp_path / "e.md").read_text() == "_(no rows)_\n"


def test_row_provenance_hashes_only_the_models_own_slice():
    from ftstudy.config import load_config
    from ftstudy.model_provenance import row_info

    paper = {"remedies": False, "training": {"seeds": [42, 43]}}  # the paper's models, whatever the default adds
    config = load_config(overrides=paper)
    changed = load_config(overrides={**paper, "variants": {"lora_hard": {"training": {"lr": 1e-4}}}})
    a, b = row_info(config), row_info(changed)
    assert set(a) == {"base", "bm25", "full_random", "full_hard", "lora_random", "lora_hard"} | {
        f"{v}_seed43" for v in ("full_random", "full_hard", "lora_random", "lora_hard")
    }
    assert a["full_random_seed43"]["seed"] == 43 and a["base"]["seed"] is None
    differ = {m for m in a if a[m]["config_hash"] != b[m]["config_hash"]}
    assert differ == {"lora_hard", "lora_hard_seed43"}
    assert a["full_random"]["config_hash"] != a["full_random_seed43"]["config_hash"]


# ---- building the DAG stays light --------------------------------------------------------------------------------
HEAVY = ("scipy", "torch", "pandas", "numpy", "sentence_transformers", "transformers", "matplotlib", "pyarrow")


def test_what_the_rule_files_import_loads_nothing_heavy():
    """Snakemake runs the Snakefile and every rule file on each dry run: the modules they import (found in the
    files themselves) must not pull in SciPy, torch, pandas or NumPy."""
    import re
    import subprocess
    import sys

    from conftest import REPO

    sources = [REPO / "Snakefile", *sorted((REPO / "workflow/rules").glob("*.smk"))]
    pattern = re.compile(r"^(?:from\s+([\w.]+)\s+import\s+([\w, ]+)|import\s+([\w.]+))", re.M)
    modules = set()
    for path in sources:
        for base, names, plain in pattern.findall(path.read_text()):
            modules.add(plain or base)
            if base == "ftstudy":  # from ftstudy import config: a submodule
                modules |= {f"ftstudy.{n.split(' as ')[0].strip()}" for n in names.split(",")}
    assert "ftstudy.model_provenance" in modules and "ftstudy.tables" not in modules
    code = (
        f"import importlib, sys\nfor m in {sorted(modules)!r}: importlib.import_module(m)\n"
        f"print(sorted(h for h in {HEAVY!r} if h in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "[]", f"the rule files' imports {sorted(modules)} load {out.stdout.strip()}"
