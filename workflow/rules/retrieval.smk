# retrieval stage: encode each corpus with each neural model (resumable chunks), build its faiss index where it is
# approximate (IVF/HNSW; exact search reads the stored vectors), and retrieve the top retrieval.k passages of each
# eval set's queries (src/ftstudy/encode.py, index.py, search.py).
# Every embedding is L2-normalised: retrieval ranks by cosine similarity for every model, whatever its loss.

# encoding.shards > 1 splits an encoding into shard jobs and a gather checkpoint (input functions: shards.smk).


include: "shards.smk"


CORPUS_RE = _alternation(CORPORA)


rule encode_corpus:
    input:
        unpack(encode_inputs),
    output:
        directory("results/embeddings/{model}/{corpus}"),
    log:
        "logs/encode_corpus/{model}/{corpus}.log",
    benchmark:
        "benchmarks/encode_corpus/{model}/{corpus}.tsv"
    wildcard_constraints:
        model=DENSE_RE,
        corpus=CORPUS_RE,
    conda:
        "../../envs/ml.yaml"
    threads: 8
    resources:
        # the passages' texts in memory, the vectors on disk, the time at the GPU anchor (ftstudy.job_resources)
        **sized_resources(encode_estimate(), gpu=True),
    params:
        encoding=ftconfig.encoding_slice(config),
        partial_root="results/.partial/encode_corpus/{model}/{corpus}",
    script:
        "../scripts/encode_corpus.py"


# One of encoding.shards jobs: its block of chunks into encode_corpus's partial folder (the same key), with the
# same GPU resources as encode_corpus. Its record is temp(): the gather checkpoint reads it, then it is deleted.
rule encode_corpus_shard:
    input:
        model=model_of,
        collection=collection_of,
    output:
        temp(
            f"results/.partial/encode_corpus/{{model}}/{{corpus}}/shards/{{shard}}-of-{ENCODE_SHARDS}.json"
        ),
    log:
        "logs/encode_corpus_shard/{model}/{corpus}/{shard}.log",
    benchmark:
        "benchmarks/encode_corpus_shard/{model}/{corpus}/{shard}.tsv"
    wildcard_constraints:
        model=DENSE_RE,
        corpus=CORPUS_RE,
        shard=r"\d+",
    conda:
        "../../envs/ml.yaml"
    threads: 8
    resources:
        # as encode_corpus, a shard's share of the time; the vectors are counted once, by encode_corpus
        **sized_resources(encode_estimate(ENCODE_SHARDS), gpu=True),
    params:
        encoding=ftconfig.encoding_slice(config),
        partial_root=encode_partial_root,
        n_shards=ENCODE_SHARDS,
    script:
        "../scripts/encode_corpus_shard.py"


# Every shard of one encoding done: encode_corpus (which waits for this checkpoint) assembles the chunks. Its
# record lies in the partial folder, which encode_corpus deletes on success.
checkpoint gather_encode_shards:
    input:
        encode_shard_outputs,
    output:
        "results/.partial/encode_corpus/{model}/{corpus}/shards.json",
    log:
        "logs/gather_encode_shards/{model}/{corpus}.log",
    wildcard_constraints:
        model=DENSE_RE,
        corpus=CORPUS_RE,
    localrule: True
    conda:
        "../../envs/data.yaml"
    script:
        "../scripts/gather_shards.py"


# Only an approximate index (retrieval.index.type ivf or hnsw) is requested: see eval_index_of.
rule build_index:
    input:
        embeddings="results/embeddings/{model}/{corpus}",
    output:
        index="results/index/{model}/{corpus}.faiss",
    log:
        "logs/build_index/{model}/{corpus}.log",
    benchmark:
        "benchmarks/build_index/{model}/{corpus}.tsv"
    wildcard_constraints:
        model=DENSE_RE,
        corpus=CORPUS_RE,
    conda:
        "../../envs/ml.yaml"
    threads: 8
    resources:
        # IVF/HNSW: the index holds the fp32 vectors again (13.6 GB at 8.8M x 384) beside the mapped store.
        mem_mb=lambda wildcards, input: int(
            2000 + 2.2 * ftres.tree_mb(input.embeddings)
        ),
        runtime=120,
        disk_mb=lambda wildcards, input: int(
            100 + 1.2 * ftres.tree_mb(input.embeddings)
        ),
    params:
        index=ftconfig.index_build_slice(config),
    script:
        "../scripts/build_index.py"


rule retrieve:
    input:
        model=model_of,
        queries="results/data/eval/{eval_set}/queries.parquet",
        embeddings=eval_embeddings_of,
        index=eval_index_of,
    output:
        run="results/runs/{model}/{eval_set}.trec",
    log:
        "logs/retrieve/{model}/{eval_set}.log",
    benchmark:
        "benchmarks/retrieve/{model}/{eval_set}.tsv"
    wildcard_constraints:
        model=DENSE_RE,
    conda:
        "../../envs/ml.yaml"
    threads: 8
    resources:
        # the memory-mapped vectors, one block and the results (ftstudy.job_resources)
        **sized_resources(search_estimate, gpu=True),
    params:
        search=ftconfig.search_slice(config),
        encoding=ftconfig.encoding_slice(config),
    script:
        "../scripts/retrieve.py"
