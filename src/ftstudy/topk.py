"""Top-k kernels shared by every exact search of the study: candidates by a chunked matrix product, then an
exact fp32 rescoring that fixes the final order.

"Exact" (DESIGN.md): the final top-k equals fp32 brute force over the stored vectors, ties broken by score, then
pid. A search may find its candidates in reduced precision (fp16/bf16 matrix products) or in any chunking, as long
as it collects a deeper candidate list (:func:`candidate_depth`) and :func:`rescore` then recomputes every
candidate's score in fp32 from the stored vectors and orders them by (score descending, pid ascending). Because
the final scores are recomputed the same way whatever the chunk or batch sizes, those execution knobs change no
output.
"""

from __future__ import annotations

import numpy as np

INT64_MAX = np.iinfo(np.int64).max


def candidate_depth(k: int, n: int, rescore_depth: int, reduced: bool) -> int:
    """Candidates per query to collect before rescoring: ``k + rescore_depth`` (fp32 candidates, where only ties
    at the cut can differ), or ``2k + rescore_depth`` when candidates come from a reduced-precision product
    (fp16/bf16 rounding of a score is ~1e-3, so the true top-k can sit a little deeper). Capped at ``n``."""
    return int(min(n, (2 * k if reduced else k) + max(0, rescore_depth)))


#: The default cap on one (query batch x corpus rows) score matrix, in bytes (``retrieval.score_budget_mb``).
#: Uncapped, 1,000 timed queries x a 1M-row chunk made a 4 GB fp32 matrix, and the next chunk's product was
#: allocated before the last one was freed: 8.7 GB of anonymous memory beside the 13.6 GB memory map at full
#: size, over the 20 GB bound (docs/scale.md).
SCORE_BUDGET_BYTES = 1 << 30


def score_rows(n_queries: int, itemsize: int, depth: int, score_budget_bytes: int | None) -> int | None:
    """Corpus rows per matrix product so that an (n_queries, rows) score matrix of ``itemsize``-byte scores stays
    within ``score_budget_bytes``; never fewer than ``depth`` rows (each product keeps its top-``depth``, so
    smaller products would only grow the merged candidate list). None: no cap."""
    if score_budget_bytes is None:
        return None
    return max(int(depth), 1, int(score_budget_bytes) // (max(1, int(n_queries)) * int(itemsize)))


def chunk_candidates(q, chunks, depth: int, score_budget_bytes: int | None = SCORE_BUDGET_BYTES):
    """Top-``depth`` candidate rows of each query over corpus chunks, unsorted.

    q: (b, d) torch tensor in the chunks' dtype and device. chunks: iterable of (row offset, (c, d) tensor).
    Scores stay in the product's dtype (no fp32 copy of the (b, c) score matrix); each chunk is multiplied in
    slices of :func:`score_rows` rows, so one (b, rows) score matrix is at most ``score_budget_bytes`` (None: a
    chunk at once), and it is freed before the next product. Each slice's top-depth is kept, and one final
    top-depth is taken over their concatenation. Returns rows int64 (b, depth') on q's device, depth' =
    min(depth, rows seen).
    """
    import torch

    step = score_rows(q.shape[0], q.element_size(), depth, score_budget_bytes)
    all_s, all_i = [], []
    for offset, chunk in chunks:
        for start in range(0, chunk.shape[0], step or max(1, chunk.shape[0])):
            c = chunk[start : start + step] if step else chunk
            s = q @ c.T
            top_s, top_i = torch.topk(s, min(depth, s.shape[1]), dim=1, sorted=False)
            del s  # before the next product is allocated
            all_s.append(top_s)
            all_i.append(top_i + (offset + start))
    cat_s, cat_i = torch.cat(all_s, dim=1), torch.cat(all_i, dim=1)
    if cat_s.shape[1] > depth:
        _, pos = torch.topk(cat_s, depth, dim=1, sorted=False)
        cat_i = torch.gather(cat_i, 1, pos)
    return cat_i


def _gather_rows(corpus, rows):
    """corpus[rows] as an fp32 torch tensor (b, D, d); corpus is a numpy array/memmap or a torch tensor."""
    import torch

    if isinstance(corpus, torch.Tensor):
        return corpus[rows.to(corpus.device)].float()
    flat = rows.reshape(-1).cpu().numpy()
    return torch.from_numpy(np.asarray(corpus[flat], dtype=np.float32)).reshape(*rows.shape, corpus.shape[1])


def rescore(q, corpus, rows, k: int, pids=None) -> tuple[np.ndarray, np.ndarray]:
    """Exact final top-``k`` of candidate ``rows``: fp32 scores from the stored vectors, ordered by (score desc,
    pid asc).

    q: (b, d) torch tensor (any float dtype; used in fp32). corpus: (n, d) stored vectors (numpy/memmap or torch).
    rows: (b, D) int64 torch tensor of candidate rows (-1 = no candidate). pids: (n,) int64 numpy array of the
    rows' ids (the tie-break key), or None to break ties by row. Returns (scores float32 (b, k'), rows int64
    (b, k')) numpy arrays, k' = min(k, D), best first.
    """
    import torch

    valid = rows >= 0
    safe = rows.clamp(min=0)
    vec = _gather_rows(corpus, safe)  # (b, D, d)
    qf = q.float().to(vec.device)
    scores = (vec * qf.unsqueeze(1)).sum(dim=2).cpu()  # elementwise: the same bits whatever the batch
    scores = scores.masked_fill(~valid.cpu(), float("-inf"))
    safe, valid = safe.cpu(), valid.cpu()
    key = torch.from_numpy(np.asarray(pids, dtype=np.int64)[safe.numpy()]) if pids is not None else safe.clone()
    key = key.masked_fill(~valid, INT64_MAX)
    by_key = torch.argsort(key, dim=1, stable=True)
    by_score = torch.argsort(-torch.gather(scores, 1, by_key), dim=1, stable=True)
    order = torch.gather(by_key, 1, by_score)[:, :k]
    out_rows = torch.gather(safe, 1, order).masked_fill(~torch.gather(valid, 1, order), -1)
    return torch.gather(scores, 1, order).numpy().astype(np.float32), out_rows.numpy().astype(np.int64)


def rescore_batches(q, corpus, rows, k: int, pids=None, budget_floats: int = 1 << 25):
    """:func:`rescore` in query batches sized so the gathered (b, D, d) block stays under ``budget_floats``
    fp32 values (128 MiB by default). Same arguments and result as :func:`rescore`."""
    depth, dim = max(1, rows.shape[1]), int(corpus.shape[1])
    step = max(1, budget_floats // (depth * dim))
    parts = [rescore(q[s : s + step], corpus, rows[s : s + step], k, pids) for s in range(0, q.shape[0], step)]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
