# retrieval stage: encode each corpus with each neural model (resumable chunks), build its faiss index, and
# retrieve the top retrieval.k passages of each eval set's queries (src/ftstudy/encode.py, index.py, search.py).
# Every embedding is L2-normalised: retrieval ranks by cosine similarity for every model, whatever its loss.

CORPUS_RE = _alternation(CORPORA)
# device None: a GPU when one is visible (CUDA_VISIBLE_DEVICES decides on a cluster), else the CPU.
RETRIEVAL_DEVICE = None


rule encode_corpus:
    input:
        model=lambda w: model_dir(w.model),
        collection=lambda w: collection_parquet(w.corpus),
    output:
        directory("results/embeddings/{model}/{corpus}"),
    wildcard_constraints:
        model=NEURAL_RE,
        corpus=CORPUS_RE,
    params:
        encoding=config["encoding"],
        partial_root="results/.partial/encode_corpus/{model}/{corpus}",
        device=RETRIEVAL_DEVICE,
    log:
        "logs/encode_corpus/{model}/{corpus}.log",
    benchmark:
        "benchmarks/encode_corpus/{model}/{corpus}.tsv"
    threads: 8
    resources:
        **gpu_resources(mem_mb=24000, runtime=360),
    conda:
        "../../envs/ml.yaml"
    script:
        "../scripts/encode_corpus.py"


rule build_index:
    input:
        embeddings="results/embeddings/{model}/{corpus}",
    output:
        index="results/index/{model}/{corpus}.faiss",
    wildcard_constraints:
        model=NEURAL_RE,
        corpus=CORPUS_RE,
    params:
        index=config["retrieval"]["index"],
        seed=config["mining"]["seed"],
    log:
        "logs/build_index/{model}/{corpus}.log",
    benchmark:
        "benchmarks/build_index/{model}/{corpus}.tsv"
    threads: 8
    resources:
        # An exact index holds n x d fp32 vectors: 13.6 GB at 8.8M x 384.
        mem_mb=lambda wildcards, input: max(2000, int(2.5 * input.size_mb)),
        runtime=120,
    conda:
        "../../envs/ml.yaml"
    script:
        "../scripts/build_index.py"


rule retrieve:
    input:
        model=lambda w: model_dir(w.model),
        queries="results/data/eval/{eval_set}/queries.parquet",
        embeddings=lambda w: f"results/embeddings/{w.model}/{eval_corpus(w.eval_set)}",
        index=lambda w: f"results/index/{w.model}/{eval_corpus(w.eval_set)}.faiss",
    output:
        run="results/runs/{model}/{eval_set}.trec",
    wildcard_constraints:
        model=NEURAL_RE,
    params:
        retrieval=config["retrieval"],
        encoding=config["encoding"],
        device=RETRIEVAL_DEVICE,
    log:
        "logs/retrieve/{model}/{eval_set}.log",
    benchmark:
        "benchmarks/retrieve/{model}/{eval_set}.tsv"
    threads: 8
    resources:
        **gpu_resources(mem_mb=32000, runtime=60),
    conda:
        "../../envs/ml.yaml"
    script:
        "../scripts/retrieve.py"
