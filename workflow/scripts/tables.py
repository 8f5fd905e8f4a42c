"""Tables I-III (mrr, inference, training) from the metrics, timing and training-summary files."""

from _common import setup

log = setup(snakemake)  # noqa: F821

import pandas as pd  # noqa: E402

from ftstudy.expected import Setting, collection_facts  # noqa: E402
from ftstudy.tables import (  # noqa: E402
    inference_table,
    mrr_table,
    read_json,
    training_table,
    write_table,
)

smk = snakemake  # noqa: F821
metrics = {tuple(k): p for k, p in zip(smk.params.metric_keys, smk.input.metrics, strict=True)}
timing = {tuple(k): p for k, p in zip(smk.params.timing_keys, smk.input.timing, strict=True)}
summaries = dict(zip(smk.params.trained_models, smk.input.summaries, strict=True))
info = {m: dict(v) for m, v in smk.params.info.items()}
# The weights' sha256 that evaluate recorded in each metrics file's provenance: the row's model hash, and what the
# expected-value marks compare with the reference's.
weights_sha = {key: (read_json(path).get("provenance") or {}).get("model_sha256") for key, path in metrics.items()}
for (model, _), sha in weights_sha.items():
    if sha and not info.setdefault(model, {}).get("model_hash"):
        info[model]["model_hash"] = sha
significance = pd.read_csv(smk.input.significance)
trained = smk.params.trained
# What each result was measured in, for the expected-value marks: weights, BM25 settings, collection.
# (The rule gives the collections only where the config lists references: no references, no marks.)
collections = list(smk.input.collections)
facts = dict(zip(smk.params.eval_sets, map(collection_facts, collections), strict=True)) if collections else {}
settings = (
    {}
    if not facts
    else {
        (model, eval_set): Setting(
            collection=facts[eval_set],
            model_sha256=sha,
            bm25=dict(smk.params.bm25) if model == "bm25" else None,
        )
        for (model, eval_set), sha in weights_sha.items()
    }
)
mrr = mrr_table(metrics, trained, info, significance, expected_values=smk.params.expected_values, settings=settings)
write_table(mrr, smk.output.mrr_csv, smk.output.mrr_md)
write_table(inference_table(timing, trained, info), smk.output.inference_csv, smk.output.inference_md)
write_table(training_table(summaries, trained, info), smk.output.training_csv, smk.output.training_md)
log.info("tables written (config hash %s)", smk.params.config_hash)
