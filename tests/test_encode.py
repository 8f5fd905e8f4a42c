"""Encoding: agreement with SentenceTransformer.encode, the autocast path, resumable chunked corpus encoding."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from ftstudy import encode as E
from ftstudy.encode import encode_corpus, encode_texts, encode_texts_dtype, load_embeddings


@pytest.fixture(scope="module")
def passages(mini_msmarco):
    df = pd.read_csv(mini_msmarco / "collection.tsv", sep="\t", header=None, names=["pid", "text"], nrows=20)
    return df.assign(text=df.text.str.slice(0, 160))  # short texts keep the test fast on a shared CPU


def test_encode_texts_matches_library(base_model, passages):
    texts = passages.text.tolist()[:12]
    got = encode_texts(base_model, texts, batch_size=5)
    ref = base_model.encode(texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True)
    assert got.dtype == np.float32 and got.shape == (12, 384)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(got, ref, atol=2e-5)  # same vectors, original order restored


def test_bf16_autocast_path_on_cpu(base_model, passages):
    """The GPU precision path (autocast bf16) runs on CPU too; output stays float32, normalised, close."""
    texts = passages.text.tolist()[:6]
    fp32 = encode_texts(base_model, texts)
    bf16 = encode_texts_dtype(base_model, texts, batch_size=5, dtype="bf16")
    assert bf16.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(bf16, axis=1), 1.0, atol=1e-5)
    cos = (fp32 * bf16).sum(1)
    assert cos.min() > 0.99 and not np.array_equal(fp32, bf16)


class Kill(RuntimeError):
    pass


def test_corpus_encoding_resumes_from_last_chunk(base_model, passages, tmp_path):
    texts, ids = passages.text.tolist(), passages.pid.to_numpy()
    kw = {"chunk_size": 6, "batch_size": 4, "dtype": "fp32", "show_progress": False}  # 4 chunks: 6, 6, 6, 2

    full = encode_corpus(base_model, texts, ids, tmp_path / "full", tmp_path / "p_full", **kw)
    assert full["chunks_encoded"] == 4
    ref, ref_ids, _ = load_embeddings(tmp_path / "full")

    out, partial = tmp_path / "emb", tmp_path / "partial" / "key"

    def kill_after_second(i, n):
        if i == 1:
            raise Kill

    with pytest.raises(Kill):
        encode_corpus(base_model, texts, ids, out, partial, on_chunk=kill_after_second, **kw)
    assert not out.exists()  # no half-written output
    # the finished chunks are in the rows of the one file that becomes the output: no chunk files, no copy
    assert sorted(p.name for p in partial.iterdir()) == ["block_000000.done", "block_000001.done", "key.json",
                                                         "vectors.npy"]  # fmt: skip
    inode = (partial / "vectors.npy").stat().st_ino

    calls = []
    meta = encode_corpus(base_model, texts, ids, out, partial, on_chunk=lambda i, n: calls.append(i), **kw)
    assert calls == [2, 3]  # only the remaining chunks are encoded
    assert meta["chunks_reused"] == 2 and meta["chunks_encoded"] == 2
    assert not partial.exists()  # partial state deleted on success
    assert (out / "vectors.npy").stat().st_ino == inode  # moved into the output, not copied
    vec, got_ids, meta_file = load_embeddings(out)
    assert vec.dtype == np.float32 and vec.shape == (20, 384) and isinstance(vec, np.memmap)  # float32 by default
    np.testing.assert_array_equal(got_ids, ids)
    np.testing.assert_array_equal(vec, ref)  # resumed == uninterrupted, bit for bit
    assert json.loads((out / "meta.json").read_text())["n"] == 20 == meta_file["n"]
    lib = base_model.encode(texts[:5], normalize_embeddings=True, convert_to_numpy=True)
    np.testing.assert_allclose(vec[:5], lib, atol=2e-5)  # the library's fp32 embeddings


def test_float16_store_is_the_float32_vectors_rounded(base_model, passages, tmp_path):
    texts, ids = passages.text.tolist()[:8], passages.pid.to_numpy()[:8]
    kw = {"chunk_size": 3, "batch_size": 4, "dtype": "fp32", "show_progress": False}
    encode_corpus(base_model, texts, ids, tmp_path / "f32", tmp_path / "p" / "a", **kw)
    meta = encode_corpus(base_model, texts, ids, tmp_path / "f16", tmp_path / "p" / "b", store_dtype="float16", **kw)
    v32, _, _ = load_embeddings(tmp_path / "f32")
    v16, _, _ = load_embeddings(tmp_path / "f16")
    assert v16.dtype == np.float16 and meta["dtype"] == "float16"
    np.testing.assert_array_equal(v16, np.asarray(v32).astype(np.float16))
    assert (tmp_path / "f16" / "vectors.npy").stat().st_size < 0.6 * (tmp_path / "f32" / "vectors.npy").stat().st_size
    with pytest.raises(ValueError, match="store_dtype 'int8'"):
        encode_corpus(base_model, texts, ids, tmp_path / "x", tmp_path / "p" / "c", store_dtype="int8", **kw)


def test_execution_knobs_change_vectors_at_rounding_level_only(base_model, passages, tmp_path, monkeypatch):
    """chunk_size, batch_size and max_tokens rerun nothing, so they may change fp32 vectors by at most 1e-6."""
    texts, ids = passages.text.tolist(), passages.pid.to_numpy()
    runs = []
    for i, (chunk, batch, pipelined) in enumerate(((20, 64, False), (7, 3, False), (5, 2, True), (20, 64, True))):
        kw = {"chunk_size": chunk, "batch_size": batch, "dtype": "fp32", "show_progress": False, "max_tokens": 96}
        monkeypatch.setitem(E.PIPELINED_BY_DEVICE, "cpu", (pipelined, "test"))
        encode_corpus(base_model, texts, ids, tmp_path / f"o{i}", tmp_path / "p" / str(i), **kw)
        runs.append(np.asarray(load_embeddings(tmp_path / f"o{i}")[0]))
    for r in runs[1:]:
        assert np.abs(r - runs[0]).max() <= 1e-6


def test_pipelined_encoder_matches_the_library(base_model, passages):
    """The fast path gives the library's vectors (fp32 tolerance) and the same top-k over a corpus."""
    from ftstudy.fast_encode import PipelinedEncoder, budget_batches
    from ftstudy.search import exact_search

    texts = passages.text.tolist()
    ref = base_model.encode(texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True)
    got = PipelinedEncoder(base_model, "cpu", "fp32", max_tokens=128, max_batch=4, chunk=7).encode(texts)
    assert got.dtype == np.float32 and got.shape == ref.shape
    np.testing.assert_allclose(got, ref, atol=2e-5)
    queries = ["what is a passage about", "how many people live there", "definition of a word"]
    qv = base_model.encode(queries, normalize_embeddings=True, convert_to_numpy=True)
    np.testing.assert_array_equal(exact_search(qv, got, 10)[1], exact_search(qv, ref, 10)[1])
    lengths = np.array([5, 50, 20, 50, 1])
    batches = budget_batches(lengths, max_tokens=100, max_batch=3)
    assert [b.tolist() for b in batches] == [[1, 3], [2, 0, 4]]  # longest first; 50x2 <= 100, 20x3 <= 100


def test_ids_length_mismatch_is_an_error(base_model, tmp_path):
    with pytest.raises(ValueError, match="ids has shape"):
        encode_corpus(base_model, ["a", "b"], np.array([1]), tmp_path / "o", tmp_path / "p")


def test_each_text_is_tokenised_once_and_batches_equal_the_models_own_preprocessing(base_model, passages, monkeypatch):
    """The sorted path pads each batch from one tokenisation of the texts; its vectors equal, bit for bit, batches
    of the same texts (descending token length) run through ``model.preprocess`` and the model by hand."""
    import torch

    texts = passages.text.tolist()[:11]
    batch = 4
    lengths = [len(base_model.tokenizer(t, truncation=True, max_length=base_model.max_seq_length)["input_ids"])
               for t in texts]  # fmt: skip
    order = np.argsort(-np.array(lengths), kind="stable")
    ref = np.empty((len(texts), 384), np.float32)
    with torch.inference_mode():
        for s in range(0, len(texts), batch):
            idx = order[s : s + batch]
            emb = base_model(base_model.preprocess([texts[i] for i in idx]))["sentence_embedding"].float()
            ref[idx] = torch.nn.functional.normalize(emb, p=2, dim=1).numpy()
    calls = []
    real = type(base_model).preprocess
    monkeypatch.setattr(type(base_model), "preprocess", lambda self, *a, **k: calls.append(1) or real(self, *a, **k))
    got = encode_texts_dtype(base_model, texts, batch_size=batch, dtype="fp32", pipelined=False)
    assert len(calls) == 1  # the first batch only, to check the padded features against the model's own
    np.testing.assert_array_equal(got, ref)
