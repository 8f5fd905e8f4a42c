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

Two ways to build the same index (same tokens, same float32 scores, bit for bit; ``tests/test_bm25.py``):

- :func:`build_bm25`: the plain bm25s call over a list of texts, in memory (small corpora: the synthetic data's
  negatives, the ``bm25`` miner, tests). bm25s keeps every passage's token list as Python objects: ~25x the
  collection parquet.
- :func:`build_bm25_streaming` over batches of texts (:func:`index_collection` streams a collection parquet with
  pyarrow): each batch is tokenised by the same bm25s call and reduced at once to numpy arrays of its (term,
  passage) pairs, so memory holds numpy postings, never every token list. :func:`save_bm25_index` writes it with
  bm25s' own ``BM25.save`` plus the pids and the settings; :func:`load_bm25_index` memory-maps it (rule
  ``bm25_index`` builds it once per corpus; retrieval and timing read it).
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ftstudy.bm25_resources import (  # noqa: F401 - the rules' resources, re-exported
    INDEX_META,
    NUMBA_MIN_DOCS,
    index_resources,
    index_size_mb,
    search_mem_mb,
    search_runtime_min,
)

LOG = logging.getLogger(__name__)

STOPWORDS = "en"  # bm25s' 33-word Lucene EnglishAnalyzer list
STEMMER = "porter"  # PyStemmer algorithm name; None disables stemming
TOKEN_PATTERN = r"(?u)\b\w\w+\b"
# Anserini's MS MARCO passage defaults (k1, b): the schema's bm25.k1/b defaults for the baseline, and the fixed
# setting with which ftstudy.synthetic picks its triples' negatives (fixed there so that tuning bm25.* does not
# regenerate the data set; tests/test_synthetic.py checks that the two agree).
ANSERINI_K1, ANSERINI_B = 0.9, 0.4
METHOD = "lucene"  # bm25s scoring variant; fixed (its idf and term weight are baked into the index)
# A persisted index (rule bm25_index): bm25s' own files (BM25.save) plus the collection's pids and our settings.
BM25S_FILES = (
    "params.index.json",
    "vocab.index.json",
    "data.csc.index.npy",
    "indices.csc.index.npy",
    "indptr.csc.index.npy",
)
INDEX_PIDS = "pids.npy"
INDEX_FORMAT = 1


def retrieval_backend(n_docs: int) -> str:
    """The bm25s scoring backend for an index of ``n_docs`` passages: "numba" from ``NUMBA_MIN_DOCS`` (200,000)
    up, else "numpy" (a function of the corpus alone, so the same corpus is always searched the same way). Both
    give the same float32 scores (tests/test_bm25.py); numba pays a one-off JIT compile per process (8.1 s on the
    2-core build machine, busy), which a small corpus never wins back, and then searches far faster
    (bench/bench_bm25_search.py, 1M passages, 1,000 queries, top-1000, one thread, busy: 88.9 ms a query with
    numpy, 1.1 ms with numba, 80.7x)."""
    return "numba" if int(n_docs) >= NUMBA_MIN_DOCS else "numpy"


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


def _tokenize(texts: Sequence[str], stemmer, stopwords: str | None, return_ids: bool, show_progress: bool = False):
    """The one tokeniser of passages and queries (module docstring): bm25s.tokenize with our settings.
    ``stemmer``: a PyStemmer object or None. Returns lists of tokens, or bm25s ``Tokenized`` (ids, vocab)."""
    import bm25s

    return bm25s.tokenize(
        list(texts),
        lower=True,
        token_pattern=TOKEN_PATTERN,
        stopwords=[] if stopwords in (None, "none") else stopwords,
        stemmer=stemmer.stemWords if stemmer is not None else None,
        return_ids=return_ids,
        show_progress=show_progress,
    )


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
    pids: np.ndarray | None = field(default=None, repr=False)  # int64 (n_docs,): a loaded index's row -> pid
    path: str | None = None  # where a loaded index lives

    def tokenize(self, texts: Sequence[str], return_ids: bool = False, show_progress: bool = False):
        """Tokenise ``texts`` exactly as the corpus was (lists of stemmed tokens, or bm25s ``Tokenized``)."""
        return _tokenize(texts, self._stemmer, self.stopwords, return_ids=return_ids, show_progress=show_progress)

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
    retriever = bm25s.BM25(k1=float(k1), b=float(b), method=METHOD)
    retriever.index(corpus_tokens, show_progress=show_progress)
    index.retriever = retriever
    return index


# ---- the streaming build and the persisted index -------------------------------------------------------------
@dataclass
class _Postings:
    """Pass 1 of :func:`build_bm25_streaming`: per batch, the (term, passage) pairs in passage order.

    ``vocab``: token -> term id (first seen first, until :meth:`sort_vocab`); ``df`` int64 (n_terms,): passages
    holding each term; per batch: ``terms`` int32 (pairs,), ``tfs`` float32 (pairs,), ``n_unique`` int64
    (passages,) pairs per passage, ``lengths`` int64 (passages,) tokens per passage (stop words removed)."""

    vocab: dict = field(default_factory=dict)
    df: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    terms: list = field(default_factory=list)
    tfs: list = field(default_factory=list)
    n_unique: list = field(default_factory=list)
    lengths: list = field(default_factory=list)
    n_docs: int = 0

    def add(self, tokenized) -> None:
        """Add one batch's bm25s ``Tokenized`` (batch-local ids and vocab), mapped onto the global term ids."""
        local_to_global = np.empty(len(tokenized.vocab), np.int64)
        for token, local in tokenized.vocab.items():
            local_to_global[local] = self.vocab.setdefault(token, len(self.vocab))
        lengths = np.fromiter(map(len, tokenized.ids), np.int64, count=len(tokenized.ids))
        flat = np.fromiter(itertools.chain.from_iterable(tokenized.ids), np.int64, count=int(lengths.sum()))
        n_terms = max(1, len(self.vocab))
        key = np.repeat(np.arange(len(lengths), dtype=np.int64), lengths) * n_terms + local_to_global[flat]
        pairs, tf = np.unique(key, return_counts=True)  # sorted by (passage, term)
        terms = (pairs % n_terms).astype(np.int32)
        df = np.bincount(terms, minlength=len(self.vocab)).astype(np.int64)
        df[: len(self.df)] += self.df
        self.df = df
        self.terms.append(terms)
        self.tfs.append(tf.astype(np.float32))
        self.n_unique.append(np.bincount(pairs // n_terms, minlength=len(lengths)).astype(np.int64))
        self.lengths.append(lengths)
        self.n_docs += len(lengths)

    def sort_vocab(self) -> np.ndarray:
        """Renumber the terms in sorted token order (bm25s numbers them in set order, which varies with the hash
        seed and the batches), so the saved index is the same bytes for every batch size and run. Reorders
        ``vocab`` and ``df``; returns new id by old id, int32 (n_terms,), for the batches' ``terms``."""
        tokens = sorted(self.vocab)
        old = np.fromiter((self.vocab[t] for t in tokens), np.int64, count=len(tokens))
        new_of_old = np.empty(len(tokens), np.int32)
        new_of_old[old] = np.arange(len(tokens), dtype=np.int32)
        self.vocab = {t: i for i, t in enumerate(tokens)}
        self.df = self.df[old]
        return new_of_old


def _postings_to_csc(postings: _Postings, k1: float, b: float, delta: float) -> dict:
    """Pass 2: bm25s' precomputed scores as its CSC arrays (``data`` float32, ``indices`` int32, ``indptr`` int64
    over term columns, passages ascending in each), with bm25s' own idf and term-weight functions and its dtype
    steps (float64 term weight times float32 idf, stored as float32), so the arrays equal ``BM25.index``'s.
    Frees each batch of ``postings`` as it goes."""
    from bm25s.scoring import _select_idf_scorer, _select_tfc_scorer

    new_of_old = postings.sort_vocab()
    n_docs, n_terms = postings.n_docs, len(postings.vocab)
    avg_len = np.concatenate(postings.lengths).mean()  # as bm25s: np.array(lengths).mean()
    idf_fn, tfc_fn = _select_idf_scorer(METHOD), _select_tfc_scorer(METHOD)
    idf = np.array([idf_fn(df, N=n_docs) for df in postings.df.tolist()], np.float64).astype(np.float32)
    indptr = np.zeros(n_terms + 1, np.int64)
    np.cumsum(postings.df, out=indptr[1:])
    data = np.empty(int(indptr[-1]), np.float32)
    indices = np.empty(int(indptr[-1]), np.int32)
    heads = indptr[:-1].copy()
    first_doc = 0
    while postings.terms:
        terms, tf = new_of_old[postings.terms.pop(0)], postings.tfs.pop(0)
        n_unique, lengths = postings.n_unique.pop(0), postings.lengths.pop(0)
        docs = np.repeat(np.arange(len(lengths), dtype=np.int64), n_unique)
        tfc = tfc_fn(tf_array=tf, l_d=lengths[docs], l_avg=avg_len, k1=k1, b=b, delta=delta)
        order = np.argsort(terms, kind="stable")  # by term, passages ascending within a term
        terms = terms[order]
        uniq, start, count = np.unique(terms, return_index=True, return_counts=True)
        pos = heads[terms] + (np.arange(len(terms)) - np.repeat(start, count))
        data[pos] = (idf[terms] * tfc[order]).astype(np.float32)
        indices[pos] = (docs[order] + first_doc).astype(np.int32)
        heads[uniq] += count
        first_doc += len(lengths)
    if not np.array_equal(heads, indptr[1:]):  # pragma: no cover - a bug, not bad input
        raise AssertionError("_postings_to_csc: postings do not fill the columns")
    return {"data": data, "indices": indices, "indptr": indptr, "num_docs": n_docs}


def build_bm25_streaming(
    batches: Iterable[Sequence[str]],
    k1: float,
    b: float,
    stemmer: str | None = STEMMER,
    stopwords: str | None = STOPWORDS,
    total: int | None = None,
    log_every_s: float = 30.0,
) -> BM25Index:
    """:func:`build_bm25` over ``batches`` of texts (passage rows in order), in memory bounded by the numpy
    postings (~8 bytes per (term, passage) pair, twice at the peak) plus the vocabulary, never every token list.
    The retriever's arrays and vocabulary equal :func:`build_bm25`'s on the concatenated texts (term ids may be
    numbered differently). ``total``: passage count for the progress lines, logged every ``log_every_s`` s."""
    import bm25s

    stem = _stemmer(stemmer)
    postings = _Postings()
    t0 = last = time.perf_counter()
    for texts in batches:
        postings.add(_tokenize(texts, stem, stopwords, return_ids=True))
        if time.perf_counter() - last >= log_every_s:
            last = time.perf_counter()
            LOG.info(
                "tokenised %s / %s passages (%.0f per s), %d terms",
                f"{postings.n_docs:,}",
                f"{total:,}" if total else "?",
                postings.n_docs / (last - t0),
                len(postings.vocab),
            )
    if postings.n_docs == 0:
        raise ValueError("build_bm25_streaming: no texts to index")
    retriever = bm25s.BM25(k1=float(k1), b=float(b), method=METHOD)
    retriever.scores = _postings_to_csc(postings, retriever.k1, retriever.b, retriever.delta)
    vocab = postings.vocab
    if "" not in vocab:  # as BM25.index(create_empty_token=True)
        vocab[""] = len(vocab)
    retriever.vocab_dict = vocab
    retriever.unique_token_ids_set = set(vocab.values())
    retriever.nonoccurrence_array = None
    LOG.info("indexed %d passages in %.1f s: %d terms, %d postings", postings.n_docs, time.perf_counter() - t0,
             len(vocab) - 1, len(retriever.scores["data"]))  # fmt: skip
    return BM25Index(retriever, postings.n_docs, float(k1), float(b), stemmer, stopwords, stem)


def iter_collection(path: str | os.PathLike, batch_size: int) -> Iterator[tuple[np.ndarray, list[str]]]:
    """(pids int64, texts) batches of ``batch_size`` rows of a collection parquet (pid, text), streamed."""
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except (OSError, ValueError) as exc:
        raise ValueError(f"collection {path}: not a readable parquet file ({exc})") from exc
    missing = {"pid", "text"} - set(pf.schema_arrow.names)
    if missing:
        raise ValueError(f"collection {path}: missing column(s) {sorted(missing)}; expected pid int64, text string")
    for batch in pf.iter_batches(batch_size=batch_size, columns=["pid", "text"]):
        yield batch.column("pid").to_numpy().astype(np.int64), batch.column("text").to_pylist()


def index_collection(
    collection: str | os.PathLike, out_dir: str | os.PathLike, settings: dict, batch_size: int = 100_000
) -> BM25Index:
    """Index the collection parquet (pid, text) with ``settings`` (k1, b, stemmer, stopwords: the config's
    ``bm25``), streamed in ``batch_size`` rows (an execution knob: it changes no byte of the index), and save it
    to ``out_dir`` (:func:`save_bm25_index`). Returns the index."""
    import pyarrow.parquet as pq

    total = pq.ParquetFile(collection).metadata.num_rows
    pids: list[np.ndarray] = []

    def texts():
        for batch_pids, batch_texts in iter_collection(collection, batch_size):
            pids.append(batch_pids)
            yield batch_texts

    index = build_bm25_streaming(
        texts(), settings["k1"], settings["b"], settings["stemmer"], settings["stopwords"], total=total
    )
    index.pids = np.concatenate(pids)
    save_bm25_index(index, out_dir, {"collection": str(collection)})
    return index


def save_bm25_index(index: BM25Index, out_dir: str | os.PathLike, extra: dict | None = None) -> None:
    """Write ``index`` (with its ``pids``) to the folder ``out_dir`` atomically: bm25s' ``BM25.save`` files,
    ``pids.npy`` (int64, row -> pid) and ``ftstudy_bm25.json`` (settings, sizes, versions, ``extra``)."""
    from ftstudy.atomic import atomic_dir, write_json
    from ftstudy.provenance import versions

    if index.pids is None or len(index.pids) != index.n_docs:
        raise ValueError(
            f"save_bm25_index: need {index.n_docs} pids, got {None if index.pids is None else len(index.pids)}"
        )
    with atomic_dir(out_dir) as tmp:
        index.retriever.save(tmp, show_progress=False)
        np.save(tmp / INDEX_PIDS, np.asarray(index.pids, np.int64))
        meta = {
            "format": INDEX_FORMAT,
            **index.describe(),
            "stemmer_name": index.stemmer_name,
            "stopwords_name": index.stopwords,
            "n_terms": len(index.retriever.scores["indptr"]) - 1,
            "n_postings": len(index.retriever.scores["data"]),
            "versions": versions(),
            **(extra or {}),
        }
        write_json(tmp / INDEX_META, meta)


def _index_error(path: Path, what: str) -> ValueError:
    return ValueError(f"BM25 index {path}: {what}; delete the folder and rebuild it (rule bm25_index)")


def load_bm25_index(path: str | os.PathLike, mmap: bool = True) -> BM25Index:
    """The index that :func:`save_bm25_index` wrote to ``path``, its score arrays memory-mapped (``mmap``) so a
    job holds only the pages its queries touch. A missing folder raises FileNotFoundError, a missing, truncated or
    inconsistent file ValueError, each naming the path."""
    import bm25s

    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"BM25 index {path}: no such folder (rule bm25_index builds it)")
    missing = [f for f in (*BM25S_FILES, INDEX_PIDS, INDEX_META) if not (path / f).is_file()]
    if missing:
        raise _index_error(path, f"missing {', '.join(missing)}")
    try:
        meta = json.loads((path / INDEX_META).read_text(encoding="utf-8"))
        settings = (meta["k1"], meta["b"], meta["stemmer_name"], meta["stopwords_name"])
    except (ValueError, KeyError, TypeError) as exc:
        raise _index_error(path / INDEX_META, f"not the expected JSON ({type(exc).__name__}: {exc})") from exc
    if meta.get("format") != INDEX_FORMAT:
        raise _index_error(path / INDEX_META, f"format {meta.get('format')!r}, expected {INDEX_FORMAT}")
    try:
        retriever = bm25s.BM25.load(path, mmap=mmap, load_corpus=False, show_progress=False)
        pids = np.load(path / INDEX_PIDS)
    except (ValueError, OSError, EOFError, KeyError, TypeError) as exc:
        raise _index_error(path, f"unreadable ({_which_file(path, mmap)}: {type(exc).__name__}: {exc})") from exc
    _check_index(path, retriever, pids, meta)
    k1, b, stemmer, stopwords = settings
    return BM25Index(retriever, len(pids), k1, b, stemmer, stopwords, _stemmer(stemmer), pids=pids, path=str(path))


def _which_file(path: Path, mmap: bool) -> str:
    """The first of the index's files that does not load on its own (for the error message)."""
    for name in BM25S_FILES:
        try:
            if name.endswith(".json"):
                json.loads((path / name).read_text(encoding="utf-8"))
            else:
                np.load(path / name, mmap_mode="r" if mmap else None)
        except (ValueError, OSError, EOFError) as exc:
            return f"{path / name}: {type(exc).__name__}: {exc}"
    return str(path / INDEX_PIDS)


def _check_index(path: Path, retriever, pids: np.ndarray, meta: dict) -> None:
    """Sizes that must agree across the index's files (a truncated or mixed-up folder fails here)."""
    s = retriever.scores
    n_terms, n_postings, n_docs = meta.get("n_terms"), meta.get("n_postings"), meta.get("n_docs")
    bad = []
    if n_terms is None or len(s["indptr"]) != n_terms + 1:
        bad.append(f"indptr has {len(s['indptr'])} entries, n_terms is {n_terms}")
    if not len(s["data"]) == len(s["indices"]) == int(s["indptr"][-1]) == n_postings:
        bad.append(f"data {len(s['data'])}, indices {len(s['indices'])}, indptr[-1] {int(s['indptr'][-1])}, "
                   f"n_postings {n_postings}")  # fmt: skip
    if not s["num_docs"] == len(pids) == n_docs:
        bad.append(f"num_docs {s['num_docs']}, pids {len(pids)}, n_docs {n_docs}")
    if n_terms is not None and len(retriever.vocab_dict) not in (n_terms, n_terms + 1):  # + the empty token
        bad.append(f"vocabulary of {len(retriever.vocab_dict)} entries, n_terms {n_terms}")
    if bad:
        raise _index_error(path, "inconsistent files: " + "; ".join(bad))


def bm25_search(
    retriever: BM25Index,
    queries: list[str],
    k: int,
    n_threads: int = 1,
    show_progress: bool = False,
    order_ties: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` passages for each query.

    Returns (scores float32 (nq, k'), indices int64 (nq, k')) with k' = min(k, n_docs), best first, equal scores
    by row, as Lucene breaks ties by doc id (``order_ties=False``: in the order bm25s' numpy selection leaves
    them, which the synthetic data generator keeps so that its bytes stay those of every documented run).
    Indices are row positions into the ``texts`` given to :func:`build_bm25`. bm25s scores with
    :func:`retrieval_backend`'s backend. A score of 0 means the passage shares no term with the query (which of
    them fill the ranks left is arbitrary). Query terms unseen in the corpus are ignored.
    """
    k_eff = min(int(k), retriever.n_docs)
    if len(queries) == 0:
        return np.empty((0, k_eff), np.float32), np.empty((0, k_eff), np.int64)
    tokens = retriever.tokenize(queries, return_ids=False)
    retriever.retriever.backend = retrieval_backend(retriever.n_docs)
    docs, scores = retriever.retriever.retrieve(
        tokens, k=k_eff, show_progress=show_progress, n_threads=max(1, int(n_threads)), return_as="tuple"
    )
    scores, docs = np.asarray(scores, dtype=np.float32), np.asarray(docs, dtype=np.int64)
    return ties_by_row(scores, docs) if order_ties else (scores, docs)


def ties_by_row(scores: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each query's results (scores float32 (nq, k), rows int64 (nq, k)) ordered by score descending, then row
    ascending: the order no longer depends on how a backend's top-k selection happens to leave equal scores."""
    order = np.lexsort((rows, -scores), axis=1)
    return np.take_along_axis(scores, order, 1), np.take_along_axis(rows, order, 1)


def bm25_search_in_batches(
    index: BM25Index, queries: list[str], k: int, n_threads: int = 1, batch_size: int = 1000
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`bm25_search` ``batch_size`` queries at a time (the same results), with a log line per batch."""
    k_eff = min(int(k), index.n_docs)
    out_s, out_i = [np.empty((0, k_eff), np.float32)], [np.empty((0, k_eff), np.int64)]
    t0 = time.perf_counter()
    for start in range(0, len(queries), batch_size):
        s, i = bm25_search(index, queries[start : start + batch_size], k, n_threads=n_threads)
        out_s.append(s)
        out_i.append(i)
        done = min(start + batch_size, len(queries))
        LOG.info("searched %d / %d queries (%.1f per s)", done, len(queries), done / (time.perf_counter() - t0))
    return np.concatenate(out_s), np.concatenate(out_i)


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
