"""Search backends: faiss, torch and a NumPy brute force return the same top-k (ties aside); index options."""

from __future__ import annotations

import numpy as np
import pytest

from ftstudy import search as S
from ftstudy.index import build_index, effective_nlist, read_index, set_search_params, write_index


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
    write_index(build_index(c.astype(np.float16), {"type": "flat"}), path)
    assert not [p for p in path.parent.iterdir() if p.name != "main.faiss"]  # no temp file left
    index = read_index(path)
    ref = brute_force(q, c.astype(np.float16).astype(np.float32), 50)
    assert_same_topk(*S.search(q, None, 50, backend="faiss", index=index, device="cpu"), *ref)
    assert_same_topk(*S.search(q, None, 50, backend="torch", index=index, device="cpu"), *ref)


def test_ivf_all_lists_is_exact_and_hnsw_recall(caplog, data):
    q, c = data
    ref = brute_force(q, c, 10)
    with caplog.at_level("INFO"):
        ivf = set_search_params(build_index(c, {"type": "ivf", "nlist": 1000, "seed": 0}), nprobe=1000)
    assert effective_nlist(1000, len(c)) == len(c) // 39 == ivf.nlist
    assert "capped" in caplog.text
    assert_same_topk(*S.search(q, None, 10, backend="faiss", index=ivf, device="cpu"), *ref)
    hnsw = set_search_params(build_index(c, {"type": "hnsw", "hnsw_m": 16, "ef_construction": 100}), ef_search=200)
    _, i = S.search(q, None, 10, backend="faiss", index=hnsw, device="cpu")
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(i, ref[1], strict=True)])
    assert recall > 0.9


def test_auto_backend_choice(monkeypatch):
    """auto = the fastest exact backend measured per device: faiss-cpu on the CPU (torch without faiss), torch on
    a GPU whatever faiss build is installed."""
    monkeypatch.setattr(S, "_cuda_available", lambda: False)
    assert S.resolve_backend("auto") == ("faiss", "cpu")
    monkeypatch.setattr(S, "_faiss_installed", lambda: False)
    assert S.resolve_backend("auto") == ("torch", "cpu")
    with pytest.raises(ImportError, match="needs faiss-cpu"):
        S.resolve_backend("faiss")
    monkeypatch.setattr(S, "_faiss_installed", lambda: True)
    monkeypatch.setattr(S, "_cuda_available", lambda: True)
    for faiss_gpu in (False, True):
        monkeypatch.setattr(S, "faiss_gpu_available", lambda v=faiss_gpu: v)
        assert S.resolve_backend("auto") == ("torch", "cuda")
    assert S.resolve_backend("faiss") == ("faiss", "cuda")
    monkeypatch.setattr(S, "faiss_gpu_available", lambda: False)
    assert S.resolve_backend("faiss") == ("faiss", "cpu")  # no faiss-gpu: faiss-cpu
    assert S.resolve_backend("torch", "cpu") == ("torch", "cpu")
    for _, why in S.AUTO_BACKEND.values():  # each choice names the measurement behind it
        assert "bench/" in why or "DESIGN.md" in why
    with pytest.raises(ValueError, match="backend 'annoy'"):
        S.resolve_backend("annoy")


# ---- exact by definition: the final top-k is fp32 brute force over the stored vectors, ties by score then pid ----
def reference_topk(q, c, pids, k):
    """Independent reference: float64 scores of the stored vectors, ordered by (score desc, pid asc)."""
    s = q.astype(np.float64) @ c.astype(np.float64).T
    order = np.lexsort((np.broadcast_to(pids, s.shape), -s), axis=1)[:, :k]
    return np.take_along_axis(s, order, 1), order


@pytest.fixture(scope="module")
def tied():
    """Corpus with deliberate ties: rows 0..39 are copied 3 times each; pids are a shuffled permutation, so the
    row order and the pid order of tied rows disagree."""
    rng = np.random.default_rng(1)
    base = _unit(rng, 400, 24)
    c = np.concatenate([base, base[:40], base[:40]])
    pids = rng.permutation(np.arange(10_000, 10_000 + len(c)) * 7).astype(np.int64)
    q = np.concatenate([base[:10], _unit(rng, 20, 24)])  # the first 10 queries hit their tied copies first
    return q, c, pids


def _paths(q, c, pids, k):
    yield "exact chunked", S.exact_search(q, c, k, "cpu", 7, 97, ids=pids)
    yield "exact one chunk", S.exact_search(q, c, k, "cpu", 4096, 10**6, ids=pids)
    yield "exact bf16 candidates", S.exact_search(q, c, k, "cpu", 8, 200, ids=pids, candidate_dtype="bfloat16")
    yield "resident", S.ResidentSearch(c, k, "cpu", 5, 333, ids=pids)(q)
    yield "resident bf16", S.ResidentSearch(c, k, "cpu", 5, 333, dtype="bfloat16", ids=pids)(q)
    yield "exact score budget", S.exact_search(q, c, k, "cpu", 8, 200, ids=pids, score_budget_bytes=8 * 4 * 50)
    yield "resident score budget", S.ResidentSearch(c, k, "cpu", 5, 333, ids=pids, score_budget_bytes=1)(q)
    yield "faiss", S.search(q, c, k, backend="faiss", device="cpu", ids=pids)
    yield "auto", S.search(q, c, k, backend="auto", device="cpu", ids=pids, corpus_chunk_size=50)


@pytest.mark.parametrize("k", [1, 3, 25])
def test_every_path_returns_the_exact_order_with_ties_by_pid(tied, k):
    q, c, pids = tied
    ref_s, ref_rows = reference_topk(q, c, pids, k)
    assert (np.diff(ref_s, axis=1) == 0).any() or k == 1  # the fixture really has ties inside the top-k
    for name, (s, rows) in _paths(q, c, pids, k):
        np.testing.assert_array_equal(rows, ref_rows, err_msg=name)
        np.testing.assert_allclose(s, ref_s, atol=1e-6, err_msg=name)


def test_fp16_store_is_ranked_exactly_over_the_stored_vectors(tied):
    q, c, pids = tied
    c16 = c.astype(np.float16)
    ref_s, ref_rows = reference_topk(q, c16.astype(np.float32), pids, 10)
    for name, (_, rows) in _paths(q, c16, pids, 10):
        np.testing.assert_array_equal(rows, ref_rows, err_msg=name)


def test_execution_knobs_give_identical_bytes(tied):
    """Chunk and batch sizes change no output at all: the final scores are recomputed the same way."""
    q, c, pids = tied
    runs = [S.exact_search(q, c, 20, "cpu", qb, cc, ids=pids) for qb, cc in ((1, 13), (30, 480), (4096, 10**6))]
    for s, rows in runs[1:]:
        assert s.tobytes() == runs[0][0].tobytes() and rows.tobytes() == runs[0][1].tobytes()


def test_no_score_matrix_exceeds_the_score_budget(tied, monkeypatch):
    """A corpus chunk is multiplied in slices whose (query batch x rows) score matrix fits the budget (at full size,
    1,000 timed queries x 1M rows was 4 GB, twice over while the next product was allocated); never below the
    candidate depth. Without a budget the whole chunk is one product."""
    import torch

    from ftstudy.topk import candidate_depth, score_rows

    q, c, pids = tied
    products = []
    matmul = torch.Tensor.__matmul__

    def spy(a, b):
        out = matmul(a, b)
        products.append((tuple(out.shape), out.element_size()))
        return out

    monkeypatch.setattr(torch.Tensor, "__matmul__", spy)
    budget = len(q) * 4 * 100  # 100 fp32 rows of scores for all the queries
    ref = S.ResidentSearch(c, 20, "cpu", 4096, 10**6, ids=pids, score_budget_bytes=None)(q)
    assert products == [((len(q), len(c)), 4)]
    products.clear()
    got = S.ResidentSearch(c, 20, "cpu", 4096, 10**6, ids=pids, score_budget_bytes=budget)(q)
    got_exact = S.exact_search(q, c, 20, "cpu", 4096, 10**6, ids=pids, score_budget_bytes=budget)
    assert len(products) == 2 * -(-len(c) // 100)
    assert all(rows * cols * size <= budget for (rows, cols), size in products)
    for s, rows in (got, got_exact):
        assert rows.tobytes() == ref[1].tobytes() and s.tobytes() == ref[0].tobytes()
    depth = candidate_depth(20, len(c), 16, False)
    assert score_rows(len(q), 4, depth, 1) == depth and score_rows(len(q), 4, depth, None) is None
    assert score_rows(10, 2, 5, 10 * 2 * 1000) == 1000


def test_fast_search_matches_exact_search(tied):
    q, c, pids = tied
    want = S.exact_search(q, c, 30, "cpu", ids=None)
    got = S.fast_search(q, c, 30, score_budget_bytes=4096, dtype="bfloat16")
    np.testing.assert_array_equal(got[1], want[1])
    np.testing.assert_allclose(got[0], want[0], atol=1e-6)


def test_a_memory_mapped_corpus_is_searched_in_place_not_copied(tied, tmp_path):
    """At 8.8M x 384 a copy of the memory map is 13.6 GB of anonymous memory on top of the mapped pages: the CPU
    search paths read the map itself, and give the same ranking as the in-memory array."""
    q, c, pids = tied
    np.save(tmp_path / "vectors.npy", c)
    mapped = np.load(tmp_path / "vectors.npy", mmap_mode="r")
    assert not mapped.flags.writeable
    resident = S.ResidentSearch(mapped, 10, "cpu", 5, 333, ids=pids)
    assert resident.stored.data_ptr() == mapped.ctypes.data  # the same memory: no copy
    assert resident.chunks[1][1].data_ptr() == mapped[333:].ctypes.data
    ref_s, ref_rows = reference_topk(q, c, pids, 10)
    s, rows = resident(q)
    np.testing.assert_array_equal(rows, ref_rows)
    np.testing.assert_allclose(s, ref_s, atol=1e-6)
    assert S._host_chunk(mapped, 100, 50).data_ptr() == mapped[100:].ctypes.data
    rows_exact = S.exact_search(q, mapped, 10, "cpu", 7, 97, ids=pids)[1]
    np.testing.assert_array_equal(rows_exact, ref_rows)
