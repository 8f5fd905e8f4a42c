"""Encode a corpus with a neural model into results/embeddings/{model}/{corpus}/ (resumable chunks)."""

from _common import setup

log = setup(snakemake, preload=("sentence_transformers",))  # noqa: F821

import pandas as pd  # noqa: E402

from ftstudy.encode import encode_corpus, resolve_dtype  # noqa: E402
from ftstudy.models import load_model  # noqa: E402
from ftstudy.partial import close_partial  # noqa: E402
from ftstudy.provenance import config_hash, model_weights_sha256, sha256_file, versions  # noqa: E402

smk = snakemake  # noqa: F821
enc = smk.params.encoding  # what changes a vector
knobs = smk.config["encoding"]  # execution knobs: batch_size, chunk_size, max_tokens (rerun nothing)
coll = pd.read_parquet(smk.input.collection, columns=["pid", "text"])
model = load_model(smk.input.model)  # a GPU when one is visible (CUDA_VISIBLE_DEVICES decides), else the CPU
model.max_seq_length = enc["max_seq_length"]
compute = resolve_dtype(enc["dtype"], str(model.device))
weights = model_weights_sha256(smk.input.model)
collection_sha = sha256_file(smk.input.collection)
# Chunks are valid only for these settings, weights and collection: they key the partial folder.
slice_ = {"encoding": enc, "compute_dtype": compute, "model_sha256": weights, "collection_sha256": collection_sha}
key = config_hash(slice_)
log.info("encoding %d passages of %s with %s on %s (key %s)", len(coll), smk.wildcards.corpus, smk.wildcards.model,
         model.device, key)  # fmt: skip
info = encode_corpus(
    model,
    coll["text"].tolist(),
    coll["pid"].to_numpy(),
    smk.output[0],
    f"{smk.params.partial_root}/{key}",
    chunk_size=knobs["chunk_size"],
    batch_size=knobs["batch_size"],
    max_tokens=knobs["max_tokens"],
    dtype=compute,
    store_dtype=enc["store_dtype"],
    meta={
        "model": smk.wildcards.model,
        "corpus": smk.wildcards.corpus,
        "config_hash": key,
        "encoding": enc,
        "execution": {k: knobs[k] for k in ("batch_size", "chunk_size", "max_tokens")},
        "model_sha256": weights,
        "collection_sha256": collection_sha,
        "versions": versions(),
    },  # fmt: skip
)
close_partial(smk.params.partial_root)  # older keys' chunks are stale once the output exists
log.info("done: %s", {k: info[k] for k in ("n", "dim", "dtype", "compute_dtype", "chunks_encoded", "chunks_reused",
                                            "encode_seconds", "passages_per_s_this_run")})  # fmt: skip
