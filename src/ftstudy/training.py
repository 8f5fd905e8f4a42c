"""Fine-tuning one variant: sentence-transformers' trainer, per-variant loss, LoRA via peft, resumable.

Entry point: :func:`train_variant` (used by ``workflow/scripts/train.py`` and ``python -m ftstudy.training``), a
short sequence of named steps: :func:`open_job` (settings, resumable state), :func:`load_split` (triplets, split by
query), :func:`build_model` (model, LoRA, loss), :func:`prepare_batches` (tokenise once, fixed batch order),
:func:`build_evaluator` and :func:`build_trainer`, :func:`run_training` (train or resume), :func:`save_outputs`
(``model/``, ``adapter/``, ``train_log.csv``) and :func:`write_summary`.

- **Data.** :mod:`ftstudy.training_data`: the split, the token table, the collator; :mod:`ftstudy.batching`: the
  fixed batch order of all epochs (``training.batch_sampler``: ``shuffled`` or ``no_duplicates``).
- **Remedies.** ``training.l2sp`` (:mod:`ftstudy.l2sp`) wraps the loss with the L2-SP penalty, logged apart as
  ``task_loss`` and ``l2sp_penalty``; ``training.max_steps`` stops after that many optimiser steps of the
  uncapped schedule (same batches, same learning rates: a prefix of the full run).
- **Checkpoints.** Every ``checkpoint_every`` optimiser steps the trainer saves model weights (full state dict,
  LoRA included; :mod:`ftstudy.trainer_adapter`), optimiser, scheduler and RNG states into the job's
  :func:`ftstudy.partial.open_partial` folder (outside the declared outputs, keyed by the training slice, stamped
  with the triplets' and starting weights' sha256). A rerun resumes from the newest complete checkpoint
  (``resume_from_checkpoint`` restores RNG states, so dropout masks match too); success closes the folder.
- **Execution knobs** (``checkpoint_every`` with ``save: last``, ``dataloader_workers``;
  :func:`ftstudy.config.training_knobs`) come apart from the slice: they change no output, so no rerun.
  ``log_every`` stays in the slice: it sets train_log.csv's rows and final_train_loss.
- **Outputs.** ``model/`` (last step, or best held-out accuracy with ``save: best``; LoRA merged; Normalize kept),
  ``adapter/`` (LoRA), ``train_log.csv``, ``train_summary.json``; all written atomically.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ftstudy.atomic import atomic_dir, write_json, write_text
from ftstudy.batching import Schedule, make_schedule, schedule_stats
from ftstudy.l2sp import L2SPLoss, LossParts, start_point
from ftstudy.lora import apply_lora, count_parameters, merge_lora, save_adapter
from ftstudy.losses import build_loss, drop_normalize, needs_unnormalised, restore_normalize
from ftstudy.partial import close_partial, open_partial
from ftstudy.provenance import config_hash, model_weights_sha256, sha256_file, versions
from ftstudy.trainer_adapter import checkpoint_step, last_complete_checkpoint, make_trainer_class
from ftstudy.training_data import (
    ScheduleBatchSampler,
    TokenCollator,
    index_texts,
    read_triplets,
    split_triplets,
    tokenize_once,
)

log = logging.getLogger(__name__)

#: The contract's five columns, then the loss's two parts (``loss = task_loss + l2sp_penalty``; penalty 0 when off).
LOG_COLUMNS = ("step", "epoch", "loss", "learning_rate", "grad_norm", "task_loss", "l2sp_penalty")
EVAL_NAME = "heldout"
LOG_FILE = "train_log.csv"


# ---- settings ---------------------------------------------------------------------------------------------
def resolve_precision(device: str, dtype: str) -> str:
    """``auto`` -> bf16 on GPUs that support it (fp16 on older GPUs), fp32 on CPU."""
    if dtype != "auto":
        return dtype
    if device.startswith("cuda") and torch.cuda.is_available():
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "fp32"


def warmup_steps_for(training: dict, total_steps: int) -> int:
    """``warmup_ratio`` (fraction of all optimiser steps, rounded up) if set, else ``warmup_steps``."""
    if training.get("warmup_ratio") is not None:
        return int(math.ceil(training["warmup_ratio"] * total_steps))
    return int(training["warmup_steps"])


def complete_knobs(knobs: dict | None) -> dict:
    """``knobs`` with every execution knob (:data:`ftstudy.config.TRAINING_EXECUTION_KNOBS`) that it lacks taken
    from the schema's defaults (for callers without a workflow config)."""
    from ftstudy.config import TRAINING_EXECUTION_KNOBS, schema_defaults

    knobs = dict(knobs or {})
    if not set(TRAINING_EXECUTION_KNOBS) <= set(knobs):
        training = schema_defaults()["training"]
        knobs = {**{k: training[k] for k in TRAINING_EXECUTION_KNOBS}, **knobs}
    return knobs


def partial_dir_for(root: str | os.PathLike, model_id: str, slice_: dict) -> Path:
    """``<root>/<model_id>/<config_hash(slice)>``: the folder that :func:`open_job` opens for one training job."""
    return Path(root) / model_id / config_hash(slice_)


# ---- callbacks (public TrainerCallback API) ---------------------------------------------------------------
def progress_callbacks(log_path: Path, schedule: Schedule, stop_at: int, force_eval_at_end: bool,
                       parts: LossParts) -> list:  # fmt: skip
    """The job's ``TrainerCallback``: the training log as CSV (``LOG_COLUMNS``, one row per logging step, fsynced,
    cut back to the checkpoint's step on resume; ``task_loss``/``l2sp_penalty`` from ``parts``) and, at step
    ``stop_at`` (the last step, or ``training.max_steps``), a log row, the end of training and (``save: best``) a
    final evaluation and checkpoint; with ``save: last`` the last step is not checkpointed (the model is saved
    next). The trainer itself runs the whole schedule, so its learning-rate schedule is the uncapped one."""
    from transformers import TrainerCallback

    class LogToCsv(TrainerCallback):
        def on_train_begin(self, args, state, control, **kw):
            """Start the CSV (header), keeping the rows up to the resumed step."""
            rows = []
            if log_path.exists():  # resumed: keep the rows up to the checkpoint's step
                rows = [r for r in pd.read_csv(log_path).to_dict("records") if r["step"] <= state.global_step]
            with open(log_path, "w", newline="") as fh:
                w = csv.DictWriter(fh, fieldnames=LOG_COLUMNS)
                w.writeheader()
                w.writerows(rows)

        def on_log(self, args, state, control, logs=None, **kw):
            """Append one row per training log (not the evaluation or end-of-training logs)."""
            if not logs or "loss" not in logs:
                return
            task, pen = parts.take()
            row = {
                "step": state.global_step,
                "epoch": round(schedule.epoch_at(state.global_step), 6),
                "loss": float(logs["loss"]),
                "learning_rate": float(logs.get("learning_rate", float("nan"))),
                "grad_norm": float(logs.get("grad_norm", float("nan"))),
                "task_loss": task,
                "l2sp_penalty": pen,
            }
            with open(log_path, "a", newline="") as fh:
                csv.DictWriter(fh, fieldnames=LOG_COLUMNS).writerow(row)
                fh.flush()
                os.fsync(fh.fileno())

        def on_step_end(self, args, state, control, **kw):
            """At the last step: log and stop; evaluate and checkpoint only with ``save: best``."""
            if state.global_step >= stop_at:
                control.should_log = True
                control.should_training_stop = True
                control.should_evaluate = control.should_evaluate or force_eval_at_end
                control.should_save = force_eval_at_end
            return control

    return [LogToCsv()]


# ---- the steps --------------------------------------------------------------------------------------------
@dataclass
class Job:
    """One training job's resolved settings and its resumable-state folder (:func:`open_job`)."""

    slice_: dict
    model_id: str
    device: str
    precision: str  # fp32 | bf16 | fp16
    knobs: dict  # execution knobs: checkpoint_every (save: last), dataloader_workers
    partial: Path  # the open_partial folder: checkpoints and the partial log
    inputs: dict  # triplets_sha256, start_weights_sha256 (the folder's stamp)

    @property
    def variant(self) -> dict:
        """The resolved variant (``ftstudy.config.resolve_variant``)."""
        return self.slice_["variant"]

    @property
    def tr(self) -> dict:
        """The variant's training settings (knobs excluded)."""
        return self.variant["training"]

    @property
    def seed(self) -> int:
        """This model's seed."""
        return int(self.slice_["seed"])

    @property
    def save_best(self) -> bool:
        """``training.save: best``: the best checkpoint by held-out accuracy becomes ``model/``."""
        return self.tr["save"] == "best"


def open_job(slice_, triplets_path, base_model_dir, partial_root, model_id, device=None, knobs=None) -> Job:
    """Step 1: device, precision and knobs; the resumable state under ``partial_root/model_id``, keyed by the
    slice's hash and reused only for the very same triplets and starting weights (sha256 stamp)."""
    from ftstudy.models import pick_device

    device = pick_device(device)
    inputs = {
        "triplets_sha256": sha256_file(triplets_path),
        "start_weights_sha256": model_weights_sha256(base_model_dir),
    }
    partial = open_partial(Path(partial_root) / model_id, config_hash(slice_), stamp=inputs)
    precision = resolve_precision(device, slice_["variant"]["training"]["dtype"])
    return Job(slice_, model_id, device, precision, complete_knobs(knobs), partial, inputs)


@dataclass
class TrainData:
    """The triplets of one job: how many were read, and the (train, held-out) split."""

    n_triplets: int
    train: pd.DataFrame
    eval: pd.DataFrame


def load_split(job: Job, triplets_path) -> TrainData:
    """Step 2: read the triplets (checked) and split them by query (:func:`ftstudy.training_data.split_triplets`)."""
    df = read_triplets(triplets_path)
    train_df, eval_df = split_triplets(df, job.tr["eval_fraction"], job.tr["train_fraction"], job.seed)
    log.info("%s: %d triplets -> %d train, %d held out (by query)", job.model_id, len(df), len(train_df), len(eval_df))
    return TrainData(len(df), train_df, eval_df)


@dataclass
class Built:
    """The model as trained (LoRA-wrapped, Normalize dropped where the loss wants), its loss (the variant's loss
    inside :class:`ftstudy.l2sp.L2SPLoss`) and sizes."""

    model: object
    loss: L2SPLoss
    normalize_at: list
    trainable: int
    total: int


def build_model(job: Job, base_model_dir) -> Built:
    """Step 3: load the base (seeded first: LoRA's init), set ``max_seq_length``, drop Normalize for the
    unnormalised loss, wrap with LoRA, count parameters as trained, build the variant's loss inside
    :class:`ftstudy.l2sp.L2SPLoss` (``training.l2sp``; the start point is taken here, before any resume)."""
    from sentence_transformers import SentenceTransformer
    from transformers import set_seed

    set_seed(job.seed)
    model = SentenceTransformer(str(base_model_dir), device=job.device)
    model.max_seq_length = int(job.tr["max_seq_length"])
    normalize_at = drop_normalize(model) if needs_unnormalised(job.variant["loss"]) else []
    if job.variant["method"] == "lora":
        apply_lora(model, job.variant["lora"], job.seed)
    trainable, total = count_parameters(model)
    strength = float(job.tr["l2sp"])
    loss = L2SPLoss(build_loss(model, job.variant["loss"], job.tr), strength, start_point(model) if strength else None)
    return Built(model, loss, normalize_at, trainable, total)


@dataclass
class Batches:
    """What the trainer reads: the row-number dataset, the collator over the token table, the fixed schedule
    (all epochs, uncapped: the learning-rate schedule's length) and the step training stops at."""

    dataset: object
    collator: TokenCollator
    schedule: Schedule
    stop_at: int  # len(batches), or training.max_steps where that is smaller
    sampler_stats: dict  # batching.schedule_stats
    warmup: int
    tokenize_s: float

    @property
    def batches(self) -> list:
        """Every epoch's batches (row numbers), in training order."""
        return self.schedule.batches

    @property
    def steps_per_epoch(self) -> int:
        """The first epoch's batches (every epoch's with ``shuffled``)."""
        return self.schedule.batches_per_epoch[0]


def prepare_batches(job: Job, model, train_df: pd.DataFrame) -> Batches:
    """Step 4: tokenise every distinct text once, and fix the batches of all epochs in training order
    (``training.batch_sampler``, :mod:`ftstudy.batching`). Warmup and the linear decay follow the whole schedule;
    ``training.max_steps`` only moves where training stops, so a capped run is a prefix of the uncapped one."""
    from datasets import Dataset

    t0 = time.perf_counter()
    texts, rows = index_texts(train_df)
    table = tokenize_once(model, texts)
    tokenize_s = time.perf_counter() - t0
    log.info("tokenised %d distinct texts (%d tokens) in %.1f s", len(texts), len(table.ids), tokenize_s)
    batch_size, sampler = int(job.tr["batch_size"]), job.tr["batch_sampler"]
    schedule = make_schedule(sampler, rows, batch_size, int(job.variant["epochs"]), job.seed)
    stats = schedule_stats(schedule, rows, batch_size)
    total = len(schedule.batches)
    stop_at = min(total, int(job.tr["max_steps"])) if job.tr["max_steps"] is not None else total
    log.info("%s: %s batches, %d steps (%s per epoch); deferred %d, left out %d triplets", job.model_id, sampler,
             total, schedule.batches_per_epoch, stats["deferred_triplets"], stats["left_out_triplets"])  # fmt: skip
    if stop_at < total:
        log.info("%s: training.max_steps %d: stopping after step %d of %d", job.model_id, stop_at, stop_at, total)
    return Batches(
        dataset=Dataset.from_dict({"row": np.arange(len(train_df), dtype=np.int64)}),
        collator=TokenCollator(table=table, rows=rows),
        schedule=schedule,
        stop_at=stop_at,
        sampler_stats=stats,
        warmup=warmup_steps_for(job.tr, total),
        tokenize_s=tokenize_s,
    )


def build_evaluator(job: Job, eval_df: pd.DataFrame):
    """Step 5a: sentence-transformers' ``TripletEvaluator`` (cosine) on the held-out triplets."""
    from sentence_transformers.sentence_transformer.evaluation import TripletEvaluator

    return TripletEvaluator(
        anchors=eval_df["query"].tolist(),
        positives=eval_df["positive"].tolist(),
        negatives=eval_df["negative"].tolist(),
        name=EVAL_NAME,
        similarity_fn_names=["cosine"],
        batch_size=max(32, int(job.tr["batch_size"])),
        write_csv=False,
    )


def training_arguments(job: Job, warmup: int):
    """The trainer's arguments: AdamW and the linear schedule from the slice, checkpoints into the partial
    folder, evaluation at checkpoints with ``save: best``, mixed precision by ``job.precision``."""
    from sentence_transformers import SentenceTransformerTrainingArguments

    tr, best, every = job.tr, job.save_best, int(job.knobs["checkpoint_every"])
    return SentenceTransformerTrainingArguments(
        output_dir=str(job.partial),
        num_train_epochs=1,  # one pass over the precomputed multi-epoch batch schedule
        per_device_train_batch_size=int(tr["batch_size"]),
        learning_rate=float(tr["lr"]),
        weight_decay=float(tr["weight_decay"]),
        adam_beta1=float(tr["adam_betas"][0]),
        adam_beta2=float(tr["adam_betas"][1]),
        max_grad_norm=float(tr["max_grad_norm"]),
        lr_scheduler_type="linear",
        warmup_steps=warmup,
        optim="adamw_torch",
        logging_strategy="steps",
        logging_steps=int(tr["log_every"]),
        save_strategy="steps",
        save_steps=every,
        save_total_limit=1,
        eval_strategy="steps" if best else "no",
        eval_steps=every if best else None,
        load_best_model_at_end=best,
        metric_for_best_model=f"eval_{EVAL_NAME}_cosine_accuracy" if best else None,
        greater_is_better=True if best else None,
        seed=job.seed,
        data_seed=job.seed,
        bf16=job.precision == "bf16",
        fp16=job.precision == "fp16",
        use_cpu=job.device == "cpu",
        dataloader_num_workers=int(job.knobs["dataloader_workers"]),
        remove_unused_columns=False,
        report_to="none",
        disable_tqdm=False,
    )


def _job_callbacks(job: Job, built: Built, batches: Batches) -> list:
    """The job's own callbacks (:func:`progress_callbacks`) for this job's log, schedule, stop and loss parts."""
    log_path = job.partial / LOG_FILE
    return progress_callbacks(log_path, batches.schedule, batches.stop_at, job.save_best, built.loss.parts)


def build_trainer(job: Job, built: Built, batches: Batches, evaluator, callbacks=()):
    """Step 5b: the study's trainer (:mod:`ftstudy.trainer_adapter`) with the job's callbacks and ``callbacks``
    (extra ``TrainerCallback`` objects, e.g. checks in tests)."""
    trainer = make_trainer_class()(
        model=built.model,
        args=training_arguments(job, batches.warmup),
        train_dataset=batches.dataset,
        loss=built.loss,
        evaluator=evaluator if job.save_best else None,
        data_collator=batches.collator,
        callbacks=[*_job_callbacks(job, built, batches), *callbacks],
    )
    trainer.schedule = ScheduleBatchSampler(batches.batches)
    _bar_to_stop(trainer, batches.stop_at)
    return trainer


def _bar_to_stop(trainer, stop_at: int) -> None:
    """Give ``trainer`` transformers' own progress bar with ``stop_at`` as its total: the trainer runs the uncapped
    schedule (its learning rates), so with ``training.max_steps`` its bar would count to the schedule's end and
    show an ETA for steps that never run (23,205 steps, 6 h, for a 200-step run at full size)."""
    from tqdm.auto import tqdm
    from transformers.trainer_callback import ProgressCallback

    class ProgressToStop(ProgressCallback):
        def on_train_begin(self, args, state, control, **kw):
            """The parent's bar, with ``stop_at`` as its total from the first draw."""
            if state.is_world_process_zero:
                self.training_bar = tqdm(total=stop_at, dynamic_ncols=True)
            self.current_step = 0

    if trainer.pop_callback(ProgressCallback) is not None:  # absent with disable_tqdm
        trainer.add_callback(ProgressToStop())


@dataclass
class Run:
    """What :func:`run_training` measured: the resume point and the wall/CPU time of ``trainer.train()``."""

    start_step: int
    end_step: int
    train_s: float
    train_cpu_s: float
    trained_triplets: int


def run_training(job: Job, trainer, batches: Batches) -> Run:
    """Step 6: train, resuming from the newest complete checkpoint if there is one. With ``save: best``, raise if
    the trainer did not load the best checkpoint (sentence-transformers only logs that failure)."""
    resume = last_complete_checkpoint(job.partial)
    start_step = checkpoint_step(resume)
    if resume:
        log.info("resuming %s from %s (step %d of %d)", job.model_id, resume, start_step, len(batches.batches))
    t0, cpu0 = time.perf_counter(), time.process_time()
    trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    train_s, train_cpu_s = time.perf_counter() - t0, time.process_time() - cpu0
    best = trainer.state.best_model_checkpoint
    if job.save_best and best and trainer.loaded_checkpoint != best:
        raise RuntimeError(
            f"{job.model_id}: the best checkpoint {best} was not loaded; model/ would hold the last step"
        )
    trained = int(sum(len(b) for b in batches.batches[start_step : batches.stop_at]))
    return Run(start_step, int(trainer.state.global_step), train_s, train_cpu_s, trained)


def save_outputs(job: Job, trainer, built: Built, out_dir: Path, evaluator) -> float:
    """Step 7: Normalize restored, LoRA adapter saved and merged, ``model/`` and ``train_log.csv`` written
    atomically. Returns the held-out cosine accuracy of the model as saved (reloaded from ``model/``)."""
    from sentence_transformers import SentenceTransformer

    model = trainer.model
    model.eval()
    restore_normalize(model, built.normalize_at)
    if job.variant["method"] == "lora":
        with atomic_dir(out_dir / "adapter") as tmp:
            save_adapter(model, tmp)
        merge_lora(model)
    with atomic_dir(out_dir / "model") as tmp:
        model.save_pretrained(str(tmp))
    write_text(out_dir / LOG_FILE, pd.read_csv(job.partial / LOG_FILE).to_csv(index=False))
    final = SentenceTransformer(str(out_dir / "model"), device=job.device)
    return float(evaluator(final)[f"{EVAL_NAME}_cosine_accuracy"])


def write_summary(job: Job, data: TrainData, built: Built, batches: Batches, run: Run, trainer, eval_acc: float,
                  wall_s: float, out_dir: Path) -> dict:  # fmt: skip
    """Step 8: ``train_summary.json`` (the contract's fields and the job's provenance), written atomically."""
    log_rows = pd.read_csv(out_dir / LOG_FILE)
    epochs, v = int(job.variant["epochs"]), job.variant
    last_epoch = log_rows[log_rows["epoch"] > epochs - 1]
    summary = {
        "model_id": job.model_id,
        "variant": v["name"],
        "method": v["method"],
        "loss": v["loss"],
        "seed": job.seed,
        "final_train_loss": float(log_rows["loss"].iloc[-1]),
        "final_train_loss_definition": f"mean training loss over the last {job.tr['log_every']} optimiser steps",
        "final_task_loss": float(log_rows["task_loss"].iloc[-1]),
        "final_l2sp_penalty": float(log_rows["l2sp_penalty"].iloc[-1]),
        "l2sp": float(job.tr["l2sp"]),
        "last_epoch_mean_train_loss": float(last_epoch["loss"].mean()) if len(last_epoch) else None,
        "eval_cosine_accuracy": eval_acc,
        "saved_checkpoint": "best" if job.save_best else "last",
        "best_checkpoint": trainer.state.best_model_checkpoint if job.save_best else None,
        "trainable_params": int(built.trainable),
        "total_params": int(built.total),
        "trainable_fraction": built.trainable / built.total,
        "n_triplets": data.n_triplets,
        "n_train": int(len(data.train)),
        "n_eval": int(len(data.eval)),
        "n_eval_queries": int(data.eval["query"].nunique()),
        "epochs": epochs,
        "steps": run.end_step,
        "max_steps": job.tr["max_steps"],
        "schedule_steps": len(batches.batches),
        "steps_per_epoch": batches.steps_per_epoch,
        "batches_per_epoch": batches.schedule.batches_per_epoch,
        "batch_sampler": job.tr["batch_sampler"],
        "sampler": batches.sampler_stats,
        "warmup_steps": batches.warmup,
        "resumed_from_step": run.start_step,
        "wall_time_s": wall_s,
        "train_time_s": run.train_s,
        "train_cpu_s": run.train_cpu_s,
        "tokenize_time_s": batches.tokenize_s,
        "triplets_per_s": run.trained_triplets / run.train_s if run.train_s > 0 else None,
        "device": job.device if job.device != "cuda" else f"cuda:{torch.cuda.get_device_name(0)}",
        "dtype": job.precision,
        "torch_threads": torch.get_num_threads(),
        "versions": versions(),
        "config": job.slice_,
        "config_hash": config_hash(job.slice_),
        "execution": job.knobs,
        **job.inputs,
        "model_weights_sha256": model_weights_sha256(out_dir / "model"),
    }
    write_json(out_dir / "train_summary.json", summary)
    return summary


# ---- the job ----------------------------------------------------------------------------------------------
def train_variant(
    slice_: dict,
    triplets_path: str | os.PathLike,
    base_model_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    partial_root: str | os.PathLike,
    model_id: str,
    device: str | None = None,
    knobs: dict | None = None,
    callbacks: Sequence = (),
) -> dict:
    """Train one (variant, seed) and write ``model/`` (+ ``adapter/``), ``train_log.csv``, ``train_summary.json``.

    ``slice_``: :func:`ftstudy.config.training_slice`; ``knobs``: :func:`ftstudy.config.training_knobs` (missing
    keys: the schema's defaults); ``callbacks``: extra ``TrainerCallback`` objects. Returns the summary dict.
    """
    t_start, out_dir = time.perf_counter(), Path(out_dir)
    job = open_job(slice_, triplets_path, base_model_dir, partial_root, model_id, device, knobs)
    data = load_split(job, triplets_path)
    built = build_model(job, base_model_dir)
    batches = prepare_batches(job, built.model, data.train)
    evaluator = build_evaluator(job, data.eval)
    trainer = build_trainer(job, built, batches, evaluator, callbacks)
    run = run_training(job, trainer, batches)
    eval_acc = save_outputs(job, trainer, built, out_dir, evaluator)
    summary = write_summary(job, data, built, batches, run, trainer, eval_acc, time.perf_counter() - t_start, out_dir)
    close_partial(Path(partial_root) / model_id)
    return summary


def main(argv: list[str] | None = None) -> int:
    """``python -m ftstudy.training --slice slice.json [--knobs knobs.json] --triplets t.parquet --base DIR
    --out DIR --partial DIR --model-id ID``."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--slice", required=True, help="JSON file with ftstudy.config.training_slice(...)")
    p.add_argument("--knobs", default=None, help="JSON file with ftstudy.config.training_knobs(...)")
    p.add_argument("--triplets", required=True)
    p.add_argument("--base", required=True, help="SentenceTransformer folder to start from")
    p.add_argument("--out", required=True, help="results/models/{model}")
    p.add_argument("--partial", required=True, help="root of resumable state (results/.partial/train)")
    p.add_argument("--model-id", required=True)
    p.add_argument("--device", default=None)
    p.add_argument("--threads", type=int, default=None)
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if a.threads:
        torch.set_num_threads(a.threads)
    slice_ = json.loads(Path(a.slice).read_text())
    knobs = json.loads(Path(a.knobs).read_text()) if a.knobs else None
    train_variant(slice_, a.triplets, a.base, a.out, a.partial, a.model_id, device=a.device, knobs=knobs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
