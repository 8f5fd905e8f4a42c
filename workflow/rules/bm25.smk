# bm25 stage: the lexical baseline (bm25s, Lucene scoring, Porter stemming, Lucene's English stop words; see
# src/ftstudy/bm25.py). Its run goes through the same evaluate rule as the neural models' runs. CPU only.


# The config slice that feeds a BM25 run or timing (enabled is not part of it).
BM25_PARAMS = {k: v for k, v in config["bm25"].items() if k != "enabled"}


rule bm25_retrieve:
    input:
        collection=eval_collection_of,
        queries="results/data/eval/{eval_set}/queries.parquet",
    output:
        run="results/runs/bm25/{eval_set}.trec",
    log:
        "logs/bm25_retrieve/{eval_set}.log",
    benchmark:
        "benchmarks/bm25_retrieve/{eval_set}.tsv"
    conda:
        "../../envs/ml.yaml"
    threads: 4
    resources:
        # bm25s keeps the token ids of every passage in Python lists while indexing: ~25x the parquet size.
        mem_mb=lambda wildcards, input: max(2000, int(25 * input.size_mb)),
        runtime=lambda wildcards, input: max(10, int(input.size_mb / 10)),
    params:
        bm25=BM25_PARAMS,
        k=config["retrieval"]["k"],
    script:
        "../scripts/bm25_retrieve.py"
