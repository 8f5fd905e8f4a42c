"""BM25 run for one eval set: index the eval set's collection with bm25s, retrieve top retrieval.k, write TREC."""

import time

from _common import setup

log = setup(snakemake)  # noqa: F821

import pandas as pd  # noqa: E402

from ftstudy.bm25 import bm25_search, build_bm25, write_trec_run  # noqa: E402

smk = snakemake  # noqa: F821
p = smk.params.bm25
collection = pd.read_parquet(smk.input.collection, columns=["pid", "text"])
queries = pd.read_parquet(smk.input.queries, columns=["qid", "text"])
log.info(
    "%d passages from %s, %d queries from %s", len(collection), smk.input.collection, len(queries), smk.input.queries
)

t0 = time.perf_counter()
index = build_bm25(
    collection["text"].tolist(), p["k1"], p["b"], stemmer=p["stemmer"], stopwords=p["stopwords"], show_progress=True
)
log.info("indexed in %.1f s: %s", time.perf_counter() - t0, index.describe())
t0 = time.perf_counter()
scores, idx = bm25_search(index, queries["text"].tolist(), smk.params.k, n_threads=smk.threads, show_progress=True)
log.info("retrieved top-%d for %d queries in %.1f s", idx.shape[1], len(queries), time.perf_counter() - t0)
n = write_trec_run(smk.output.run, queries["qid"].to_numpy(), collection["pid"].to_numpy(), scores, idx, "bm25")
log.info("wrote %d lines (results with score 0 left out) to %s", n, smk.output.run)
