"""Encode the shared geometry pairs (queries, positives, random passages) with one model: an .npz of float32."""

from _common import setup

log = setup(snakemake, preload=("sentence_transformers",))  # noqa: F821

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ftstudy.atomic import atomic_path  # noqa: E402
from ftstudy.encode import encode_texts  # noqa: E402
from ftstudy.models import load_model  # noqa: E402

smk = snakemake  # noqa: F821
pairs = pd.read_parquet(smk.input.pairs)
model = load_model(smk.input.model)  # the GPU when there is one, else the CPU
model.max_seq_length = smk.params.max_seq_length
log.info("encoding %d pairs with %s on %s", len(pairs), smk.input.model, model.device)
arrays = {
    key: encode_texts(model, pairs[col].tolist(), batch_size=smk.config["encoding"]["batch_size"])
    for key, col in (("q", "query"), ("p", "passage"), ("r", "rand_passage"))
}
with atomic_path(smk.output.npz) as tmp, open(tmp, "wb") as fh:
    np.savez(fh, qid=pairs["qid"].to_numpy(), pid=pairs["pid"].to_numpy(), rand_pid=pairs["rand_pid"].to_numpy(),
             **arrays)  # fmt: skip
