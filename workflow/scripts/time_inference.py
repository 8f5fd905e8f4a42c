"""Time one model's inference (merged neural, unmerged LoRA, or bm25) with the shared protocol; write its JSON."""

from _common import setup

# Every timing job imports its libraries the same way (frozen out of the collector), bm25 without torch.
NEURAL = snakemake.params.kind != "bm25"  # noqa: F821
log = setup(snakemake, preload=("sentence_transformers",) if NEURAL else ())  # noqa: F821

import pandas as pd  # noqa: E402

from ftstudy import timing  # noqa: E402
from ftstudy.atomic import write_json  # noqa: E402
from ftstudy.provenance import config_hash  # noqa: E402

smk = snakemake  # noqa: F821
kind = smk.params.kind
settings = smk.params.settings
t = settings["timing"]
model_id = "bm25" if kind == "bm25" else smk.wildcards.model
# Execution knobs of the resident search: read from the config, not params, so changing them reruns nothing.
retrieval = smk.config["retrieval"]

queries = pd.read_parquet(smk.input.queries, columns=["qid", "text"])
qids, texts, replace = timing.sample_queries(
    queries["qid"].tolist(), queries["text"].tolist(), t["n_queries"], t["seed"]
)
log.info(
    "%d timing queries sampled (seed %d, with replacement: %s) from %d in %s",
    len(texts),
    t["seed"],
    replace,
    len(queries),
    smk.input.queries,
)
result, extra = timing.time_kind(
    kind,
    dict(smk.input.items()),
    texts,
    settings,
    threads=smk.threads,
    bm25=smk.params.get("bm25"),
    query_batch_size=retrieval["query_batch_size"],
    corpus_chunk_size=retrieval["corpus_chunk_size"],
    score_budget_bytes=retrieval["score_budget_mb"] << 20,
)
extra |= {
    "eval_set": t["eval_set"],
    "corpus": settings["corpus"],
    "seed": t["seed"],
    "sampled_with_replacement": replace,
    "n_source_queries": len(queries),
    "config_hash": config_hash(settings),
}
record = timing.timing_record(model_id, result, threads=smk.threads, extra=extra)
log.info(
    "%s: %.3f s for %d queries (%.1f QPS), repeats %s",
    model_id,
    record["seconds"],
    record["n_queries"],
    record["qps"],
    record["repeat_seconds"],
)
write_json(smk.output.timing, record)
