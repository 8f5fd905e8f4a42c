"""Forest plot of every remedy's change in MRR@10 against base with its 95% CI: results/figures/remedies."""

from _common import setup

log = setup(snakemake)  # noqa: F821

import pandas as pd  # noqa: E402

from ftstudy.figures import forest, save  # noqa: E402

smk = snakemake  # noqa: F821
df = pd.read_csv(smk.input.csv)
log.info("%d rows from %s", len(df), smk.input.csv)
save(forest(df, "MRR@10", "base"), smk.output.png, smk.output.pdf)
