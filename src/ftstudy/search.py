"""Exact inner-product top-k search. (The retrieval issue owns this module and adds faiss backends.)"""

from __future__ import annotations

import numpy as np


def exact_search(
    queries: np.ndarray,
    corpus: np.ndarray,
    k: int,
    device: str = "cpu",
    query_batch_size: int = 4096,
    corpus_chunk_size: int = 1_000_000,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` rows of ``corpus`` by inner product for each row of ``queries``.

    queries: (nq, d), corpus: (n, d), any float dtype. Returns (scores float32 (nq, k'), indices int64 (nq, k'))
    with k' = min(k, n), best first. Works in chunks so memory stays O(query_batch x corpus_chunk).
    """
    import torch

    n = corpus.shape[0]
    k_eff = min(k, n)
    out_s = np.empty((queries.shape[0], k_eff), dtype=np.float32)
    out_i = np.empty((queries.shape[0], k_eff), dtype=np.int64)
    dtype = torch.float32 if device == "cpu" else torch.float16
    for qs in range(0, queries.shape[0], query_batch_size):
        q = torch.as_tensor(np.ascontiguousarray(queries[qs : qs + query_batch_size]), device=device).to(dtype)
        best_s = best_i = None
        for cs in range(0, n, corpus_chunk_size):
            c = torch.as_tensor(np.ascontiguousarray(corpus[cs : cs + corpus_chunk_size]), device=device).to(dtype)
            s = (q @ c.T).float()
            top_s, top_i = torch.topk(s, min(k_eff, s.shape[1]), dim=1)
            top_i = top_i + cs
            if best_s is None:
                best_s, best_i = top_s, top_i
            else:
                cat_s = torch.cat([best_s, top_s], dim=1)
                cat_i = torch.cat([best_i, top_i], dim=1)
                best_s, pos = torch.topk(cat_s, k_eff, dim=1)
                best_i = torch.gather(cat_i, 1, pos)
        out_s[qs : qs + q.shape[0]] = best_s.cpu().numpy()
        out_i[qs : qs + q.shape[0]] = best_i.cpu().numpy()
    return out_s, out_i
