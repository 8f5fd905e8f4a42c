# Hard-negative mining (the paper's procedure): top mining.top_k passages per judged training query under the
# base model (or BM25), judged positives removed, negatives drawn from mining.rank_range with a per-query seed.
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
        queries="results/data/queries.train.parquet",
        qrels="results/data/qrels.train.parquet",
        collection=collection_parquet("main"),
        model=model_dir("base"),
        embeddings="results/embeddings/base/main",
    output:
        triplets="results/triplets/hard.parquet",
        stats="results/triplets/hard_stats.json",
    log:
        "logs/mine_hard_negatives/main.log",
    benchmark:
        "benchmarks/mine_hard_negatives/main.tsv"
    conda:
        "../../envs/ml.yaml"
    threads: 2
    resources:
        **gpu_resources(mem_mb=24000, runtime=240),
    params:
        slice=MINING_SLICE,
        partial_root="results/.partial/mine_hard_negatives",
    script:
        "../scripts/mine_hard_negatives.py"
