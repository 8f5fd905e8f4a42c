"""Fetch one download_sources entry (size/checksums checked) and unpack its files into dataset_dir."""

from _common import setup

log = setup(snakemake)  # noqa: F821

import os  # noqa: E402

from ftstudy.download import download_source  # noqa: E402

# Every output is an official file name directly inside dataset_dir.
dataset_dir = os.path.dirname(snakemake.output[0])  # noqa: F821

paths = download_source(
    snakemake.params.name,  # noqa: F821
    snakemake.params.source,  # noqa: F821
    dataset_dir,
    snakemake.params.partial_dir,  # noqa: F821
)
log.info("wrote %s", [str(p) for p in paths])
