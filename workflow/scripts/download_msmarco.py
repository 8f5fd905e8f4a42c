"""Fetch one download_sources entry (size/checksums checked) and unpack its files into dataset_dir."""

from _common import setup

log = setup(snakemake)  # noqa: F821

from ftstudy.download import download_source  # noqa: E402

paths = download_source(
    snakemake.params.name,  # noqa: F821
    snakemake.params.source,  # noqa: F821
    snakemake.params.dataset_dir,  # noqa: F821
    snakemake.params.partial_dir,  # noqa: F821
)
log.info("wrote %s", [str(p) for p in paths])
