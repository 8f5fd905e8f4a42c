"""One shard of mine_hard_negatives (mining.shards > 1): mine its block of query batches into the partial folder
that rule mine_hard_negatives reads; its output is a small JSON record of the shard (a temp() file)."""

from _common import setup

log = setup(snakemake, preload=("sentence_transformers",))  # noqa: F821

from ftstudy.atomic import write_json  # noqa: E402
from ftstudy.mining import mine_shard_for_workflow  # noqa: E402

smk = snakemake  # noqa: F821
record = mine_shard_for_workflow(
    dict(smk.input.items()),
    dict(smk.params.slice),
    int(smk.wildcards.shard),
    int(smk.params.n_shards),
    # execution knobs: read from the config, as rule mine_hard_negatives does (the same partial folder)
    query_batch_size=smk.config["mining"]["query_batch_size"],
    encoding_batch_size=smk.config["encoding"]["batch_size"],
    partial_root=smk.params.partial_root,
    threads=smk.threads,
    backend=smk.config["retrieval"]["backend"],
)
write_json(smk.output[0], record)
log.info("done: %s", record)
