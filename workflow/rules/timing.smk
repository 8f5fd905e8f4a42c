# timing stage: the paper's Table II with one protocol for every model (src/ftstudy/timing.py). The timed region is
# query encoding + similarity + top-k ranking of timing.n_queries dev queries; loading models, reading files and
# uploading the corpus embeddings happen before it. Timing jobs take every core (threads: all_cores()) so nothing
# runs beside them; neural models are timed on the GPU when there is one, bm25 always on the CPU.

TIMING_EVAL_SET = config["timing"]["eval_set"]
TIMING_CORPUS = eval_corpus(TIMING_EVAL_SET)


# The config slice that feeds every timing file: the same for every model, so all are timed alike. It holds what
# defines the measurement (the timing protocol, the compute dtype, the corpus); the search's execution knobs
# (retrieval.query_batch_size, retrieval.corpus_chunk_size) are read by the script from the config and recorded
# in the JSON, so changing them reruns nothing (docs/timing.md, "Rerun contract").
TIMING_PARAMS = {
    "timing": config["timing"],
    "dtype": config["encoding"]["dtype"],
    "corpus": TIMING_CORPUS,
}


rule time_inference:
    input:
        model=model_of,
        embeddings=timing_embeddings_of,
        queries=f"results/data/eval/{TIMING_EVAL_SET}/queries.parquet",
    output:
        timing="results/timing/{model}.json",
    log:
        "logs/time_inference/{model}.log",
    benchmark:
        "benchmarks/time_inference/{model}.tsv"
    wildcard_constraints:
        model=NEURAL_RE,
    conda:
        "../../envs/ml.yaml"
    threads: all_cores()
    resources:
        # the memory-mapped vectors; results are n_queries x top_k (ftstudy.job_resources)
        **sized_resources(timing_estimate, gpu=True),
    params:
        kind="merged",
        settings=TIMING_PARAMS,
    script:
        "../scripts/time_inference.py"


rule time_inference_unmerged:
    input:
        model=model_dir("base"),
        adapter="results/models/{model}/adapter",
        merged=model_of,  # read for its max_seq_length only, so both timings match
        embeddings=timing_embeddings_of,
        queries=f"results/data/eval/{TIMING_EVAL_SET}/queries.parquet",
    output:
        timing="results/timing/{model}.unmerged.json",
    log:
        "logs/time_inference_unmerged/{model}.log",
    benchmark:
        "benchmarks/time_inference_unmerged/{model}.tsv"
    wildcard_constraints:
        model=LORA_RE,
    conda:
        "../../envs/ml.yaml"
    threads: all_cores()
    resources:
        # the memory-mapped vectors; results are n_queries x top_k (ftstudy.job_resources)
        **sized_resources(timing_estimate, gpu=True),
    params:
        kind="unmerged",
        settings=TIMING_PARAMS,
    script:
        "../scripts/time_inference.py"


rule time_inference_bm25:
    input:
        index=f"results/index/bm25/{TIMING_CORPUS}",  # rule bm25_index, memory-mapped
        queries=f"results/data/eval/{TIMING_EVAL_SET}/queries.parquet",
    output:
        timing="results/timing/bm25.json",
    log:
        "logs/time_inference_bm25/bm25.log",
    benchmark:
        "benchmarks/time_inference_bm25/bm25.tsv"
    conda:
        "../../envs/ml.yaml"
    threads: all_cores()
    resources:
        # memory does not grow with timing.n_queries (results are n x top_k); runtime counts warm-up + repeats
        mem_mb=lambda wildcards, input, threads: ftbm25.search_mem_mb(
            input.index, threads
        ),
        runtime=lambda wildcards, input: ftbm25.search_runtime_min(
            input.index,
            config["timing"]["n_queries"] * (config["timing"]["repeats"] + 1),
        ),
    params:
        kind="bm25",
        settings=TIMING_PARAMS,
    script:
        "../scripts/time_inference.py"
