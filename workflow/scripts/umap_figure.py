"""Fig. 1: an AlignedUMAP of the shared query/positive pairs, one panel per neural model."""

from _common import setup

log = setup(snakemake, preload=("umap",))  # noqa: F821

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ftstudy.atomic import write_parquet  # noqa: E402
from ftstudy.figures import save, umap_grid  # noqa: E402
from ftstudy.geometry import aligned_umap  # noqa: E402

smk = snakemake  # noqa: F821
embeddings, n_pairs = [], None
for path in smk.input.npz:
    with np.load(path) as z:
        embeddings.append(np.vstack([z["q"], z["p"]]))
        n_pairs = len(z["q"])
log.info("AlignedUMAP of %d points x %d models", 2 * n_pairs, len(embeddings))
coords = aligned_umap(embeddings, smk.params.n_neighbors, smk.params.min_dist, smk.params.seed)
frames = [
    pd.DataFrame({"model": m, "point": np.arange(len(c)), "kind": ["query"] * n_pairs + ["positive"] * n_pairs,
                  "x": c[:, 0], "y": c[:, 1]})
    for m, c in zip(smk.params.models, coords, strict=True)
]  # fmt: skip
write_parquet(pd.concat(frames, ignore_index=True), smk.output.coords)
save(umap_grid(dict(zip(smk.params.models, coords, strict=True)), n_pairs), smk.output.png, smk.output.pdf)
