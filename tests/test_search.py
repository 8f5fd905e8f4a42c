"""Search backends: faiss, torch and a NumPy brute force return the same top-k (ties aside); index options."""

from __future__ import annotations

import numpy as np
import pytest

from ftstudy import search as S
from ftstudy.index import build_index, effective_nlist, read_index, write_index


def _unit(rng, n, d):
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def brute_force(q, c, k):
    s = q.astype(np.float64) @ c.astype(np.float64).T
    idx = np.argsort(-s, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(s, idx, 1), idx


def assert_same_topk(scores, idx, ref_scores, ref_idx, atol=1e-5):
    """Same scores at every rank; same passages wherever the score is not tied with a neighbour."""
    np.testing.assert_allclose(scores, ref_scores, atol=atol)
    for i in range(len(idx)):
        gaps = np.diff(ref_scores[i])
        untied = np.ones(len(gaps) + 1, bool)
        untied[:-1] &= np.abs(gaps) > atol
        untied[1:] &= np.abs(gaps) > atol
        untied[-1] = False  # the k-th item may tie with the (k+1)-th, which is not shown
        np.testing.assert_array_equal(idx[i][untied], ref_idx[i][untied])


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    return _unit(rng, 50, 32), _unit(rng, 3000, 32)


@pytest.mark.parametrize("k", [1, 10, 100])
def test_backends_agree_with_numpy(data, k):
    q, c = data
    ref = brute_force(q, c, k)
    for backend in ("faiss", "torch"):
        s, i = S.search(q, c, k, backend=backend, device="cpu", query_batch_size=16, corpus_chunk_size=700)
        assert s.dtype == np.float32 and i.dtype == np.int64 and s.shape == (50, k)
        assert_same_topk(s, i, *ref)
    s, i = S.search(q, c, k, backend="auto", device="cpu")
    assert_same_topk(s, i, *ref)


def test_float16_corpus_and_ties(data):
    """An fp16 memory map works; exact duplicates (ties) come back as a set."""
    q, c = data
    c16 = np.concatenate([c, c[:5]]).astype(np.float16)  # rows 3000..3004 duplicate rows 0..4
    ref = brute_force(q, c16.astype(np.float32), 20)
    for backend in ("faiss", "torch"):
        s, i = S.search(q, c16, 20, backend=backend, device="cpu", corpus_chunk_size=1000)
        assert_same_topk(s, i, *ref, atol=1e-4)


def test_flat_index_file_matches(tmp_path, data):
    q, c = data
    path = tmp_path / "x" / "main.faiss"
    write_index(build_index(c.astype(np.float16), "flat"), path)
    assert not [p for p in path.parent.iterdir() if p.name != "main.faiss"]  # no temp file left
    index = read_index(path)
    ref = brute_force(q, c.astype(np.float16).astype(np.float32), 50)
    assert_same_topk(*S.search(q, None, 50, backend="faiss", index=index, device="cpu"), *ref)
    assert_same_topk(*S.search(q, None, 50, backend="torch", index=index, device="cpu"), *ref)


def test_ivf_all_lists_is_exact_and_hnsw_recall(caplog, data):
    q, c = data
    ref = brute_force(q, c, 10)
    with caplog.at_level("INFO"):
        ivf = build_index(c, "ivf", nlist=1000, nprobe=1000)
    assert effective_nlist(1000, len(c)) == len(c) // 39 == ivf.nlist
    assert "capped" in caplog.text
    assert_same_topk(*S.search(q, None, 10, backend="faiss", index=ivf, device="cpu"), *ref)
    hnsw = build_index(c, "hnsw", hnsw_m=16, ef_construction=100, ef_search=200)
    _, i = S.search(q, None, 10, backend="faiss", index=hnsw, device="cpu")
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(i, ref[1], strict=True)])
    assert recall > 0.9


def test_auto_backend_choice(monkeypatch):
    monkeypatch.setattr(S, "_cuda_available", lambda: False)
    assert S.resolve_backend("auto") == ("faiss", "cpu")
    monkeypatch.setattr(S, "_cuda_available", lambda: True)
    monkeypatch.setattr(S, "faiss_gpu_available", lambda: False)
    assert S.resolve_backend("auto") == ("torch", "cuda")  # GPU without faiss-gpu: torch exact search
    monkeypatch.setattr(S, "faiss_gpu_available", lambda: True)
    assert S.resolve_backend("auto") == ("faiss", "cuda")
    assert S.resolve_backend("torch", "cpu") == ("torch", "cpu")
    with pytest.raises(ValueError, match="backend 'annoy'"):
        S.resolve_backend("annoy")
