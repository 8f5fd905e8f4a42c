# When Fine-Tuning Fails: Lessons from MS MARCO Passage Ranking -- the study as a Snakemake workflow.
# configfile, the report's front page, includes and rule all; nothing else (see workflow/rules/common.smk).


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


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
include: "workflow/rules/remedies.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        all_targets(),
