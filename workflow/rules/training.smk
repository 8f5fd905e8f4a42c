# Training: one job per trained model id (variant x seed). The triplet file follows the variant's negatives;
# params carry only this model's config slice (what changes its weights), so editing one variant reruns only its
# branch; the execution knobs (ftconfig.training_knobs: checkpoint_every with save: last, loader workers)
# are read from the config by the script and rerun nothing. Resumable state (checkpoints, partial log) lives
# under results/.partial/train/{model}/<config_hash>/, outside the outputs.


FULL_MODELS = [m for m in TRAINED if m not in LORA_MODELS]
FULL_RE = _alternation(FULL_MODELS)


rule train_full:
    input:
        # random or mined hard negatives, by the variant's `negatives`
        triplets=triplets_of,
        base=model_dir("base"),
    output:
        model=directory("results/models/{model}/model"),
        log_csv="results/models/{model}/train_log.csv",
        summary="results/models/{model}/train_summary.json",
    log:
        "logs/train_full/{model}.log",
    benchmark:
        "benchmarks/train_full/{model}.tsv"
    wildcard_constraints:
        model=FULL_RE,
    conda:
        "../../envs/ml.yaml"
    threads: 8
    resources:
        # every triplet tokenised in memory; time at the GPU anchor (ftstudy.job_resources)
        **sized_resources(training_estimate, gpu=True),
    params:
        slice=lambda wc: ftconfig.training_slice(config, wc.model),
        partial_root="results/.partial/train",
    script:
        "../scripts/train.py"


# LoRA variants: the same job, which also declares the adapter (and has its own log, benchmark and resources).
use rule train_full as train_lora with:
    output:
        model=directory("results/models/{model}/model"),
        adapter=directory("results/models/{model}/adapter"),
        log_csv="results/models/{model}/train_log.csv",
        summary="results/models/{model}/train_summary.json",
    log:
        "logs/train_lora/{model}.log",
    benchmark:
        "benchmarks/train_lora/{model}.tsv"
    wildcard_constraints:
        model=LORA_RE,
    resources:
        **sized_resources(training_estimate, gpu=True),
