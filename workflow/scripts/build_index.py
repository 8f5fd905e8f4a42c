"""Build the faiss index of one model's embeddings of one corpus (exact inner product by default)."""

from _common import setup

log = setup(snakemake)  # noqa: F821

import faiss  # noqa: E402

from ftstudy.encode import load_embeddings  # noqa: E402
from ftstudy.index import build_index, write_index  # noqa: E402

smk = snakemake  # noqa: F821
faiss.omp_set_num_threads(smk.threads)
vectors, ids, meta = load_embeddings(smk.input.embeddings)
index = build_index(vectors, smk.params.index)
write_index(index, smk.output.index)
log.info("wrote %s (%d vectors, %s)", smk.output.index, index.ntotal, smk.params.index)
