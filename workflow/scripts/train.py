"""Train one model id (variant x seed): see ftstudy.training.train_variant."""

import sys
from pathlib import Path

from _common import setup

log = setup(snakemake, preload=("sentence_transformers",))  # noqa: F821
sys.stdout = sys.stderr  # the trainer prints its log dicts to stdout: keep them in the rule's log

from ftstudy.config import training_knobs  # noqa: E402
from ftstudy.training import train_variant  # noqa: E402

smk = snakemake  # noqa: F821
out_dir = Path(smk.output.summary).parent
summary = train_variant(
    smk.params.slice,
    smk.input.triplets,
    smk.input.base,
    out_dir,
    smk.params.partial_root,
    smk.wildcards.model,
    # execution knobs (checkpoints with save: last, loader workers) come from the config, not params: they rerun nothing
    knobs=training_knobs(smk.config, smk.wildcards.model),
)
log.info(
    "%s: %d of %d steps, final loss %.4f (L2-SP term %.4g), held-out cosine accuracy %.4f, %.1f triplets/s on %s (%s)",
    smk.wildcards.model,
    summary["steps"],
    summary["schedule_steps"],
    summary["final_train_loss"],
    summary["final_l2sp_penalty"],
    summary["eval_cosine_accuracy"],
    summary["triplets_per_s"] or 0.0,
    summary["device"],
    summary["dtype"],
)
