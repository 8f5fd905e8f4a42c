"""BM25 index of one corpus: stream its collection parquet through bm25s' tokeniser, save with bm25s' own save
(plus pids and settings) for every BM25 job to memory-map (ftstudy.bm25.index_collection)."""

from _common import setup

log = setup(snakemake)  # noqa: F821

import resource  # noqa: E402

from ftstudy.bm25 import index_collection  # noqa: E402

smk = snakemake  # noqa: F821
log.info("indexing %s with %s", smk.input.collection, smk.params.bm25)
index = index_collection(smk.input.collection, smk.output.index, smk.params.bm25)
log.info(
    "wrote %s: %s (peak RSS %.0f MB)",
    smk.output.index,
    index.describe(),
    resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
)
