"""triples.train.small.tsv -> results/triplets/random.parquet: a seeded sample of triplets.random.n lines."""

from _common import setup, user_warnings

log = setup(snakemake)  # noqa: F821

from ftstudy.triplets import sample_triplets  # noqa: E402

stats = sample_triplets(
    snakemake.input.tsv,  # noqa: F821
    snakemake.output.parquet,  # noqa: F821
    n=snakemake.params.n,  # noqa: F821
    seed=snakemake.params.seed,  # noqa: F821
    warn=user_warnings(log),
)
log.info("%s", stats)
