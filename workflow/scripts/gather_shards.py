"""Checkpoint after the shards of a step: one JSON with every shard's record. Rule encode_corpus or
mine_hard_negatives waits for it (workflow/rules/common.smk, sharded_build) and then assembles the outputs."""

from _common import setup

log = setup(snakemake)  # noqa: F821

from ftstudy.shards import write_gathered  # noqa: E402

gathered = write_gathered(snakemake.output[0], list(snakemake.input))  # noqa: F821
log.info("%d shards done", gathered["n_shards"])
