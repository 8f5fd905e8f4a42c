"""Training (issue 6): losses, LoRA, trainable fraction, config checks, tokenise-once collator, kill and resume.

Everything runs on CPU with tiny settings (a few steps of all-MiniLM-L6-v2 on real MS MARCO triplets).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from ftstudy import config as ftconfig  # noqa: E402
from ftstudy.losses import LOSSES  # noqa: E402
from ftstudy.models import BASE_MODEL_ID, BASE_MODEL_SHA256, resolve_model  # noqa: E402
from ftstudy.provenance import sha256_file  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SUMMARY_FIELDS = {
    "final_train_loss",
    "eval_cosine_accuracy",
    "trainable_params",
    "trainable_fraction",
    "wall_time_s",
    "triplets_per_s",
    "device",
    "dtype",
    "versions",
    "config",
    "start_weights_sha256",
    "seed",
    "n_train",
    "n_eval",
}


@pytest.fixture(scope="session", autouse=True)
def one_thread():
    """2 shared cores: one torch thread avoids oversubscription (and matches the subprocess in the kill test)."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="session")
def base_dir() -> str:
    return resolve_model(BASE_MODEL_ID)


def _triplets(tmp: Path, n_queries: int, per_query: int = 1) -> Path:
    from conftest import require_mini_msmarco

    triples = require_mini_msmarco() / "triples.train.small.tsv"
    df = pd.read_csv(triples, sep="\t", header=None, names=["query", "positive", "negative"], quoting=3)
    df = df.groupby("query", sort=False).head(per_query)
    df = df[df["query"].isin(df["query"].unique()[:n_queries])]
    path = tmp / "triplets.parquet"
    df.reset_index(drop=True).to_parquet(path)
    return path


def _job(method="full", loss="triplet_cosine", epochs=2, training=None, lora=None) -> tuple[dict, dict]:
    """(training slice, execution knobs) through the real schema defaults + check_config, as the workflow
    builds them (the slice goes through params, the knobs through snakemake.config)."""
    from snakemake.utils import validate

    tr = {"batch_size": 8, "warmup_steps": 0, "max_seq_length": 16, "log_every": 1, "checkpoint_every": 2}
    tr.update(training or {})
    variant = {"method": method, "negatives": "random", "loss": loss, "epochs": epochs}
    if lora:
        variant["lora"] = lora
    cfg = {"dataset_dir": "unused", "training": tr, "variants": {"v": variant}}
    validate(cfg, schema=str(ftconfig.SCHEMA_PATH))
    ftconfig.check_config(cfg)
    return ftconfig.training_slice(cfg, "v"), ftconfig.training_knobs(cfg, "v")


def _loss_on(model_dir: str, triplets: Path, loss_name: str, slice_: dict) -> float:
    """Mean loss of a saved model over the training triplets (eval mode, one batch), as the trainer computes it."""
    from sentence_transformers import SentenceTransformer

    from ftstudy.losses import build_loss, drop_normalize, needs_unnormalised
    from ftstudy.training_data import read_triplets, split_triplets

    tr = slice_["variant"]["training"]
    train, _ = split_triplets(read_triplets(triplets), tr["eval_fraction"], tr["train_fraction"], slice_["seed"])
    model = SentenceTransformer(model_dir, device="cpu")
    model.max_seq_length = tr["max_seq_length"]
    if needs_unnormalised(loss_name):
        drop_normalize(model)
    model.eval()
    loss = build_loss(model, loss_name, tr)
    feats = [model.preprocess(train[c].tolist()) for c in ("query", "positive", "negative")]
    with torch.no_grad():
        return float(loss(feats, None))


_BASE_LOSS: dict[str, float] = {}


# ---- losses x methods -------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["full", "lora"])
@pytest.mark.parametrize("loss", LOSSES)  # every registered loss
def test_few_steps_lower_the_loss(tmp_path, base_dir, method, loss):
    from ftstudy.training import train_variant

    trip = _triplets(tmp_path, n_queries=10)
    lr = 1e-3 if method == "lora" else 1e-4
    # No checkpoint in these runs (checkpoint_every > steps): the kill test covers checkpoints.
    sl, kn = _job(method, loss, epochs=2, training={"lr": lr, "eval_fraction": 0.2, "checkpoint_every": 100})
    out = tmp_path / "out"
    summary = train_variant(sl, trip, base_dir, out, tmp_path / "partial", "v", device="cpu", knobs=kn)
    if loss not in _BASE_LOSS:  # the base model's loss on the same set does not depend on the method
        _BASE_LOSS[loss] = _loss_on(base_dir, trip, loss, sl)
    before = _BASE_LOSS[loss]
    after = _loss_on(str(out / "model"), trip, loss, sl)
    assert after < before, f"{method}/{loss}: loss {before:.4f} -> {after:.4f}"
    assert SUMMARY_FIELDS <= set(summary)
    assert json.loads((out / "train_summary.json").read_text())["final_train_loss"] == summary["final_train_loss"]
    assert summary["n_train"] == 8 and summary["n_eval"] == 2 and summary["dtype"] == "fp32"
    assert (out / "adapter").exists() == (method == "lora")
    log = pd.read_csv(out / "train_log.csv")
    assert list(log.columns) == ["step", "epoch", "loss", "learning_rate", "grad_norm", "task_loss", "l2sp_penalty"]
    assert (log["l2sp_penalty"] == 0).all() and np.allclose(log["task_loss"], log["loss"], rtol=1e-6)  # l2sp off
    assert log["step"].tolist() == [1, 2] and log["epoch"].iloc[-1] == pytest.approx(2.0)
    assert not (tmp_path / "partial" / "v").exists() or not any((tmp_path / "partial" / "v").iterdir())
    # The saved model keeps the base's module layout (Normalize included, also for triplet_euclidean).
    mods = json.loads((out / "model" / "modules.json").read_text())
    assert [m["type"].rsplit(".", 1)[-1] for m in mods] == ["Transformer", "Pooling", "Normalize"]
    if loss == "triplet_cosine":
        assert 0.0 <= summary["final_train_loss"] <= 2.2  # max(0, cos_n - cos_p + 0.2) lies in [0, 2.2]
    assert sha256_file(Path(base_dir) / "model.safetensors") == BASE_MODEL_SHA256  # base folder untouched


# ---- LoRA -------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def lora_run(tmp_path_factory, base_dir):
    from ftstudy.training import train_variant

    tmp = tmp_path_factory.mktemp("lora")
    trip = _triplets(tmp, n_queries=10)
    sl, kn = _job(
        "lora", "triplet_cosine", epochs=2, training={"lr": 1e-3, "eval_fraction": 0.2, "checkpoint_every": 100}
    )
    summary = train_variant(sl, trip, base_dir, tmp / "out", tmp / "partial", "v", device="cpu", knobs=kn)
    return tmp / "out", summary


def test_lora_merge_is_base_plus_scaled_BA_and_base_untouched(lora_run, base_dir):
    from safetensors.torch import load_file

    out, _ = lora_run
    base = load_file(str(Path(base_dir) / "model.safetensors"))
    merged = load_file(str(out / "model" / "model.safetensors"))
    adapter = load_file(str(out / "adapter" / "adapter_model.safetensors"))
    cfg = json.loads((out / "adapter" / "adapter_config.json").read_text())
    scale = cfg["lora_alpha"] / cfg["r"]

    assert set(merged) <= set(base)
    lora_a = {
        k.removeprefix("base_model.model.").replace(".lora_A.weight", ".weight"): k for k in adapter if ".lora_A." in k
    }
    changed = 0
    for k, m in merged.items():
        w = base[k]
        if k in lora_a:
            a = adapter[lora_a[k]]
            b = adapter[lora_a[k].replace("lora_A", "lora_B")]
            assert torch.allclose(m, w + scale * (b @ a), atol=1e-6), k
            assert not torch.equal(m, w), f"{k}: LoRA did not train"
            changed += 1
        else:
            assert torch.equal(m, w), f"{k}: a non-LoRA weight changed"
    assert changed == 2 * 6  # query and value weights in each of the 6 layers


def test_lora_merged_equals_unmerged_embeddings(lora_run, base_dir):
    from peft import PeftModel
    from sentence_transformers import SentenceTransformer

    from ftstudy.lora import transformer_of

    out, _ = lora_run
    texts = ["what is the capital of france", "Paris is the capital and largest city of France.", "a b c"]
    merged = SentenceTransformer(str(out / "model"), device="cpu").encode(texts, convert_to_numpy=True)
    unmerged_model = SentenceTransformer(base_dir, device="cpu")
    unmerged_model[0].model = PeftModel.from_pretrained(transformer_of(unmerged_model), str(out / "adapter"))
    unmerged_model.eval()
    unmerged = unmerged_model.encode(texts, convert_to_numpy=True)
    base = SentenceTransformer(base_dir, device="cpu").encode(texts, convert_to_numpy=True)
    np.testing.assert_allclose(merged, unmerged, atol=2e-5)
    assert np.abs(merged - base).max() > 1e-4  # the adapter does something


def test_trainable_fraction_matches_independent_count(lora_run, base_dir):
    from sentence_transformers import SentenceTransformer

    _, summary = lora_run
    base = SentenceTransformer(base_dir, device="cpu")
    n_base = sum(p.numel() for p in base.parameters())
    cfg = base[0].model.config
    r = 16
    lora_params = cfg.num_hidden_layers * 2 * r * (cfg.hidden_size + cfg.hidden_size)  # query, value: A and B
    assert summary["trainable_params"] == lora_params == 147456
    assert summary["trainable_fraction"] == pytest.approx(lora_params / (n_base + lora_params), rel=1e-9)
    assert 0.006 < summary["trainable_fraction"] < 0.007  # ~0.65%, not the paper's 3.9%


# ---- config -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "variant, key",
    [
        ({"method": "full", "negatives": "random", "loss": "cosent"}, "variants.bad.loss"),
        ({"method": "full", "negatives": "random", "training": {"learning_rate": 1e-4}}, "variants.bad.training"),
        ({"method": "lora", "negatives": "hard", "lora": {"rank": 8}}, "variants.bad.lora"),
        ({"method": "full", "negatives": "hard", "lora": {"r": 8}}, "variants.bad.lora"),
        # a well-formed name that is neither random, hard nor a mining.filtered_sets entry (issue 14)
        ({"method": "full", "negatives": "bm25_top5"}, "variants.bad.negatives"),
    ],
)
def test_check_config_rejects_bad_variant_naming_the_key(variant, key):
    # A valid, fully defaulted config (as Snakemake resolves it), then the bad variant: check_config must catch it
    # by itself, whatever the schema said first.
    cfg = ftconfig.load_config()
    cfg["variants"]["bad"] = variant
    with pytest.raises(ftconfig.ConfigError, match=key.replace(".", r"\.")):
        ftconfig.check_config(cfg)


@pytest.mark.parametrize(
    "variant, what",
    [
        ({"bad": {"method": "prefix", "negatives": "random"}}, "method"),
        ({"bad": {"method": "full", "negatives": "BM25-top5"}}, "negatives"),  # not a set name at all
        ({"bm25": {"method": "full", "negatives": "random"}}, "bm25"),
        ({"Bad-Name": {"method": "full", "negatives": "random"}}, "Bad-Name"),
    ],
)
def test_schema_rejects_what_check_config_does_not_recheck(variant, what):
    """Unknown methods, malformed negative source names and bad or reserved variant names are the schema's job
    alone (a well-formed but unknown source name is check_config's: it depends on mining.filtered_sets)."""
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    with pytest.raises(WorkflowError, match=what):
        validate({"dataset_dir": "x", "variants": variant}, schema=str(ftconfig.SCHEMA_PATH))


def test_as_coded_config_restates_the_original_settings():
    cfg = ftconfig.load_config(ROOT / "config/msmarco.yaml", ROOT / "config/as-coded.yaml")
    assert set(cfg["variants"]) == {"full_random", "full_hard", "lora_random", "lora_hard"}
    for name in cfg["variants"]:
        v = ftconfig.resolve_variant(cfg, name)
        tr = v["training"]
        assert v["loss"] == "triplet_euclidean" and tr["save"] == "best"
        assert tr["warmup_ratio"] == 0.1 and tr["train_fraction"] == 0.8
        assert (tr["batch_size"], tr["max_seq_length"]) == ((512, 512) if v["method"] == "lora" else (1024, 256))


# ---- tokenise once ----------------------------------------------------------------------------------------
def test_token_collator_matches_library_tokenisation(tmp_path, base_dir, capsys):
    from sentence_transformers import SentenceTransformer

    from ftstudy.training_data import TokenCollator, index_texts, read_triplets, tokenize_once

    df = read_triplets(_triplets(tmp_path, n_queries=6, per_query=2))
    model = SentenceTransformer(base_dir, device="cpu")
    model.max_seq_length = 24
    texts, rows = index_texts(df)
    assert len(texts) < 3 * len(df)  # repeated queries/passages are tokenised once
    collator = TokenCollator(table=tokenize_once(model, texts, chunk=5), rows=rows)
    # the tokenisation shows its progress (at full size: ~2.5M texts, minutes on a CPU)
    assert "tokenising training texts: 100%" in capsys.readouterr().err.replace("\r", "\n")
    picked = [3, 0, 7, 5]
    batch = collator([{"row": i} for i in picked])
    for col in ("query", "positive", "negative"):
        ref = model.preprocess(df[col].iloc[picked].tolist())
        for key, value in ref.items():
            got = batch[f"{col}_{key}"]
            assert torch.equal(got, value) if isinstance(value, torch.Tensor) else got == value, (col, key)


def test_epoch_batches_reshuffle_and_cover_everything():
    from ftstudy.training_data import epoch_batches

    b = epoch_batches(10, 4, 3, seed=7)
    assert [len(x) for x in b] == [4, 4, 2] * 3
    epochs = [np.concatenate(b[i * 3 : i * 3 + 3]) for i in range(3)]
    assert all(sorted(e) == list(range(10)) for e in epochs)
    assert not np.array_equal(epochs[0], epochs[1])
    assert all(np.array_equal(x, y) for x, y in zip(b, epoch_batches(10, 4, 3, seed=7), strict=True))


# ---- interruption -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "loss, per_query, epochs, remedies",
    [
        ("triplet_cosine", 1, 2, {}),  # the paper's setting: 9 train triplets, 3 steps/epoch
        # Issue 14's remedies together: 3 triplets per query (the same query and positive three times), MNRL on
        # no-duplicate batches, L2-SP. The sampler's order and the penalty's anchor must survive the kill too.
        # Seed 2: its one epoch defers 5 triplets (seed 42's first epoch happens to need no deferral).
        ("mnrl", 3, 1, {"batch_sampler": "no_duplicates", "l2sp": 5.0, "seeds": [2]}),
    ],
    ids=["paper", "no_duplicates_l2sp"],
)
def test_killed_training_resumes_to_the_same_model(tmp_path, base_dir, loss, per_query, epochs, remedies):
    """SIGKILL a real training process after its first checkpoint; the rerun resumes and matches a clean run."""
    from safetensors.torch import load_file

    from ftstudy.training import partial_dir_for, train_variant

    trip = _triplets(tmp_path, n_queries=10, per_query=per_query)  # 9 queries train, 1 held out
    sl, kn = _job(
        "full",
        loss,
        epochs=epochs,
        training={"batch_size": 4, "checkpoint_every": 2, "eval_fraction": 0.1, "warmup_steps": 2, **remedies},
    )
    (tmp_path / "slice.json").write_text(json.dumps(sl))
    (tmp_path / "knobs.json").write_text(json.dumps(kn))
    clean = train_variant(
        sl, trip, base_dir, tmp_path / "clean", tmp_path / "partial_clean", "v", device="cpu", knobs=kn
    )
    n_steps = clean["steps"]
    if not remedies:
        assert n_steps == 6
    else:  # 27 rows of 9 queries: a batch of 4 holds no query twice, and some clashes are deferred
        assert n_steps == sum(clean["batches_per_epoch"]) >= 7 and clean["sampler"]["deferred_triplets"] > 0

    out, partial_root = tmp_path / "killed", tmp_path / "partial"
    cmd = [
        sys.executable,
        "-m",
        "ftstudy.training",
        "--slice",
        str(tmp_path / "slice.json"),
        "--knobs",
        str(tmp_path / "knobs.json"),
        "--triplets",
        str(trip),
        "--base",
        base_dir,
        "--out",
        str(out),
        "--partial",
        str(partial_root),
        "--model-id",
        "v",
        "--device",
        "cpu",
        "--threads",
        "1",
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    partial = partial_dir_for(partial_root, "v", sl)
    from ftstudy.trainer_adapter import checkpoint_complete

    deadline = time.time() + 120
    try:
        while time.time() < deadline and proc.poll() is None:
            if any(checkpoint_complete(p) for p in partial.glob("checkpoint-*")):
                break
            time.sleep(0.02)
        assert proc.poll() is None, "training finished (or failed) before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not (out / "train_summary.json").exists() and not (out / "model").exists()

    resumed = train_variant(sl, trip, base_dir, out, partial_root, "v", device="cpu", knobs=kn)
    assert resumed["resumed_from_step"] >= 2
    assert not partial.exists()  # partial state deleted on success
    a = load_file(str(tmp_path / "clean" / "model" / "model.safetensors"))
    b = load_file(str(out / "model" / "model.safetensors"))
    assert a.keys() == b.keys()
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-5
    assert any(not torch.equal(a[k], load_file(str(Path(base_dir) / "model.safetensors")).get(k, a[k])) for k in a)
    la, lb = pd.read_csv(tmp_path / "clean" / "train_log.csv"), pd.read_csv(out / "train_log.csv")
    assert la["step"].tolist() == lb["step"].tolist() == list(range(1, n_steps + 1))
    for col in ("loss", "task_loss", "l2sp_penalty"):
        np.testing.assert_allclose(la[col], lb[col], rtol=1e-4, atol=1e-6, err_msg=col)
    assert (la["l2sp_penalty"].iloc[2:] > 0).all() == bool(remedies)  # step 1 trains at lr 0 (2 warmup steps)
    np.testing.assert_allclose(la["learning_rate"], lb["learning_rate"], rtol=1e-9)
    assert resumed["eval_cosine_accuracy"] == pytest.approx(clean["eval_cosine_accuracy"])


def _probe_layer(model) -> torch.nn.Module:
    """The first encoder layer's feed-forward Linear (``intermediate.dense``; not a LoRA target) of a
    SentenceTransformer, found by name so that it works with and without the peft wrapper."""
    return next(m for n, m in model.named_modules() if n.endswith("layer.0.intermediate.dense"))


def test_bf16_training_step_computes_in_bf16_on_cpu(tmp_path, base_dir):
    """training.dtype: bf16 runs the trainer's own autocast path: inside every training forward the transformer's
    activations are bfloat16, while the weights (and so a plain forward outside the trainer) stay float32."""
    from safetensors.torch import load_file
    from sentence_transformers import SentenceTransformer
    from transformers import TrainerCallback

    from ftstudy.training import train_variant

    class DtypeProbe(TrainerCallback):
        """Records the output dtype of one transformer Linear in every training-mode forward."""

        def __init__(self):
            self.seen = []

        def on_train_begin(self, args, state, control, model=None, **kw):
            layer = _probe_layer(model)
            layer.register_forward_hook(lambda m, i, o: self.seen.append(o.dtype) if m.training else None)

    probe = DtypeProbe()
    trip = _triplets(tmp_path, n_queries=6)
    sl, kn = _job("lora", "triplet_cosine", epochs=1, training={"dtype": "bf16", "eval_fraction": 0.2, "lr": 1e-3})
    summary = train_variant(
        sl, trip, base_dir, tmp_path / "out", tmp_path / "partial", "v", device="cpu", knobs=kn, callbacks=[probe]
    )
    assert summary["dtype"] == "bf16" and summary["steps"] == 1
    # Every training forward of the one step (the loss embeds the three columns) computed in bf16.
    assert len(probe.seen) >= 1 and set(probe.seen) == {torch.bfloat16}, probe.seen
    assert np.isfinite(summary["final_train_loss"]) and summary["final_train_loss"] >= 0
    weights = load_file(str(tmp_path / "out" / "model" / "model.safetensors"))
    assert all(w.dtype == torch.float32 for w in weights.values())  # fp32 master weights, merged adapter
    # The same probe outside the trainer's autocast sees float32: the bf16 above came from the trainer.
    model = SentenceTransformer(str(tmp_path / "out" / "model"), device="cpu")
    plain: list = []
    _probe_layer(model).register_forward_hook(lambda m, i, o: plain.append(o.dtype))
    model.encode(["what is the capital of france"])
    assert plain == [torch.float32]


def test_save_best_keeps_the_checkpoint_the_metric_picked(tmp_path, base_dir):
    """save: best through the trainer's load_best_model_at_end and our checkpoint format (LoRA: the case the
    library's own checkpoint format cannot reload): the metric is forced to peak at step 2 of 4, and the saved
    adapter must equal the LoRA weights of checkpoint-2, not those of the last step."""
    from safetensors.torch import load_file
    from transformers import TrainerCallback

    from ftstudy.training import EVAL_NAME, train_variant

    class ForceBestAndSnapshot(TrainerCallback):
        """Makes step 2's held-out accuracy the best; keeps the LoRA weights of every checkpoint."""

        def __init__(self):
            self.snapshots = {}

        def on_evaluate(self, args, state, control, metrics=None, **kw):
            metrics[f"eval_{EVAL_NAME}_cosine_accuracy"] = 1.0 if state.global_step == 2 else 0.0

        def on_save(self, args, state, control, model=None, **kw):
            lora = {k: v.detach().clone() for k, v in model.state_dict().items() if ".lora_" in k}
            self.snapshots[state.global_step] = lora

    cb = ForceBestAndSnapshot()
    trip = _triplets(tmp_path, n_queries=10)  # 8 train, 2 held out: 2 steps/epoch, 4 in all
    sl, kn = _job("lora", epochs=2, training={"lr": 1e-3, "batch_size": 4, "eval_fraction": 0.2, "save": "best"})
    summary = train_variant(
        sl, trip, base_dir, tmp_path / "out", tmp_path / "partial", "v", device="cpu", knobs=kn, callbacks=[cb]
    )
    assert summary["steps"] == 4 and sorted(cb.snapshots) == [2, 4]
    assert summary["saved_checkpoint"] == "best" and summary["best_checkpoint"].endswith("checkpoint-2")
    saved = load_file(str(tmp_path / "out" / "adapter" / "adapter_model.safetensors"))
    # model state key "0.model.base_model.model.<module>.lora_A.default.weight" -> adapter "base_model.model.<...>"
    best = {k.removeprefix("0.model.").replace(".default.weight", ".weight"): v for k, v in cb.snapshots[2].items()}
    last = {k.removeprefix("0.model.").replace(".default.weight", ".weight"): v for k, v in cb.snapshots[4].items()}
    assert saved.keys() == best.keys() and len(saved) == 2 * 2 * 6  # A and B, query and value, 6 layers
    assert all(torch.equal(saved[k], best[k]) for k in saved)
    assert not all(torch.equal(saved[k], last[k]) for k in saved)


def test_execution_knobs_change_no_weight_and_no_slice(tmp_path, base_dir):
    """checkpoint_every (save: last) and dataloader_workers stay out of the slice (so out of params, so they
    rerun nothing), and indeed change no trained weight: two runs that differ in both (checkpoints at every step
    and a worker process in one, none in the other) give the same model to 1e-6 and the same log."""
    from safetensors.torch import load_file

    from ftstudy.training import train_variant

    trip = _triplets(tmp_path, n_queries=10)  # 9 train, 1 held out: 3 steps
    runs = {}
    for name, knobs in {
        "a": {"checkpoint_every": 100, "dataloader_workers": 0},
        "b": {"checkpoint_every": 1, "dataloader_workers": 1},
    }.items():
        sl, kn = _job(epochs=1, training={"batch_size": 4, "eval_fraction": 0.1, "lr": 1e-4, **knobs})
        assert kn == knobs
        runs[name] = (sl, train_variant(sl, trip, base_dir, tmp_path / name, tmp_path / "p", name, "cpu", knobs=kn))
    assert runs["a"][0] == runs["b"][0]  # the same slice: the same params, the same partial key
    a, b = (load_file(str(tmp_path / n / "model" / "model.safetensors")) for n in ("a", "b"))
    base = load_file(str(Path(base_dir) / "model.safetensors"))
    assert max(float((a[k] - b[k]).abs().max()) for k in a) <= 1e-6
    assert any(not torch.equal(a[k], base[k]) for k in a)  # it trained
    steps = {n: pd.read_csv(tmp_path / n / "train_log.csv")["step"].tolist() for n in ("a", "b")}
    assert steps == {"a": [1, 2, 3], "b": [1, 2, 3]}


def test_training_slice_leaves_out_knobs_and_seed_list_but_keeps_what_changes_the_model():
    base = ftconfig.load_config()
    sl = ftconfig.training_slice(base, "full_random")
    for overrides in (
        {"training": {"checkpoint_every": 3, "dataloader_workers": 2}},
        {"training": {"seeds": [42, 43]}},  # adds full_random_seed43; full_random itself is unchanged
        {"variants": {"full_random": {"training": {"dataloader_workers": 3}}}},
    ):
        assert ftconfig.training_slice(ftconfig.load_config(overrides=overrides), "full_random") == sl, overrides
    cfg = ftconfig.load_config(overrides={"variants": {"full_random": {"training": {"dataloader_workers": 3}}}})
    assert ftconfig.training_knobs(cfg, "full_random")["dataloader_workers"] == 3  # the variant's override
    # log_every sets train_log.csv's rows and final_train_loss (outputs): it reruns, like lr, dtype and save
    for overrides in (
        {"training": {"lr": 1e-4}},
        {"training": {"dtype": "bf16"}},
        {"training": {"save": "best"}},
        {"training": {"log_every": 7}},
    ):
        assert ftconfig.training_slice(ftconfig.load_config(overrides=overrides), "full_random") != sl, overrides
    # With save: best, checkpoint_every sets the evaluation steps and so picks the saved model: it reruns.
    best = {"save": "best"}
    a = ftconfig.load_config(overrides={"training": {**best, "checkpoint_every": 3}})
    b = ftconfig.load_config(overrides={"training": {**best, "checkpoint_every": 4}})
    assert ftconfig.training_slice(a, "full_random") != ftconfig.training_slice(b, "full_random")


# ---- one home per concept ---------------------------------------------------------------------------------
def test_config_import_is_cheap_and_takes_loss_names_from_the_registry():
    """ftstudy.config (imported while Snakemake builds the DAG) loads neither torch nor sentence-transformers,
    and its loss check uses ftstudy.losses.LOSSES, the schema naming none."""
    code = (
        "import sys, ftstudy.config as c, ftstudy.losses as l; "
        "print(sorted({'torch', 'sentence_transformers', 'transformers'} & set(sys.modules))); "
        "print(c.TRAINING_LOSSES is l.LOSSES)"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["[]", "True"]
    schema_loss = ftconfig.load_schema()["properties"]["variants"]["additionalProperties"]["properties"]["loss"]
    assert "enum" not in schema_loss


def test_unknown_loss_error_names_the_key_and_lists_the_registry():
    cfg = ftconfig.load_config()
    cfg["variants"]["mine"] = {"method": "full", "negatives": "random", "loss": "cosent"}
    with pytest.raises(ftconfig.ConfigError) as err:
        ftconfig.check_config(cfg)
    msg = str(err.value)
    assert "variants.mine.loss" in msg and "'cosent'" in msg
    assert all(f"'{name}'" in msg for name in ("triplet_cosine", "triplet_euclidean", "mnrl"))


def test_trainer_adapter_matches_the_installed_libraries():
    """The adapter overrides private methods: fail loudly when transformers / sentence-transformers rename them,
    change their parameters, or stop calling them where the adapter relies on it."""
    import importlib
    import inspect

    from sentence_transformers import SentenceTransformerTrainer

    from ftstudy.trainer_adapter import CALL_SITES, OVERRIDDEN, make_trainer_class

    assert set(OVERRIDDEN) == {"_save", "_load_from_checkpoint"}
    for name, params in OVERRIDDEN.items():
        method = getattr(SentenceTransformerTrainer, name, None)
        assert method is not None, f"SentenceTransformerTrainer.{name} no longer exists"
        assert tuple(inspect.signature(method).parameters) == params, (name, inspect.signature(method))
    for module, qualname, call in CALL_SITES:
        obj = importlib.import_module(module)
        for part in qualname.split("."):
            obj = getattr(obj, part)
        assert call in inspect.getsource(obj), f"{module}.{qualname} no longer calls {call}"
    study = make_trainer_class()
    overridden = {n for n in vars(study) if n.startswith("_") and not n.startswith("__") and callable(vars(study)[n])}
    assert overridden == set(OVERRIDDEN)  # no other private method is overridden


# ---- max_steps and L2-SP (issues 13 and 14) --------------------------------------------------------------
def _snapshots(steps: set[int]):
    """A TrainerCallback whose ``at[step]`` holds a copy of the model's state dict at the start (step 0) and after
    each of ``steps``."""
    from transformers import TrainerCallback

    def copy_of(model) -> dict:
        return {k: v.detach().clone() for k, v in model.state_dict().items()}

    class Snapshots(TrainerCallback):
        def __init__(self):
            self.at = {}

        def on_train_begin(self, args, state, control, model=None, **kw):
            self.at.setdefault(0, copy_of(model))

        def on_step_end(self, args, state, control, model=None, **kw):
            if state.global_step in steps:
                self.at[state.global_step] = copy_of(model)

    return Snapshots()


def test_max_steps_run_is_a_prefix_of_the_uncapped_run(tmp_path, base_dir, capsys):
    """training.max_steps: 3 of a 6-step schedule trains the uncapped run's first 3 steps: the same batches and
    learning rates (warmup and decay over all 6 steps), so the same log rows and the same weights; the progress
    bar counts to the step where training stops, not to the schedule's end."""
    from ftstudy.training import train_variant

    trip = _triplets(tmp_path, n_queries=10)  # 9 train, 1 held out: 3 steps/epoch, 6 in all
    common = {"batch_size": 4, "eval_fraction": 0.1, "warmup_steps": 2, "lr": 1e-4, "checkpoint_every": 100}
    runs, bars = {}, {}
    for name, cap in {"full": None, "capped": 3}.items():
        sl, kn = _job(epochs=2, training={**common, "max_steps": cap})
        snap = _snapshots({3})
        summary = train_variant(
            sl, trip, base_dir, tmp_path / name, tmp_path / "p", name, "cpu", knobs=kn, callbacks=[snap]
        )
        runs[name] = (summary, pd.read_csv(tmp_path / name / "train_log.csv"), snap.at[3])
        bars[name] = capsys.readouterr().err
    (full, full_log, full_w), (capped, capped_log, capped_w) = runs["full"], runs["capped"]
    assert (full["steps"], full["max_steps"], full["schedule_steps"]) == (6, None, 6)
    assert (capped["steps"], capped["max_steps"], capped["schedule_steps"]) == (3, 3, 6)
    assert capped["warmup_steps"] == full["warmup_steps"] == 2
    assert capped_log["step"].tolist() == [1, 2, 3]
    for col in ("loss", "learning_rate", "grad_norm", "epoch"):
        np.testing.assert_allclose(capped_log[col], full_log[col].iloc[:3], rtol=0, atol=1e-6, err_msg=col)
    # A 3-step schedule would already be at lr 0 by step 3: the capped run decays over the uncapped 6 steps.
    assert capped_log["learning_rate"].iloc[-1] > 0
    assert capped_w.keys() == full_w.keys()
    assert max(float((capped_w[k] - full_w[k]).abs().max()) for k in capped_w) <= 1e-6
    assert capped["triplets_per_s"] is not None and capped["n_train"] == 9
    assert " 6/6 [" in bars["full"]
    assert " 3/3 [" in bars["capped"] and "/6 [" not in bars["capped"]


@pytest.mark.parametrize("method", ["full", "lora"])
def test_l2sp_run_ends_nearer_the_base_and_logs_its_parts(tmp_path, base_dir, method):
    """The same run with training.l2sp > 0 ends nearer (in L2) the base weights than with 0 (LoRA: the merged
    weights); train_log.csv: loss = task_loss + l2sp_penalty, and the penalty at step 2 is lambda times the
    squared distance after step 1, computed here from snapshots of the weights (full)."""
    from safetensors.torch import load_file

    from ftstudy.training import train_variant

    trip = _triplets(tmp_path, n_queries=10)
    base = load_file(str(Path(base_dir) / "model.safetensors"))
    lam, dist, logs = 100.0, {}, {}
    for strength in (0.0, lam):
        name = f"l2sp{strength:g}"
        lr = 1e-3 if method == "lora" else 1e-4
        training = {"batch_size": 4, "eval_fraction": 0.1, "lr": lr, "checkpoint_every": 100, "l2sp": strength}
        sl, kn = _job(method, "mnrl", epochs=1, training=training)  # MNRL: a task loss that stays > 0
        snap = _snapshots({1})
        summary = train_variant(
            sl, trip, base_dir, tmp_path / name, tmp_path / "p", name, "cpu", knobs=kn, callbacks=[snap]
        )
        w = load_file(str(tmp_path / name / "model" / "model.safetensors"))
        dist[strength] = sum(float(((w[k].double() - base[k].double()) ** 2).sum()) for k in w)
        log = logs[strength] = pd.read_csv(tmp_path / name / "train_log.csv")
        np.testing.assert_allclose(log["task_loss"] + log["l2sp_penalty"], log["loss"], rtol=1e-6, atol=1e-7)
        assert summary["l2sp"] == strength and summary["final_l2sp_penalty"] == log["l2sp_penalty"].iloc[-1]
        assert summary["final_task_loss"] == log["task_loss"].iloc[-1]
        assert log["l2sp_penalty"].iloc[0] == 0.0  # step 1 starts at the base
        if strength and method == "full":
            s0, s1 = snap.at[0], snap.at[1]
            moved = sum(float(((s1[k].double() - s0[k].double()) ** 2).sum()) for k in s0)
            assert log["l2sp_penalty"].iloc[1] == pytest.approx(lam * moved, rel=1e-4)
    assert (logs[0.0]["l2sp_penalty"] == 0).all() and (logs[lam]["l2sp_penalty"].iloc[1:] > 0).all()
    assert 0 < dist[lam] < dist[0.0], dist
