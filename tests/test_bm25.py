"""BM25 baseline: ranking on a hand corpus, agreement with bm25s and with Lucene's formula, TREC output, and the
agreement with Anserini's run on the real mini MS MARCO slice."""

from __future__ import annotations

import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ftstudy.bm25 import (
    agreement_with_reference,
    bm25_search,
    build_bm25,
    build_bm25_streaming,
    read_trec_run,
    write_trec_run,
)

REPO = Path(__file__).resolve().parents[1]

CORPUS = [
    "The cat sat on the mat in the kitchen.",
    "Dogs are running fast across the field.",
    "Photosynthesis converts sunlight into chemical energy in plants.",
    "A dog runs after the cat.",
    "Stock markets fell sharply on Monday.",
]


def test_obvious_document_ranks_first():
    index = build_bm25(CORPUS, k1=0.9, b=0.4)
    scores, idx = bm25_search(index, ["how does photosynthesis work in plants", "stock market", "running dogs"], k=3)
    assert scores.shape == idx.shape == (3, 3)
    assert scores.dtype == np.float32 and idx.dtype == np.int64
    assert idx[0, 0] == 2 and idx[1, 0] == 4
    # Porter stemming: "running dogs" matches "Dogs are running" and "A dog runs" (run/dog), not the cat-only doc.
    assert set(idx[2, :2]) == {1, 3}
    assert np.all(np.diff(scores, axis=1) <= 0)


def test_matches_direct_bm25s_call():
    import bm25s
    import Stemmer

    queries = ["cat on a mat", "dog running", "energy from sunlight", "zebra"]
    stem = Stemmer.Stemmer("porter").stemWords
    retriever = bm25s.BM25(k1=1.2, b=0.75, method="lucene")
    retriever.index(bm25s.tokenize(CORPUS, stopwords="en", stemmer=stem, show_progress=False), show_progress=False)
    q_tokens = bm25s.tokenize(queries, stopwords="en", stemmer=stem, return_ids=False, show_progress=False)
    want_docs, want_scores = retriever.retrieve(q_tokens, k=4, show_progress=False)

    got_scores, got_idx = bm25_search(build_bm25(CORPUS, k1=1.2, b=0.75), queries, k=4)
    np.testing.assert_allclose(got_scores, want_scores, rtol=1e-6)
    positive = want_scores > 0  # among zero scores the order is arbitrary
    np.testing.assert_array_equal(got_idx[positive], want_docs[positive])


def test_numba_and_numpy_backends_give_the_same_ranking_with_ties_by_row(monkeypatch):
    """Large corpora are scored by bm25s' numba backend, small ones by numpy: the scores are the same, and equal
    scores come in row order (Lucene's tie-break by doc id) whichever backend selected them."""
    import bm25s

    from ftstudy import bm25 as B

    rng = np.random.default_rng(3)
    words = np.array([f"w{i}" for i in range(40)])
    texts = [" ".join(rng.choice(words, size=int(n))) for n in rng.integers(3, 8, size=400)]
    texts += texts[:50]  # exact duplicates: tied scores inside the top-k
    queries = [" ".join(rng.choice(words, size=2)) for _ in range(30)] + [texts[0], texts[7], "zebra", ""]
    index = build_bm25(texts, k1=0.9, b=0.4)
    runs = {}
    for backend, threshold in (("numpy", 10**9), ("numba", 0)):
        monkeypatch.setattr(B, "NUMBA_MIN_DOCS", threshold)
        assert B.retrieval_backend(len(texts)) == backend
        runs[backend] = bm25_search(index, queries, k=60)
        assert index.retriever.backend == backend
    (s_np, i_np), (s_nb, i_nb) = runs["numpy"], runs["numba"]
    assert s_np.tobytes() == s_nb.tobytes()
    # an independent order: bm25s' own (unsorted-ties) result, re-sorted here by (score desc, row asc)
    q_tokens = index.tokenize(queries, return_ids=False)
    raw_docs, raw_scores = index.retriever.retrieve(q_tokens, k=60, show_progress=False)
    for q in range(len(queries)):
        pairs = zip(raw_scores[q].tolist(), raw_docs[q].tolist(), strict=True)
        want = sorted(pairs, key=lambda t: (-t[0], t[1]))
        assert [r for _, r in want] == i_nb[q].tolist()
        cut = s_np[q, -1]  # which tied passages make the k-th score may differ; everything above it may not
        above = s_np[q] > cut
        assert i_np[q][above].tolist() == i_nb[q][above].tolist()
    assert (np.diff(s_nb, axis=1) == 0).any()  # the fixture really has ties
    monkeypatch.undo()  # the real threshold: a corpus just below it stays on the library's default backend
    assert B.retrieval_backend(B.NUMBA_MIN_DOCS - 1) == "numpy" == bm25s.BM25().backend
    assert B.retrieval_backend(B.NUMBA_MIN_DOCS) == "numba"


def test_scores_follow_lucene_bm25_formula():
    # Independent computation on already-normalised tokens (no stop words, nothing to stem).
    docs = ["apple banana apple", "banana cherry", "cherry cherry cherry date", "date"]
    k1, b = 0.9, 0.4
    toks = [d.split() for d in docs]
    avgdl = sum(map(len, toks)) / len(toks)

    def score(query, doc):
        s = 0.0
        for term in query.split():
            df = sum(term in t for t in toks)
            if df == 0:
                continue
            idf = math.log(1 + (len(toks) - df + 0.5) / (df + 0.5))
            tf = doc.count(term)
            # Lucene >= 8 drops the constant (k1 + 1) factor of the textbook formula (rankings are unchanged).
            s += idf * tf / (tf + k1 * (1 - b + b * len(doc) / avgdl))
        return s

    index = build_bm25(docs, k1=k1, b=b, stemmer=None, stopwords=None)
    scores, idx = bm25_search(index, ["apple cherry", "date banana"], k=4)
    for row, query in enumerate(["apple cherry", "date banana"]):
        for s, i in zip(scores[row], idx[row], strict=True):
            assert s == pytest.approx(score(query, toks[i]), rel=1e-5)


def test_k_is_clamped_and_empty_queries_work():
    index = build_bm25(CORPUS, 0.9, 0.4)
    scores, idx = bm25_search(index, ["the", "cat"], k=100)
    assert idx.shape == (2, len(CORPUS))
    assert np.all(scores[0] == 0)  # "the" is a stop word: nothing matches
    assert sorted(idx[1]) == list(range(len(CORPUS)))
    s0, i0 = bm25_search(index, [], k=3)
    assert s0.shape == i0.shape == (0, 3)
    with pytest.raises(ValueError, match="no texts"):
        build_bm25([], 0.9, 0.4)


def test_trec_run_roundtrip_drops_zero_scores(tmp_path):
    pids = np.array([100, 101, 102, 103, 104], dtype=np.int64)
    index = build_bm25(CORPUS, 0.9, 0.4)
    scores, idx = bm25_search(index, ["cat", "stock"], k=5)
    path = tmp_path / "run.trec"
    n = write_trec_run(path, [7, 8], pids, scores, idx, "bm25")
    lines = path.read_text().splitlines()
    assert n == len(lines) == int((scores > 0).sum())
    first = lines[0].split()
    top = scores[0] == scores[0].max()  # "cat" ties at the top: the run breaks ties by pid
    assert first[:4] == ["7", "Q0", str(pids[idx[0][top]].min()), "1"] and first[5] == "bm25"
    run = read_trec_run(path)
    assert run[8] == [104]  # only the stock-market passage mentions "stock"
    # independent: the positive-score passages, by score descending, then pid ascending
    kept = [(-float(sc), int(pids[i])) for i, sc in zip(idx[0], scores[0], strict=True) if sc > 0]
    assert run[7] == [pid for _, pid in sorted(kept)]


def test_bad_trec_line_names_file_and_line(tmp_path):
    path = tmp_path / "bad.trec"
    path.write_text("1 Q0 5 1 2.0 bm25\n1 Q0 x 2 1.0 bm25\n")
    with pytest.raises(ValueError, match=r"bad.trec, line 2"):
        read_trec_run(path)


def _read_tsv(path, names):
    return pd.read_csv(path, sep="\t", header=None, names=names, quoting=3, dtype={names[0]: "int64", "text": str})


def test_agrees_with_anserini_run_on_real_slice(tmp_path, mini_msmarco):
    MINI = mini_msmarco
    collection = _read_tsv(MINI / "collection.tsv", ["pid", "text"])
    queries = _read_tsv(MINI / "queries.dev.small.tsv", ["qid", "text"])
    index = build_bm25(collection["text"].tolist(), 0.9, 0.4)
    scores, idx = bm25_search(index, queries["text"].tolist(), k=20)
    write_trec_run(tmp_path / "run.trec", queries["qid"], collection["pid"], scores, idx, "bm25")
    agree = agreement_with_reference(tmp_path / "run.trec", MINI / "bm25.dev.small.run", k=10)
    assert agree["n_queries"] == 270
    # Measured 0.813 (docs/timing.md). Lucene tokenises differently and the slice's IDF differs from the full
    # collection's, so this is a loose lower bound, far above chance (10 of ~11,800 passages).
    assert agree["mean"] > 0.7


@pytest.mark.workflow
def test_bm25_retrieve_rule_writes_trec_run(tmp_path):
    wd = tmp_path / "wd"
    (wd / "results/data/eval/dev").mkdir(parents=True)
    pd.DataFrame({"pid": np.arange(100, 105, dtype=np.int64), "text": CORPUS}).to_parquet(
        wd / "results/data/collection.parquet"
    )
    pd.DataFrame({"qid": np.array([1, 2], dtype=np.int64), "text": ["photosynthesis", "cat mat"]}).to_parquet(
        wd / "results/data/eval/dev/queries.parquet"
    )
    shutil.copytree(REPO / "config", wd / "config")
    (wd / "bm25.yaml").write_text("bm25: {k1: 1.2, b: 0.75}\n")
    cmd = [
        str(Path(sys.executable).parent / "snakemake"),
        "results/runs/bm25/dev.trec", "-s", str(REPO / "Snakefile"), "--directory", str(wd), "--cores", "1",
        "--configfile", str(wd / "config/test.yaml"), str(wd / "bm25.yaml"),
        "--allowed-rules", "bm25_index", "bm25_retrieve",
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = read_trec_run(wd / "results/runs/bm25/dev.trec")
    assert run[1][0] == 102 and run[2][0] == 100
    assert "'k1': 1.2" in (wd / "logs/bm25_retrieve/dev.log").read_text()  # config reached the index


# ---- the persisted index (rule bm25_index): streamed build, bm25s save, memory-mapped load ---------------------
def _postings(index) -> dict[str, tuple[tuple[int, ...], bytes]]:
    """token -> (passage rows, float32 score bytes) of a bm25s retriever's CSC arrays (term ids may differ)."""
    s, vocab = index.retriever.scores, index.retriever.vocab_dict
    out = {}
    for token, t in vocab.items():
        if token == "":  # bm25s' empty token has no column
            continue
        lo, hi = int(s["indptr"][t]), int(s["indptr"][t + 1])
        out[token] = (tuple(np.asarray(s["indices"][lo:hi]).tolist()), np.asarray(s["data"][lo:hi]).tobytes())
    return out


def _collection_parquet(path, texts, row_group_size=None):
    pids = np.arange(1000, 1000 + len(texts), dtype=np.int64)[::-1].copy()  # pids unlike row numbers
    pd.DataFrame({"pid": pids, "text": texts}).to_parquet(path, row_group_size=row_group_size)
    return pids


EDGE = ["", "the of and", "x y z", "Running RUNS runner's run-time"]  # empty, stop words only, 1-char, stems


@pytest.mark.parametrize("batch", [1, 3, 1000])
def test_streaming_build_equals_bm25s_index_bit_for_bit(batch):
    texts = CORPUS + EDGE
    ref = build_bm25(texts, k1=1.2, b=0.75)
    got = build_bm25_streaming((texts[i : i + batch] for i in range(0, len(texts), batch)), k1=1.2, b=0.75)
    assert got.n_docs == ref.n_docs == ref.retriever.scores["num_docs"] == got.retriever.scores["num_docs"]
    assert _postings(got) == _postings(ref)
    assert set(got.retriever.vocab_dict) == set(ref.retriever.vocab_dict)  # "" included, as BM25.index adds it


def test_streaming_build_equals_bm25s_on_real_slice(mini_msmarco):
    collection = _read_tsv(mini_msmarco / "collection.tsv", ["pid", "text"])
    queries = _read_tsv(mini_msmarco / "queries.dev.small.tsv", ["qid", "text"])["text"].tolist()
    texts = collection["text"].tolist()
    ref = build_bm25(texts, 0.9, 0.4)
    got = build_bm25_streaming((texts[i : i + 2500] for i in range(0, len(texts), 2500)), 0.9, 0.4)
    assert _postings(got) == _postings(ref)
    (s_ref, i_ref), (s_got, i_got) = bm25_search(ref, queries, 100), bm25_search(got, queries, 100)
    assert s_got.tobytes() == s_ref.tobytes() and np.array_equal(i_got, i_ref)


def _lucene(query_tokens, docs_tokens, k1, b):
    """Independent BM25 (Lucene >= 8) of every document for a query, on already-analysed tokens."""
    n, avgdl = len(docs_tokens), sum(map(len, docs_tokens)) / len(docs_tokens)
    out = []
    for doc in docs_tokens:
        s = 0.0
        for term in query_tokens:
            df = sum(term in d for d in docs_tokens)
            if df:
                tf = doc.count(term)
                s += math.log(1 + (n - df + 0.5) / (df + 0.5)) * tf / (tf + k1 * (1 - b + b * len(doc) / avgdl))
        out.append(s)
    return np.array(out)


def test_persisted_index_roundtrip_matches_in_memory_and_hand_scores(tmp_path):
    from ftstudy.bm25 import index_collection, load_bm25_index

    texts = CORPUS + EDGE
    pids = _collection_parquet(tmp_path / "c.parquet", texts, row_group_size=2)
    settings = {"k1": 0.9, "b": 0.4, "stemmer": "porter", "stopwords": "en"}
    index_collection(tmp_path / "c.parquet", tmp_path / "idx", settings, batch_size=3)
    loaded = load_bm25_index(tmp_path / "idx")
    assert isinstance(loaded.retriever.scores["data"], np.memmap)  # memory-mapped, not read into memory
    assert isinstance(loaded.retriever.scores["indices"], np.memmap)
    np.testing.assert_array_equal(loaded.pids, pids)
    assert loaded.describe() == build_bm25(texts, 0.9, 0.4).describe()
    queries = ["how does photosynthesis work in plants", "running dogs", "cat", "the", "zebra", ""]
    ref = build_bm25(texts, 0.9, 0.4)
    (s_ref, i_ref), (s_got, i_got) = bm25_search(ref, queries, 6), bm25_search(loaded, queries, 6)
    assert s_got.tobytes() == s_ref.tobytes()
    np.testing.assert_array_equal(i_got[s_got > 0], i_ref[s_ref > 0])
    # the same run file as the in-memory path
    write_trec_run(tmp_path / "old.trec", range(len(queries)), pids, s_ref, i_ref, "bm25")
    write_trec_run(tmp_path / "new.trec", range(len(queries)), loaded.pids, s_got, i_got, "bm25")
    assert (tmp_path / "new.trec").read_bytes() == (tmp_path / "old.trec").read_bytes()
    # against the formula, on the analysed tokens of the passages
    docs_tokens = ref.tokenize(texts)
    for row, q in enumerate(queries[:3]):
        want = _lucene(ref.tokenize([q])[0], docs_tokens, 0.9, 0.4)
        for s, i in zip(s_got[row], i_got[row], strict=True):
            assert s == pytest.approx(want[i], rel=1e-5)


def test_index_bytes_do_not_depend_on_batch_size_or_hash_seed(tmp_path):
    """Same config -> same bytes: bm25s numbers terms in set order (varies with PYTHONHASHSEED); we sort them."""
    _collection_parquet(tmp_path / "c.parquet", CORPUS + EDGE)
    code = (
        "import sys; from ftstudy.bm25 import index_collection; index_collection(sys.argv[1], sys.argv[2], "
        "{'k1': 0.9, 'b': 0.4, 'stemmer': 'porter', 'stopwords': 'en'}, batch_size=int(sys.argv[3]))"
    )
    for seed, batch, out in (("1", "2", "a"), ("2", "1000", "b")):
        env = {"PYTHONHASHSEED": seed, "PYTHONPATH": str(REPO / "src"), "PATH": ""}
        subprocess.run([sys.executable, "-c", code, tmp_path / "c.parquet", tmp_path / out, batch], env=env, check=True)
    for name in ("data.csc.index.npy", "indices.csc.index.npy", "indptr.csc.index.npy", "vocab.index.json", "pids.npy"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_missing_or_corrupt_index_names_the_path(tmp_path):
    from ftstudy.bm25 import index_collection, load_bm25_index

    _collection_parquet(tmp_path / "c.parquet", CORPUS)
    settings = {"k1": 0.9, "b": 0.4, "stemmer": "porter", "stopwords": "en"}
    with pytest.raises(FileNotFoundError, match=r"BM25 index .*nowhere: no such folder"):
        load_bm25_index(tmp_path / "nowhere")
    for name, damage, pattern in [
        ("vocab.index.json", "delete", r"missing vocab\.index\.json"),
        ("data.csc.index.npy", "truncate", r"data\.csc\.index\.npy"),
        ("ftstudy_bm25.json", "truncate", r"ftstudy_bm25\.json: not the expected JSON"),
        ("pids.npy", "swap", r"inconsistent files: num_docs 5, pids 2"),
    ]:
        idx = tmp_path / f"idx_{damage}"
        index_collection(tmp_path / "c.parquet", idx, settings)
        target = idx / name
        if damage == "delete":
            target.unlink()
        elif damage == "truncate":
            target.write_bytes(target.read_bytes()[: len(target.read_bytes()) // 2])
        else:
            np.save(target, np.array([1, 2], dtype=np.int64))
        with pytest.raises(ValueError, match=pattern) as info:
            load_bm25_index(idx)
        assert str(idx) in str(info.value) and "rebuild" in str(info.value)


def test_resources_follow_the_sizes(tmp_path):
    from ftstudy.bm25 import index_collection, index_resources, index_size_mb, search_mem_mb, search_runtime_min

    small, big = index_resources(1_000.0), index_resources(2_000.0)
    assert big["mem_mb"] - small["mem_mb"] == pytest.approx(small["mem_mb"] - index_resources(0.0)["mem_mb"], rel=0.01)
    assert big["disk_mb"] == pytest.approx(2 * small["disk_mb"], rel=0.01) and big["runtime"] > small["runtime"]
    _collection_parquet(tmp_path / "c.parquet", CORPUS)
    index_collection(tmp_path / "c.parquet", tmp_path / "idx", {"k1": 0.9, "b": 0.4, "stemmer": "porter",
                                                                "stopwords": "en"})  # fmt: skip
    size = index_size_mb(tmp_path / "idx")
    assert size == pytest.approx(sum(f.stat().st_size for f in (tmp_path / "idx").iterdir()) / 1e6)
    assert search_mem_mb(tmp_path / "idx", 4) >= 1000 + size and search_mem_mb(tmp_path / "nowhere", 4) == 1000
    assert search_runtime_min(tmp_path / "idx", 10) == 10  # the floor


@pytest.mark.workflow
def test_one_index_job_per_corpus_feeds_every_bm25_job(tmp_path):
    """Dry run of config/test.yaml with two eval sets on the main collection and one with its own: two
    bm25_index jobs, and every bm25_retrieve and the BM25 timing read the index of their corpus."""
    from conftest import make_workdir, snakemake

    wd = make_workdir(tmp_path / "wd")
    (wd / "sets.yaml").write_text(
        "eval_sets:\n"
        "  dev: {queries: queries.dev.small.tsv, qrels: qrels.dev.small.tsv}\n"
        "  dev2: {queries: queries.dev.small.tsv, qrels: qrels.dev.small.tsv}\n"
        "  own: {queries: queries.dev.small.tsv, qrels: qrels.dev.small.tsv, collection: collection.tsv}\n"
    )
    targets = [f"results/runs/bm25/{e}.trec" for e in ("dev", "dev2", "own")] + ["results/timing/bm25.json"]
    out = snakemake(wd, "-n", "--cores", "2", "--configfile", "config/test.yaml", "sets.yaml", "--", *targets).stdout
    jobs = {}
    for block in out.split("\nrule ")[1:]:
        rule = block.split(":", 1)[0]
        fields = dict(re.findall(r"^\s+(input|output): (.*)$", block, flags=re.M))
        jobs.setdefault(rule, []).append(fields)
    assert sorted(j["output"] for j in jobs["bm25_index"]) == ["results/index/bm25/main", "results/index/bm25/own"]
    want = {"dev": "main", "dev2": "main", "own": "own"}
    got = {j["output"].split("/")[-1][: -len(".trec")]: j["input"] for j in jobs["bm25_retrieve"]}
    assert set(got) == set(want)
    for eval_set, corpus in want.items():
        assert f"results/index/bm25/{corpus}" in got[eval_set].split(", ")
        assert "collection.parquet" not in got[eval_set]  # the collection is read once, by bm25_index
    (timing,) = jobs["time_inference_bm25"]
    assert "results/index/bm25/main" in timing["input"].split(", ") and "collection" not in timing["input"]
