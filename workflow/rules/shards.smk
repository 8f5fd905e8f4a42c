# Shards (encoding.shards, mining.shards; docs/cluster.md): the input functions of encode_corpus and
# mine_hard_negatives. With N > 1 shards, a build of their outputs first runs N shard jobs (one GPU each) that
# write their pieces into that step's own partial folder, then a gather checkpoint; the step then only
# assembles. It waits for the checkpoint through checkpoints.X.get() alone (no input is added), so once the
# checkpoint is done its inputs are those it has with one shard; its params are the same too, so the shard
# count never triggers a rerun. Only a missing output is built in shards (ftstudy.shards.build_is_sharded says
# why); one that is present and out of date is rebuilt by the step's own job.
from ftstudy.shards import build_is_sharded  # noqa: E402

ENCODE_SHARDS = config["encoding"]["shards"]
MINING_SHARDS = config["mining"]["shards"]
MINING_OUTPUTS = [
    "results/triplets/hard.parquet",
    "results/triplets/hard_stats.json",
    "results/mining/candidates.parquet",
]


def encode_partial_root(wildcards):
    """Partial folder of one (model, corpus) encoding: its chunks, the shards' records, the gather's record."""
    return f"results/.partial/encode_corpus/{wildcards.model}/{wildcards.corpus}"


def encode_is_sharded(wildcards):
    """Whether this (model, corpus) encoding is built in encoding.shards jobs: N > 1 and its folder is missing."""
    out = f"results/embeddings/{wildcards.model}/{wildcards.corpus}"
    return build_is_sharded(ENCODE_SHARDS, [out])


def encode_inputs(wildcards):
    """Inputs of encode_corpus (the same for every shard count); a sharded build waits for its shards first."""
    if encode_is_sharded(wildcards):
        checkpoints.gather_encode_shards.get(**wildcards)
    return {"model": model_of(wildcards), "collection": collection_of(wildcards)}


def encode_shard_outputs(wildcards):
    """The records of every shard of one (model, corpus) encoding (the gather checkpoint's inputs)."""
    root = encode_partial_root(wildcards)
    return [f"{root}/shards/{i}-of-{ENCODE_SHARDS}.json" for i in range(ENCODE_SHARDS)]


def mining_is_sharded(wildcards):
    """Whether mine_hard_negatives is built in mining.shards jobs: N > 1 and one of its outputs is missing."""
    return build_is_sharded(MINING_SHARDS, MINING_OUTPUTS)


def mining_inputs(wildcards):
    """Inputs of mine_hard_negatives and of its shards (the same for every shard count); a sharded build of
    mine_hard_negatives waits for its shards first."""
    if mining_is_sharded(wildcards):
        checkpoints.gather_mining_shards.get()
    return mining_shard_inputs(wildcards)


def mining_shard_inputs(wildcards):
    """What mining reads: training queries and judgments, the collection, the base model and its embeddings."""
    return {
        "queries": "results/data/queries.train.parquet",
        "qrels": "results/data/qrels.train.parquet",
        "collection": collection_parquet("main"),
        "model": model_dir("base"),
        "embeddings": "results/embeddings/base/main",
    }


def mining_partial_root(wildcards):
    """Partial folder of mine_hard_negatives (the same string as that step's own partial_root param)."""
    return "results/.partial/mine_hard_negatives"


def mining_shard_outputs(wildcards):
    """The records of every mining shard (the gather checkpoint's inputs)."""
    return [
        f"results/.partial/mine_hard_negatives/shards/{i}-of-{MINING_SHARDS}.json"
        for i in range(MINING_SHARDS)
    ]
