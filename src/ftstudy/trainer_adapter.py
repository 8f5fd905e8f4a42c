"""The one place that overrides private ``Trainer`` methods: how a checkpoint stores the model's weights.

transformers' ``Trainer`` writes a checkpoint's model with ``_save`` (from ``save_model``) and reads it back with
``_load_from_checkpoint`` (in ``train(resume_from_checkpoint=...)``, and in sentence-transformers'
``_load_best_model`` for ``load_best_model_at_end``). sentence-transformers overrides both to write and read a
whole SentenceTransformer folder. That round trip is exact for full fine-tuning, but not for a LoRA model wrapped
with ``peft.get_peft_model`` (:mod:`ftstudy.lora`): the folder holds only the adapter and reloads through
transformers' own peft integration, whose parameter names (``encoder...query.lora_A.default.weight``) differ from
the wrapper's (``base_model.model.encoder...``), so the strict ``load_state_dict`` fails (on resume it raises; for
the best model sentence-transformers only logs it and keeps the last step). No public API sets the checkpoint's
model format (callbacks run after the trainer has saved or loaded), so :class:`StudyTrainer` overrides exactly
these two methods, writing and reading the whole state dict (LoRA included) as one safetensors file. Everything
else is public: the batch order goes through ``get_batch_sampler`` (documented: "Override this method to provide
a custom batch sampler"), logging and end-of-training control through ``TrainerCallback`` (:mod:`ftstudy.training`).

:data:`OVERRIDDEN` and :data:`CALL_SITES` state what the overrides replace; tests/test_training.py compares them
with the installed transformers and sentence-transformers, so a version that renames, re-signs or stops calling
these methods fails that test loudly instead of silently bypassing this format.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

log = logging.getLogger(__name__)

STATE_FILE = "ftstudy_model_state.safetensors"
# What a resume reads besides STATE_FILE (all written by the trainer's _save_checkpoint).
RESUME_FILES = ("trainer_state.json", "optimizer.pt", "scheduler.pt", "rng_state.pth")
#: Private method of ``SentenceTransformerTrainer`` -> the parameter names the override expects it to have.
OVERRIDDEN = {
    "_save": ("self", "output_dir", "state_dict"),
    "_load_from_checkpoint": ("self", "checkpoint_path"),
}
#: (module, qualified name of the caller, the call it must contain): where the libraries call the overridden methods.
CALL_SITES = (
    ("transformers.trainer", "Trainer.save_model", "self._save(output_dir)"),
    ("transformers.trainer", "Trainer.train", "self._load_from_checkpoint(resume_from_checkpoint)"),
    (
        "sentence_transformers.base.trainer",
        "BaseTrainer._load_best_model",
        "self._load_from_checkpoint(self.state.best_model_checkpoint)",
    ),
)


def checkpoint_complete(path: Path) -> bool:
    """A checkpoint folder that holds every file a resume needs (a kill during saving leaves it incomplete)."""
    return all((path / f).exists() for f in (STATE_FILE, *RESUME_FILES))


def last_complete_checkpoint(partial_dir: Path) -> Path | None:
    """Newest complete ``checkpoint-<step>`` under ``partial_dir``; incomplete ones are deleted."""
    found = []
    for p in Path(partial_dir).glob("checkpoint-*"):
        if p.is_dir() and p.name.split("-")[-1].isdigit():
            if checkpoint_complete(p):
                found.append((int(p.name.split("-")[-1]), p))
            else:
                shutil.rmtree(p, ignore_errors=True)
    return max(found)[1] if found else None


def checkpoint_step(path: Path | None) -> int:
    """The optimiser step of a ``checkpoint-<step>`` folder; 0 for None (a fresh start)."""
    return int(Path(path).name.split("-")[-1]) if path else 0


def make_trainer_class():
    """``StudyTrainer``: ``SentenceTransformerTrainer`` with a fixed batch schedule and whole-state-dict
    checkpoints. Built on call so that importing this module stays cheap."""
    from safetensors.torch import load_file, save_file
    from sentence_transformers import SentenceTransformerTrainer

    class StudyTrainer(SentenceTransformerTrainer):
        """Set ``schedule`` (a batch sampler) before ``train()``; ``loaded_checkpoint`` is the last checkpoint
        whose weights were loaded (the resume point, then the best one with ``load_best_model_at_end``)."""

        schedule = None
        loaded_checkpoint: str | None = None

        def get_batch_sampler(self, dataset, batch_size, drop_last, valid_label_columns=None, generator=None, seed=0):
            """The fixed schedule (public extension point of sentence-transformers)."""
            return self.schedule

        def _save(self, output_dir: str | None = None, state_dict=None) -> None:
            """Write the model's whole state dict (LoRA weights included) as ``STATE_FILE``."""
            output_dir = output_dir or self.args.output_dir
            os.makedirs(output_dir, exist_ok=True)
            sd = {k: v.detach().contiguous().cpu() for k, v in self.model.state_dict().items()}
            save_file(sd, os.path.join(output_dir, STATE_FILE))

        def _load_from_checkpoint(self, checkpoint_path: str, model=None) -> None:
            """Load ``STATE_FILE`` strictly into the model (``model``: the trainer's FSDP/SageMaker path)."""
            sd = load_file(os.path.join(checkpoint_path, STATE_FILE))
            (model or self.model).load_state_dict(sd, strict=True)
            self.loaded_checkpoint = str(checkpoint_path)
            log.info("loaded model weights from %s", checkpoint_path)

    return StudyTrainer
