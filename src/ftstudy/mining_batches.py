"""Mining batch by batch, resumably: one batch of queries at a time, each finished batch saved as a piece.

:func:`mine_batch` embeds, retrieves and draws one batch (the positive test and the cosines are vectorised over
the batch; only the seeded draw of :func:`ftstudy.negatives.draw_query` runs per query). :func:`mine_batches`
walks the batches in ascending qid order and saves each :class:`BatchResult` (a few int64 per query) as
``batch_{i:06d}.npz``, with the batch's candidate lists (:class:`ftstudy.candidate_file.QueryCandidates`, what
``results/mining/candidates.parquet`` holds) as ``cands_{i:06d}.npz``, in a folder from
:func:`ftstudy.partial.open_partial`; pieces already there are loaded
instead of mined, so a killed job resumes at its next batch. The batch size is an execution knob: the rows do
not depend on it (per-query RNG), but the pieces do, so it belongs in the folder's stamp.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ftstudy.atomic import atomic_path
from ftstudy.candidate_file import QueryCandidates
from ftstudy.candidates import Retriever
from ftstudy.negatives import SKIP_REASONS, MiningSettings, PidIndex, draw_query


@dataclass
class BatchResult:
    """What one batch of queries yielded: (n,) arrays per triplet row, (s,) per skipped query, and counts."""

    qid: np.ndarray
    pos_pid: np.ndarray
    neg_pid: np.ndarray
    neg_rank: np.ndarray
    pos_cos: np.ndarray  # float32 cosine of query and positive under the base model
    neg_cos: np.ndarray  # float32 cosine of query and negative under the base model
    skipped_qid: np.ndarray
    skipped_reason: np.ndarray  # index into SKIP_REASONS
    positives_excluded: int
    margin_dropped: int
    fewer_negatives: int  # queries that got fewer than negatives_per_query negatives

    def save(self, path: Path) -> None:
        """Write the batch as one ``.npz`` atomically."""
        with atomic_path(path, suffix=".npz") as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, **{k: np.asarray(v) for k, v in asdict(self).items()})

    @classmethod
    def load(cls, path: Path) -> BatchResult:
        """Read a batch written by :meth:`save`."""
        with np.load(path) as z:
            d = {k: z[k] for k in z.files}
        for k in ("positives_excluded", "margin_dropped", "fewer_negatives"):
            d[k] = int(d[k])
        return cls(**d)


def _cat(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts) if parts else np.empty(0, np.int64)


def _positive_matrix(pos_lists: list[np.ndarray], cand: np.ndarray) -> np.ndarray:
    """(b, k) bool: candidate j of query i is one of query i's judged positives."""
    width = max((p.size for p in pos_lists), default=0)
    pos_mat = np.full((len(pos_lists), max(width, 1)), -2, np.int64)  # -2 never matches a pid or the -1 padding
    for i, p in enumerate(pos_lists):
        pos_mat[i, : p.size] = p
    return (cand[:, :, None] == pos_mat[:, None, :]).any(-1) if cand.size else np.zeros(cand.shape, bool)


@dataclass(frozen=True)
class BatchMiner:
    """What every batch is mined with.

    positives: qid -> judged positive pids, each with a corpus row (see
    :func:`ftstudy.negatives.positives_in_corpus`). embed: texts -> (n, d) float32 L2-normalised base-model
    embeddings. retrieve: see :data:`ftstudy.candidates.Retriever`. corpus_vectors: (N, d) base-model corpus
    embeddings, rows L2-normalised, whose rows ``pid_index`` maps pids to; the cosines in the stats and the
    margin guard use them. retrieval_is_cosine: the retriever's scores are those cosines (the base miner).
    """

    settings: MiningSettings
    positives: dict[int, np.ndarray]
    embed: Callable[[list[str]], np.ndarray]
    retrieve: Retriever
    corpus_vectors: np.ndarray
    pid_index: PidIndex
    retrieval_is_cosine: bool = True


def mine_batch(miner: BatchMiner, qids: np.ndarray, texts: list[str]) -> tuple[BatchResult, QueryCandidates]:
    """Mine one batch of queries: qids (b,) and their b texts. Returns the draws and the batch's candidate lists
    (the valid candidates in rank order with the base-model cosines that the margin guard uses)."""
    settings, corpus_vectors, pid_index = miner.settings, miner.corpus_vectors, miner.pid_index
    q_emb = np.asarray(miner.embed(texts), dtype=np.float32)
    scores, cand = miner.retrieve(q_emb, texts)
    pos_lists = [miner.positives[q] for q in qids.tolist()]
    is_pos_all = _positive_matrix(pos_lists, cand)
    n_valid = (cand >= 0).sum(1)

    def cosines(i: int, pids: np.ndarray) -> np.ndarray:
        return np.asarray(corpus_vectors[_rows(pid_index, pids)], np.float32) @ q_emb[i]

    out = {k: [] for k in ("qid", "pos_pid", "neg_pid", "neg_rank", "row")}
    lists = {k: [] for k in ("pids", "scores", "pos_pids", "pos_scores")}
    skipped_q, skipped_r = [], []
    excluded = dropped = fewer = 0
    for i, qid in enumerate(qids.tolist()):
        pos = pos_lists[i]
        c = cand[i, : n_valid[i]]  # candidates are sorted with the -1 padding last
        pos_cos = cosines(i, pos)
        cand_cos = scores[i, : c.size] if miner.retrieval_is_cosine else cosines(i, c)
        for k, v in zip(lists, (c, cand_cos, pos, pos_cos), strict=True):
            lists[k].append(v)
        res = draw_query(qid, c, pos, settings, cand_cos, pos_cos, is_pos=is_pos_all[i, : c.size])
        if isinstance(res, str):
            skipped_q.append(qid)
            skipped_r.append(SKIP_REASONS.index(res))
            continue
        n = res.neg_pids.size
        fewer += n < settings.negatives_per_query
        excluded += res.positives_excluded
        dropped += res.margin_dropped
        out["qid"].append(np.full(n, qid, np.int64))
        out["pos_pid"].append(np.full(n, res.pos_pid, np.int64))
        out["neg_pid"].append(res.neg_pids)
        out["neg_rank"].append(res.neg_ranks)
        out["row"].append(np.full(n, i, np.int64))
    cols = {k: _cat(v) for k, v in out.items()}
    q_of_row = q_emb[cols.pop("row")]
    result = BatchResult(
        **cols,
        pos_cos=_row_cosines(corpus_vectors, _rows(pid_index, cols["pos_pid"]), q_of_row),
        neg_cos=_row_cosines(corpus_vectors, _rows(pid_index, cols["neg_pid"]), q_of_row),
        skipped_qid=np.asarray(skipped_q, np.int64),
        skipped_reason=np.asarray(skipped_r, np.int64),
        positives_excluded=excluded,
        margin_dropped=dropped,
        fewer_negatives=fewer,
    )
    return result, QueryCandidates.from_lists(qids, **lists)


def _rows(pid_index: PidIndex, pids: np.ndarray) -> np.ndarray:
    r = pid_index.rows(pids)
    if (r < 0).any():
        raise ValueError(f"pids {pids[r < 0][:5].tolist()} have no base-model embedding")
    return r


def _row_cosines(corpus_vectors: np.ndarray, rows: np.ndarray, q: np.ndarray) -> np.ndarray:
    """cos(q[j], corpus[rows[j]]) for each j, float32; rows are read in ascending order (memory maps)."""
    if rows.size == 0:
        return np.empty(0, np.float32)
    order = np.argsort(rows, kind="stable")
    vec = np.empty((rows.size, corpus_vectors.shape[1]), np.float32)
    vec[order] = corpus_vectors[rows[order]]
    return np.einsum("ij,ij->i", vec, q).astype(np.float32)


def _piece_paths(folder: Path, b: int) -> tuple[Path, Path]:
    return folder / f"batch_{b:06d}.npz", folder / f"cands_{b:06d}.npz"


def batch_done(folder: str | os.PathLike, b: int) -> bool:
    """Whether batch ``b``'s two pieces are in ``folder``."""
    return all(p.exists() for p in _piece_paths(Path(folder), b))


def mine_batches(
    miner: BatchMiner,
    qids: np.ndarray,
    query_text: Callable[[np.ndarray], list[str]],
    folder: str | os.PathLike,
    batch_size: int,
    progress: bool = True,
    batches: range | None = None,
) -> Iterator[tuple[BatchResult, QueryCandidates]]:
    """Mine ``qids`` (ascending) ``batch_size`` at a time; yield each batch's (result, candidate lists).

    ``query_text(qids) -> texts``. Each finished batch is saved in ``folder`` (from
    :func:`ftstudy.partial.open_partial`, stamped with ``batch_size``) and loaded from there on a rerun instead
    of being mined again (or when a shard job mined it). ``batches``: only these batch indices (a shard's
    block, :func:`ftstudy.shards.shard_range`); default all ``ceil(len(qids) / batch_size)``.
    """
    from tqdm.auto import tqdm

    miner.settings.validate()
    folder = Path(folder)
    n_batches = (qids.size + batch_size - 1) // batch_size
    batches = range(n_batches) if batches is None else batches
    total = sum(qids[b * batch_size : (b + 1) * batch_size].size for b in batches)
    bar = tqdm(total=int(total), desc="mining", unit="q", disable=not progress)
    for b in batches:
        path, cands_path = _piece_paths(folder, b)
        batch = qids[b * batch_size : (b + 1) * batch_size]
        if path.exists() and cands_path.exists():
            res, cands = BatchResult.load(path), QueryCandidates.load(cands_path)
        else:
            res, cands = mine_batch(miner, batch, query_text(batch))
            cands.save(cands_path)
            res.save(path)
        bar.update(batch.size)
        yield res, cands
    bar.close()
