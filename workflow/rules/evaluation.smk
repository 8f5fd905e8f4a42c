# evaluation stage: score every run (neural models and bm25 alike: the rule does not care which rule wrote the
# run) against its eval set's qrels with ir-measures (src/ftstudy/metrics.py).


def evaluate_inputs(wildcards):
    """Run, qrels and queries; plus the model folder of a neural model (its weights' sha256 goes in provenance)."""
    out = {
        "run": f"results/runs/{wildcards.model}/{wildcards.eval_set}.trec",
        "qrels": f"results/data/eval/{wildcards.eval_set}/qrels.parquet",
        "queries": f"results/data/eval/{wildcards.eval_set}/queries.parquet",
    }
    if wildcards.model in NEURAL_MODELS:
        out["model"] = model_dir(wildcards.model)
    return out


def eval_slice(eval_set):
    """The config that feeds an eval set's metrics (its min_relevance; the run carries the rest)."""
    return {"eval_set": eval_set, **config["eval_sets"][eval_set]}


rule evaluate:
    input:
        unpack(evaluate_inputs),
    output:
        metrics="results/metrics/{model}/{eval_set}.json",
        per_query="results/metrics/{model}/{eval_set}.per_query.parquet",
    wildcard_constraints:
        model=_alternation(ALL_MODELS),
    params:
        min_relevance=lambda w: config["eval_sets"][w.eval_set].get("min_relevance", 1),
        slice=lambda w: eval_slice(w.eval_set),
    log:
        "logs/evaluate/{model}/{eval_set}.log",
    threads: 1
    resources:
        mem_mb=4000,
        runtime=15,
    conda:
        "../../envs/ml.yaml"
    script:
        "../scripts/evaluate.py"
