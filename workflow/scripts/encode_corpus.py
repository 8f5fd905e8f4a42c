"""Encode a corpus with a neural model into results/embeddings/{model}/{corpus}/ (resumable chunks)."""

import shutil
from pathlib import Path

from _common import setup

log = setup(snakemake, preload=("sentence_transformers",))  # noqa: F821

import pandas as pd  # noqa: E402

from ftstudy.encode import encode_corpus  # noqa: E402
from ftstudy.models import load_model  # noqa: E402
from ftstudy.provenance import config_hash, model_weights_sha256, sha256_file, versions  # noqa: E402

smk = snakemake  # noqa: F821
enc = smk.params.encoding
coll = pd.read_parquet(smk.input.collection, columns=["pid", "text"])
weights = model_weights_sha256(smk.input.model)
collection_sha = sha256_file(smk.input.collection)
# Chunks are valid only for this slice of config, these weights and this collection: they key the partial folder.
key = config_hash({"encoding": enc, "model_sha256": weights, "collection_sha256": collection_sha})
partial_root = Path(smk.params.partial_root)
model = load_model(smk.input.model, device=smk.params.device)
model.max_seq_length = enc["max_seq_length"]
log.info(
    "encoding %d passages of corpus %s with %s on %s (key %s)",
    len(coll),
    smk.wildcards.corpus,
    smk.wildcards.model,
    model.device,
    key,
)
info = encode_corpus(
    model,
    coll["text"].tolist(),
    coll["pid"].to_numpy(),
    smk.output[0],
    partial_root / key,
    chunk_size=enc["chunk_size"],
    batch_size=enc["batch_size"],
    dtype=enc["dtype"],
    meta={
        "model": smk.wildcards.model,
        "corpus": smk.wildcards.corpus,
        "model_sha256": weights,
        "collection_sha256": collection_sha,
        "config_hash": key,
        "encoding": enc,
        "versions": versions(),
    },
)
shutil.rmtree(partial_root, ignore_errors=True)  # older keys' chunks are stale once the output exists
for parent in (partial_root.parent, partial_root.parent.parent):  # .../{model}, .../encode_corpus, if empty
    try:
        parent.rmdir()
    except OSError:
        break
log.info(
    "done: %s",
    {
        k: info[k]
        for k in (
            "n",
            "dim",
            "compute_dtype",
            "chunks_encoded",
            "chunks_reused",
            "encode_seconds",
            "passages_per_s_this_run",
        )
    },
)
