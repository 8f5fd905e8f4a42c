"""Mine hard negatives with the base model (or BM25): results/triplets/hard.parquet + hard_stats.json."""

import numpy as np
from _common import setup

log = setup(snakemake, preload=("sentence_transformers",))  # noqa: F821

from ftstudy.encode import encode_texts_dtype, load_embeddings, resolve_dtype  # noqa: E402
from ftstudy.mining import (  # noqa: E402
    MiningSettings,
    bm25_retriever,
    dense_retriever,
    file_signature,
    mine_hard_negatives,
)
from ftstudy.models import load_model, pick_device  # noqa: E402
from ftstudy.provenance import config_hash, model_weights_sha256, versions  # noqa: E402

smk = snakemake  # noqa: F821
p = smk.params
settings = MiningSettings.from_config(p.mining)
device = pick_device()
dtype = resolve_dtype(p.encoding["dtype"], device)
model = load_model(smk.input.model, device)
model.max_seq_length = p.encoding["max_seq_length"]
vectors, ids, emb_meta = load_embeddings(smk.input.embeddings)
log.info(
    "base corpus embeddings %s from %s; device %s, query dtype %s", vectors.shape, smk.input.embeddings, device, dtype
)


def embed(texts):
    return encode_texts_dtype(model, texts, batch_size=p.encoding["batch_size"], dtype=dtype)


if settings.miner == "base":
    retrieve = dense_retriever(vectors, ids, settings.top_k, device=device, backend=p.backend)
    cosine = True
else:
    import pyarrow.parquet as pq

    from ftstudy.bm25 import build_bm25

    coll = pq.read_table(smk.input.collection, columns=["pid", "text"])
    log.info("indexing %d passages for BM25 (k1 %s, b %s)", coll.num_rows, p.bm25["k1"], p.bm25["b"])
    index = build_bm25(coll["text"].to_pylist(), k1=p.bm25["k1"], b=p.bm25["b"])
    retrieve = bm25_retriever(index, coll["pid"].to_numpy().astype(np.int64), settings.top_k, smk.threads)
    del coll
    cosine = False

inputs = {k: file_signature(v) for k, v in smk.input.items()}
mine_hard_negatives(
    smk.input.queries,
    smk.input.qrels,
    smk.input.collection,
    smk.output.triplets,
    smk.output.stats,
    settings,
    embed,
    retrieve,
    vectors,
    ids,
    smk.params.partial,
    retrieval_is_cosine=cosine,
    partial_key={"inputs": inputs, "params": dict(p.slice)},
    provenance={
        "config_hash": config_hash(dict(p.slice)),
        "config": dict(p.slice),
        "base_model_sha256": model_weights_sha256(smk.input.model),
        "embeddings_meta": emb_meta,
        "device": device,
        "query_dtype": dtype,
        "versions": versions(),
    },
)
