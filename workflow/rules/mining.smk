# Hard-negative mining (the paper's procedure): top mining.top_k passages per judged training query under the
# base model (or BM25), judged positives removed, negatives drawn from mining.rank_range with a per-query seed.
# The retrieved candidate lists are kept (results/mining/candidates.parquet): the filtered sets
# (mining.filtered_sets) are drawn from them with no second retrieval. The diagnosis (mining.diagnose_eval_sets)
# mines an eval set's queries the same way and counts the judged negatives.
# See docs/mining.md and src/ftstudy/mining.py (which names the modules of each part).


# The config that feeds hard.parquet: a change here reruns mining (and the hard-negative variants) only.
# Execution knobs (mining.query_batch_size, encoding.batch_size, retrieval.backend: every exact backend returns the
# same candidates) are not in it: the script reads them from config.
MINING_SLICE = {
    "mining": ftconfig.mining_slice(config),
    "base_model": config["base_model"],
    "encoding": {k: config["encoding"][k] for k in ("dtype", "max_seq_length")},
    **(
        {"bm25": {k: config["bm25"][k] for k in ("k1", "b")}}
        if config["mining"]["miner"] == "bm25"
        else {}
    ),
}


rule mine_hard_negatives:
    input:
        # the same files for every mining.shards; a sharded build waits for its shards (shards.smk)
        unpack(mining_inputs),
    output:
        triplets="results/triplets/hard.parquet",
        stats="results/triplets/hard_stats.json",
        candidates="results/mining/candidates.parquet",
    log:
        "logs/mine_hard_negatives/main.log",
    benchmark:
        "benchmarks/mine_hard_negatives/main.tsv"
    conda:
        "../../envs/ml.yaml"
    threads: 2
    resources:
        # the memory-mapped vectors and the collection's texts (ftstudy.job_resources)
        **sized_resources(mining_estimate, gpu=True),
    params:
        slice=MINING_SLICE,
        partial_root="results/.partial/mine_hard_negatives",
    script:
        "../scripts/mine_hard_negatives.py"


# One of mining.shards jobs: its block of query batches into mine_hard_negatives's partial folder (the same key:
# same inputs, slice and query_batch_size), with the same GPU resources. Its record is temp().
rule mine_hard_negatives_shard:
    input:
        unpack(mining_shard_inputs),
    output:
        temp(
            f"results/.partial/mine_hard_negatives/shards/{{shard}}-of-{MINING_SHARDS}.json"
        ),
    log:
        "logs/mine_hard_negatives_shard/{shard}.log",
    benchmark:
        "benchmarks/mine_hard_negatives_shard/{shard}.tsv"
    wildcard_constraints:
        shard=r"\d+",
    conda:
        "../../envs/ml.yaml"
    threads: 2
    resources:
        **sized_resources(mining_estimate, gpu=True),
    params:
        slice=MINING_SLICE,
        partial_root=mining_partial_root,
        n_shards=MINING_SHARDS,
    script:
        "../scripts/mine_shard.py"


# Every mining shard done: mine_hard_negatives (which waits for this checkpoint) assembles the batches.
checkpoint gather_mining_shards:
    input:
        mining_shard_outputs,
    output:
        "results/.partial/mine_hard_negatives/shards.json",
    log:
        "logs/gather_mining_shards/main.log",
    localrule: True
    conda:
        "../../envs/data.yaml"
    script:
        "../scripts/gather_shards.py"


FILTERED_SETS = MINED_SETS[1:]  # mining.filtered_sets, in config order
DIAGNOSED = list(config["mining"]["diagnose_eval_sets"])


rule filter_negatives:
    input:
        unpack(filter_inputs),
    output:
        triplets="results/triplets/{name}.parquet",
        stats="results/triplets/{name}_stats.json",
    log:
        "logs/filter_negatives/{name}.log",
    benchmark:
        "benchmarks/filter_negatives/{name}.tsv"
    wildcard_constraints:
        name=_alternation(FILTERED_SETS),
    conda:
        "../../envs/ml.yaml"
    threads: 2
    resources:
        gpu=filter_gpu,
        mem_mb=32000,
        runtime=240,
    params:
        slice=filtered_slice,
        partial_root=lambda w: f"results/.partial/filter_negatives/{w.name}",
    script:
        "../scripts/filter_negatives.py"


rule diagnose_negatives:
    input:
        queries="results/data/eval/{eval_set}/queries.parquet",
        qrels="results/data/eval/{eval_set}/qrels.parquet",
        collection=collection_parquet("main"),
        model=model_dir("base"),
        embeddings="results/embeddings/base/main",
    output:
        "results/analysis/negatives/{eval_set}.json",
    log:
        "logs/diagnose_negatives/{eval_set}.log",
    benchmark:
        "benchmarks/diagnose_negatives/{eval_set}.tsv"
    wildcard_constraints:
        eval_set=_alternation(DIAGNOSED),
    conda:
        "../../envs/ml.yaml"
    threads: 2
    resources:
        **gpu_resources(mem_mb=24000, runtime=60),
    params:
        slice=MINING_SLICE,
    script:
        "../scripts/diagnose_negatives.py"
