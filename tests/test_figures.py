"""Figures: their content read from the matplotlib Figure (panels, titles, points, legends), PNG and PDF saved;
the report rules and the HTML report run on fake upstream outputs (workflow test)."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import matplotlib.pyplot as plt
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


def _legend_labels(legend) -> list[str]:
    return [t.get_text() for t in legend.get_texts()]


def _visible(fig) -> list:
    return [ax for ax in fig.axes if ax.get_visible()]


def test_save_writes_png_and_pdf_and_closes(tmp_path):
    fig = figures.rank_histogram(np.arange(51, 201), (51, 200))
    figures.save(fig, tmp_path / "r.png", tmp_path / "r.pdf")
    _assert_png(tmp_path / "r.png")
    _assert_pdf(tmp_path / "r.pdf")
    assert not plt.fignum_exists(fig.number)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.pdf", "r.png"]  # no temporary leftovers


def test_umap_grid_one_panel_per_model_with_every_pair():
    rng = np.random.default_rng(0)
    models = ("base", "full_random", "lora_hard", "full_hard")
    coords = {m: rng.normal(size=(40, 2)) for m in models}
    fig = figures.umap_grid(coords, 20, title="dev pairs")
    panels = _visible(fig)
    assert len(fig.axes) == 6 and [ax.get_title() for ax in panels] == list(models)  # 2 x 3 grid, 2 hidden
    for ax, model in zip(panels, models, strict=True):
        queries, passages = ax.collections
        np.testing.assert_array_equal(queries.get_offsets(), coords[model][:20])
        np.testing.assert_array_equal(passages.get_offsets(), coords[model][20:])
        assert ax.get_xlim() == panels[0].get_xlim()  # one frame shared by every panel
    assert _legend_labels(fig.legends[0]) == ["query", "positive passage"]
    assert fig.get_suptitle() == "dev pairs"
    plt.close(fig)


def _ema(x: np.ndarray, span: int) -> np.ndarray:
    """Bias-corrected EMA written out: y_t = sum_i w^(t-i) x_i / sum_i w^(t-i), w = 1 - 2 / (span + 1)."""
    w = 1 - 2 / (span + 1)
    return np.array(
        [np.dot(w ** np.arange(t, -1, -1), x[: t + 1]) / np.sum(w ** np.arange(t + 1)) for t in range(len(x))]
    )


def test_training_loss_one_panel_per_loss_raw_and_smoothed():
    steps = np.arange(0, 500, 5)  # 100 points: smoothing span max(5, 100 // 10) = 10
    logs = {
        m: pd.DataFrame({"step": steps, "loss": np.exp(-steps / 200) + 0.05 * np.sin(steps + i)})
        for i, m in enumerate(("full_random", "full_random_seed43", "lora_hard"))
    }
    groups = {"full_random": "full_random", "full_random_seed43": "full_random", "lora_hard": "lora_hard"}
    losses = {"full_random": "triplet_cosine", "full_random_seed43": "triplet_cosine", "lora_hard": "mnrl"}
    fig = figures.training_loss(logs, groups, losses=losses)
    triplet, mnrl = fig.axes
    assert triplet.get_ylabel() == "training loss (triplet_cosine)" and mnrl.get_ylabel() == "training loss (mnrl)"
    assert len(triplet.lines) == 4 and len(mnrl.lines) == 2  # raw + smoothed per model
    raw, smoothed = mnrl.lines
    np.testing.assert_array_equal(raw.get_xdata(), steps)
    np.testing.assert_allclose(raw.get_ydata(), logs["lora_hard"]["loss"])
    np.testing.assert_allclose(smoothed.get_ydata(), _ema(logs["lora_hard"]["loss"].to_numpy(), 10), rtol=1e-12)
    assert triplet.lines[1].get_color() == triplet.lines[3].get_color()  # seeds of a variant share its colour
    assert triplet.lines[3].get_linestyle() == "--"
    assert _legend_labels(triplet.get_legend()) == ["full_random", "raw", "smoothed (EMA)", "further seeds"]
    assert _legend_labels(mnrl.get_legend()) == ["lora_hard", "raw", "smoothed (EMA)"]
    plt.close(fig)


def test_smoothing_is_an_ema():
    x = np.array([1.0, 0.0, 0.0, 0.0])
    assert figures.smooth(x, 1) == pytest.approx(x)  # span 1: no smoothing
    s = figures.smooth(x, 3)  # alpha = 2 / (span + 1) = 0.5, bias-corrected weights
    assert s[1] == pytest.approx(0.5 / 1.5)
    assert np.all(np.diff(s) < 0)


def test_mrr_ci_one_panel_per_eval_set_with_intervals_and_paper_values():
    models = ["base", "full_random", "bm25"]
    df = pd.DataFrame(
        {
            "model": models * 2,
            "eval_set": ["dev"] * 3 + ["graded"] * 3,
            "mean": [0.3, 0.26, 0.18, 0.5, 0.45, np.nan],
            "ci_low": [0.28, 0.24, 0.16, 0.46, 0.41, np.nan],
            "ci_high": [0.32, 0.28, 0.2, 0.54, 0.49, np.nan],
            "paper": [0.3026, 0.2619, np.nan, np.nan, np.nan, np.nan],
        }
    )
    fig = figures.mrr_ci(df)
    dev, graded = fig.axes
    assert [dev.get_xlabel(), graded.get_xlabel()] == ["MRR@10 on dev", "MRR@10 on graded"]
    assert [t.get_text() for t in dev.get_yticklabels()] == models
    assert all(ax.get_ylim()[0] > ax.get_ylim()[1] for ax in (dev, graded))  # the first model on top, both panels
    assert len(dev.containers) == 3 and len(graded.containers) == 2  # no interval where a model has no value
    for ax, sub in ((dev, df[:3]), (graded, df[3:5])):
        for bars, (_, row) in zip(ax.containers, sub.iterrows(), strict=True):
            point, _, (segment,) = bars.lines
            assert point.get_xdata()[0] == pytest.approx(row["mean"])
            np.testing.assert_allclose(segment.get_segments()[0][:, 0], [row["ci_low"], row["ci_high"]])
    paper = dev.collections[-1].get_offsets()
    np.testing.assert_allclose(paper[:2], [[0.3026, 0], [0.2619, 1]])  # x = the paper's value, y = the model's row
    assert "paper" not in [c.get_label() for c in graded.collections]  # no paper value on that set
    assert sorted(_legend_labels(fig.legends[0])) == ["ours (95% bootstrap CI)", "paper"]  # once each
    plt.close(fig)


def _remedies_frame() -> pd.DataFrame:
    """What remedies.csv holds for a forest plot: two eval sets, three remedies (one untested on graded)."""
    return pd.DataFrame(
        {
            "model": ["full_hard_l2sp", "full_hard_wise50", "hybrid_rrf_base"] * 2,
            "kind": ["variant", "wise", "hybrid"] * 2,
            "eval_set": ["dev"] * 3 + ["graded"] * 3,
            "MRR@10_vs_base": [-0.02, 0.01, 0.03, -0.05, 0.0, np.nan],
            "MRR@10_vs_base_ci_low": [-0.04, -0.01, 0.01, -0.09, -0.03, np.nan],
            "MRR@10_vs_base_ci_high": [0.0, 0.03, 0.05, -0.01, 0.03, np.nan],
        }
    )


def test_forest_plot_one_row_per_remedy_with_its_interval_and_a_line_at_zero(tmp_path):
    df = _remedies_frame()
    fig = figures.forest(df, "MRR@10", "base")
    dev, graded = fig.axes
    assert dev.get_xlabel() == "change in MRR@10 vs base on dev"
    assert [t.get_text() for t in dev.get_yticklabels()] == list(df["model"][:3])
    assert all(ax.get_ylim()[0] > ax.get_ylim()[1] for ax in (dev, graded))  # the first remedy on top
    assert len(dev.containers) == 3 and len(graded.containers) == 2  # no interval where nothing was compared
    for ax, sub in ((dev, df[:3]), (graded, df[3:5])):
        for i, (bars, (_, row)) in enumerate(zip(ax.containers, sub.iterrows(), strict=True)):
            point, _, (segment,) = bars.lines
            assert (point.get_xdata()[0], point.get_ydata()[0]) == (pytest.approx(row["MRR@10_vs_base"]), i)
            np.testing.assert_allclose(
                segment.get_segments()[0][:, 0], [row["MRR@10_vs_base_ci_low"], row["MRR@10_vs_base_ci_high"]]
            )
        (zero,) = [ln for ln in ax.lines if ln.get_label() == "no change"]
        assert list(zero.get_xdata()) == [0.0, 0.0]
    assert sorted(_legend_labels(fig.legends[0])) == sorted(
        ["trained remedy", "WiSE-FT interpolation", "BM25 + dense fusion", "no change"]
    )
    fused = [c.lines[0].get_color() for c in dev.containers][2]
    only_fused = figures.forest(df[df["kind"] == "hybrid"])  # a kind keeps its colour whatever else is plotted
    assert only_fused.axes[0].containers[0].lines[0].get_color() == fused
    plt.close(only_fused)
    figures.save(fig, tmp_path / "remedies.png", tmp_path / "remedies.pdf")
    _assert_png(tmp_path / "remedies.png")
    _assert_pdf(tmp_path / "remedies.pdf")


def test_wise_ft_one_line_per_variant_from_base_to_the_variant(tmp_path):
    df = pd.DataFrame(
        {
            "variant": ["full_hard"] * 3 + ["lora_hard"] * 3,
            "eval_set": "dev",
            "weight": [0.0, 0.5, 1.0] * 2,
            "value": [0.30, 0.32, 0.22, 0.30, 0.29, 0.25],
            "value_sd": [0.0, 0.01, 0.02, np.nan, np.nan, np.nan],
        }
    )
    fig = figures.wise_ft(df)
    (ax,) = fig.axes
    full, lora = ax.lines
    np.testing.assert_allclose(full.get_xdata(), [0.0, 0.5, 1.0])
    np.testing.assert_allclose(full.get_ydata(), [0.30, 0.32, 0.22])
    np.testing.assert_allclose(lora.get_ydata(), [0.30, 0.29, 0.25])
    assert len(ax.collections) == 1  # a seeds' band for full_hard only
    assert ax.get_ylabel() == "MRR@10 on dev" and "base" in ax.get_xticklabels()[0].get_text()
    assert _legend_labels(fig.legends[0]) == ["full_hard", "lora_hard"]
    figures.save(fig, tmp_path / "wise_ft.png", tmp_path / "wise_ft.pdf")
    _assert_png(tmp_path / "wise_ft.png")
    _assert_pdf(tmp_path / "wise_ft.pdf")


def test_rank_histogram_counts_every_drawn_rank_and_shades_the_range():
    ranks = np.random.default_rng(1).integers(51, 201, 1000)
    fig = figures.rank_histogram(ranks, (51, 200))
    (ax,) = fig.axes
    bars = ax.containers[0].patches
    heights = np.array([b.get_height() for b in bars])
    assert heights.sum() == len(ranks)
    assert {b.get_width() for b in bars} == {2.0}  # 150 ranks -> bins 2 ranks wide (at most 100 bins)
    for b in bars[::7]:
        assert b.get_height() == np.sum((ranks >= b.get_x()) & (ranks < b.get_x() + b.get_width()))
    assert sorted(_legend_labels(ax.get_legend())) == ["configured rank range 51-200", "drawn negatives (n = 1,000)"]
    (span,) = [p for p in ax.patches if p.get_label() == "configured rank range 51-200"]
    assert (span.get_x(), span.get_x() + span.get_width()) == (50.5, 200.5)  # ranks 51..200 inclusive
    plt.close(fig)


def test_ranks_from_stats_reads_what_mining_writes():
    drawn = np.array([60, 51, 51, 199, 60, 51])
    ranks, counts = np.unique(drawn, return_counts=True)  # hard_stats.json's drawn_rank_histogram
    stats = {"triplets": 6, "drawn_rank_histogram": {"ranks": ranks.tolist(), "counts": counts.tolist()}}
    np.testing.assert_array_equal(figures.ranks_from_stats(stats), np.sort(drawn))
    assert figures.ranks_from_stats({"drawn_rank_histogram": {"ranks": [], "counts": []}}).size == 0


@pytest.mark.parametrize(
    "stats",
    [
        {"triplets": 3},
        {"rank_histogram": {"51": 2, "60": 1}},  # formats nothing writes
        {"drawn_rank_histogram": [[51, 2], [60, 1]]},
        {"drawn_rank_histogram": {"ranks": [51, 60], "counts": [2]}},
        {"drawn_rank_histogram": {"ranks": [51.5], "counts": [2]}},
    ],
)
def test_ranks_from_stats_names_the_file_and_the_expected_shape(stats):
    with pytest.raises(ValueError, match=r'stats.json: .*expected \{"drawn_rank_histogram": \{"ranks"'):
        figures.ranks_from_stats(stats, "stats.json")


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


def fake_metrics(res: Path, model: str, qids: np.ndarray, quality: float, rng) -> None:
    """A model's per-query parquet and metrics JSON on dev: a reciprocal rank of 1, 1/2 or 1/3 for a ``quality``
    share of the queries, 0 otherwise (qids missing from the file count as 0, as ir-measures leaves them out)."""
    n = len(qids)
    rr = np.where(rng.random(n) < quality, 1.0 / rng.integers(1, 4, n), 0.0)
    rows = [(q, name, v) for q, v in zip(qids, rr, strict=True) for name in ("RR@10", "RR@100", "nDCG@10")]
    rows += [(q, name, float(v > 0)) for q, v in zip(qids, rr, strict=True) for name in ("R@100", "R@1000")]
    pq = pd.DataFrame(rows, columns=["qid", "measure", "value"])
    (res / f"metrics/{model}").mkdir(parents=True)
    pq.to_parquet(res / f"metrics/{model}/dev.per_query.parquet")
    _json(
        res / f"metrics/{model}/dev.json",
        {
            "model": model,
            "eval_set": "dev",
            "n_queries": n,
            "metrics": pq.groupby("measure")["value"].mean().to_dict(),
            "provenance": {"versions": {"torch": "2.13.0"}, "model_sha256": "ab" * 32},
        },
    )


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
        fake_metrics(res, m, qids, quality[m], rng)
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
    ranks, counts = np.unique(neg_rank, return_counts=True)
    _json(
        res / "triplets/hard_stats.json",
        {"triplets": 96, "drawn_rank_histogram": {"ranks": ranks.tolist(), "counts": counts.tolist()}},
    )
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
    args = ["--configfile", "config/test.yaml", "--config", "remedies=False", "--allowed-rules", *REPORT_RULES]
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


REMEDIES_YAML = """remedies: true
variants:
  full_hard_l2sp: {method: full, negatives: hard, loss: triplet_cosine, epochs: 1, modifies: full_hard,
                   training: {l2sp: 0.1}}
wise_ft: {weights: [0.5], variants: [full_hard, lora_hard]}
fusion: {methods: [rrf], models: [base, full_hard]}
"""
REMEDY_TARGETS = [f"results/tables/remedies.{x}" for x in ("csv", "md")] + [
    f"results/figures/{f}.{x}" for f in ("remedies", "wise_ft") for x in ("png", "pdf")
]


@pytest.mark.workflow
def test_remedy_rules_on_fake_inputs_leave_the_papers_family_alone(tmp_path):
    """The remedies table, forest plot and WiSE-FT figure on fake metrics of remedy models; significance.csv
    made again under the remedies config is byte for byte the paper-only one (the remedies are not its family)."""
    from conftest import REPO, make_workdir, snakemake

    from ftstudy.config import load_config, remedy_catalog

    wd = make_workdir(tmp_path / "wd")
    fake_upstream(wd)
    sig = "results/tables/significance.csv"
    snakemake(wd, "--cores", "1", "--configfile", "config/test.yaml", "--config", "remedies=False",
              "--allowed-rules", "significance", "--", sig)  # fmt: skip
    paper_only = (wd / sig).read_bytes()
    (wd / "remedies.yaml").write_text(REMEDIES_YAML)
    config = load_config(REPO / "config/test.yaml", wd / "remedies.yaml")
    catalog = remedy_catalog(config)
    qids = pd.read_parquet(wd / "results/data/eval/dev/queries.parquet")["qid"].to_numpy()
    rng = np.random.default_rng(1)
    for m in catalog:
        fake_metrics(wd / "results", m, qids, 0.7, rng)
    rules = ["significance", "remedies_table", "figure_remedies", "figure_wise_ft"]
    args = ["--configfile", "config/test.yaml", "remedies.yaml", "--allowed-rules", *rules]
    snakemake(wd, "--cores", "1", *args, "--forcerun", "significance", "--", sig, *REMEDY_TARGETS)
    assert (wd / sig).read_bytes() == paper_only
    df = pd.read_csv(wd / "results/tables/remedies.csv").set_index("model")
    assert set(df.index) == {e["group"] for e in catalog.values()}
    judged = pd.Index(qids, name="qid")

    def mrr(model):  # independent: the RR@10 rows over the judged queries, absent ones counting 0
        pq = pd.read_parquet(wd / f"results/metrics/{model}/dev.per_query.parquet")
        return pq[pq.measure == "RR@10"].set_index("qid")["value"].reindex(judged, fill_value=0.0).mean()

    row = df.loc["full_hard_l2sp"]
    assert row["reference"] == "full_hard" and row["MRR@10"] == pytest.approx(mrr("full_hard_l2sp"))
    assert row["MRR@10_vs_base"] == pytest.approx(mrr("full_hard_l2sp") - mrr("base"))
    assert row["MRR@10_vs_ref"] == pytest.approx(mrr("full_hard_l2sp") - mrr("full_hard"))
    assert row["MRR@10_vs_base_ci_low"] <= row["MRR@10_vs_base"] <= row["MRR@10_vs_base_ci_high"]
    assert df.loc["hybrid_rrf_base", "reference"] == "base" and pd.isna(df.loc["hybrid_rrf_base", "MRR@10_vs_ref"])
    assert df.loc["lora_hard_wise50", "MRR@10_vs_ref"] == pytest.approx(mrr("lora_hard_wise50") - mrr("lora_hard"))
    for path in REMEDY_TARGETS[2:]:
        (_assert_png if path.endswith(".png") else _assert_pdf)(wd / path)
    assert "**MRR@10**" in (wd / "results/tables/remedies.md").read_text()
    snakemake(wd, "--cores", "1", *args, "--report", "results/report.html", "--", *REMEDY_TARGETS)
    html = (wd / "results/report.html").read_text(errors="replace")
    assert "Does any remedy beat base" in html and "WiSE-FT: interpolating" in html
    assert "The remedies against base" in html


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
        "--config",
        "remedies=False",  # the paper's neural models: the ones fake_upstream embeds
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


# ---- the report's front page -------------------------------------------------------------------------------------
REPORT_FILES = [f"results/tables/{t}.csv" for t in ("mrr", "inference", "training", "significance", "geometry")] + [
    f"results/figures/{f}.png" for f in ("umap", "training_loss", "mrr_ci", "hard_negative_ranks")
]


def _render_front_page(config: dict) -> tuple[str, list[str]]:
    """workflow/report/workflow.rst rendered as Snakemake renders it (Jinja with trim_blocks/lstrip_blocks, then
    docutils to HTML, with the report's link targets appended): (html body, docutils messages)."""
    import io

    from conftest import REPO
    from docutils.core import publish_parts
    from jinja2 import Environment

    class Snakemake:
        pass

    Snakemake.config = config
    text = (REPO / "workflow/report/workflow.rst").read_text()
    links = "\n\n" + "\n".join(
        f".. _{t}: javascript:show('{t}')" for t in ("Workflow", "Statistics", "Tables", "Figures")
    )
    rst = Environment(trim_blocks=True, lstrip_blocks=True).from_string(text + links).render(snakemake=Snakemake)
    messages = io.StringIO()
    html = publish_parts(rst, writer="html", settings_overrides={"warning_stream": messages})["html_body"]
    return html, messages.getvalue().splitlines()


@pytest.mark.parametrize("configfile", ["config/test.yaml", "config/msmarco.yaml"])
def test_front_page_names_the_config_and_renders_cleanly(configfile):
    import html as html_lib

    from conftest import REPO

    from ftstudy.config import load_config

    config = load_config(REPO / "config/config.yaml", REPO / configfile)
    page, messages = _render_front_page(config)
    assert messages == [], messages  # no docutils warning: the Jinja loops keep the reST valid
    text = html_lib.unescape(page)
    assert "When Fine-Tuning Fails" in text and "The config that made this report" in text
    assert f"{config['dataset_dir']}" in text and all(name in text for name in config["variants"])
    assert ("This is the embedded default" in text) == (configfile == "config/test.yaml")  # synthetic data only
    assert f'"n_resamples": {config["analysis"]["n_resamples"]}' in text  # the full resolved config
    for path in REPORT_FILES:
        assert path.removeprefix("results/") in text, path


def test_front_page_names_the_remedies_when_there_are_some(tmp_path):
    import html as html_lib
    import re

    from conftest import REPO

    from ftstudy.config import load_config

    (tmp_path / "remedies.yaml").write_text(REMEDIES_YAML)
    page, messages = _render_front_page(load_config(REPO / "config/test.yaml", tmp_path / "remedies.yaml"))
    assert messages == [], messages
    text = re.sub(r"<[^>]+>", "", html_lib.unescape(page))
    assert "Beyond the paper" in text and "WiSE-FT interpolation at weights 0.5" in text and "fusion by rrf" in text
    assert "full_hard_l2sp: full, hard negatives, triplet_cosine loss, epochs 1; a remedy, modifies full_hard" in text
    assert "tables/remedies.csv" in text and "figures/remedies.png" in text and "figures/wise_ft.png" in text
    paper, _ = _render_front_page(load_config(REPO / "config/test.yaml", overrides={"remedies": False}))
    assert "Beyond the paper" not in paper and "remedies.csv" not in paper


@pytest.mark.workflow
def test_snakemake_report_opens_with_the_front_page(tmp_path):
    """``snakemake --report`` on a results tree that has only the files marked for the report (no job runs)."""
    import html as html_lib

    from conftest import make_workdir, snakemake

    wd = make_workdir(tmp_path / "wd")
    fig = figures.rank_histogram(np.arange(6, 41), (6, 40))
    for path in REPORT_FILES:
        (wd / path).parent.mkdir(parents=True, exist_ok=True)
        if path.endswith(".png"):
            fig.savefig(wd / path, dpi=20)
        else:
            (wd / path).write_text("model,value\nbase,1\n")
    plt.close(fig)
    (wd / "mine.yaml").write_text("analysis:\n  n_resamples: 321\n")
    args = ("--configfile", "config/test.yaml", "mine.yaml", "--config", "remedies=False")  # the paper's files only
    snakemake(wd, *args, "--report", "results/report.html")
    text = html_lib.unescape((wd / "results/report.html").read_text(errors="replace"))
    assert "When Fine-Tuning Fails: Lessons from MS MARCO Passage Ranking" in text
    assert "The config that made this report" in text and "Where each table and figure is" in text
    assert "significance with 321 resamples" in text  # the configfiles that made this report, not the defaults
    assert "showCategory('Tables')" in text and "showCategory('Figures')" in text  # links to the categories


@pytest.mark.workflow
def test_sample_pairs_rule_joins_the_texts(tmp_path):
    """The thin sample_pairs script on fake prepared data: every pair carries its query's, its positive's and its
    random passage's text, read back from the parquet inputs."""
    from conftest import make_workdir, snakemake

    wd = make_workdir(tmp_path / "wd")
    fake_upstream(wd)
    (wd / "results/analysis/pairs.parquet").unlink()
    pids = np.arange(10_000, 10_400)
    pd.DataFrame({"pid": pids, "text": [f"passage number {p}" for p in pids]}).to_parquet(
        wd / "results/data/collection.parquet"
    )
    snakemake(wd, "--cores", "1", "--configfile", "config/test.yaml", "--allowed-rules", "sample_pairs", "--",
              "results/analysis/pairs.parquet")  # fmt: skip
    pairs = pd.read_parquet(wd / "results/analysis/pairs.parquet")
    queries = pd.read_parquet(wd / "results/data/eval/dev/queries.parquet").set_index("qid")["text"]
    assert len(pairs) == 24  # config/test.yaml's analysis.n_pairs
    assert (pairs["query"] == pairs["qid"].map(queries)).all()
    assert (pairs["passage"] == "passage number " + pairs["pid"].astype(str)).all()
    assert (pairs["rand_passage"] == "passage number " + pairs["rand_pid"].astype(str)).all()
