"""MRR@10 of every model with 95% bootstrap confidence intervals (per eval set), the paper's value beside."""

from _common import setup

log = setup(snakemake)  # noqa: F821

import pandas as pd  # noqa: E402

from ftstudy import paper  # noqa: E402
from ftstudy.figures import mrr_ci, save  # noqa: E402
from ftstudy.significance import mean_ci, read_per_query  # noqa: E402
from ftstudy.tables import group_of  # noqa: E402

smk = snakemake  # noqa: F821
qids = {
    e: pd.read_parquet(path, columns=["qid"])["qid"]
    for e, path in zip(smk.params.eval_sets, smk.input.queries, strict=True)
}
rows = []
for (model, eval_set), path in zip(smk.params.metric_keys, smk.input.per_query, strict=True):
    values = read_per_query(path, qids[eval_set])["MRR@10"].to_numpy()
    low, high = mean_ci(values, smk.params.n_resamples, smk.params.seed)
    group = group_of(model, smk.params.trained)
    rows.append({"model": model, "eval_set": eval_set, "mean": values.mean(), "ci_low": low, "ci_high": high,
                 "paper": paper.paper_value(paper.TABLE_I, group, "MRR@10", eval_set)})  # fmt: skip
df = pd.DataFrame(rows)
df["paper"] = pd.to_numeric(df["paper"])
log.info("\n%s", df.to_string())
save(mrr_ci(df), smk.output.png, smk.output.pdf)
