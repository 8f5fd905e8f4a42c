"""BM25 run for one eval set: memory-map its corpus' persisted index (rule bm25_index), retrieve top retrieval.k,
write TREC."""

import time

from _common import setup

log = setup(snakemake)  # noqa: F821

import pandas as pd  # noqa: E402

from ftstudy.bm25 import bm25_search_in_batches, load_bm25_index, write_trec_run  # noqa: E402

smk = snakemake  # noqa: F821
index = load_bm25_index(smk.input.index)
queries = pd.read_parquet(smk.input.queries, columns=["qid", "text"])
log.info("index %s: %s; %d queries from %s", smk.input.index, index.describe(), len(queries), smk.input.queries)
t0 = time.perf_counter()
scores, idx = bm25_search_in_batches(index, queries["text"].tolist(), smk.params.k, n_threads=smk.threads)
log.info("retrieved top-%d for %d queries in %.1f s", idx.shape[1], len(queries), time.perf_counter() - t0)
n = write_trec_run(smk.output.run, queries["qid"].to_numpy(), index.pids, scores, idx, "bm25")
log.info("wrote %d lines (results with score 0 left out) to %s", n, smk.output.run)
