"""Embedding geometry: does fine-tuning "flatten" the space? Numbers and an aligned UMAP.

All functions take L2-normalised embeddings (rows of unit length; they are normalised again defensively).

* alignment (Wang & Isola, 2020): E ||f(q) - f(p)||^2 over query/positive pairs (alpha = 2). 0 = pairs coincide.
* uniformity (Wang & Isola, 2020): log E exp(-t ||x - y||^2), t = 2, over distinct pairs of points. 0 when all
  points coincide, -4 when every pair is orthogonal; lower = spread more uniformly over the sphere.
* anisotropy: mean cosine of distinct pairs. 1 = all vectors identical; 0 e.g. for an orthonormal basis.
* effective rank (Roy & Vetterli, 2007): exp of the Shannon entropy of the normalised singular values of the
  (uncentred) embedding matrix. 1 for identical vectors, d for an orthonormal basis of R^d.
* mean query-positive cosine, mean query-random-passage cosine, and their gap.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.spatial.distance import pdist
from scipy.special import logsumexp
from scipy.stats import entropy


def normalise(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (float64)."""
    x = np.asarray(x, dtype=np.float64)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    if np.any(norms == 0):
        raise ValueError("an embedding has zero norm; cannot normalise")
    return x / norms


def alignment(q: np.ndarray, p: np.ndarray, alpha: float = 2.0) -> float:
    """Wang & Isola's alignment: mean ||q_i - p_i||^alpha over positive pairs (rows of q and p)."""
    q, p = normalise(q), normalise(p)
    return float(np.mean(np.linalg.norm(q - p, axis=1) ** alpha))


def uniformity(x: np.ndarray, t: float = 2.0) -> float:
    """Wang & Isola's uniformity: log of the mean of exp(-t ||x_i - x_j||^2) over pairs i < j."""
    d2 = pdist(normalise(x), "sqeuclidean")
    return float(logsumexp(-t * d2) - np.log(len(d2)))


def anisotropy(x: np.ndarray) -> float:
    """Mean cosine similarity over distinct pairs i != j."""
    x = normalise(x)
    n = len(x)
    s = x.sum(axis=0)
    total = float(s @ s)  # sum over all i, j of cos(x_i, x_j), diagonal included (each 1)
    return (total - n) / (n * (n - 1))


def effective_rank(x: np.ndarray) -> float:
    """Roy & Vetterli's effective rank: exp(H(p)), p = singular values / their sum, of the uncentred matrix."""
    sv = np.linalg.svd(np.asarray(x, dtype=np.float64), compute_uv=False)
    sv = sv[sv > sv.max() * 1e-12] if sv.max() > 0 else sv
    return float(np.exp(entropy(sv / sv.sum())))


def geometry_metrics(q: np.ndarray, p: np.ndarray, r: np.ndarray | None = None, t: float = 2.0) -> dict:
    """Every geometry number for one model.

    ``q``, ``p``: (n, d) query and positive-passage embeddings, row i a pair; ``r``: (m, d) random passages
    (row i paired with query i when m == n, else all queries against all of them). Uniformity, anisotropy and
    effective rank are over the 2n points of queries and positives together; the ``*_queries`` / ``*_passages``
    columns repeat uniformity per side.
    """
    q, p = normalise(q), normalise(p)
    both = np.vstack([q, p])
    out = {
        "n_pairs": len(q),
        "dim": q.shape[1],
        "alignment": alignment(q, p),
        "uniformity": uniformity(both, t),
        "uniformity_queries": uniformity(q, t),
        "uniformity_passages": uniformity(p, t),
        "anisotropy": anisotropy(both),
        "effective_rank": effective_rank(both),
        "cos_query_positive": float(np.mean(np.sum(q * p, axis=1))),
    }
    if r is not None and len(r):
        r = normalise(r)
        cos_r = np.sum(q * r, axis=1) if len(r) == len(q) else (q @ r.T).ravel()
        out["cos_query_random"] = float(np.mean(cos_r))
        out["cos_gap"] = out["cos_query_positive"] - out["cos_query_random"]
    return out


# ---- the pairs ---------------------------------------------------------------------------------------------------
def sample_pairs(
    queries: pd.DataFrame, qrels: pd.DataFrame, pids: np.ndarray, n_pairs: int, seed: int, min_relevance: int = 1
) -> pd.DataFrame:
    """``n_pairs`` seeded (query, judged positive, random passage) triples, the same for every model.

    ``queries``: qid, text; ``qrels``: qid, pid, relevance; ``pids``: every pid of the collection. Queries are
    drawn without replacement from those with a judged positive (all of them if fewer than ``n_pairs``); each
    gets one of its positives and one random passage that is not among its judged positives.
    Returns columns qid, pid, rand_pid (rows in draw order).
    """
    rng = np.random.default_rng(seed)
    judged = qrels[qrels["relevance"] >= min_relevance]
    pos = judged.groupby("qid")["pid"].apply(lambda s: sorted(set(int(v) for v in s)))
    qids = np.array(sorted(set(int(q) for q in queries["qid"]) & set(int(q) for q in pos.index)), dtype=np.int64)
    if len(qids) < 2:
        raise ValueError(f"only {len(qids)} judged queries; need at least 2 for the geometry pairs")
    chosen = rng.choice(qids, size=min(n_pairs, len(qids)), replace=False)
    pids = np.asarray(pids, dtype=np.int64)
    rows = []
    for qid in chosen:
        positives = pos[qid]
        pid = positives[int(rng.integers(len(positives)))]
        rand = int(pids[rng.integers(len(pids))])
        while rand in positives and len(pids) > len(positives):
            rand = int(pids[rng.integers(len(pids))])
        rows.append((int(qid), int(pid), rand))
    return pd.DataFrame(rows, columns=["qid", "pid", "rand_pid"])


def pair_pids(pairs: pd.DataFrame) -> list[int]:
    """Every pid that ``pairs`` (qid, pid, rand_pid) names, positives and random passages, sorted and unique."""
    return sorted({int(v) for v in pairs["pid"]} | {int(v) for v in pairs["rand_pid"]})


def attach_texts(
    pairs: pd.DataFrame, queries: pd.DataFrame, passages: pd.DataFrame, source: str = "the collection"
) -> pd.DataFrame:
    """``pairs`` (qid, pid, rand_pid) with three text columns added: ``query``, ``passage`` (the positive) and
    ``rand_passage``. ``queries``: qid, text; ``passages``: pid, text, holding at least :func:`pair_pids`
    (a repeated id keeps its first text). ValueError naming ``source`` and up to five pids that have no text."""
    texts = passages.drop_duplicates("pid").set_index("pid")["text"]
    missing = sorted(set(pair_pids(pairs)) - set(int(p) for p in texts.index))
    if missing:
        raise ValueError(f"{source}: {len(missing)} pid(s) of the geometry pairs not in the collection, e.g. "
                         f"{missing[:5]}")  # fmt: skip
    out = pairs.copy()
    out["query"] = out["qid"].map(queries.drop_duplicates("qid").set_index("qid")["text"])
    if out["query"].isna().any():
        raise ValueError(f"queries: no text for qid(s) {sorted(out.loc[out['query'].isna(), 'qid'])[:5]}")
    out["passage"] = out["pid"].map(texts)
    out["rand_passage"] = out["rand_pid"].map(texts)
    return out


# ---- aligned UMAP ------------------------------------------------------------------------------------------------
def aligned_umap(
    embeddings: list[np.ndarray], n_neighbors: int = 15, min_dist: float = 0.1, seed: int = 42
) -> list[np.ndarray]:
    """2-D coordinates of the same points under several models, fitted jointly with umap-learn's AlignedUMAP.

    ``embeddings``: one (N, d) array per model, row i the same point (query or passage) in every model; the
    relations between consecutive models are the identity, so the panels share one frame. Returns one (N, 2)
    float32 array per model. Seeded with ``seed`` (UMAP is then single-threaded and reproducible).
    """
    import warnings

    import umap

    warnings.filterwarnings("ignore", message="n_jobs value .* overridden", category=UserWarning)
    n = len(embeddings[0])
    if any(len(e) != n for e in embeddings):
        raise ValueError("every model must embed the same points (same number of rows)")
    neighbors = min(n_neighbors, n - 1)
    if len(embeddings) == 1:
        reducer = umap.UMAP(n_neighbors=neighbors, min_dist=min_dist, random_state=seed, metric="cosine")
        return [reducer.fit_transform(np.asarray(embeddings[0], dtype=np.float32)).astype(np.float32)]
    relations = [{i: i for i in range(n)} for _ in range(len(embeddings) - 1)]
    reducer = umap.AlignedUMAP(n_neighbors=neighbors, min_dist=min_dist, random_state=seed, metric="cosine")
    reducer.fit([np.asarray(e, dtype=np.float32) for e in embeddings], relations=relations)
    return [np.asarray(e, dtype=np.float32) for e in reducer.embeddings_]
