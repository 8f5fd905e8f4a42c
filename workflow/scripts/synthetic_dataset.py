"""Generate the embedded default's MS MARCO-format data set (six TSV files) from config synthetic.*."""

import os
import time

from _common import setup

log = setup(snakemake)  # noqa: F821

from ftstudy.synthetic import generate, write_dataset  # noqa: E402

params = dict(snakemake.params.synthetic)  # noqa: F821
out_dir = os.path.dirname(snakemake.output.collection)  # noqa: F821
for name, path in snakemake.output.items():  # noqa: F821
    assert os.path.dirname(path) == out_dir, f"output {name}={path} is not in {out_dir}"
log.info("generating the synthetic data set with %s", params)
start = time.perf_counter()
ds = generate(**params)
log.info(
    "%d passages (%d topics), %d train queries, %d dev queries, %d triples in %.2f s",
    len(ds.collection),
    len(ds.entities),
    len(ds.train_queries),
    len(ds.dev_queries),
    len(ds.triples),
    time.perf_counter() - start,
)
for path in write_dataset(ds, out_dir).values():
    log.info("wrote %s (%d bytes)", path, path.stat().st_size)
