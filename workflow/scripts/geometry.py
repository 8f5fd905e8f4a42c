"""Embedding geometry of every neural model on the shared pairs: results/tables/geometry."""

from _common import setup

log = setup(snakemake)  # noqa: F821

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ftstudy.geometry import geometry_metrics  # noqa: E402
from ftstudy.tables import group_of, write_table  # noqa: E402

smk = snakemake  # noqa: F821
rows = []
for model, path in zip(smk.params.models, smk.input.npz, strict=True):
    with np.load(path) as z:
        row = {"model": model, "variant": group_of(model, smk.params.trained)}
        row |= geometry_metrics(z["q"], z["p"], z["r"])
    info = smk.params.info.get(model, {})
    row |= {"config_hash": info.get("config_hash", ""), "seed": info.get("seed")}
    rows.append(row)
    log.info("%s: %s", model, row)
df = pd.DataFrame(rows)
df["seed"] = df["seed"].astype("Int64")  # base has none
write_table(df, smk.output.csv, smk.output.md)
