"""Build one WiSE-FT model, (1 - w) * base + w * fine-tuned (ftstudy.interpolation), and its interpolation.json."""

from pathlib import Path

from _common import setup

log = setup(snakemake, preload=("sentence_transformers",))  # noqa: F821

from ftstudy.atomic import write_json  # noqa: E402
from ftstudy.interpolation import interpolate_models  # noqa: E402
from ftstudy.provenance import config_hash, versions  # noqa: E402

smk = snakemake  # noqa: F821
weight = smk.params.slice["wise_ft"]  # ftstudy.model_provenance.model_slice: {"wise_ft": w, "source": its slice}
log.info("%s = (1 - %.2f) * %s + %.2f * %s", smk.wildcards.model, weight, smk.input.base, weight, smk.input.source)
record = interpolate_models(smk.input.base, smk.input.source, weight, smk.output.model)
write_json(
    smk.output.record,
    {
        "model": smk.wildcards.model,
        "source_model": Path(smk.input.source).parent.name,  # results/models/{source}/model
        **record,
        "config_hash": config_hash(smk.params.slice),
        "config": smk.params.slice,
        "versions": versions(),
    },
)
log.info("wrote %s: %d tensors (%d parameters) interpolated", smk.output.model, record["n_interpolated_tensors"],
         record["n_parameters"])  # fmt: skip
