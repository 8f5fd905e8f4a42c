"""Every remedy against base and against the model it modifies, in its own Holm family: results/tables/remedies."""

from _common import setup

log = setup(snakemake)  # noqa: F821

import pandas as pd  # noqa: E402

from ftstudy.remedies import remedies_markdown, remedies_table  # noqa: E402
from ftstudy.significance import read_per_query  # noqa: E402
from ftstudy.tables import read_json, write_table  # noqa: E402

smk = snakemake  # noqa: F821
qids = {
    e: pd.read_parquet(path, columns=["qid"])["qid"]
    for e, path in zip(smk.params.eval_sets, smk.input.queries, strict=True)
}
per_query: dict = {}
sources: dict = {}
keys = [tuple(k) for k in smk.params.metric_keys]
for (model, eval_set), pq, metrics in zip(keys, smk.input.per_query, smk.input.metrics, strict=True):
    per_query.setdefault(eval_set, {})[model] = read_per_query(pq, qids[eval_set])
    sources.setdefault(model, read_json(metrics))  # versions and model_sha256 for the provenance columns
    log.info("%s on %s: %d queries", model, eval_set, len(per_query[eval_set][model]))
catalog = {m: dict(v) for m, v in smk.params.catalog.items()}
info = {m: dict(v) for m, v in smk.params.info.items()}
for model, obj in sources.items():
    sha = (obj.get("provenance") or {}).get("model_sha256")
    if sha and not info.setdefault(model, {}).get("model_hash"):
        info[model]["model_hash"] = sha
log.info("%d remedy models in %d groups, %d resamples", len(catalog), len({v["group"] for v in catalog.values()}),
         smk.params.n_resamples)  # fmt: skip
df = remedies_table(per_query, catalog, dict(smk.params.labels), smk.params.n_resamples, smk.params.seed,
                    smk.params.alpha, info, sources, progress=log.info)  # fmt: skip
write_table(df, smk.output.csv, smk.output.md, remedies_markdown(df, "remedies.csv"))
log.info("\n%s", df[["model", "eval_set", "MRR@10", "MRR@10_vs_base", "MRR@10_vs_base_p_holm"]].to_string())
