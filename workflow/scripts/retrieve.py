"""Encode an eval set's queries with a neural model, search its corpus, write the TREC run (top retrieval.k).

Exact (flat) search reads the stored vectors, memory-mapped, in blocks; an IVF/HNSW index comes as a .faiss input."""

import time

from _common import setup

log = setup(snakemake, preload=("sentence_transformers",))  # noqa: F821

import faiss  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ftstudy.encode import encode_texts_dtype, load_embeddings  # noqa: E402
from ftstudy.index import read_index  # noqa: E402
from ftstudy.models import load_model  # noqa: E402
from ftstudy.runs import write_run  # noqa: E402
from ftstudy.search import resolve_backend, search  # noqa: E402

smk = snakemake  # noqa: F821
faiss.omp_set_num_threads(smk.threads)
ret, enc = smk.params.search, smk.params.encoding  # what changes the run
ret_knobs, enc_knobs = smk.config["retrieval"], smk.config["encoding"]  # execution knobs: they rerun nothing
queries = pd.read_parquet(smk.input.queries, columns=["qid", "text"])
model = load_model(smk.input.model)  # a GPU when one is visible (CUDA_VISIBLE_DEVICES decides), else the CPU
model.max_seq_length = enc["max_seq_length"]
backend, device = resolve_backend(ret.get("backend", ret_knobs["backend"]), str(model.device))
log.info("%d queries of %s, model %s; backend %s on %s", len(queries), smk.wildcards.eval_set, smk.wildcards.model,
         backend, device)  # fmt: skip

t0 = time.perf_counter()
qv = encode_texts_dtype(model, queries["text"].tolist(), batch_size=enc_knobs["batch_size"], dtype=enc["dtype"],
                        max_tokens=enc_knobs["max_tokens"])  # fmt: skip
t1 = time.perf_counter()
vectors, ids, _ = load_embeddings(smk.input.embeddings)
index = None
if backend == "faiss" and smk.input.get("index"):  # IVF/HNSW; exact (flat) search reads the stored vectors
    idx = ret["index"]
    index = read_index(smk.input.index, nprobe=idx.get("nprobe"), ef_search=idx.get("ef_search"))
    if index.ntotal != len(ids):
        raise ValueError(f"{smk.input.index} holds {index.ntotal} vectors but {smk.input.embeddings} has {len(ids)}")
scores, rows = search(qv, vectors, ret["k"], backend=backend, index=index, device=device, ids=ids,
                      rescore_depth=ret["rescore_depth"], query_batch_size=ret_knobs["query_batch_size"],
                      corpus_chunk_size=ret_knobs["corpus_chunk_size"],
                      score_budget_bytes=ret_knobs["score_budget_mb"] << 20)  # fmt: skip
t2 = time.perf_counter()
pids = np.where(rows >= 0, ids[np.clip(rows, 0, None)], -1)
write_run(smk.output.run, queries["qid"].to_numpy(), pids, scores, run_name=smk.wildcards.model)
log.info("query encoding %.2f s, search %.2f s, k=%d; wrote %s", t1 - t0, t2 - t1, ret["k"], smk.output.run)
