"""collection.tsv (pid<TAB>passage) -> collection parquet (pid int64, text string), streamed in row groups."""

from _common import setup

log = setup(snakemake)  # noqa: F821

from ftstudy.prepare import prepare_collection  # noqa: E402

stats = prepare_collection(snakemake.input.tsv, snakemake.output.parquet)  # noqa: F821
log.info("%s", stats)
