# When Fine-Tuning Fails: Lessons from MS MARCO Passage Ranking -- the study as a Snakemake workflow.
# configfile, schema validation, includes and rule all; nothing else (see workflow/rules/common.smk).

configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/synthetic.smk"
include: "workflow/rules/models.smk"
include: "workflow/rules/retrieval.smk"
include: "workflow/rules/evaluation.smk"
include: "workflow/rules/bm25.smk"
include: "workflow/rules/timing.smk"
include: "workflow/rules/mining.smk"
include: "workflow/rules/training.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        all_targets(),
    default_target: True
