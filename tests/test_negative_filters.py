"""Positive-aware negative filtering (issue 14): the relative margin, filtered sets drawn from the kept candidates
(no second retrieval), the cross-encoder recipe, and what the stats say; every count computed independently."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_mining import _unit

from ftstudy.candidate_file import candidate_writer, iter_candidate_groups
from ftstudy.candidates import dense_retriever
from ftstudy.config import ConfigError, check_config, filtered_set, mining_slice, schema_defaults, training_slice
from ftstudy.mining import mine_hard_negatives
from ftstudy.negative_filters import FilteredSet, filter_negatives
from ftstudy.negatives import MiningSettings, draw_query, margin_limit

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _sha(p):
    return hashlib.sha256(Path(p).read_bytes()).hexdigest()


def _settings(**changes) -> MiningSettings:
    return MiningSettings.from_config({**schema_defaults()["mining"], **changes})


# ---- 1. the relative margin, by hand -----------------------------------------------------------------------
def test_relative_margin_against_a_hand_computation():
    """Positive cosine 0.8, m = 0.05: relative keeps scores <= 0.95 x 0.8 = 0.76, absolute keeps <= 0.75."""
    cand = np.arange(10, 20, dtype=np.int64)
    cos = np.array([0.99, 0.9, 0.8, 0.77, 0.755, 0.74, 0.6, 0.3, 0.1, -0.2], np.float32)
    pos = np.array([0.8], np.float32)
    common = {"top_k": 10, "rank_range": [1, 10], "negatives_per_query": 10, "margin": 0.05}
    rel = draw_query(1, cand, np.array([99]), _settings(**common, margin_mode="relative"), cos, pos)
    # by hand: 0.99, 0.9, 0.8, 0.77 are above 0.76; 0.755 is not
    assert rel.margin_dropped == 4
    assert rel.neg_pids.tolist() == [14, 15, 16, 17, 18, 19]
    ab = draw_query(1, cand, np.array([99]), _settings(**common, margin_mode="absolute"), cos, pos)
    assert ab.margin_dropped == 5 and ab.neg_pids.tolist() == [15, 16, 17, 18, 19]  # 0.755 > 0.75 goes too
    # a low positive score: the two modes part further (0.4: relative 0.38, absolute 0.35)
    assert margin_limit(0.4, 0.05, "relative") == pytest.approx(0.38)
    assert margin_limit(0.4, 0.05, "absolute") == pytest.approx(0.35)
    with pytest.raises(ValueError, match="margin_mode 'percent'"):
        margin_limit(0.4, 0.05, "percent")


def test_relative_margin_must_be_a_fraction():
    from snakemake.utils import validate

    from ftstudy.config import SCHEMA_PATH

    cfg = schema_defaults()
    cfg["mining"]["filtered_sets"] = {"rel": {"margin": 1.5}}
    validate(cfg, str(SCHEMA_PATH), set_default=True)  # as Snakemake does: a set's margin_mode defaults to relative
    assert cfg["mining"]["filtered_sets"]["rel"]["margin_mode"] == "relative"
    with pytest.raises(ConfigError, match=r"mining.filtered_sets.rel.margin.*\[0, 1\)"):
        check_config(cfg)
    cfg["mining"]["filtered_sets"]["rel"]["margin"] = 0.05
    check_config(cfg)


def test_a_filtered_set_changes_neither_the_mining_slice_nor_the_paper_variants():
    """Adding or editing a filtered set (or a diagnosed eval set) reruns no mining and no paper variant."""
    a, b = schema_defaults(), schema_defaults()
    b["eval_sets"]["dl"] = dict(b["eval_sets"]["dev"])
    b["mining"]["filtered_sets"] = {"rel": {"margin": 0.05, "margin_mode": "relative", "seed": 1}}
    b["mining"]["diagnose_eval_sets"] = ["dl"]
    check_config(b)
    assert mining_slice(a) == mining_slice(b)
    assert training_slice(a, "full_hard") == training_slice(b, "full_hard")


# ---- a hand-made corpus, one judged positive per query -----------------------------------------------------
@pytest.fixture
def corpus(tmp_path):
    rng = np.random.default_rng(11)
    n, d, top_k = 90, 16, 40
    pids = np.arange(2000, 2000 + n, dtype=np.int64)[rng.permutation(n)]
    vec = _unit(rng.normal(size=(n, d)))
    qids = np.arange(3, 3 + 3 * 12, 3, dtype=np.int64)
    qemb = _unit(rng.normal(size=(qids.size, d)))
    rank_of_pos = [2, 5, 9, 14, 20, 27, 33, 12, 7, 45, 18, 25]  # 0-based ranks; 45 lies outside the top 40
    rows = []
    for i, q in enumerate(qids):
        order = np.argsort(-(vec @ qemb[i]), kind="stable")
        rows.append((q, int(pids[order[rank_of_pos[i]]]), 1))
    d_ = tmp_path / "data"
    d_.mkdir()
    pd.DataFrame({"qid": qids, "text": [f"query {q}" for q in qids]}).to_parquet(d_ / "queries.parquet")
    pd.DataFrame(rows, columns=["qid", "pid", "relevance"]).astype({"relevance": "int8"}).to_parquet(
        d_ / "qrels.parquet"
    )
    pd.DataFrame({"pid": pids, "text": [f"passage {p}" for p in pids]}).to_parquet(d_ / "collection.parquet")
    qmap = {f"query {q}": qemb[i] for i, q in enumerate(qids)}
    return {
        "dir": d_,
        "pids": pids,
        "vec": vec,
        "qids": qids,
        "qemb": qemb,
        "top_k": top_k,
        "positive": {int(q): p for q, p, _ in rows},
        "embed": lambda texts: np.stack([qmap[t] for t in texts]),
    }


PAPER = {"top_k": 40, "rank_range": [6, 40], "negatives_per_query": 2, "seed": 3}


def _mine(c, out, **changes):
    s = _settings(**{**PAPER, **changes})
    mine_hard_negatives(
        c["dir"] / "queries.parquet",
        c["dir"] / "qrels.parquet",
        c["dir"] / "collection.parquet",
        out / "hard.parquet",
        out / "hard_stats.json",
        s,
        c["embed"],
        dense_retriever(c["vec"], c["pids"], s.top_k),
        c["vec"],
        c["pids"],
        out / "partial",
        5,
        progress=False,
        out_candidates=out / "candidates.parquet",
    )
    return s


def _filter(c, out, name, own: dict, scorer=None, candidates=None, paper_mining=None):
    mining = {**schema_defaults()["mining"], **PAPER, **(paper_mining or {})}
    resolved = filtered_set({"mining": {**mining, "filtered_sets": {name: own}}}, name)
    schema_set = {"margin": None, "margin_mode": "relative", "cross_encoder": None, "cross_encoder_margin": 3.0,
                  "cross_encoder_candidates": 20}  # fmt: skip
    fs = FilteredSet.from_config(name, mining, {**schema_set, **resolved})
    stats = filter_negatives(
        candidates or out / "candidates.parquet",
        out / "hard.parquet",
        c["dir"] / "queries.parquet",
        c["dir"] / "collection.parquet",
        out / f"{name}.parquet",
        out / f"{name}_stats.json",
        fs,
        out / "partial_filter",
        scorer,
    )
    return pd.read_parquet(out / f"{name}.parquet"), stats


def _cos(c, qid, pids):
    row = {p: i for i, p in enumerate(c["pids"])}
    qi = int(np.flatnonzero(c["qids"] == qid)[0])
    return np.array([c["vec"][row[p]] @ c["qemb"][qi] for p in np.atleast_1d(pids)], np.float64)


def _ranked(c, qid):
    qi = int(np.flatnonzero(c["qids"] == qid)[0])
    return c["pids"][np.argsort(-(c["vec"] @ c["qemb"][qi]), kind="stable")]


# ---- 2. the candidates file and the filtered sets ----------------------------------------------------------
def test_candidates_file_holds_every_query_top_k_with_cosines(corpus, tmp_path):
    out = tmp_path / "m"
    _mine(corpus, out)
    groups = list(iter_candidate_groups(out / "candidates.parquet"))
    assert sum(len(g) for g in groups) == corpus["qids"].size
    for g in groups:
        for i, q in enumerate(g.qid.tolist()):
            pids, scores, pos, pos_s = g.query(i)
            assert pids.tolist() == _ranked(corpus, q)[: corpus["top_k"]].tolist()  # brute force, stable order
            np.testing.assert_allclose(scores, _cos(corpus, q, pids), atol=1e-5)
            assert pos.tolist() == [corpus["positive"][q]]
            np.testing.assert_allclose(pos_s, _cos(corpus, q, pos), atol=1e-5)
    # the row-group size fixes the file: queries handed in 1 or 5 at a time give the same bytes
    for hand, path in ((1, tmp_path / "a.parquet"), (5, tmp_path / "b.parquet")):
        with candidate_writer(path, row_group_queries=4) as w:
            flat = groups[0]
            for s in range(0, len(flat), hand):
                w.write(flat.slice(s, min(s + hand, len(flat))))
    assert _sha(tmp_path / "a.parquet") == _sha(tmp_path / "b.parquet")
    assert [len(g) for g in iter_candidate_groups(tmp_path / "a.parquet")] == [4, 4, 4]


def test_a_set_with_the_paper_settings_reproduces_hard_parquet(corpus, tmp_path):
    """No second retrieval, the same draw: the paper's settings give hard.parquet byte for byte (margin on, too)."""
    out = tmp_path / "m"
    _mine(corpus, out)
    _filter(corpus, out, "same", {"margin": None})
    assert _sha(out / "same.parquet") == _sha(out / "hard.parquet")
    out2 = tmp_path / "m2"
    _mine(corpus, out2, margin=0.1)
    _, stats = _filter(corpus, out2, "same", {"margin": 0.1, "margin_mode": "absolute"}, paper_mining={"margin": 0.1})
    assert _sha(out2 / "same.parquet") == _sha(out2 / "hard.parquet")
    hard = json.loads((out2 / "hard_stats.json").read_text())
    assert stats["margin_dropped"] == hard["margin_dropped"] and stats["triplets"] == hard["triplets"]
    # the paper's own negatives all pass the paper's own margin
    assert stats["paper_negatives"]["removed_by_margin"] == 0


def test_relative_filter_counts_match_an_independent_computation(corpus, tmp_path):
    out = tmp_path / "m"
    _mine(corpus, out)
    m, rr = 0.2, (4, 36)
    df, stats = _filter(corpus, out, "rel", {"margin": m, "rank_range": list(rr), "negatives_per_query": 3, "seed": 9})
    hard = pd.read_parquet(out / "hard.parquet")
    in_range = removed = 0
    for q in corpus["qids"].tolist():
        pos = corpus["positive"][q]
        ranked = _ranked(corpus, q)[: corpus["top_k"]]
        window = [p for p in ranked[rr[0] - 1 : rr[1]] if p != pos]
        in_range += len(window)
        removed += int((_cos(corpus, q, window) > (1 - m) * _cos(corpus, q, pos)[0] + 1e-6).sum())
    assert stats["filter"]["candidates_in_range"] == in_range
    assert stats["filter"]["margin_removed"] == removed > 0
    assert stats["filter"]["removed"] == removed and stats["filter"]["cross_encoder_removed"] == 0
    # every drawn negative passes the filter, lies in the set's range and is no positive
    for r in df.itertuples():
        assert _cos(corpus, r.qid, r.neg_pid)[0] <= (1 - m) * _cos(corpus, r.qid, r.pos_pid)[0] + 1e-6
        assert rr[0] <= r.neg_rank <= rr[1] and r.neg_pid != corpus["positive"][r.qid]
        assert _ranked(corpus, r.qid)[r.neg_rank - 1] == r.neg_pid
    assert df.groupby("qid").size().max() == 3
    assert list(df.columns) == list(hard.columns)
    # the paper's negatives that this filter would remove, counted from the embeddings
    would = sum(
        _cos(corpus, r.qid, r.neg_pid)[0] > (1 - m) * _cos(corpus, r.qid, r.pos_pid)[0] for r in hard.itertuples()
    )
    assert stats["paper_negatives"]["rows"] == len(hard)
    assert stats["paper_negatives"]["removed_by_margin"] == stats["paper_negatives"]["removed"] == would > 0
    # its own seed: another draw than the paper's, reproducible
    df2, _ = _filter(
        corpus, tmp_path / "m", "rel", {"margin": m, "rank_range": list(rr), "negatives_per_query": 3, "seed": 9}
    )
    pd.testing.assert_frame_equal(df, df2)


def test_filter_resumes_after_a_kill_and_ignores_row_group_size(corpus, tmp_path, ce_model):
    from ftstudy.cross_encoder_filter import cross_encoder_scorer, load_cross_encoder

    out = tmp_path / "m"
    _mine(corpus, out)
    small = out / "cands_small.parquet"
    with candidate_writer(small, row_group_queries=5) as w:
        for g in iter_candidate_groups(out / "candidates.parquet"):
            w.write(g)
    score = cross_encoder_scorer(load_cross_encoder(str(ce_model), "cpu"), batch_size=8)
    calls = []

    def dies_second(q, p):
        calls.append(len(q))
        if len(calls) == 2:
            raise RuntimeError("killed")
        return score(q, p)

    own = {"margin": 0.3, "cross_encoder": str(ce_model), "cross_encoder_margin": 0.0, "cross_encoder_candidates": 4}
    with pytest.raises(RuntimeError, match="killed"):
        _filter(corpus, out, "ce", own, scorer=dies_second, candidates=small)
    assert not (out / "ce.parquet").exists()
    calls.clear()
    _filter(corpus, out, "ce", own, scorer=lambda q, p: (calls.append(len(q)), score(q, p))[1], candidates=small)
    assert len(calls) == 2  # 12 queries in groups of 5: the first group came from the partial state
    assert not (out / "partial_filter").exists()
    ref = tmp_path / "ref"
    ref.mkdir()
    for f in ("hard.parquet", "candidates.parquet"):
        (ref / f).write_bytes((out / f).read_bytes())
    _filter(corpus, ref, "ce", own, scorer=score)  # one row group of 1,024 queries
    assert _sha(ref / "ce.parquet") == _sha(out / "ce.parquet")


def test_bad_inputs_name_the_file(corpus, tmp_path):
    out = tmp_path / "m"
    _mine(corpus, out)
    with pytest.raises(FileNotFoundError, match="nope.parquet: candidates file not found"):
        _filter(corpus, out, "rel", {"margin": 0.05}, candidates=out / "nope.parquet")
    hard = pd.read_parquet(out / "hard.parquet")
    hard.assign(neg_rank=hard.neg_rank + 1).to_parquet(out / "hard.parquet")  # not what these candidates hold
    with pytest.raises(ValueError, match="hard.parquet: qid .* different mining runs"):
        _filter(corpus, out, "rel", {"margin": 0.05})


# ---- 3. the cross-encoder ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ce_model(tmp_path_factory):
    """A tiny, randomly initialised cross-encoder (BERT, 1 layer, hidden 32, one logit) with the base model's
    tokenizer, saved locally: no download."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from ftstudy.models import resolve_model

    tok = AutoTokenizer.from_pretrained(resolve_model("sentence-transformers/all-MiniLM-L6-v2"))
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=64, num_labels=1, max_position_embeddings=512)  # fmt: skip
    folder = tmp_path_factory.mktemp("ce") / "tiny-ce"
    BertForSequenceClassification(cfg).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def test_cross_encoder_recipe_against_direct_scores(corpus, tmp_path, ce_model):
    """The recipe by hand: the set's seeded draw order, the first C scored with CrossEncoder.predict (raw
    logits), those above pos - margin dropped, the first negatives_per_query kept."""
    import torch
    from sentence_transformers import CrossEncoder

    from ftstudy.cross_encoder_filter import cross_encoder_scorer, load_cross_encoder

    out = tmp_path / "m"
    _mine(corpus, out)
    C, n, seed, margin = 6, 2, 5, 0.0
    own = {"cross_encoder": str(ce_model), "cross_encoder_margin": margin, "cross_encoder_candidates": C,
           "seed": seed, "negatives_per_query": n}  # fmt: skip
    scorer = cross_encoder_scorer(load_cross_encoder(str(ce_model), "cpu"), batch_size=16)
    df, stats = _filter(corpus, out, "ce", own, scorer=scorer)
    ce = CrossEncoder(str(ce_model), device="cpu")

    def logits(q, pids):
        pairs = [(f"query {q}", f"passage {p}") for p in pids]
        return ce.predict(pairs, activation_fn=torch.nn.Identity(), batch_size=4)

    scored = removed = 0
    expect = {}
    for q in corpus["qids"].tolist():
        pos = corpus["positive"][q]
        ranked = _ranked(corpus, q)[: corpus["top_k"]]
        pool = [i for i in range(PAPER["rank_range"][0] - 1, PAPER["rank_range"][1]) if ranked[i] != pos]
        order = np.asarray(pool)[np.random.default_rng([seed, q]).permutation(len(pool))][:C]  # one positive
        s = logits(q, [pos, *ranked[order]])
        keep = order[s[1:] <= s[0] - margin]
        scored, removed = scored + order.size, removed + order.size - keep.size
        expect[q] = sorted((keep[:n] + 1).tolist())
    assert stats["filter"]["cross_encoder_scored"] == scored == C * corpus["qids"].size
    assert stats["filter"]["cross_encoder_removed"] == removed > 0
    assert {q: sorted(g.neg_rank.tolist()) for q, g in df.groupby("qid")} == {q: r for q, r in expect.items() if r}
    # the paper's negatives the cross-encoder would remove, scored directly
    hard = pd.read_parquet(out / "hard.parquet")
    would = sum(int(logits(r.qid, [r.neg_pid])[0] > logits(r.qid, [r.pos_pid])[0] - margin) for r in hard.itertuples())
    assert stats["paper_negatives"]["removed_by_cross_encoder"] == would
    assert stats["filter"]["cross_encoder"] == str(ce_model)


def test_scoring_progress_is_logged(ce_model, caplog):
    import logging

    from ftstudy.cross_encoder_filter import cross_encoder_scorer, load_cross_encoder

    score = cross_encoder_scorer(load_cross_encoder(str(ce_model), "cpu"), batch_size=4, log_every=3)
    with caplog.at_level(logging.INFO, logger="ftstudy.cross_encoder_filter"):
        s = score(["a", "b", "c", "d"], ["w", "x", "y", "z"])
    assert s.shape == (4,) and s.dtype == np.float32
    msgs = [r.getMessage() for r in caplog.records]
    assert any("3 pairs scored" in m for m in msgs) and any("4 pairs scored" in m for m in msgs)
    with pytest.raises(OSError, match="cross_encoder 'no/such-model-here'"):
        load_cross_encoder("no/such-model-here", "cpu")


def test_workflow_dry_run_schedules_the_filtered_sets_and_the_diagnosis(tmp_path):
    from conftest import make_workdir, snakemake

    wd = make_workdir(tmp_path / "wd")
    extra = tmp_path / "extra.yaml"
    extra.write_text(
        "remedies: true\n"
        "eval_sets:\n  dev: {queries: queries.dev.small.tsv, qrels: qrels.dev.small.tsv}\n"
        "  dl: {queries: queries.dev.small.tsv, qrels: qrels.dev.small.tsv}\n"
        "mining:\n  filtered_sets:\n    rel: {margin: 0.05}\n    ce: {cross_encoder: cross-encoder/x}\n"
        "  diagnose_eval_sets: [dl]\n"
    )
    proc = snakemake(wd, "-n", "--cores", "1", "--configfile", "config/test.yaml", str(extra))
    stats = {line.split()[0]: line.split()[1] for line in proc.stdout.splitlines() if len(line.split()) == 2}
    # the test config's own set (hard_perc) and these two; dl alone diagnosed (the list replaces the default's)
    assert stats.get("filter_negatives") == "3" and stats.get("diagnose_negatives") == "1"
    assert stats.get("mine_hard_negatives") == "1"
    for f in ("results/triplets/rel.parquet", "results/triplets/ce_stats.json", "results/analysis/negatives/dl.json"):
        assert f in proc.stdout
