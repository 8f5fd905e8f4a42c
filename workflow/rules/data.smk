# Data stage: MS MARCO TSV files (official names, in dataset_dir) -> typed parquet files; a seeded sample of
# triples.train.small.tsv; and, with `download: true`, rules that fetch the official files into dataset_dir.
# Logic: src/ftstudy/{tsv,prepare,triplets,download}.py. When dataset_dir is synthetic.dir, synthetic.smk
# produces the TSVs; these rules only name them as inputs.

_OWN_COLLECTIONS = [c for c in CORPORA if c != "main"]


rule prepare_collection:
    input:
        tsv=dataset_file("collection.tsv"),
    output:
        parquet=collection_parquet("main"),
    log:
        "logs/prepare_collection/main.log",
    benchmark:
        "benchmarks/prepare_collection/main.tsv"
    conda:
        "../../envs/data.yaml"
    threads: 1
    resources:
        # streamed: flat memory; time and parquet size follow the TSV's size (ftstudy.job_resources)
        **sized_resources(
            lambda wildcards, input: ftres.prepare(ftres.tree_mb(_in(input, "tsv")))
        ),
    script:
        "../scripts/prepare_collection.py"


rule prepare_eval_collection:
    input:
        tsv=eval_collection_tsv_of,
    output:
        parquet="results/data/eval/{corpus}/collection.parquet",
    log:
        "logs/prepare_eval_collection/{corpus}.log",
    benchmark:
        "benchmarks/prepare_eval_collection/{corpus}.tsv"
    wildcard_constraints:
        corpus=_alternation(_OWN_COLLECTIONS),
    conda:
        "../../envs/data.yaml"
    threads: 1
    resources:
        # streamed: flat memory; time and parquet size follow the TSV's size (ftstudy.job_resources)
        **sized_resources(
            lambda wildcards, input: ftres.prepare(ftres.tree_mb(_in(input, "tsv")))
        ),
    script:
        "../scripts/prepare_collection.py"


rule prepare_train:
    input:
        queries=dataset_file("queries.train.tsv"),
        qrels=dataset_file("qrels.train.tsv"),
        collection=collection_parquet("main"),
    output:
        queries="results/data/queries.train.parquet",
        qrels="results/data/qrels.train.parquet",
    log:
        "logs/prepare_train/train.log",
    benchmark:
        "benchmarks/prepare_train/train.tsv"
    conda:
        "../../envs/data.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    script:
        "../scripts/prepare_train.py"


rule prepare_eval_set:
    input:
        queries=eval_queries_tsv_of,
        qrels=eval_qrels_tsv_of,
        collection=eval_collection_of,
    output:
        queries="results/data/eval/{eval_set}/queries.parquet",
        qrels="results/data/eval/{eval_set}/qrels.parquet",
    log:
        "logs/prepare_eval_set/{eval_set}.log",
    benchmark:
        "benchmarks/prepare_eval_set/{eval_set}.tsv"
    wildcard_constraints:
        eval_set=_alternation(EVAL_SETS),
    conda:
        "../../envs/data.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    params:
        min_relevance=lambda w: config["eval_sets"][w.eval_set]["min_relevance"],
    script:
        "../scripts/prepare_eval_set.py"


rule sample_random_triplets:
    input:
        tsv=dataset_file("triples.train.small.tsv"),
    output:
        parquet="results/triplets/random.parquet",
    log:
        "logs/sample_random_triplets/random.log",
    benchmark:
        "benchmarks/sample_random_triplets/random.tsv"
    conda:
        "../../envs/data.yaml"
    threads: 1
    resources:
        # one pass over the TSV; the kept lines in memory and in the parquet (ftstudy.job_resources)
        **sized_resources(
            lambda wildcards, input: ftres.sample_triplets(
                ftres.tree_mb(_in(input, "tsv")), config["triplets"]["random"]["n"]
            )
        ),
    params:
        n=config["triplets"]["random"]["n"],
        seed=config["triplets"]["seed"],
    script:
        "../scripts/sample_random_triplets.py"


# One download rule per config download_sources entry; its outputs are the official files in dataset_dir, so a
# dry run lists the downloads when the data are absent. Only defined with `download: true`.
if config["download"]:
    for _src_name, _src in config["download_sources"].items():

        rule:
            name:
                f"download_{_src_name}"
            output:
                [dataset_file(f) for f in _src["files"]],
            log:
                f"logs/download/{_src_name}.log",
            conda:
                "../../envs/data.yaml"
            threads: 1
            resources:
                mem_mb=1000,
                runtime=600,
            params:
                name=_src_name,
                source=dict(_src),
                partial_dir=f"results/.partial/download/{_src_name}",
            script:
                "../scripts/download_msmarco.py"
