"""queries.train.tsv + qrels.train.tsv -> queries.train.parquet, qrels.train.parquet (checked against the
collection: qrels naming missing passages are warned on the terminal and counted in both outputs' provenance)."""

from _common import setup, user_warnings

log = setup(snakemake)  # noqa: F821

from ftstudy.prepare import prepare_train  # noqa: E402

stats = prepare_train(
    snakemake.input.queries,  # noqa: F821
    snakemake.input.qrels,  # noqa: F821
    snakemake.output.queries,  # noqa: F821
    snakemake.output.qrels,  # noqa: F821
    collection=snakemake.input.collection,  # noqa: F821
    warn=user_warnings(log),
)
log.info("%s", stats)
