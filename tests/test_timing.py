"""Timing protocol: what the timed region contains, medians, seeded sampling, exact resident search, the JSON
fields, and merged vs unmerged LoRA giving the same embeddings."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ftstudy import timing
from ftstudy.search import ResidentSearch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]
TEXTS = [
    "what is the capital of france",
    "how do vaccines train the immune system",
    "symptoms of vitamin d deficiency",
    "best way to cook rice",
    "who wrote pride and prejudice",
]


class FakeClock:
    """A clock that only moves when the fake work says so; ``pending`` is 'GPU work' that lands on sync()."""

    def __init__(self):
        self.now = 0.0
        self.pending = 0.0
        self.syncs = 0

    def __call__(self):
        return self.now

    def sync(self):
        self.syncs += 1
        self.now += self.pending
        self.pending = 0.0


def test_timed_region_excludes_setup_and_reports_the_median():
    clock = FakeClock()
    clock.now += 500.0  # "model loading and file I/O" before the call: must not count
    encode_costs = iter([9.0, 1.0, 3.0, 2.0])  # warm-up pass first, then three timed passes
    search_costs = iter([90.0, 10.0, 30.0, 20.0])
    calls = []

    def encode_fn(texts):
        calls.append("encode")
        clock.now += next(encode_costs)
        return texts

    def search_fn(emb):
        calls.append("search")
        clock.pending += next(search_costs)  # asynchronous: only visible after sync()
        return emb

    out = timing.time_queries(encode_fn, search_fn, TEXTS, repeats=3, sync=clock.sync, warmup=1, clock=clock)
    assert calls == ["encode", "search"] * 4
    assert out["repeat_seconds"] == [11.0, 33.0, 22.0]  # warm-up (99 s) left out, async work counted
    assert out["seconds"] == 22.0  # the median, not the mean (22) by accident: check with a skewed set below
    assert out["encode_seconds"] == 2.0 and out["search_seconds"] == 20.0
    assert out["n_queries"] == len(TEXTS) and out["qps"] == pytest.approx(len(TEXTS) / 22.0)

    clock2 = FakeClock()
    costs = iter([0.0, 1.0, 2.0, 100.0])

    def enc2(texts):
        clock2.now += next(costs)
        return texts

    out2 = timing.time_queries(enc2, lambda e: e, TEXTS, repeats=3, warmup=1, clock=clock2)
    assert out2["seconds"] == 2.0  # median of 1, 2, 100 (mean would be 34.3)


def test_without_sync_async_work_would_be_missed():
    clock = FakeClock()

    def search_fn(emb):
        clock.pending += 5.0

    out = timing.time_queries(lambda t: t, search_fn, TEXTS, repeats=1, sync=None, warmup=0, clock=clock)
    assert out["seconds"] == 0.0  # documents why sync matters: the protocol passes torch.cuda.synchronize
    out = timing.time_queries(lambda t: t, search_fn, TEXTS, repeats=1, sync=clock.sync, warmup=0, clock=clock)
    assert out["seconds"] == 5.0


def test_sampling_is_seeded_and_replaces_only_when_needed():
    qids = list(range(100, 110))
    texts = [f"q{i}" for i in qids]
    a = timing.sample_queries(qids, texts, 8, seed=1)
    b = timing.sample_queries(qids, texts, 8, seed=1)
    c = timing.sample_queries(qids, texts, 8, seed=2)
    assert np.array_equal(a[0], b[0]) and a[1] == b[1]
    assert not np.array_equal(a[0], c[0])
    assert a[2] is False and len(set(a[0].tolist())) == 8  # enough queries: no duplicates
    assert all(t == f"q{q}" for q, t in zip(a[0], a[1], strict=True))
    big = timing.sample_queries(qids, texts, 300, seed=1)
    assert big[2] is True and len(big[0]) == 300 and set(big[0].tolist()) <= set(qids)
    assert np.array_equal(big[0], timing.sample_queries(qids, texts, 300, seed=1)[0])
    with pytest.raises(ValueError, match="no queries"):
        timing.sample_queries([], [], 3, seed=0)


def _brute_force_topk(queries, corpus, k):
    """Independent reference: the full float64 score matrix (nq, n), each row ordered by (score descending, row
    ascending) with np.lexsort, cut at k. Returns (scores (nq, k), rows int64 (nq, k))."""
    scores = np.asarray(queries, dtype=np.float64) @ np.asarray(corpus, dtype=np.float64).T
    rows = np.broadcast_to(np.arange(scores.shape[1]), scores.shape)
    order = np.lexsort((rows, -scores), axis=1)[:, :k]
    return np.take_along_axis(scores, order, axis=1), order.astype(np.int64)


def test_timed_search_is_exact_brute_force_across_chunks_with_ties():
    """The search timing runs (ResidentSearch over a float16 corpus, query batches and corpus chunks smaller than
    the data) returns the top-k of a full brute-force score matrix, ties (duplicated rows) broken by row."""
    rng = np.random.default_rng(0)
    corpus = rng.standard_normal((257, 16)).astype(np.float16)
    corpus[[30, 130, 250]] = corpus[200]  # exact ties, in different corpus chunks of 50
    queries = rng.standard_normal((9, 16)).astype(np.float32)
    queries[3] = corpus[200]  # this query's top 4 are the tied rows: 30, 130, 200, 250 in that order
    got_s, got_i = ResidentSearch(corpus, 20, "cpu", query_batch_size=4, corpus_chunk_size=50)(queries)
    want_s, want_i = _brute_force_topk(queries, corpus, 20)
    assert got_i.dtype == np.int64 and got_s.dtype == np.float32 and got_s.shape == (9, 20)
    assert got_i[3, :4].tolist() == [30, 130, 200, 250]
    np.testing.assert_array_equal(got_i, want_i)
    np.testing.assert_allclose(got_s, want_s, rtol=1e-5, atol=1e-5)
    few_s, few_i = ResidentSearch(corpus[:5], 20, "cpu")(queries)  # k above the corpus size: all 5, ordered
    np.testing.assert_array_equal(few_i, _brute_force_topk(queries, corpus[:5], 5)[1])


@pytest.fixture(scope="session")
def base_dir():
    from ftstudy.models import resolve_model

    return resolve_model("sentence-transformers/all-MiniLM-L6-v2")


@pytest.fixture(scope="session")
def base_model(base_dir):
    from ftstudy.models import load_model

    return load_model(base_dir, "cpu")


REQUIRED = {
    "n_queries", "seconds", "qps", "device", "backend", "dtype", "versions", "repeats", "repeat_seconds",
    "batch_size", "top_k", "threads", "corpus_size", "timed_region",
}  # fmt: skip


def test_time_neural_writes_the_contract_fields(base_model):
    corpus = base_model.encode(TEXTS * 4, normalize_embeddings=True).astype(np.float16)
    out = timing.time_neural(
        base_model, corpus, TEXTS, device="cpu", top_k=3, batch_size=2, dtype="auto", repeats=2, corpus_chunk_size=7
    )
    rec = timing.timing_record("base", out, threads=2, extra={"kind": "merged"})
    assert REQUIRED <= set(rec)
    json.dumps(rec)  # serialisable
    assert rec["n_queries"] == 5 and rec["corpus_size"] == 20 and rec["top_k"] == 3 and rec["threads"] == 2
    assert rec["dtype"] == "fp32" and rec["backend"] == "torch-exact" and rec["device"].startswith("CPU")
    assert len(rec["repeat_seconds"]) == 2 and rec["seconds"] > 0
    assert rec["qps"] == pytest.approx(5 / rec["seconds"])
    assert "torch" in rec["versions"] and "sentence-transformers" in rec["versions"]


def test_time_bm25_fields():
    from ftstudy.bm25 import build_bm25

    index = build_bm25(TEXTS * 3, 0.9, 0.4)
    rec = timing.timing_record("bm25", timing.time_bm25(index, TEXTS, top_k=50, repeats=2), threads=1)
    assert REQUIRED <= set(rec)
    assert rec["backend"] == "bm25s" and rec["device"].startswith("CPU") and rec["top_k"] == 15
    assert rec["bm25"]["stemmer"] == "PyStemmer:porter"


@pytest.fixture(scope="session")
def lora_dirs(tmp_path_factory, base_dir):
    """A LoRA adapter (r=4 on query/value, non-zero lora_B) saved with peft, and its merged SentenceTransformer."""
    import torch
    from peft import LoraConfig, get_peft_model

    from ftstudy.models import load_model

    root = tmp_path_factory.mktemp("lora")
    model = load_model(base_dir, "cpu")
    holder, attr = timing._transformer_holder(model)
    peft_model = get_peft_model(
        getattr(holder, attr), LoraConfig(r=4, lora_alpha=8, target_modules=["query", "value"], lora_dropout=0.0)
    )
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():  # lora_B starts at zero; make the adapter do something
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.05)
    peft_model.save_pretrained(str(root / "adapter"))
    setattr(holder, attr, peft_model.merge_and_unload())
    model.save(str(root / "merged"))
    return root / "adapter", root / "merged"


def test_unmerged_lora_embeds_like_merged(base_dir, base_model, lora_dirs):
    from peft import PeftModel

    from ftstudy.models import load_model

    adapter, merged_dir = lora_dirs
    merged = load_model(str(merged_dir), "cpu")
    unmerged = timing.load_unmerged_lora(base_dir, str(adapter), "cpu")
    assert isinstance(getattr(*timing._transformer_holder(unmerged)), PeftModel)
    e_merged = merged.encode(TEXTS, normalize_embeddings=True)
    e_unmerged = unmerged.encode(TEXTS, normalize_embeddings=True)
    e_base = base_model.encode(TEXTS, normalize_embeddings=True)
    np.testing.assert_allclose(e_unmerged, e_merged, atol=2e-5)
    assert np.abs(e_merged - e_base).max() > 1e-2  # the adapter changed the model, so the check above can fail


def test_load_timed_model_unmerged_takes_the_merged_truncation(tmp_path, base_dir, lora_dirs):
    from peft import PeftModel

    adapter, merged_dir = lora_dirs
    from ftstudy.models import load_model

    merged_copy = tmp_path / "merged"
    short = load_model(str(merged_dir), "cpu")
    assert short.max_seq_length != 48
    short.max_seq_length = 48  # differs from the base model's: the unmerged timing must take this one
    short.save(str(merged_copy))
    paths = {"model": base_dir, "adapter": adapter, "merged": merged_copy}
    model, extra = timing.load_timed_model("unmerged", paths, "cpu")
    assert isinstance(getattr(*timing._transformer_holder(model)), PeftModel)
    assert model.max_seq_length == 48 and extra == {"merged": False, "adapter": str(adapter)}
    merged, extra = timing.load_timed_model("merged", {"model": merged_copy}, "cpu")
    assert merged.max_seq_length == 48 and extra == {"merged": True}
    with pytest.raises(ValueError, match="'bm25'"):
        timing.load_timed_model("bm25", paths, "cpu")


def test_time_kind_dispatches_each_rule(tmp_path, base_dir, base_model):
    pd.DataFrame({"pid": np.arange(15), "text": TEXTS * 3}).to_parquet(tmp_path / "collection.parquet")
    emb = tmp_path / "emb"
    emb.mkdir()
    np.save(emb / "vectors.npy", base_model.encode(TEXTS * 4, normalize_embeddings=True))
    settings = {"timing": {"top_k": 7, "batch_size": 2, "repeats": 1}, "dtype": "fp32"}
    bm25 = {"k1": 0.9, "b": 0.4, "stemmer": "porter", "stopwords": "en"}
    res, extra = timing.time_kind(
        "bm25", {"collection": tmp_path / "collection.parquet"}, TEXTS, settings, threads=1, bm25=bm25
    )
    assert extra == {"kind": "bm25"} and res["backend"] == "bm25s" and res["corpus_size"] == 15
    res, extra = timing.time_kind(
        "merged", {"model": base_dir, "embeddings": emb}, TEXTS, settings, threads=1, corpus_chunk_size=6
    )
    assert extra == {"kind": "merged", "merged": True}
    assert res["backend"] == "torch-exact" and res["corpus_size"] == 20 and res["top_k"] == 7
    assert res["corpus_chunk_size"] == 6 and res["n_queries"] == 5 and len(res["repeat_seconds"]) == 1
    with pytest.raises(ValueError, match="needs the bm25 settings"):
        timing.time_kind("bm25", {}, TEXTS, settings, threads=1)
    with pytest.raises(ValueError, match="one of"):
        timing.time_kind("fast", {}, TEXTS, settings, threads=1)


@pytest.mark.workflow
def test_timing_rules_write_json(tmp_path, base_dir, base_model, lora_dirs):
    wd = tmp_path / "wd"
    (wd / "results/data/eval/dev").mkdir(parents=True)
    (wd / "results/models/base").mkdir(parents=True)
    (wd / "results/models/base/model").symlink_to(base_dir)
    (wd / "results/models/lora_random").mkdir(parents=True)
    (wd / "results/models/lora_random/model").symlink_to(lora_dirs[1])
    (wd / "results/models/lora_random/adapter").symlink_to(lora_dirs[0])
    corpus_texts = TEXTS * 4
    for m in ("base", "lora_random"):
        emb = wd / f"results/embeddings/{m}/main"
        emb.mkdir(parents=True)
        np.save(emb / "vectors.npy", base_model.encode(corpus_texts, normalize_embeddings=True).astype(np.float16))
        np.save(emb / "ids.npy", np.arange(len(corpus_texts), dtype=np.int64))
    pd.DataFrame({"pid": np.arange(len(corpus_texts), dtype=np.int64), "text": corpus_texts}).to_parquet(
        wd / "results/data/collection.parquet"
    )
    pd.DataFrame({"qid": np.arange(5, dtype=np.int64), "text": TEXTS}).to_parquet(
        wd / "results/data/eval/dev/queries.parquet"
    )
    shutil.copytree(REPO / "config", wd / "config")
    # Execution knobs of the search: the script reads them from the config (not params) and records them.
    (wd / "knobs.yaml").write_text("retrieval: {query_batch_size: 3, corpus_chunk_size: 7, score_budget_mb: 1}\n")
    cmd = [
        str(Path(sys.executable).parent / "snakemake"), "results/timing/base.json", "results/timing/bm25.json",
        "results/timing/lora_random.unmerged.json", "-s", str(REPO / "Snakefile"), "--directory", str(wd),
        "--cores", "2", "--configfile", str(wd / "config/test.yaml"), str(wd / "knobs.yaml"),
        "--allowed-rules", "time_inference", "time_inference_bm25", "time_inference_unmerged", "bm25_index",
    ]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=400, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in ("base", "bm25", "lora_random.unmerged"):
        rec = json.loads((wd / f"results/timing/{name}.json").read_text())
        assert REQUIRED <= set(rec)
        # config/test.yaml: timing.n_queries 40 from 5 dev queries -> with replacement; top_k 20; repeats 1
        assert rec["n_queries"] == 40 and rec["sampled_with_replacement"] is True
        assert rec["threads"] == 2 and len(rec["repeat_seconds"]) == 1
        assert rec["corpus_size"] == 20 and rec["top_k"] == 20
    assert json.loads((wd / "results/timing/bm25.json").read_text())["backend"] == "bm25s"
    base = json.loads((wd / "results/timing/base.json").read_text())
    assert base["query_batch_size"] == 3 and base["corpus_chunk_size"] == 7 and base["kind"] == "merged"
    assert base["score_budget_mb"] == 1
    unmerged = json.loads((wd / "results/timing/lora_random.unmerged.json").read_text())
    assert unmerged["merged"] is False and unmerged["model"] == "lora_random" and unmerged["kind"] == "unmerged"


def test_bench_times_the_package_code():
    """bench/gpu_throughput.py times the workflow's own fast paths (their exactness is tested in test_encode.py and
    test_search.py), not copies of them."""
    import importlib.util

    from ftstudy import fast_encode, search

    spec = importlib.util.spec_from_file_location("gpu_throughput", REPO / "bench" / "gpu_throughput.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.PipelinedEncoder is fast_encode.PipelinedEncoder
    assert bench.fast_search is search.fast_search and bench.ResidentSearch is search.ResidentSearch
