"""Resolve config base_model (offline-first, sha256-checked) and copy its files to results/models/base/model."""

import shutil

from _common import setup

log = setup(snakemake)  # noqa: F821

from ftstudy.atomic import atomic_dir, write_json  # noqa: E402
from ftstudy.models import resolve_model  # noqa: E402
from ftstudy.provenance import model_weights_sha256, versions  # noqa: E402

spec = snakemake.params.spec  # noqa: F821
source = resolve_model(spec)
log.info("base_model %s resolved to %s", spec, source)
with atomic_dir(snakemake.output.model) as tmp:  # noqa: F821
    # Byte-for-byte copy (symlinks of a Hub cache followed), so the recorded sha256 is the genuine one.
    shutil.copytree(source, tmp, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".git*", "__pycache__"))
write_json(
    snakemake.output.source,  # noqa: F821
    {
        "spec": spec,
        "resolved": source,
        "weights_sha256": model_weights_sha256(snakemake.output.model),  # noqa: F821
        "versions": versions(),
    },
)
