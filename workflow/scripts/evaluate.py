"""Score one run (any model, bm25 included) against an eval set's qrels: metrics JSON + per-query parquet."""

from _common import setup

log = setup(snakemake)  # noqa: F821

import pandas as pd  # noqa: E402

from ftstudy.atomic import write_json, write_parquet  # noqa: E402
from ftstudy.metrics import describe_measures, evaluate_run, evaluated_queries  # noqa: E402
from ftstudy.provenance import config_hash, model_weights_sha256, sha256_file, versions  # noqa: E402
from ftstudy.runs import read_run  # noqa: E402

smk = snakemake  # noqa: F821
min_rel = smk.params.min_relevance
qrels = pd.read_parquet(smk.input.qrels, columns=["qid", "pid", "relevance"])
queries = pd.read_parquet(smk.input.queries, columns=["qid"])
run = read_run(smk.input.run)
sel = evaluated_queries(queries["qid"], qrels, min_rel, smk.input.queries, smk.input.qrels)
if sel.n_unjudged:
    log.warning(
        "%d queries in %s have no qrel with relevance >= %d; not evaluated", sel.n_unjudged, smk.input.queries, min_rel
    )
if sel.n_judged_not_in_queries:
    log.warning(
        "%d judged queries of %s are not in %s; not evaluated",
        sel.n_judged_not_in_queries,
        smk.input.qrels,
        smk.input.queries,
    )
qids = sel.qids
means, per_query = evaluate_run(run, qrels, min_relevance=min_rel, qids=qids)
model_dir = smk.input.get("model")
write_parquet(per_query, smk.output.per_query)
write_json(
    smk.output.metrics,
    {
        "model": smk.wildcards.model,
        "eval_set": smk.wildcards.eval_set,
        "n_queries": int(len(qids)),
        "metrics": means,
        "provenance": {
            "config_hash": config_hash(smk.params.slice),
            "config": smk.params.slice,
            "min_relevance": min_rel,
            "n_unjudged_queries": sel.n_unjudged,
            "n_judged_not_in_queries": sel.n_judged_not_in_queries,
            "versions": versions(),
            "model_sha256": model_weights_sha256(model_dir) if model_dir else None,
            "run_sha256": sha256_file(smk.input.run),
            "qrels_sha256": sha256_file(smk.input.qrels),
            "measures": describe_measures(min_rel),
        },
    },
)
log.info("%s %s (%d queries): %s", smk.wildcards.model, smk.wildcards.eval_set, len(qids), means)
