"""Mine an eval set's queries as the training queries are: results/analysis/negatives/{eval_set}.json."""

from _common import setup

log = setup(snakemake, preload=("sentence_transformers",))  # noqa: F821

from ftstudy.negative_diagnosis import diagnose_for_workflow  # noqa: E402

smk = snakemake  # noqa: F821
diagnose_for_workflow(
    dict(smk.input.items()),
    smk.output[0],
    dict(smk.params.slice),
    smk.wildcards.eval_set,
    # execution knobs: read from the config, not params, so changing them reruns nothing
    query_batch_size=smk.config["mining"]["query_batch_size"],
    encoding_batch_size=smk.config["encoding"]["batch_size"],
    threads=smk.threads,
    backend=smk.config["retrieval"]["backend"],
)
