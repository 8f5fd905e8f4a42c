"""Encoding: agreement with SentenceTransformer.encode, the autocast path, resumable chunked corpus encoding."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

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
    assert sorted(p.name for p in partial.glob("chunk_*.npy")) == ["chunk_000000.npy", "chunk_000001.npy"]

    calls = []
    meta = encode_corpus(base_model, texts, ids, out, partial, on_chunk=lambda i, n: calls.append(i), **kw)
    assert calls == [2, 3]  # only the remaining chunks are encoded
    assert meta["chunks_reused"] == 2 and meta["chunks_encoded"] == 2
    assert not partial.exists()  # partial state deleted on success
    vec, got_ids, meta_file = load_embeddings(out)
    assert vec.dtype == np.float16 and vec.shape == (20, 384) and isinstance(vec, np.memmap)
    np.testing.assert_array_equal(got_ids, ids)
    np.testing.assert_allclose(np.asarray(vec, dtype=np.float32), np.asarray(ref, dtype=np.float32), atol=1e-3)
    np.testing.assert_allclose(np.linalg.norm(vec.astype(np.float32), axis=1), 1.0, atol=2e-3)
    assert json.loads((out / "meta.json").read_text())["n"] == 20 == meta_file["n"]
    # the stored vectors are the fp32 library embeddings rounded to fp16
    lib = base_model.encode(texts[:5], normalize_embeddings=True, convert_to_numpy=True)
    np.testing.assert_allclose(vec[:5].astype(np.float32), lib, atol=1e-3)


def test_ids_length_mismatch_is_an_error(base_model, tmp_path):
    with pytest.raises(ValueError, match="ids has shape"):
        encode_corpus(base_model, ["a", "b"], np.array([1]), tmp_path / "o", tmp_path / "p")
