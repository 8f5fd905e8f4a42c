"""An eval set's queries + qrels -> its judged queries and their qrels (parquet); dropped count in the log."""

from _common import setup, user_warnings

log = setup(snakemake)  # noqa: F821

from ftstudy.prepare import prepare_eval_set  # noqa: E402

stats = prepare_eval_set(
    snakemake.input.queries,  # noqa: F821
    snakemake.input.qrels,  # noqa: F821
    snakemake.output.queries,  # noqa: F821
    snakemake.output.qrels,  # noqa: F821
    min_relevance=snakemake.params.min_relevance,  # noqa: F821
    collection=snakemake.input.collection,  # noqa: F821
    name=snakemake.wildcards.eval_set,  # noqa: F821
    warn=user_warnings(log),
)
log.info("%s", stats)
