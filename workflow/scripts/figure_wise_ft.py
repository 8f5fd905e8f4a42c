"""MRR@10 against the WiSE-FT mixing weight per variant (w = 0 base, w = 1 fine-tuned): results/figures/wise_ft."""

from _common import setup

log = setup(snakemake)  # noqa: F821

from ftstudy.figures import save, wise_ft  # noqa: E402
from ftstudy.remedies import wise_ft_points  # noqa: E402
from ftstudy.tables import read_metrics  # noqa: E402

smk = snakemake  # noqa: F821
values = {
    tuple(k): read_metrics(path)["metrics"]["MRR@10"]
    for k, path in zip(smk.params.metric_keys, smk.input.metrics, strict=True)
}
df = wise_ft_points({m: dict(v) for m, v in smk.params.wise.items()}, values, smk.params.eval_sets)
log.info("\n%s", df.to_string())
save(wise_ft(df, "MRR@10"), smk.output.png, smk.output.pdf)
