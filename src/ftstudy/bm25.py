"""BM25, the lexical baseline: bm25s with Lucene's scoring and an Anserini-like English analyzer.

Tokenisation (the same for passages and queries; see ``docs/timing.md``):

1. lowercase;
2. split with bm25s' default token pattern ``(?u)\\b\\w\\w+\\b`` (runs of two or more word characters; so single
   letters and digits are dropped, and ``don't`` gives ``don``);
3. drop the 33 English stop words of Lucene's ``EnglishAnalyzer`` (bm25s ``stopwords="en"``, the list Anserini uses);
4. Porter stemming (PyStemmer's ``porter``, the original Porter algorithm, as Anserini's default ``-stemmer porter``).

Scoring: bm25s ``method="lucene"``: ``idf = ln(1 + (N - df + 0.5) / (df + 0.5))`` and term weight
``tf / (tf + k1 * (1 - b + b * dl / avgdl))`` (Lucene >= 8 drops the textbook's constant factor
``k1 + 1``), k1/b from config (default ``ANSERINI_K1``/``ANSERINI_B``, Anserini's MS MARCO
default). Differences from Lucene remain: Lucene's StandardTokenizer keeps one-character tokens and splits on
Unicode word-break rules, Lucene stores document lengths lossily (one byte), and Anserini strips possessives.
So scores and rankings agree closely but not exactly with Anserini's runs.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

STOPWORDS = "en"  # bm25s' 33-word Lucene EnglishAnalyzer list
STEMMER = "porter"  # PyStemmer algorithm name; None disables stemming
TOKEN_PATTERN = r"(?u)\b\w\w+\b"
# Anserini's MS MARCO passage defaults (k1, b): the schema's bm25.k1/b defaults for the baseline, and the fixed
# setting with which ftstudy.synthetic picks its triples' negatives (fixed there so that tuning bm25.* does not
# regenerate the data set; tests/test_synthetic.py checks that the two agree).
ANSERINI_K1, ANSERINI_B = 0.9, 0.4


def _stemmer(name: str | None):
    if name is None or name == "none":
        return None
    try:
        import Stemmer
    except ImportError as exc:  # pragma: no cover - PyStemmer is a declared dependency
        raise ImportError(f"BM25 stemmer '{name}' needs PyStemmer (pip install PyStemmer)") from exc
    return Stemmer.Stemmer(name)


def tokenization(stemmer: str | None = STEMMER, stopwords: str | None = STOPWORDS) -> dict:
    """A record of the tokenisation, written beside every BM25 result."""
    return {
        "lowercase": True,
        "token_pattern": TOKEN_PATTERN,
        "stopwords": stopwords if stopwords and stopwords != "none" else "none",
        "stemmer": f"PyStemmer:{stemmer}" if stemmer and stemmer != "none" else "none",
        "library": "bm25s",
        "method": "lucene",
    }


@dataclass
class BM25Index:
    """What :func:`build_bm25` returns: the bm25s retriever plus the tokeniser settings it was built with."""

    retriever: object
    n_docs: int
    k1: float
    b: float
    stemmer_name: str | None = STEMMER
    stopwords: str | None = STOPWORDS
    _stemmer: object = field(default=None, repr=False)

    def tokenize(self, texts: Sequence[str], return_ids: bool = False, show_progress: bool = False):
        """Tokenise ``texts`` exactly as the corpus was (lists of stemmed tokens, or bm25s ``Tokenized``)."""
        import bm25s

        stem = self._stemmer.stemWords if self._stemmer is not None else None
        return bm25s.tokenize(
            list(texts),
            lower=True,
            token_pattern=TOKEN_PATTERN,
            stopwords=[] if self.stopwords in (None, "none") else self.stopwords,
            stemmer=stem,
            return_ids=return_ids,
            show_progress=show_progress,
        )

    def describe(self) -> dict:
        return {"k1": self.k1, "b": self.b, "n_docs": self.n_docs, **tokenization(self.stemmer_name, self.stopwords)}


def build_bm25(
    texts: list[str],
    k1: float,
    b: float,
    stemmer: str | None = STEMMER,
    stopwords: str | None = STOPWORDS,
    show_progress: bool = False,
) -> BM25Index:
    """Index ``texts`` (one passage per row) for BM25 with Lucene scoring; see the module docstring for the
    tokenisation. Returns a :class:`BM25Index` for :func:`bm25_search` (row positions are the doc ids)."""
    import bm25s

    if len(texts) == 0:
        raise ValueError("build_bm25: no texts to index")
    index = BM25Index(
        retriever=None,
        n_docs=len(texts),
        k1=float(k1),
        b=float(b),
        stemmer_name=stemmer,
        stopwords=stopwords,
        _stemmer=_stemmer(stemmer),
    )
    corpus_tokens = index.tokenize(texts, return_ids=True, show_progress=show_progress)
    retriever = bm25s.BM25(k1=float(k1), b=float(b), method="lucene")
    retriever.index(corpus_tokens, show_progress=show_progress)
    index.retriever = retriever
    return index


def bm25_search(
    retriever: BM25Index,
    queries: list[str],
    k: int,
    n_threads: int = 1,
    show_progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` passages for each query.

    Returns (scores float32 (nq, k'), indices int64 (nq, k')) with k' = min(k, n_docs), best first; indices are
    row positions into the ``texts`` given to :func:`build_bm25`. A score of 0 means the passage shares no term
    with the query (its position among the zero scores is arbitrary). Query terms unseen in the corpus are ignored.
    """
    k_eff = min(int(k), retriever.n_docs)
    if len(queries) == 0:
        return np.empty((0, k_eff), np.float32), np.empty((0, k_eff), np.int64)
    tokens = retriever.tokenize(queries, return_ids=False)
    docs, scores = retriever.retriever.retrieve(
        tokens, k=k_eff, show_progress=show_progress, n_threads=max(1, int(n_threads)), return_as="tuple"
    )
    return np.asarray(scores, dtype=np.float32), np.asarray(docs, dtype=np.int64)


# ---- TREC runs -----------------------------------------------------------------------------------------------
def write_trec_run(
    path: str | os.PathLike,
    qids: Sequence[int],
    pids: np.ndarray,
    scores: np.ndarray,
    indices: np.ndarray,
    run_name: str,
    drop_zero: bool = True,
) -> int:
    """Write ``qid Q0 pid rank score run_name`` lines atomically (:func:`ftstudy.runs.write_run`); returns the
    number of lines.

    ``indices`` are row positions into ``pids``. With ``drop_zero`` (the BM25 case), results with score <= 0 are
    left out: such passages share no term with the query, so Lucene would not return them either (they come
    last, so the remaining ranks stay 1..m).
    """
    from ftstudy.runs import write_run

    pid_rows = np.asarray(pids, dtype=np.int64)[np.asarray(indices, dtype=np.int64)]
    if drop_zero:
        pid_rows = np.where(np.asarray(scores) > 0, pid_rows, -1)  # write_run skips pid < 0
    write_run(path, np.asarray(qids, dtype=np.int64), pid_rows, scores, run_name)
    return int((pid_rows >= 0).sum())


def read_trec_run(path: str | os.PathLike) -> dict[int, list[int]]:
    """qid -> pids in rank order, from a TREC run file (:func:`ftstudy.runs.read_run`, which names the file and
    line of a malformed entry)."""
    from ftstudy.runs import read_run

    df = read_run(path).sort_values(["qid", "rank"], kind="stable")
    return {int(q): g["pid"].astype(int).tolist() for q, g in df.groupby("qid", sort=False)}


def overlap_at_k(run: dict[int, list[int]], reference: dict[int, list[int]], k: int = 10) -> dict:
    """|top-k(run) ∩ top-k(reference)| / k per query, averaged over the reference's queries (missing = 0)."""
    values = []
    for qid, ref in reference.items():
        got = set(run.get(qid, [])[:k])
        want = set(ref[:k])
        values.append(len(got & want) / max(1, min(k, len(want))))
    return {"k": k, "n_queries": len(values), "mean": float(np.mean(values)) if values else float("nan")}


def agreement_with_reference(run_path: str | Path, reference_path: str | Path, k: int = 10) -> dict:
    """Mean overlap@k of a run file with a reference run file (e.g. Anserini's BM25 run)."""
    return overlap_at_k(read_trec_run(run_path), read_trec_run(reference_path), k)
