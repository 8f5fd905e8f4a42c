# evaluation stage: score every run (neural models and bm25 alike: the rule does not care which rule wrote the
# run) against its eval set's qrels with ir-measures (src/ftstudy/metrics.py). A neural model's folder is an
# input too, so that its weights' sha256 goes into the metrics' provenance.


rule evaluate:
    input:
        unpack(evaluation_inputs),
    output:
        metrics="results/metrics/{model}/{eval_set}.json",
        per_query="results/metrics/{model}/{eval_set}.per_query.parquet",
    log:
        "logs/evaluate/{model}/{eval_set}.log",
    wildcard_constraints:
        model=_alternation(ALL_MODELS),
    conda:
        "../../envs/ml.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=15,
    params:
        # Both change the metrics file (min_relevance's default is the schema's); nothing here is an execution knob.
        min_relevance=lambda w: config["eval_sets"][w.eval_set]["min_relevance"],
        # the config that feeds an eval set's metrics (the run carries the rest)
        slice=lambda w: {"eval_set": w.eval_set, **config["eval_sets"][w.eval_set]},
    script:
        "../scripts/evaluate.py"
