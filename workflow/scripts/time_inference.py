"""Time one model's inference (merged neural, unmerged LoRA, or bm25) with the shared protocol; write its JSON."""

from pathlib import Path

from _common import setup

# Every timing job imports its libraries the same way (frozen out of the collector), bm25 without torch.
NEURAL = snakemake.params.kind != "bm25"  # noqa: F821
log = setup(snakemake, preload=("sentence_transformers",) if NEURAL else ())  # noqa: F821

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ftstudy import timing  # noqa: E402
from ftstudy.atomic import write_json  # noqa: E402
from ftstudy.provenance import config_hash  # noqa: E402

smk = snakemake  # noqa: F821
kind = smk.params.kind
settings = smk.params.settings
t = settings["timing"]
model_id = "bm25" if kind == "bm25" else smk.wildcards.model

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
extra = {
    "kind": kind,
    "eval_set": t["eval_set"],
    "corpus": settings["corpus"],
    "seed": t["seed"],
    "sampled_with_replacement": replace,
    "n_source_queries": len(queries),
    "config_hash": config_hash(settings),
}

if kind == "bm25":
    from ftstudy.bm25 import build_bm25

    p = smk.params.bm25
    collection = pd.read_parquet(smk.input.collection, columns=["text"])
    index = build_bm25(collection["text"].tolist(), p["k1"], p["b"], stemmer=p["stemmer"], stopwords=p["stopwords"])
    del collection
    log.info("bm25 index built: %s; timing on the CPU", index.describe())
    result = timing.time_bm25(index, texts, top_k=t["top_k"], repeats=t["repeats"], n_threads=smk.threads)
else:
    from ftstudy.models import load_model, pick_device

    device = pick_device()
    if kind == "unmerged":
        model = timing.load_unmerged_lora(smk.input.model, smk.input.adapter, device)
        # The same truncation as the merged model (where sentence-transformers keeps it differs by version).
        model.max_seq_length = load_model(smk.input.merged, "cpu").max_seq_length
        extra["adapter"] = str(smk.input.adapter)
    else:
        model = load_model(smk.input.model, device)
    extra["merged"] = kind == "merged"
    corpus = np.load(Path(smk.input.embeddings) / "vectors.npy", mmap_mode="r")
    log.info("model %s (%s) on %s; corpus embeddings %s %s", model_id, kind, device, corpus.shape, corpus.dtype)
    result = timing.time_neural(
        model,
        corpus,
        texts,
        device=device,
        top_k=t["top_k"],
        batch_size=t["batch_size"],
        dtype=settings["dtype"],
        repeats=t["repeats"],
        query_batch_size=settings["query_batch_size"],
        corpus_chunk_size=settings["corpus_chunk_size"],
    )

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
