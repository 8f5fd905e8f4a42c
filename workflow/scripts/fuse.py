"""Fuse the BM25 run with a dense run for one eval set (ftstudy.fusion): the hybrid TREC run and .fusion.json."""

import os

from _common import setup

log = setup(snakemake)  # noqa: F821
os.environ["NUMBA_NUM_THREADS"] = str(max(1, int(snakemake.threads)))  # noqa: F821  (read when ranx loads numba)

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ftstudy.atomic import write_json  # noqa: E402
from ftstudy.fusion import TIE_BREAK, hybrid_run, to_matrix  # noqa: E402
from ftstudy.metrics import evaluated_queries  # noqa: E402
from ftstudy.provenance import config_hash, sha256_file, versions  # noqa: E402
from ftstudy.runs import read_run, write_run  # noqa: E402

smk = snakemake  # noqa: F821
p = smk.params.slice  # {"fusion": fusion_slice, "depth": retrieval.k[, "min_relevance": wsum's tuning]}
method, depth = p["fusion"]["method"], int(p["depth"])
bm25, dense = read_run(smk.input.bm25), read_run(smk.input.dense)
qrels = pd.read_parquet(smk.input.qrels, columns=["qid", "pid", "relevance"])
judged = None
if method == "wsum":  # only the weighted sum is tuned on the judged queries
    queries = pd.read_parquet(smk.input.queries, columns=["qid"])
    judged = evaluated_queries(queries["qid"], qrels, p["min_relevance"], smk.input.queries, smk.input.qrels).qids
log.info("%s: %s over %d BM25 and %d dense lines, depth %d", smk.wildcards.model, method, len(bm25), len(dense), depth)
fused, record = hybrid_run(method, bm25, dense, qrels, judged, p["fusion"], p.get("min_relevance"), depth)
qids = np.union1d(bm25["qid"].unique(), dense["qid"].unique())
pids, scores = to_matrix(fused, qids, depth)
write_run(smk.output.run, qids, pids, scores, smk.wildcards.model)
write_json(
    smk.output.record,
    {
        "model": smk.wildcards.model,
        "eval_set": smk.wildcards.eval_set,
        "method": method,
        "params": p,
        "config_hash": config_hash(p),
        **record,
        "n_queries": int(len(qids)),
        "n_judged_queries": None if judged is None else int(len(judged)),
        "tie_break": TIE_BREAK,
        "bm25_run_sha256": sha256_file(smk.input.bm25),
        "dense_run_sha256": sha256_file(smk.input.dense),
        "versions": versions(),
    },
)
log.info("wrote %s (%d queries, %d lines)", smk.output.run, len(qids), len(fused))
