"""Mine hard negatives with the base model (or BM25): results/triplets/hard.parquet + hard_stats.json, and the
retrieved candidate lists (results/mining/candidates.parquet) that the filtered sets are drawn from."""

from _common import setup

log = setup(snakemake, preload=("sentence_transformers",))  # noqa: F821

from ftstudy.mining import mine_for_workflow  # noqa: E402

smk = snakemake  # noqa: F821
mine_for_workflow(
    dict(smk.input.items()),
    smk.output.triplets,
    smk.output.stats,
    dict(smk.params.slice),
    # execution knobs: read from the config, not params, so changing them reruns nothing
    query_batch_size=smk.config["mining"]["query_batch_size"],
    encoding_batch_size=smk.config["encoding"]["batch_size"],
    partial_root=smk.params.partial_root,
    threads=smk.threads,
    backend=smk.config["retrieval"]["backend"],
    out_candidates=smk.output.candidates,
)
