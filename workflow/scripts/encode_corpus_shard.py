"""One shard of encode_corpus (encoding.shards > 1): encode its block of chunks into the partial folder that rule
encode_corpus reads; its output is a small JSON record of the shard (a temp() file)."""

from _common import setup

log = setup(snakemake, preload=("sentence_transformers",))  # noqa: F821

import pandas as pd  # noqa: E402

from ftstudy.atomic import write_json  # noqa: E402
from ftstudy.encode import encode_shard, partial_key, resolve_dtype  # noqa: E402
from ftstudy.models import load_model  # noqa: E402

smk = snakemake  # noqa: F821
enc = smk.params.encoding  # what changes a vector (the same slice as rule encode_corpus)
knobs = smk.config["encoding"]  # execution knobs: batch_size, chunk_size, max_tokens, shards (rerun nothing)
coll = pd.read_parquet(smk.input.collection, columns=["pid", "text"])
model = load_model(smk.input.model)  # a GPU when one is visible (CUDA_VISIBLE_DEVICES decides), else the CPU
model.max_seq_length = enc["max_seq_length"]
compute = resolve_dtype(enc["dtype"], str(model.device))
_, key = partial_key(enc, compute, smk.input.model, smk.input.collection)
shard, n_shards = int(smk.wildcards.shard), int(smk.params.n_shards)
log.info("shard %d of %d: %d passages of %s with %s on %s (key %s)", shard + 1, n_shards, len(coll),
         smk.wildcards.corpus, smk.wildcards.model, model.device, key)  # fmt: skip
record = encode_shard(
    model,
    coll["text"].tolist(),
    f"{smk.params.partial_root}/{key}",
    shard,
    n_shards,
    chunk_size=knobs["chunk_size"],
    batch_size=knobs["batch_size"],
    max_tokens=knobs["max_tokens"],
    dtype=compute,
    store_dtype=enc["store_dtype"],
)
write_json(smk.output[0], {**record, "model": smk.wildcards.model, "corpus": smk.wildcards.corpus, "key": key})
log.info("done: %s", record)
