"""Figures render non-empty PNG and PDF files; the report rules run on fake upstream outputs (workflow test)."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ftstudy import figures


def _assert_png(path: Path, min_px: int = 300):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    assert width >= min_px and height >= min_px // 2, f"{path}: {width}x{height} is too small to read"
    assert len(data) > 10_000, f"{path} looks empty"


def _assert_pdf(path: Path):
    data = path.read_bytes()
    assert data[:5] == b"%PDF-" and len(data) > 2_000, f"{path} is not a non-empty PDF"


def test_umap_grid(tmp_path):
    rng = np.random.default_rng(0)
    coords = {m: rng.normal(size=(40, 2)) for m in ("base", "full_random", "lora_hard", "full_hard")}
    figures.umap_grid(coords, 20, tmp_path / "u.png", tmp_path / "u.pdf")
    _assert_png(tmp_path / "u.png")
    _assert_pdf(tmp_path / "u.pdf")


def test_training_loss(tmp_path):
    steps = np.arange(0, 500, 5)
    logs = {
        m: pd.DataFrame({"step": steps, "loss": np.exp(-steps / 200) + 0.05 * np.sin(steps)})
        for m in ("full_random", "full_random_seed43", "lora_hard")
    }
    groups = {"full_random": "full_random", "full_random_seed43": "full_random", "lora_hard": "lora_hard"}
    losses = {"full_random": "triplet_cosine", "full_random_seed43": "triplet_cosine", "lora_hard": "mnrl"}
    figures.training_loss(logs, groups, tmp_path / "l.png", tmp_path / "l.pdf", losses=losses)
    _assert_png(tmp_path / "l.png")
    _assert_pdf(tmp_path / "l.pdf")


def test_smoothing_is_an_ema():
    x = np.array([1.0, 0.0, 0.0, 0.0])
    assert figures.smooth(x, 1) == pytest.approx(x)  # span 1: no smoothing
    s = figures.smooth(x, 3)  # alpha = 2 / (span + 1) = 0.5, bias-corrected weights
    assert s[1] == pytest.approx(0.5 / 1.5)
    assert np.all(np.diff(s) < 0)


def test_mrr_ci_and_rank_histogram(tmp_path):
    df = pd.DataFrame(
        {
            "model": ["base", "full_random", "bm25"],
            "eval_set": "dev",
            "mean": [0.3, 0.26, 0.18],
            "ci_low": [0.28, 0.24, 0.16],
            "ci_high": [0.32, 0.28, 0.2],
            "paper": [0.3026, 0.2619, np.nan],
        }
    )
    figures.mrr_ci(df, tmp_path / "m.png", tmp_path / "m.pdf")
    _assert_png(tmp_path / "m.png")
    _assert_pdf(tmp_path / "m.pdf")
    ranks = np.random.default_rng(1).integers(51, 201, 1000)
    figures.rank_histogram(ranks, (51, 200), tmp_path / "r.png", tmp_path / "r.pdf")
    _assert_png(tmp_path / "r.png")
    _assert_pdf(tmp_path / "r.pdf")


def test_ranks_from_stats_reads_several_shapes():
    expected = [51, 51, 60]
    assert sorted(figures.ranks_from_stats({"rank_histogram": {"51": 2, "60": 1}})) == expected
    assert sorted(figures.ranks_from_stats({"neg_rank_hist": [[51, 2], [60, 1]]})) == expected
    assert sorted(figures.ranks_from_stats({"histogram": {"ranks": [51, 60], "counts": [2, 1]}})) == expected
    with pytest.raises(ValueError, match="stats.json.*no rank histogram"):
        figures.ranks_from_stats({"n_triplets": 3}, "stats.json")


def test_read_train_log_names_the_file(tmp_path):
    bad = tmp_path / "train_log.csv"
    bad.write_text("step,epoch\n1,0\n")
    with pytest.raises(ValueError, match="train_log.csv.*loss"):
        figures.read_train_log(bad)


# ---- the report rules on fake upstream outputs ----------------------------------------------------------------
NEURAL = ["base", "full_random", "full_hard", "lora_random", "lora_hard"]
ALL = [*NEURAL, "bm25"]
LORA = ["lora_random", "lora_hard"]


def _json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


def fake_upstream(root: Path, n_queries: int = 32, n_pairs: int = 24, dim: int = 16) -> None:
    """Every file that the report rules read, for config/test.yaml's models, with plausible values."""
    rng = np.random.default_rng(0)
    qids = np.arange(1000, 1000 + n_queries)
    res = root / "results"
    (res / "data/eval/dev").mkdir(parents=True)
    pd.DataFrame({"qid": qids, "text": [f"query {q}" for q in qids]}).to_parquet(res / "data/eval/dev/queries.parquet")
    pd.DataFrame({"qid": qids, "pid": qids * 10, "relevance": np.ones(n_queries, dtype="int8")}).to_parquet(
        res / "data/eval/dev/qrels.parquet"
    )
    quality = {"base": 0.6, "full_random": 0.5, "full_hard": 0.45, "lora_random": 0.5, "lora_hard": 0.4, "bm25": 0.3}
    for m in ALL:
        rr = np.where(rng.random(n_queries) < quality[m], 1.0 / rng.integers(1, 4, n_queries), 0.0)
        rows = [(q, name, v) for q, v in zip(qids, rr, strict=True) for name in ("RR@10", "RR@100", "nDCG@10")]
        rows += [(q, name, float(v > 0)) for q, v in zip(qids, rr, strict=True) for name in ("R@100", "R@1000")]
        pq = pd.DataFrame(rows, columns=["qid", "measure", "value"])
        (res / f"metrics/{m}").mkdir(parents=True)
        pq.to_parquet(res / f"metrics/{m}/dev.per_query.parquet")
        means = pq.groupby("measure")["value"].mean().to_dict()
        _json(
            res / f"metrics/{m}/dev.json",
            {
                "model": m,
                "eval_set": "dev",
                "n_queries": n_queries,
                "metrics": means,
                "provenance": {"versions": {"torch": "2.13.0"}, "model_sha256": "ab" * 32},
            },
        )
        seconds = {"bm25": 0.5, "lora_random": 1.1, "lora_hard": 1.1}.get(m, 1.0)
        _json(
            res / f"timing/{m}.json",
            {
                "n_queries": 40,
                "seconds": seconds,
                "qps": 40 / seconds,
                "device": "cpu",
                "backend": "torch",
                "dtype": "fp32",
                "versions": {},
            },
        )
    for m in LORA:
        _json(
            res / f"timing/{m}.unmerged.json",
            {
                "n_queries": 40,
                "seconds": 1.6,
                "qps": 25.0,
                "device": "cpu",
                "backend": "torch",
                "dtype": "fp32",
                "versions": {},
            },
        )
    for m in NEURAL[1:]:
        steps = np.arange(1, 61)
        (res / f"models/{m}").mkdir(parents=True)
        log = pd.DataFrame(
            {
                "step": steps,
                "epoch": steps / 60,
                "learning_rate": 2e-5,
                "grad_norm": 1.0,
                "loss": 0.2 * np.exp(-steps / 30) + rng.normal(0, 0.01, 60),
            }
        )
        log.to_csv(res / f"models/{m}/train_log.csv", index=False)
        method, neg = m.split("_")
        _json(
            res / f"models/{m}/train_summary.json",
            {
                "final_train_loss": 0.05,
                "eval_cosine_accuracy": 0.9,
                "trainable_params": 1000,
                "trainable_fraction": 0.0065 if method == "lora" else 1.0,
                "wall_time_s": 30.0,
                "triplets_per_s": 20.0,
                "device": "cpu",
                "dtype": "fp32",
                "versions": {"torch": "2.13.0"},
                "config": {"variant": {"method": method, "negatives": neg, "loss": "triplet_cosine"}, "seed": 42},
            },
        )
    neg_rank = rng.integers(6, 41, 96)
    (res / "triplets").mkdir(parents=True)
    pd.DataFrame(
        {"query": "q", "positive": "p", "negative": "n", "qid": 1, "pos_pid": 2, "neg_pid": 3, "neg_rank": neg_rank}
    ).to_parquet(res / "triplets/hard.parquet")
    _json(res / "triplets/hard_stats.json", {"n_triplets": 96})
    # the pairs and their embeddings (what sample_pairs / encode_pairs write): clustered, model-dependent noise
    (res / "analysis/pairs").mkdir(parents=True)
    pairs = pd.DataFrame({"qid": qids[:n_pairs], "pid": qids[:n_pairs] * 10, "rand_pid": qids[:n_pairs] * 10 + 1})
    pairs.to_parquet(res / "analysis/pairs.parquet")
    centres = rng.normal(size=(4, dim))
    topic = rng.integers(0, 4, n_pairs)
    for i, m in enumerate(NEURAL):
        q = centres[topic] + rng.normal(0, 0.3 + 0.1 * i, (n_pairs, dim))
        p = q + rng.normal(0, 0.3, (n_pairs, dim))
        r = rng.normal(size=(n_pairs, dim))
        arrays = {
            k: (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)
            for k, v in (("q", q), ("p", p), ("r", r))
        }
        np.savez(res / f"analysis/pairs/{m}.npz", qid=pairs.qid, pid=pairs.pid, rand_pid=pairs.rand_pid, **arrays)


REPORT_RULES = [
    "significance",
    "tables",
    "geometry",
    "figure_training_loss",
    "figure_mrr_ci",
    "figure_hard_negative_ranks",
]
TARGETS = [
    f"results/tables/{t}.{x}"
    for t in ("mrr", "inference", "training", "significance", "geometry")
    for x in ("csv", "md")
] + [f"results/figures/{f}.{x}" for f in ("training_loss", "mrr_ci", "hard_negative_ranks") for x in ("png", "pdf")]


@pytest.mark.workflow
def test_report_rules_and_html_report_on_fake_inputs(tmp_path):
    from conftest import make_workdir, snakemake

    wd = make_workdir(tmp_path / "wd")
    fake_upstream(wd)
    args = ["--configfile", "config/test.yaml", "--allowed-rules", *REPORT_RULES]
    snakemake(wd, "--cores", "2", *args, "--", *TARGETS)
    for t in TARGETS:
        assert (wd / t).stat().st_size > 0, t
    mrr = pd.read_csv(wd / "results/tables/mrr.csv").set_index("model")
    truth = pd.read_parquet(wd / "results/metrics/lora_hard/dev.per_query.parquet")
    assert mrr.loc["lora_hard", "MRR@10"] == pytest.approx(truth[truth.measure == "RR@10"]["value"].mean())
    assert set(mrr.index) == set(ALL)
    assert mrr["config_hash"].str.len().min() == 12
    sig = pd.read_csv(wd / "results/tables/significance.csv")
    assert set(sig["model"]) == set(ALL) - {"base"}
    geo = pd.read_csv(wd / "results/tables/geometry.csv")
    assert list(geo["model"]) == NEURAL and geo["effective_rank"].between(1, 16).all()
    inf = pd.read_csv(wd / "results/tables/inference.csv")
    assert len(inf) == len(ALL) + len(LORA)
    weights = inf.groupby("model")["weights"].agg(sorted).to_dict()  # read back as text, not NaN
    assert weights["bm25"] == ["none"] and weights["base"] == ["merged"]
    assert all(weights[m] == ["merged", "unmerged"] for m in LORA)
    snakemake(wd, "--cores", "1", *args, "--report", "results/report.html", "--", *TARGETS)
    html = (wd / "results/report.html").read_text(errors="replace")
    assert "Table I" in html and "hard negatives" in html


@pytest.mark.workflow
def test_umap_rule_on_fake_embeddings(tmp_path):
    """Slow (about 2 min here): AlignedUMAP's numba functions compile on first use in every process."""
    from conftest import make_workdir, snakemake

    wd = make_workdir(tmp_path / "wd")
    fake_upstream(wd)
    snakemake(
        wd,
        "--cores",
        "1",
        "--configfile",
        "config/test.yaml",
        "--allowed-rules",
        "umap",
        "--",
        "results/figures/umap.png",
        "results/figures/umap.pdf",
    )
    _assert_png(wd / "results/figures/umap.png")
    _assert_pdf(wd / "results/figures/umap.pdf")
    coords = pd.read_parquet(wd / "results/analysis/umap_coords.parquet")
    assert set(coords["model"]) == set(NEURAL) and len(coords) == 2 * 24 * len(NEURAL)
    assert np.isfinite(coords[["x", "y"]].to_numpy()).all()
