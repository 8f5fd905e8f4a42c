"""Histogram of the original ranks of the mined hard negatives (hard.parquet's neg_rank column)."""

from _common import setup

log = setup(snakemake)  # noqa: F821

import numpy as np  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from ftstudy.figures import rank_histogram, ranks_from_stats, save  # noqa: E402
from ftstudy.tables import read_json  # noqa: E402

smk = snakemake  # noqa: F821
names = pq.read_schema(smk.input.hard).names
if "neg_rank" in names:
    ranks = pq.read_table(smk.input.hard, columns=["neg_rank"])["neg_rank"].to_numpy()
else:  # fall back on the mining statistics' histogram
    log.warning("%s has no neg_rank column; using the histogram in %s", smk.input.hard, smk.input.stats)
    ranks = ranks_from_stats(read_json(smk.input.stats), smk.input.stats)
log.info("%d negatives, ranks %s..%s", len(ranks), np.min(ranks, initial=0), np.max(ranks, initial=0))
save(rank_histogram(ranks, tuple(smk.params.rank_range)), smk.output.png, smk.output.pdf)
