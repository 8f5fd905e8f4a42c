"""Paired tests of every model against base on per-query values, Holm-corrected: results/tables/significance."""

from _common import setup

log = setup(snakemake)  # noqa: F821

import pandas as pd  # noqa: E402

from ftstudy.significance import read_per_query, significance_table  # noqa: E402
from ftstudy.tables import write_table  # noqa: E402

smk = snakemake  # noqa: F821
qids = {
    e: pd.read_parquet(path, columns=["qid"])["qid"]
    for e, path in zip(smk.params.eval_sets, smk.input.queries, strict=True)
}
per_query: dict = {}
for (model, eval_set), path in zip(smk.params.metric_keys, smk.input.per_query, strict=True):
    per_query.setdefault(eval_set, {})[model] = read_per_query(path, qids[eval_set])
    log.info("%s on %s: %d queries", model, eval_set, len(per_query[eval_set][model]))
df = significance_table(per_query, smk.params.n_resamples, smk.params.seed, smk.params.alpha)
df.insert(len(df.columns), "config_hash", smk.params.config_hash)
df.insert(len(df.columns), "seed", smk.params.seed)
write_table(df, smk.output.csv, smk.output.md)
log.info("%d comparisons written", len(df))
