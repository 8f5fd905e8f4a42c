# bm25 stage: the lexical baseline (bm25s, Lucene scoring, Porter stemming, Lucene's English stop words; see
# src/ftstudy/bm25.py). bm25_index builds each corpus' index once (streamed, persisted with bm25s' own save);
# bm25_retrieve and time_inference_bm25 memory-map it. Its runs go through the same evaluate rule as the neural
# models' runs. CPU only.


# The config slice that feeds a BM25 index, and so every run and timing made from it (enabled is not part of it;
# k1 and b are baked into the index: bm25s precomputes every passage's term scores).
BM25_PARAMS = {k: v for k, v in config["bm25"].items() if k != "enabled"}


rule bm25_index:
    input:
        collection=collection_of,
    output:
        index=directory("results/index/bm25/{corpus}"),
    log:
        "logs/bm25_index/{corpus}.log",
    benchmark:
        "benchmarks/bm25_index/{corpus}.tsv"
    wildcard_constraints:
        corpus=CORPUS_RE,
    conda:
        "../../envs/ml.yaml"
    threads: 1
    resources:
        # Factors of the collection parquet's size, measured by bench/bench_bm25_index.py (ftstudy.bm25).
        mem_mb=lambda wildcards, input: ftbm25.index_resources(input.size_mb)["mem_mb"],
        runtime=lambda wildcards, input: ftbm25.index_resources(input.size_mb)[
            "runtime"
        ],
        disk_mb=lambda wildcards, input: ftbm25.index_resources(input.size_mb)[
            "disk_mb"
        ],
    params:
        bm25=BM25_PARAMS,
    script:
        "../scripts/bm25_index.py"


rule bm25_retrieve:
    input:
        index=bm25_index_of,
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
        # The index is memory-mapped: at most its size resident, plus the vocabulary and one score per passage
        # per thread (docs/timing.md).
        mem_mb=lambda wildcards, input, threads: ftbm25.search_mem_mb(
            input.index, threads
        ),
        runtime=lambda wildcards, input: ftbm25.search_runtime_min(
            input.index, input.queries
        ),
    params:
        k=config["retrieval"]["k"],
    script:
        "../scripts/bm25_retrieve.py"
