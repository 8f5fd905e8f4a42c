"""Draw one filtered mined set from the paper's candidates: results/triplets/{name}.parquet + {name}_stats.json."""

from _common import setup

log = setup(snakemake, preload=("sentence_transformers",))  # noqa: F821

from ftstudy.negative_filters import filter_for_workflow  # noqa: E402

smk = snakemake  # noqa: F821
filter_for_workflow(
    dict(smk.input.items()),
    smk.output.triplets,
    smk.output.stats,
    dict(smk.params.slice),
    smk.params.partial_root,
    # execution knob: read from the config, not params, so changing it reruns nothing
    cross_encoder_batch_size=smk.config["encoding"]["batch_size"],
)
