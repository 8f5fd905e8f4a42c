"""Hard-negative mining (issue 5): the draw, the skip/margin rules, determinism, config checks, real-model runs."""

from __future__ import annotations

import copy
import hashlib
import json
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from ftstudy.candidates import bm25_retriever, dense_retriever
from ftstudy.config import ConfigError, check_config, schema_defaults
from ftstudy.mining import mine_hard_negatives
from ftstudy.negatives import SKIP_FEW_CANDIDATES, SKIP_NO_CANDIDATE, MiningSettings, draw_query

os.environ.setdefault("HF_HUB_OFFLINE", "1")


# ---- a tiny hand-made corpus ------------------------------------------------------------------------------
def _unit(x):
    x = np.asarray(x, np.float32)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


@pytest.fixture
def tiny(tmp_path):
    """60 passages and 8 queries with hand-made 16-d embeddings; some queries have several positives."""
    rng = np.random.default_rng(7)
    n, d = 60, 16
    pids = np.arange(1000, 1000 + n, dtype=np.int64)[rng.permutation(n)]  # row order != pid order
    vec = _unit(rng.normal(size=(n, d)))
    qids = np.array([5, 11, 12, 20, 31, 40, 41, 77], np.int64)
    qemb = _unit(rng.normal(size=(len(qids), d)))
    rows = []
    for i, q in enumerate(qids):
        order = np.argsort(-(vec @ qemb[i]), kind="stable")
        # judged positives: one inside the rank range, one near the top; query 12 has a positive outside top_k
        picks = [order[2], order[14]] if i % 2 else [order[20]]
        rows += [(q, int(pids[r]), 1) for r in picks]
    rows.append((12, 999_999, 1))  # a judged passage missing from the corpus: never drawn, never an error
    rows.append((20, int(pids[0]), 0))  # relevance 0: not a positive
    rows.append((555, int(pids[1]), 1))  # qrels for a query without text
    d_ = tmp_path / "data"
    d_.mkdir()
    pd.DataFrame({"qid": np.r_[qids, [900]], "text": [f"query {q}" for q in qids] + ["unjudged"]}).to_parquet(
        d_ / "queries.parquet"
    )
    pd.DataFrame(rows, columns=["qid", "pid", "relevance"]).astype(
        {"qid": "int64", "pid": "int64", "relevance": "int8"}
    ).to_parquet(d_ / "qrels.parquet")
    pd.DataFrame({"pid": pids[::-1], "text": [f"passage {p}" for p in pids[::-1]]}).to_parquet(
        d_ / "collection.parquet"
    )
    qmap = {f"query {q}": qemb[i] for i, q in enumerate(qids)}
    return {
        "dir": d_,
        "pids": pids,
        "vec": vec,
        "qids": qids,
        "qemb": qemb,
        "embed": lambda texts: np.stack([qmap[t] for t in texts]),
        "qrels": pd.read_parquet(d_ / "qrels.parquet"),
    }


def _brute_search(vec):
    """An explicit search: numpy inner products, full sort (independent of ftstudy.search)."""

    def fn(q, k):
        s = q @ vec.T
        idx = np.argsort(-s, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(s, idx, 1), idx

    return fn


def _mine(tiny, out, settings, search_fn=None, retrieve=None, query_batch_size=3):
    out.mkdir(parents=True, exist_ok=True)
    retrieve = retrieve or dense_retriever(
        tiny["vec"], tiny["pids"], settings.top_k, search_fn or _brute_search(tiny["vec"])
    )
    stats = mine_hard_negatives(
        tiny["dir"] / "queries.parquet",
        tiny["dir"] / "qrels.parquet",
        tiny["dir"] / "collection.parquet",
        out / "hard.parquet",
        out / "hard_stats.json",
        settings,
        tiny["embed"],
        retrieve,
        tiny["vec"],
        tiny["pids"],
        out / "partial",
        query_batch_size,
        progress=False,
    )
    return pd.read_parquet(out / "hard.parquet"), stats


def _sha(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def paper_settings(**changes) -> MiningSettings:
    """The schema's defaults (the paper's values) with ``changes``: MiningSettings has no defaults of its own."""
    return MiningSettings.from_config({**schema_defaults()["mining"], **changes})


SETTINGS = paper_settings(top_k=30, rank_range=(6, 30), negatives_per_query=2, seed=3)


def test_settings_come_from_the_resolved_config_only():
    assert SETTINGS.top_k == 30 and SETTINGS.miner == "base" and SETTINGS.margin is None
    paper = paper_settings()
    assert (paper.top_k, paper.rank_range, paper.negatives_per_query, paper.seed) == (200, (51, 200), 1, 42)
    with pytest.raises(TypeError):
        MiningSettings(top_k=200)  # no defaults of its own: they live in the schema
    with pytest.raises(ValueError, match=r"mining config lacks \['rank_range', 'seed'\].*schema"):
        MiningSettings.from_config(
            {k: v for k, v in schema_defaults()["mining"].items() if k not in ("rank_range", "seed")}
        )


def test_execution_knobs_are_in_no_rerun_triggering_slice():
    """mining.query_batch_size changes no triplet: it is neither in the mining slice nor in a hard variant's."""
    from ftstudy.config import mining_slice, training_slice

    a, b = schema_defaults(), schema_defaults()
    b["mining"]["query_batch_size"] = 7
    assert "query_batch_size" not in mining_slice(a) and mining_slice(a) == mining_slice(b)
    assert training_slice(a, "full_hard") == training_slice(b, "full_hard")
    b["mining"]["seed"] = 7  # a setting that changes the triplets does change the slices
    assert mining_slice(a) != mining_slice(b) and training_slice(a, "full_hard") != training_slice(b, "full_hard")


def test_ranks_in_range_positives_never_drawn_and_texts_match(tiny, tmp_path):
    df, stats = _mine(tiny, tmp_path / "a", SETTINGS)
    assert list(df.columns) == ["query", "positive", "negative", "qid", "pos_pid", "neg_pid", "neg_rank"]
    assert df["neg_rank"].between(6, 30).all()
    judged = tiny["qrels"][tiny["qrels"].relevance >= 1]
    pos_of = judged.groupby("qid")["pid"].apply(set).to_dict()
    for r in df.itertuples():
        assert r.neg_pid not in pos_of[r.qid]
        assert r.pos_pid in pos_of[r.qid]
        # neg_rank is the ORIGINAL rank (positives counted) under an independent ranking
        qi = int(np.flatnonzero(tiny["qids"] == r.qid)[0])
        order = np.argsort(-(tiny["vec"] @ tiny["qemb"][qi]), kind="stable")
        assert tiny["pids"][order[r.neg_rank - 1]] == r.neg_pid
        assert (r.query, r.positive, r.negative) == (f"query {r.qid}", f"passage {r.pos_pid}", f"passage {r.neg_pid}")
    # every judged query with text was mined (query 555 has no text; 900 is unjudged)
    assert sorted(df.qid.unique()) == sorted(tiny["qids"].tolist())
    assert (df.groupby("qid").size() == 2).all()
    assert stats["queries_mined"] == 8 and stats["queries_skipped"] == 0
    assert stats["unjudged_queries"] == 1 and stats["qrels_qids_without_query"] == 1
    # positives excluded: judged positives (in the corpus) found in the top 30, counted independently
    expected_excluded = 0
    for i, q in enumerate(tiny["qids"]):
        top = set(tiny["pids"][np.argsort(-(tiny["vec"] @ tiny["qemb"][i]), kind="stable")[:30]].tolist())
        expected_excluded += len(top & pos_of[q])
    assert stats["positives_excluded"] == expected_excluded
    # histogram counts every drawn rank; mean cosines match an independent computation
    r, c = np.unique(df.neg_rank, return_counts=True)
    assert stats["drawn_rank_histogram"] == {"ranks": r.tolist(), "counts": c.tolist()}
    assert sum(stats["drawn_rank_bins"]["counts"]) == len(df)
    row = {p: i for i, p in enumerate(tiny["pids"])}
    qrow = {q: i for i, q in enumerate(tiny["qids"])}
    neg_cos = [tiny["vec"][row[n]] @ tiny["qemb"][qrow[q]] for q, n in zip(df.qid, df.neg_pid, strict=True)]
    pos_cos = [tiny["vec"][row[p]] @ tiny["qemb"][qrow[q]] for q, p in zip(df.qid, df.pos_pid, strict=True)]
    assert stats["mean_cosine"]["query_negative"] == pytest.approx(np.mean(neg_cos), abs=1e-5)
    assert stats["mean_cosine"]["query_positive"] == pytest.approx(np.mean(pos_cos), abs=1e-5)
    assert not (tmp_path / "a" / "partial").exists()  # resumable state removed on success


def test_draw_query_many_seeds_stays_in_range_and_off_positives():
    rng = np.random.default_rng(0)
    s = paper_settings(top_k=50, rank_range=(11, 50), negatives_per_query=3)
    for qid in range(300):
        cand = rng.permutation(10_000)[:50].astype(np.int64)
        positives = np.sort(rng.choice(cand[5:30], size=int(rng.integers(1, 4)), replace=False))
        res = draw_query(qid, cand, positives, s)
        assert res.neg_ranks.min() >= 11 and res.neg_ranks.max() <= 50
        assert not np.isin(res.neg_pids, positives).any()
        assert np.array_equal(cand[res.neg_ranks - 1], res.neg_pids)
        assert res.pos_pid in positives
    # with several positives, the positive is drawn (not always the first)
    picks = {draw_query(q, cand, np.array([1, 2, 3]), s).pos_pid for q in range(40)}
    assert picks == {1, 2, 3}


def test_seed_fixes_output_byte_for_byte_whatever_the_batch_size(tiny, tmp_path):
    _mine(tiny, tmp_path / "a", SETTINGS)
    _mine(tiny, tmp_path / "b", SETTINGS)
    _mine(tiny, tmp_path / "c", SETTINGS, query_batch_size=1)
    _mine(tiny, tmp_path / "d", SETTINGS, query_batch_size=100)
    ref = _sha(tmp_path / "a" / "hard.parquet")
    for o in "bcd":
        assert _sha(tmp_path / o / "hard.parquet") == ref, o
    sa = json.loads((tmp_path / "a" / "hard_stats.json").read_text())
    sc = json.loads((tmp_path / "c" / "hard_stats.json").read_text())
    assert sa == sc  # the stats too: the batch size is an execution knob, recorded nowhere in them
    # another seed draws other negatives (so the seed is actually used)
    _mine(tiny, tmp_path / "e", replace(SETTINGS, seed=4))
    assert _sha(tmp_path / "e" / "hard.parquet") != ref


def test_real_search_backend_is_batch_size_independent(tiny, tmp_path):
    """The same with ftstudy.search (the default path, not a fake search)."""
    r1 = dense_retriever(tiny["vec"], tiny["pids"], 30)
    _mine(tiny, tmp_path / "a", SETTINGS, retrieve=r1)
    _mine(tiny, tmp_path / "b", SETTINGS, retrieve=r1, query_batch_size=1)
    assert _sha(tmp_path / "a" / "hard.parquet") == _sha(tmp_path / "b" / "hard.parquet")
    df = pd.read_parquet(tmp_path / "a" / "hard.parquet")
    ref, _ = _mine(tiny, tmp_path / "c", SETTINGS)  # brute-force numpy search
    pd.testing.assert_frame_equal(df, ref)  # library search and brute force give the same triplets
    # the GPU path (corpus resident on the device, torch search), run here on the CPU, mines the same file
    r_torch = dense_retriever(tiny["vec"], tiny["pids"], 30, backend="torch", device="cpu")
    _mine(tiny, tmp_path / "d", SETTINGS, retrieve=r_torch)
    assert _sha(tmp_path / "d" / "hard.parquet") == _sha(tmp_path / "a" / "hard.parquet")


def test_query_with_too_few_candidates_is_skipped_and_counted(tiny, tmp_path):
    base = dense_retriever(tiny["vec"], tiny["pids"], 30, _brute_search(tiny["vec"]))

    def short_for_some(q_emb, texts):
        s, p = base(q_emb, texts)
        for i, t in enumerate(texts):
            if t in ("query 11", "query 40"):  # only 4 candidates: fewer than the range start (6)
                p[i, 4:] = -1
                s[i, 4:] = -np.inf
        return s, p

    df, stats = _mine(tiny, tmp_path / "a", SETTINGS, retrieve=short_for_some)
    assert stats["skipped"][SKIP_FEW_CANDIDATES] == {"count": 2, "qids": [11, 40], "qids_truncated": False}
    assert stats["queries_skipped"] == 2 and stats["queries_mined"] == 6
    assert not df.qid.isin([11, 40]).any()
    assert draw_query(1, np.arange(5), np.array([99]), SETTINGS) == SKIP_FEW_CANDIDATES


def test_margin_guard_drops_near_positive_candidates(tiny, tmp_path):
    margin = 0.05
    s = replace(SETTINGS, margin=margin, negatives_per_query=5)
    df, stats = _mine(tiny, tmp_path / "m", s)
    row = {p: i for i, p in enumerate(tiny["pids"])}
    qrow = {q: i for i, q in enumerate(tiny["qids"])}
    dropped_expected = 0
    judged = tiny["qrels"][tiny["qrels"].relevance >= 1].groupby("qid")["pid"].apply(set).to_dict()
    for q, g in df.groupby("qid"):
        qe = tiny["qemb"][qrow[q]]
        pos_cos = tiny["vec"][row[g.pos_pid.iloc[0]]] @ qe
        neg_cos = tiny["vec"][[row[n] for n in g.neg_pid]] @ qe
        assert (neg_cos <= pos_cos - margin + 1e-6).all()
        order = np.argsort(-(tiny["vec"] @ qe), kind="stable")[:30]
        in_range = [r for r in order[5:30] if tiny["pids"][r] not in judged[q]]
        dropped_expected += sum(tiny["vec"][r] @ qe > pos_cos - margin for r in in_range)
    assert stats["margin_dropped"] == dropped_expected > 0
    # a query whose positive is the least similar in-range passage loses every candidate: skipped, counted
    cand = np.arange(10, dtype=np.int64)
    cos = np.linspace(0.9, 0.5, 10).astype(np.float32)
    s2 = paper_settings(top_k=10, rank_range=(3, 10), margin=0.0)
    assert draw_query(0, cand, np.array([9]), s2, cos, np.array([0.5], np.float32)) == SKIP_NO_CANDIDATE
    res = draw_query(0, cand, np.array([5]), s2, cos, cos[[5]])
    assert set(res.neg_pids.tolist()) <= {6, 7, 8, 9}


@pytest.mark.parametrize(
    ("rank_range", "top_k", "words"),
    [([60, 51], 200, "greater than end"), ([0, 200], 200, ">= 1"), ([51, 201], 200, "exceeds mining.top_k")],
)
def test_config_rejects_bad_rank_range(rank_range, top_k, words):
    cfg = schema_defaults()
    assert cfg["mining"]["rank_range"] == [51, 200]
    check_config(cfg)  # the paper's values pass
    bad = copy.deepcopy(cfg)
    bad["mining"].update(rank_range=rank_range, top_k=top_k)
    with pytest.raises(ConfigError, match="mining.rank_range") as err:
        check_config(bad)
    assert words in str(err.value)
    with pytest.raises(ValueError, match="mining.rank_range"):
        MiningSettings.from_config(bad["mining"]).validate()


def test_config_rejects_more_negatives_than_the_range_holds():
    cfg = schema_defaults()
    cfg["mining"].update(rank_range=[51, 60], negatives_per_query=10)
    check_config(cfg)  # exactly the range's size is fine
    cfg["mining"]["negatives_per_query"] = 11
    with pytest.raises(ConfigError, match="mining.negatives_per_query"):
        check_config(cfg)


# ---- the real base model -----------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def base_model():
    from ftstudy.models import load_model, resolve_model

    return load_model(resolve_model("sentence-transformers/all-MiniLM-L6-v2"), "cpu")


def _write_inputs(d, queries, qrels, collection):
    d.mkdir(parents=True, exist_ok=True)
    queries.astype({"qid": "int64"}).to_parquet(d / "queries.parquet")
    qrels.astype({"qid": "int64", "pid": "int64", "relevance": "int8"}).to_parquet(d / "qrels.parquet")
    collection.astype({"pid": "int64"}).to_parquet(d / "collection.parquet")


def _mine_real(model, d, settings, vec, pids, query_batch_size=2, encoding_batch_size=64):
    from ftstudy.encode import encode_texts

    stats = mine_hard_negatives(
        d / "queries.parquet",
        d / "qrels.parquet",
        d / "collection.parquet",
        d / "hard.parquet",
        d / "hard_stats.json",
        settings,
        lambda t: encode_texts(model, t, batch_size=encoding_batch_size),
        dense_retriever(vec, pids, settings.top_k),
        vec,
        pids,
        d / "partial",
        query_batch_size,
        progress=False,
    )
    return pd.read_parquet(d / "hard.parquet"), stats


def test_real_model_tiny_corpus(base_model, tmp_path):
    from ftstudy.encode import encode_texts

    topics = ["cat", "dog", "bread", "car", "rain", "python", "piano", "moon"]
    texts = [f"{t} fact number {i}: a sentence about the {t}" for t in topics for i in range(5)]
    pids = np.arange(100, 100 + len(texts), dtype=np.int64)
    coll = pd.DataFrame({"pid": pids, "text": texts})
    queries = pd.DataFrame({"qid": [1, 2, 3], "text": ["tell me about the cat", "what about bread", "the moon"]})
    qrels = pd.DataFrame({"qid": [1, 1, 2, 3], "pid": [100, 101, 110, 135], "relevance": [1, 1, 1, 1]})
    _write_inputs(tmp_path, queries, qrels, coll)
    vec = encode_texts(base_model, texts).astype(np.float16)  # the stored format
    s = paper_settings(top_k=20, rank_range=(3, 20), seed=1)
    df, stats = _mine_real(base_model, tmp_path, s, vec, pids)
    assert len(df) == 3 and df["neg_rank"].between(3, 20).all()
    assert not any((r.qid, r.neg_pid) in set(zip(qrels.qid, qrels.pid, strict=True)) for r in df.itertuples())
    q = encode_texts(base_model, queries.text.tolist())
    ref = q @ vec.astype(np.float32).T
    for r in df.itertuples():
        qi = queries.qid.tolist().index(r.qid)
        assert ref[qi, r.neg_pid - 100] == pytest.approx(np.sort(ref[qi])[::-1][r.neg_rank - 1], abs=1e-4)
    assert 0 < stats["mean_cosine"]["query_negative"] < stats["mean_cosine"]["query_positive"]


def test_execution_knobs_change_no_triplet(base_model, tmp_path):
    """mining.query_batch_size and encoding.batch_size are execution knobs (the rule's params do not carry them):
    with the real encoder, two query batch sizes x two encoding batch sizes mine the same file, byte for byte, and
    the same stats but for the cosines, which may move at fp32 rounding level (stated tolerance 1e-6)."""
    from ftstudy.encode import encode_texts

    topics = ["cat", "dog", "bread", "car", "rain", "python", "piano", "moon"]
    texts = [f"{t} fact number {i}: a sentence about the {t}" for t in topics for i in range(5)]
    pids = np.arange(100, 100 + len(texts), dtype=np.int64)
    # queries of different lengths, so that the encoder pads each batch differently
    words = ["cat", "what is the best bread to bake at home", "moon", "dog or car", "rain rain rain today", "piano"]
    queries = pd.DataFrame({"qid": np.arange(1, 7), "text": words})
    qrels = pd.DataFrame({"qid": np.arange(1, 7), "pid": [100, 110, 135, 105, 120, 130], "relevance": 1})
    coll = pd.DataFrame({"pid": pids, "text": texts})
    vec = encode_texts(base_model, texts).astype(np.float16)
    s = paper_settings(top_k=25, rank_range=(3, 25), negatives_per_query=3, seed=5)
    runs = {}
    for qbs in (1, 4):
        for ebs in (1, 64):
            d = tmp_path / f"q{qbs}_e{ebs}"
            _write_inputs(d, queries, qrels, coll)
            _, stats = _mine_real(base_model, d, s, vec, pids, query_batch_size=qbs, encoding_batch_size=ebs)
            runs[qbs, ebs] = (_sha(d / "hard.parquet"), stats)
    (ref_sha, ref), *others = runs.values()
    assert ref["triplets"] == 18
    cos_keys = ("query_positive", "query_negative")
    for sha, stats in others:
        assert sha == ref_sha  # identical triplets, byte for byte
        assert max(abs(stats["mean_cosine"][k] - ref["mean_cosine"][k]) for k in cos_keys) <= 1e-6
        strip = [{k: v for k, v in x.items() if k != "mean_cosine"} for x in (stats, ref)]
        assert strip[0] == strip[1]


def test_workflow_job_picks_the_configured_miner(base_model, tmp_path):
    """The rule's job (``mine_for_workflow``): the job slice picks the miner and the settings; the execution knobs
    go to the provenance only; the partial folder is gone after success. Compared with the library calls made by
    hand: the dense search with the base model's query embeddings, and BM25 over the collection."""
    from ftstudy.bm25 import build_bm25
    from ftstudy.encode import encode_texts_dtype
    from ftstudy.mining import mine_for_workflow
    from ftstudy.models import resolve_model

    topics = ["cat", "dog", "bread", "car", "rain", "python", "piano", "moon"]
    texts = [f"{t} fact number {i}: a sentence about the {t}" for t in topics for i in range(4)]
    pids = np.arange(300, 300 + len(texts), dtype=np.int64)
    coll = pd.DataFrame({"pid": pids, "text": texts})
    queries = pd.DataFrame({"qid": [1, 2, 3, 4], "text": ["the cat", "bread fact", "a piano sentence", "moon"]})
    qrels = pd.DataFrame({"qid": [1, 2, 3, 4], "pid": [300, 308, 324, 328], "relevance": 1})
    _write_inputs(tmp_path, queries, qrels, coll)
    emb = tmp_path / "emb"
    emb.mkdir()
    vec = encode_texts_dtype(base_model, texts, dtype="fp32")
    np.save(emb / "vectors.npy", vec)
    np.save(emb / "ids.npy", pids)
    (emb / "meta.json").write_text("{}")
    model_dir = resolve_model("sentence-transformers/all-MiniLM-L6-v2")
    inputs = {f: str(tmp_path / f"{f}.parquet") for f in ("queries", "qrels", "collection")}
    inputs |= {"model": model_dir, "embeddings": str(emb)}
    mining = {**schema_defaults()["mining"], "top_k": 20, "rank_range": [4, 20], "negatives_per_query": 2}
    for miner in ("base", "bm25"):
        job = {
            "mining": {**mining, "miner": miner},
            "base_model": "x",
            "encoding": {"dtype": "fp32", "max_seq_length": base_model.max_seq_length},
            **({"bm25": {"k1": 0.9, "b": 0.4}} if miner == "bm25" else {}),
        }
        out = tmp_path / miner
        mine_for_workflow(inputs, out / "hard.parquet", out / "hard_stats.json", job, 3, 2, out / ".partial" / "mine")
        stats = json.loads((out / "hard_stats.json").read_text())
        assert not (out / ".partial" / "mine").exists()
        execution = {"query_batch_size": 3, "encoding_batch_size": 2, "threads": 1, "backend": "auto"}
        assert stats["provenance"]["execution"] == execution
        assert stats["settings"]["miner"] == miner and stats["settings"]["rank_range"] == [4, 20]
        s = MiningSettings.from_config(job["mining"])
        if miner == "base":
            retrieve = dense_retriever(vec, pids, 20, _brute_search(vec))
        else:
            retrieve = bm25_retriever(build_bm25(texts, k1=0.9, b=0.4), pids, 20)
        ref = tmp_path / f"ref_{miner}"
        mine_hard_negatives(
            *(inputs["queries"], inputs["qrels"], inputs["collection"], ref / "hard.parquet", ref / "s.json"),
            *(s, lambda t: encode_texts_dtype(base_model, t, dtype="fp32"), retrieve, vec, pids, ref / "p", 8),
            retrieval_is_cosine=miner == "base",
            progress=False,
        )
        pd.testing.assert_frame_equal(pd.read_parquet(out / "hard.parquet"), pd.read_parquet(ref / "hard.parquet"))


def test_mini_msmarco_real_model(base_model, tmp_path, mini_msmarco):
    """Real MS MARCO text: 20 training queries against their positives plus 120 other passages (kept small so
    that encoding stays within seconds on 2 shared cores)."""
    from ftstudy.encode import encode_texts

    MINI = mini_msmarco
    read = {"sep": "\t", "header": None, "quoting": 3, "keep_default_na": False}
    queries = pd.read_csv(MINI / "queries.train.tsv", names=["qid", "text"], **read)
    qrels = pd.read_csv(MINI / "qrels.train.tsv", names=["qid", "it", "pid", "relevance"], **read)
    coll = pd.read_csv(MINI / "collection.tsv", names=["pid", "text"], **read)
    queries = queries.sort_values("qid").head(20)
    qrels = qrels[qrels.qid.isin(queries.qid)][["qid", "pid", "relevance"]]
    others = coll[~coll.pid.isin(qrels.pid)].sample(120, random_state=0)
    coll = pd.concat([coll[coll.pid.isin(qrels.pid)], others]).sort_values("pid")
    _write_inputs(tmp_path, queries, qrels, coll)
    base_model.max_seq_length = 64
    vec = encode_texts(base_model, coll.text.tolist(), batch_size=64).astype(np.float16)
    s = paper_settings(top_k=30, rank_range=(6, 30), seed=42)
    df, stats = _mine_real(base_model, tmp_path, s, vec, coll.pid.to_numpy(), query_batch_size=8)
    table = pq.read_table(tmp_path / "hard.parquet")
    assert table.num_rows == len(df) == stats["triplets"] == stats["queries_mined"] > 15
    assert stats["queries_mined"] + stats["queries_skipped"] == 20
    judged = set(zip(qrels.qid, qrels.pid, strict=True))
    assert not any((q, n) in judged for q, n in zip(df.qid, df.neg_pid, strict=True))
    assert all((q, p) in judged for q, p in zip(df.qid, df.pos_pid, strict=True))
    text_of = dict(zip(coll.pid, coll.text, strict=True))
    assert all(text_of[n] == t for n, t in zip(df.neg_pid, df.negative, strict=True))
    assert stats["mean_cosine"]["query_positive"] > stats["mean_cosine"]["query_negative"]


def test_bm25_miner_uses_bm25_ranks(tmp_path):
    """miner bm25: candidates come from ftstudy.bm25 (row positions mapped to pids); cosines still base-space."""
    pytest.importorskip("bm25s")
    from ftstudy.bm25 import bm25_search, build_bm25

    words = ["apple", "river", "engine", "violin", "garden", "planet", "coffee", "winter"]
    rng = np.random.default_rng(5)
    texts = [" ".join(rng.choice(words, size=6)) + f" doc{i}" for i in range(40)]
    pids = np.arange(500, 540, dtype=np.int64)
    queries = pd.DataFrame({"qid": [1, 2, 3], "text": ["apple river engine", "violin garden coffee", "zebra"]})
    index = build_bm25(texts, k1=0.9, b=0.4)
    full_s, full = bm25_search(index, queries.text.tolist(), 40)
    qrels = pd.DataFrame({"qid": [1, 2, 3], "pid": pids[[full[0, 0], full[1, 7], 0]], "relevance": [1, 1, 1]})
    _write_inputs(tmp_path, queries, qrels, pd.DataFrame({"pid": pids, "text": texts}))
    vec = _unit(rng.normal(size=(40, 8)))
    s = paper_settings(miner="bm25", top_k=20, rank_range=(4, 20), negatives_per_query=3, seed=9)
    stats = mine_hard_negatives(
        tmp_path / "queries.parquet",
        tmp_path / "qrels.parquet",
        tmp_path / "collection.parquet",
        tmp_path / "hard.parquet",
        tmp_path / "hard_stats.json",
        s,
        lambda t: _unit(np.ones((len(t), 8))),
        bm25_retriever(index, pids, s.top_k),
        vec,
        pids,
        tmp_path / "partial",
        4096,
        retrieval_is_cosine=False,
        progress=False,
    )
    df = pd.read_parquet(tmp_path / "hard.parquet")
    assert len(df) == 6 and df.neg_rank.between(4, 20).all()
    for r in df.itertuples():
        qi = r.qid - 1
        # original BM25 rank (tie-aware: equal scores are ordered by pid, so compare the score at that rank)
        score_of = dict(zip(pids[full[qi]].tolist(), full_s[qi].tolist(), strict=True))
        assert score_of[r.neg_pid] == pytest.approx(full_s[qi, r.neg_rank - 1])
        tied = sorted(p for p, v in score_of.items() if v == score_of[r.neg_pid])
        first = int(np.flatnonzero(full_s[qi] == score_of[r.neg_pid])[0]) + 1
        assert r.neg_rank == first + tied.index(r.neg_pid)
        assert r.neg_pid != r.pos_pid
    assert stats["positives_excluded"] == 2  # both positives sit in the BM25 top 20
    # "zebra" matches no passage: BM25 retrieves nothing (score 0 is not a match), so the query is skipped
    assert stats["skipped"][SKIP_FEW_CANDIDATES]["qids"] == [3]


def test_killed_run_resumes_from_finished_batches(tiny, tmp_path):
    """A run that dies after its first batch leaves no output; the rerun searches only the remaining batches and
    writes the same bytes as an uninterrupted run. Changed settings start afresh."""
    inner = dense_retriever(tiny["vec"], tiny["pids"], 30, _brute_search(tiny["vec"]))
    calls = []

    def dies_on_second(q, t):
        calls.append(len(t))
        if len(calls) == 2:
            raise RuntimeError("killed")
        return inner(q, t)

    out = tmp_path / "r"
    with pytest.raises(RuntimeError, match="killed"):
        _mine(tiny, out, SETTINGS, retrieve=dies_on_second)
    assert not (out / "hard.parquet").exists() and not (out / "hard_stats.json").exists()
    assert sorted(p.name for p in (out / "partial").glob("*/batch_*")) == ["batch_000000.npz"]
    calls.clear()
    _mine(tiny, out, SETTINGS, retrieve=lambda q, t: (calls.append(len(t)), inner(q, t))[1])
    assert calls == [3, 2]  # 8 queries in batches of 3: the first batch came from the partial state
    _mine(tiny, tmp_path / "fresh", SETTINGS)
    assert _sha(out / "hard.parquet") == _sha(tmp_path / "fresh" / "hard.parquet")
    # stale partial state under different settings is not reused
    with pytest.raises(RuntimeError):
        calls.clear()
        _mine(tiny, tmp_path / "s", SETTINGS, retrieve=dies_on_second)
    calls.clear()
    _mine(
        tiny,
        tmp_path / "s",
        replace(SETTINGS, seed=99),
        retrieve=lambda q, t: (calls.append(len(t)), inner(q, t))[1],
    )
    assert calls == [3, 3, 2]


def test_max_queries_mines_a_seeded_sample(tiny, tmp_path):
    s = replace(SETTINGS, max_queries=3)
    df, stats = _mine(tiny, tmp_path / "a", s)
    df2, _ = _mine(tiny, tmp_path / "b", s, query_batch_size=1)
    assert stats["selected_queries"] == 3 == df.qid.nunique() and stats["judged_queries"] == 8
    assert set(df.qid) <= set(tiny["qids"].tolist())
    pd.testing.assert_frame_equal(df, df2)
