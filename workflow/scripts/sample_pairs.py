"""Seeded dev query / positive-passage pairs (+ one random passage each) shared by every model's geometry."""

from _common import setup

log = setup(snakemake)  # noqa: F821

import pandas as pd  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from ftstudy.atomic import write_parquet  # noqa: E402
from ftstudy.geometry import attach_texts, pair_pids, sample_pairs  # noqa: E402

smk = snakemake  # noqa: F821
queries = pd.read_parquet(smk.input.queries, columns=["qid", "text"])
qrels = pd.read_parquet(smk.input.qrels, columns=["qid", "pid", "relevance"])
pids = pq.read_table(smk.input.collection, columns=["pid"])["pid"].to_numpy()
pairs = sample_pairs(queries, qrels, pids, smk.params.n_pairs, smk.params.seed, smk.params.min_relevance)
if len(pairs) < smk.params.n_pairs:
    log.warning("only %d judged queries: %d pairs instead of %d", len(pairs), len(pairs), smk.params.n_pairs)
wanted = pair_pids(pairs)
texts = pd.read_parquet(smk.input.collection, columns=["pid", "text"], filters=[("pid", "in", wanted)])
write_parquet(attach_texts(pairs, queries, texts, smk.input.collection), smk.output.pairs)
log.info("%d pairs (seed %d, config hash %s)", len(pairs), smk.params.seed, smk.params.config_hash)
