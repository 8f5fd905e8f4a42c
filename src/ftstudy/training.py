"""Fine-tuning one variant: sentence-transformers' trainer, per-variant loss, LoRA via peft, resumable.

Entry point: :func:`train_variant` (used by ``workflow/scripts/train.py`` and ``python -m ftstudy.training``).

How it works:

- **Split.** Triplets are split BY QUERY (seeded): ``eval_fraction`` of the distinct queries are held out for the
  TripletEvaluator, then ``train_fraction`` of the remaining triplets is kept for training (seeded sample).
- **Tokenise once.** Every distinct text (queries and passages repeat across triplets) is tokenised once with the
  model's own ``preprocess`` (same truncation to ``max_seq_length`` as the library's collator) and stored as one
  flat int32 token array plus offsets. The training set is then a column of row numbers; :class:`TokenCollator`
  pads the stored tokens of each batch. The library's collator would re-tokenise every text in every epoch.
- **Data order.** The order of ALL epochs is fixed up front: epoch ``e`` is the permutation drawn from
  ``numpy.random.default_rng([seed, e])``, cut into batches. The trainer sees one long "epoch" of these batches
  (:class:`ScheduleBatchSampler`), so resuming after a kill skips exactly the batches already trained and every
  later batch is the same as in an uninterrupted run. The reported ``epoch`` is ``step / steps_per_epoch``.
- **Checkpoints.** Every ``checkpoint_every`` optimiser steps the trainer saves model weights (full state dict,
  LoRA included), optimiser, scheduler and RNG states under ``partial_dir`` (outside the declared outputs). A rerun
  resumes from the newest complete checkpoint (``resume_from_checkpoint`` restores RNG states, so dropout masks
  match too). ``partial_dir`` is deleted on success.
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
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from ftstudy.atomic import atomic_dir, write_json, write_text
from ftstudy.lora import apply_lora, count_parameters, merge_lora, save_adapter
from ftstudy.losses import build_loss, drop_normalize, needs_unnormalised, restore_normalize
from ftstudy.provenance import config_hash, model_weights_sha256, sha256_file, versions

log = logging.getLogger(__name__)

TRIPLET_COLUMNS = ("query", "positive", "negative")
LOG_COLUMNS = ("step", "epoch", "loss", "learning_rate", "grad_norm")
STATE_FILE = "ftstudy_model_state.safetensors"
EVAL_NAME = "heldout"


# ---- data -------------------------------------------------------------------------------------------------
def read_triplets(path: str | os.PathLike) -> pd.DataFrame:
    """Read a triplet parquet; raise ValueError naming the file when columns are missing or texts are empty."""
    df = pd.read_parquet(path)
    missing = [c for c in TRIPLET_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}; expected {list(TRIPLET_COLUMNS)}")
    df = df[list(TRIPLET_COLUMNS)].reset_index(drop=True)
    for col in TRIPLET_COLUMNS:
        bad = df[col].isna() | (df[col].astype(str).str.strip() == "")
        if bad.any():
            raise ValueError(f"{path}: row {int(np.flatnonzero(bad)[0])} has an empty '{col}' (expected text)")
    if len(df) == 0:
        raise ValueError(f"{path}: no triplets")
    return df


def split_triplets(
    df: pd.DataFrame, eval_fraction: float, train_fraction: float, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, eval): ``eval_fraction`` of the distinct queries held out (at least one, never all), then a seeded
    ``train_fraction`` sample of the rest. Both keep the input's row order."""
    queries = np.array(sorted(df["query"].unique()), dtype=object)
    if len(queries) < 2:
        raise ValueError("need triplets from at least 2 distinct queries to hold some out for evaluation")
    rng = np.random.default_rng([seed, 1])
    n_eval = min(len(queries) - 1, max(1, round(eval_fraction * len(queries))))
    eval_queries = set(queries[rng.permutation(len(queries))[:n_eval]])
    is_eval = df["query"].isin(eval_queries).to_numpy()
    eval_df, train_df = df[is_eval], df[~is_eval]
    if train_fraction < 1.0:
        keep = max(1, round(train_fraction * len(train_df)))
        rows = np.sort(np.random.default_rng([seed, 2]).choice(len(train_df), size=keep, replace=False))
        train_df = train_df.iloc[rows]
    return train_df.reset_index(drop=True), eval_df.reset_index(drop=True)


@dataclass
class TokenTable:
    """Ragged token ids of distinct texts: text ``i`` is ``ids[offsets[i]:offsets[i+1]]``."""

    ids: np.ndarray  # int32, all tokens back to back
    offsets: np.ndarray  # int64, (n_texts + 1,)
    pad_id: int
    with_token_type_ids: bool
    extra: dict = field(default_factory=dict)  # non-tensor keys of model.preprocess (e.g. modality)


def tokenize_once(model, texts: list[str], chunk: int = 4096) -> TokenTable:
    """Tokenise ``texts`` once with ``model.preprocess`` (the library's own tokenisation and truncation)."""
    pieces, lengths = [], []
    with_tt, extra = False, {}
    for start in range(0, len(texts), chunk):
        feats = model.preprocess(texts[start : start + chunk])
        mask = feats["attention_mask"].bool()
        lens = mask.sum(1)
        if not torch.equal(mask, torch.arange(mask.shape[1])[None, :] < lens[:, None]):
            raise RuntimeError("tokenizer pads on the left; TokenCollator expects right padding")
        if "token_type_ids" in feats:
            with_tt = True
            if bool(feats["token_type_ids"][mask].any()):
                raise RuntimeError("non-zero token_type_ids in single-text inputs; not supported")
        extra.update({k: v for k, v in feats.items() if not isinstance(v, torch.Tensor)})
        pieces.append(feats["input_ids"][mask].to(torch.int32).numpy())
        lengths.append(lens.numpy())
    lens = np.concatenate(lengths) if lengths else np.zeros(0, np.int64)
    offsets = np.zeros(len(lens) + 1, dtype=np.int64)
    np.cumsum(lens, out=offsets[1:])
    pad_id = model.tokenizer.pad_token_id or 0
    ids = np.concatenate(pieces) if pieces else np.zeros(0, np.int32)
    return TokenTable(ids=ids, offsets=offsets, pad_id=int(pad_id), with_token_type_ids=with_tt, extra=extra)


def index_texts(df: pd.DataFrame) -> tuple[list[str], np.ndarray]:
    """Distinct texts of all three columns and an (n, 3) int64 array of positions into them."""
    codes, uniques = pd.factorize(pd.concat([df[c] for c in TRIPLET_COLUMNS], ignore_index=True))
    return list(uniques), codes.reshape(len(TRIPLET_COLUMNS), len(df)).T.copy()


@dataclass
class TokenCollator:
    """Batches of row numbers -> padded model inputs, from a :class:`TokenTable` (no tokenisation here).

    Output keys match the library's collator: ``{column}_input_ids``, ``{column}_attention_mask``,
    ``{column}_token_type_ids`` (BERT), plus the non-tensor keys of ``model.preprocess``.
    """

    table: TokenTable
    rows: np.ndarray  # (n, 3) positions into the table
    columns: tuple[str, ...] = TRIPLET_COLUMNS
    valid_label_columns: list = field(default_factory=list)

    def pad(self, text_idx: np.ndarray) -> dict[str, Any]:
        t = self.table
        starts, ends = t.offsets[text_idx], t.offsets[text_idx + 1]
        lens = ends - starts
        width = int(lens.max())
        ids = np.full((len(text_idx), width), t.pad_id, dtype=np.int64)
        for i, (s, n) in enumerate(zip(starts, lens, strict=True)):
            ids[i, :n] = t.ids[s : s + n]
        mask = (np.arange(width)[None, :] < lens[:, None]).astype(np.int64)
        out = {"input_ids": torch.from_numpy(ids)}
        if t.with_token_type_ids:
            out["token_type_ids"] = torch.zeros_like(out["input_ids"])
        out["attention_mask"] = torch.from_numpy(mask)
        out.update(t.extra)
        return out

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        rows = np.asarray([f["row"] for f in features], dtype=np.int64)
        batch: dict[str, Any] = {}
        for j, col in enumerate(self.columns):
            for key, value in self.pad(self.rows[rows, j]).items():
                batch[f"{col}_{key}"] = value
        return batch


def epoch_batches(n: int, batch_size: int, epochs: int, seed: int) -> list[np.ndarray]:
    """The batches of every epoch, in training order: epoch e shuffles with ``default_rng([seed, 0, e])``."""
    out = []
    for e in range(epochs):
        perm = np.random.default_rng([seed, 0, e]).permutation(n)
        out += [perm[i : i + batch_size] for i in range(0, n, batch_size)]
    return out


class ScheduleBatchSampler:
    """A batch sampler over a fixed, precomputed list of batches (stateless, so resume is exact)."""

    def __init__(self, batches: list[np.ndarray]):
        self.batches = batches

    def __iter__(self):
        for b in self.batches:
            yield [int(i) for i in b]

    def __len__(self) -> int:
        return len(self.batches)

    def set_epoch(self, epoch: int) -> None:  # the trainer calls this; the order is already fixed
        pass


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


def checkpoint_complete(path: Path) -> bool:
    """A checkpoint folder that holds every file a resume needs (a kill during saving leaves it incomplete)."""
    needed = (STATE_FILE, "trainer_state.json", "optimizer.pt", "scheduler.pt", "rng_state.pth")
    return all((path / f).exists() for f in needed)


def last_complete_checkpoint(partial_dir: Path) -> Path | None:
    """Newest complete ``checkpoint-<step>`` under ``partial_dir``; incomplete ones are deleted."""
    found = []
    for p in partial_dir.glob("checkpoint-*"):
        if p.is_dir() and p.name.split("-")[-1].isdigit():
            if checkpoint_complete(p):
                found.append((int(p.name.split("-")[-1]), p))
            else:
                shutil.rmtree(p, ignore_errors=True)
    return max(found)[1] if found else None


# ---- trainer ----------------------------------------------------------------------------------------------
def _make_trainer_class():
    from safetensors.torch import load_file, save_file
    from sentence_transformers import SentenceTransformerTrainer

    class StudyTrainer(SentenceTransformerTrainer):
        """The library trainer with a fixed batch schedule and whole-state-dict checkpoints (LoRA included)."""

        schedule: ScheduleBatchSampler

        def get_batch_sampler(self, dataset, batch_size, drop_last, valid_label_columns=None, generator=None, seed=0):
            return self.schedule

        def _save(self, output_dir: str | None = None, state_dict=None) -> None:
            output_dir = output_dir or self.args.output_dir
            os.makedirs(output_dir, exist_ok=True)
            sd = {k: v.detach().contiguous().cpu() for k, v in self.model.state_dict().items()}
            save_file(sd, os.path.join(output_dir, STATE_FILE))

        def _load_from_checkpoint(self, checkpoint_path: str, model=None) -> None:
            sd = load_file(os.path.join(checkpoint_path, STATE_FILE))
            (model or self.model).load_state_dict(sd, strict=True)

        def _load_best_model(self) -> None:
            log.info("loading best checkpoint %s (%s)", self.state.best_model_checkpoint, self.state.best_metric)
            self._load_from_checkpoint(self.state.best_model_checkpoint)

    return StudyTrainer


def _callbacks(log_path: Path, steps_per_epoch: int, force_eval_at_end: bool):
    from transformers import TrainerCallback

    class LogToCsv(TrainerCallback):
        """Append step, epoch, loss, learning_rate, grad_norm to a CSV under partial_dir (survives a kill)."""

        def on_train_begin(self, args, state, control, **kw):
            rows = []
            if log_path.exists():  # resumed: keep the rows up to the checkpoint's step
                rows = [r for r in pd.read_csv(log_path).to_dict("records") if r["step"] <= state.global_step]
            with open(log_path, "w", newline="") as fh:
                w = csv.DictWriter(fh, fieldnames=LOG_COLUMNS)
                w.writeheader()
                w.writerows(rows)

        def on_log(self, args, state, control, logs=None, **kw):
            if not logs or "loss" not in logs:
                return
            row = {
                "step": state.global_step,
                "epoch": round(state.global_step / steps_per_epoch, 6),
                "loss": float(logs["loss"]),
                "learning_rate": float(logs.get("learning_rate", float("nan"))),
                "grad_norm": float(logs.get("grad_norm", float("nan"))),
            }
            with open(log_path, "a", newline="") as fh:
                csv.DictWriter(fh, fieldnames=LOG_COLUMNS).writerow(row)
                fh.flush()
                os.fsync(fh.fileno())

        def on_step_end(self, args, state, control, **kw):
            if state.global_step >= state.max_steps:
                control.should_log = True
                if force_eval_at_end:
                    control.should_evaluate = True
                    control.should_save = True
                else:  # the final model is written right after; a checkpoint of the last step is never resumed
                    control.should_save = False
            return control

    return [LogToCsv()]


# ---- the job ----------------------------------------------------------------------------------------------
def partial_dir_for(root: str | os.PathLike, model_id: str, slice_: dict) -> Path:
    """``<root>/<model_id>/<config_hash(slice)>``: resumable state of one training job."""
    return Path(root) / model_id / config_hash(slice_)


def train_variant(
    slice_: dict,
    triplets_path: str | os.PathLike,
    base_model_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    partial_root: str | os.PathLike,
    model_id: str,
    device: str | None = None,
) -> dict:
    """Train one (variant, seed) and write ``model/`` (+ ``adapter/``), ``train_log.csv``, ``train_summary.json``.

    ``slice_`` is :func:`ftstudy.config.training_slice`'s output. Returns the summary dict.
    """
    from sentence_transformers import SentenceTransformer, SentenceTransformerTrainingArguments
    from sentence_transformers.sentence_transformer.evaluation import TripletEvaluator
    from transformers import set_seed

    from ftstudy.models import pick_device

    t_start = time.perf_counter()
    variant, seed = slice_["variant"], int(slice_["seed"])
    tr, method, loss_name = variant["training"], variant["method"], variant["loss"]
    device = pick_device(device)
    precision = resolve_precision(device, tr["dtype"])
    out_dir = Path(out_dir)
    partial = partial_dir_for(partial_root, model_id, slice_)
    partial.mkdir(parents=True, exist_ok=True)

    # Inputs: a checkpoint is only reused for the very same triplets and starting weights.
    inputs = {
        "triplets_sha256": sha256_file(triplets_path),
        "start_weights_sha256": model_weights_sha256(base_model_dir),
    }
    inputs_file = partial / "inputs.json"
    if inputs_file.exists() and json.loads(inputs_file.read_text()) != inputs:
        log.info("inputs changed since the checkpoints under %s were made; starting afresh", partial)
        shutil.rmtree(partial)
        partial.mkdir(parents=True)
    write_json(inputs_file, inputs)

    # Data.
    df = read_triplets(triplets_path)
    train_df, eval_df = split_triplets(df, tr["eval_fraction"], tr["train_fraction"], seed)
    log.info("%s: %d triplets -> %d train, %d held out (by query)", model_id, len(df), len(train_df), len(eval_df))

    # Model (seeded: LoRA init), loss.
    set_seed(seed)
    model = SentenceTransformer(str(base_model_dir), device=device)
    model.max_seq_length = int(tr["max_seq_length"])
    normalize_at = drop_normalize(model) if needs_unnormalised(loss_name) else []
    if method == "lora":
        apply_lora(model, variant["lora"], seed)
    trainable, total = count_parameters(model)
    loss = build_loss(model, loss_name, tr)

    # Tokenise once.
    t_tok = time.perf_counter()
    texts, rows = index_texts(train_df)
    table = tokenize_once(model, texts)
    tokenize_s = time.perf_counter() - t_tok
    log.info("tokenised %d distinct texts (%d tokens) in %.1f s", len(texts), len(table.ids), tokenize_s)
    collator = TokenCollator(table=table, rows=rows)
    from datasets import Dataset

    train_ds = Dataset.from_dict({"row": np.arange(len(train_df), dtype=np.int64)})

    batch_size, epochs = int(tr["batch_size"]), int(variant["epochs"])
    batches = epoch_batches(len(train_df), batch_size, epochs, seed)
    steps_per_epoch = math.ceil(len(train_df) / batch_size)
    total_steps = len(batches)
    warmup = warmup_steps_for(tr, total_steps)

    save_best = tr["save"] == "best"
    evaluator = TripletEvaluator(
        anchors=eval_df["query"].tolist(),
        positives=eval_df["positive"].tolist(),
        negatives=eval_df["negative"].tolist(),
        name=EVAL_NAME,
        similarity_fn_names=["cosine"],
        batch_size=max(32, batch_size),
        write_csv=False,
    )
    args = SentenceTransformerTrainingArguments(
        output_dir=str(partial),
        num_train_epochs=1,  # one pass over the precomputed multi-epoch batch schedule
        per_device_train_batch_size=batch_size,
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
        save_steps=int(tr["checkpoint_every"]),
        save_total_limit=1,
        eval_strategy="steps" if save_best else "no",
        eval_steps=int(tr["checkpoint_every"]) if save_best else None,
        load_best_model_at_end=save_best,
        metric_for_best_model=f"eval_{EVAL_NAME}_cosine_accuracy" if save_best else None,
        greater_is_better=True if save_best else None,
        seed=seed,
        data_seed=seed,
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        use_cpu=device == "cpu",
        dataloader_num_workers=int(tr["dataloader_workers"]),
        remove_unused_columns=False,
        report_to="none",
        disable_tqdm=False,
    )
    trainer_cls = _make_trainer_class()
    trainer = trainer_cls(
        model=model,
        args=args,
        train_dataset=train_ds,
        loss=loss,
        evaluator=evaluator if save_best else None,
        data_collator=collator,
        callbacks=_callbacks(partial / "train_log.csv", steps_per_epoch, save_best),
    )
    trainer.schedule = ScheduleBatchSampler(batches)

    resume = last_complete_checkpoint(partial)
    start_step = int(resume.name.split("-")[-1]) if resume else 0
    if resume:
        log.info("resuming %s from %s (step %d of %d)", model_id, resume, start_step, total_steps)
    t_train, cpu_train = time.perf_counter(), time.process_time()
    trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    train_s, train_cpu_s = time.perf_counter() - t_train, time.process_time() - cpu_train
    trained_triplets = int(sum(len(b) for b in batches[start_step:]))

    # Final model: Normalize restored, LoRA adapter saved and merged.
    model = trainer.model
    model.eval()
    restore_normalize(model, normalize_at)
    if method == "lora":
        with atomic_dir(out_dir / "adapter") as tmp:
            save_adapter(model, tmp)
        merge_lora(model)
    with atomic_dir(out_dir / "model") as tmp:
        model.save_pretrained(str(tmp))
    final = SentenceTransformer(str(out_dir / "model"), device=device)
    eval_acc = float(evaluator(final)[f"{EVAL_NAME}_cosine_accuracy"])

    log_rows = pd.read_csv(partial / "train_log.csv")
    write_text(out_dir / "train_log.csv", log_rows.to_csv(index=False))
    last_epoch = log_rows[log_rows["epoch"] > epochs - 1]
    summary = {
        "model_id": model_id,
        "variant": variant["name"],
        "method": method,
        "loss": loss_name,
        "seed": seed,
        "final_train_loss": float(log_rows["loss"].iloc[-1]),
        "final_train_loss_definition": f"mean training loss over the last {tr['log_every']} optimiser steps",
        "last_epoch_mean_train_loss": float(last_epoch["loss"].mean()) if len(last_epoch) else None,
        "eval_cosine_accuracy": eval_acc,
        "saved_checkpoint": "best" if save_best else "last",
        "best_checkpoint": trainer.state.best_model_checkpoint if save_best else None,
        "trainable_params": int(trainable),
        "total_params": int(total),
        "trainable_fraction": trainable / total,
        "n_triplets": int(len(df)),
        "n_train": int(len(train_df)),
        "n_eval": int(len(eval_df)),
        "n_eval_queries": int(eval_df["query"].nunique()),
        "epochs": epochs,
        "steps": total_steps,
        "steps_per_epoch": steps_per_epoch,
        "warmup_steps": warmup,
        "resumed_from_step": start_step,
        "wall_time_s": time.perf_counter() - t_start,
        "train_time_s": train_s,
        "train_cpu_s": train_cpu_s,
        "tokenize_time_s": tokenize_s,
        "triplets_per_s": trained_triplets / train_s if train_s > 0 else None,
        "device": device if device != "cuda" else f"cuda:{torch.cuda.get_device_name(0)}",
        "dtype": precision,
        "torch_threads": torch.get_num_threads(),
        "versions": versions(),
        "config": slice_,
        "config_hash": config_hash(slice_),
        "start_weights_sha256": inputs["start_weights_sha256"],
        "triplets_sha256": inputs["triplets_sha256"],
        "model_weights_sha256": model_weights_sha256(out_dir / "model"),
    }
    write_json(out_dir / "train_summary.json", summary)
    shutil.rmtree(partial, ignore_errors=True)
    for parent in (partial.parent, partial.parent.parent):  # {model}/ and the root, when nothing else is left
        try:
            parent.rmdir()
        except OSError:
            break
    return summary


def main(argv: list[str] | None = None) -> int:
    """``python -m ftstudy.training --slice slice.json --triplets t.parquet --base DIR --out DIR --partial DIR``."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--slice", required=True, help="JSON file with ftstudy.config.training_slice(...)")
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
    train_variant(slice_, a.triplets, a.base, a.out, a.partial, a.model_id, device=a.device)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
