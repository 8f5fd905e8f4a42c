"""Fig. 2: training loss of every trained model, raw and EMA-smoothed."""

from _common import setup

log = setup(snakemake)  # noqa: F821

from ftstudy.figures import read_train_log, save, training_loss  # noqa: E402
from ftstudy.tables import read_json  # noqa: E402

smk = snakemake  # noqa: F821
logs, groups, losses = {}, {}, {}
for model, log_path, summary in zip(smk.params.models, smk.input.logs, smk.input.summaries, strict=True):
    logs[model] = read_train_log(log_path)
    groups[model] = smk.params.trained[model]["variant"]
    cfg = read_json(summary).get("config") or {}
    losses[model] = (cfg.get("variant") or cfg).get("loss", "") if isinstance(cfg, dict) else ""
save(training_loss(logs, groups, losses=losses), smk.output.png, smk.output.pdf)
