"""Training throughput: ftstudy.training.train_variant vs a plain SentenceTransformerTrainer, same settings.

Both train all-MiniLM-L6-v2 with TripletLoss (cosine, margin 0.2), AdamW, linear warmup, the same batch size,
max_seq_length, epochs and seed on the same triplets, in this process and on this machine. Reported: triplets/s of
``trainer.train()`` (model loading, tokenisation of the whole set for ours, saving and evaluation excluded), the
median over ``--repeats`` runs, and the ratio ours / plain.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/bench_training.py --method full --n 128 --batch 32 --seq 64 --repeats 3
    HF_HUB_OFFLINE=1 .venv/bin/python bench/bench_training.py --method lora ...
    # on a GPU: --device cuda --dtype bf16 --batch 128 --seq 256 --n 20000
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import pandas as pd  # noqa: E402
import torch  # noqa: E402

from ftstudy import config as ftconfig  # noqa: E402
from ftstudy.models import BASE_MODEL_ID, resolve_model  # noqa: E402

MINI = Path(__file__).resolve().parents[2] / "shared" / "data" / "mini-msmarco" / "triples.train.small.tsv"


def load_triplets(n: int) -> pd.DataFrame:
    if MINI.exists():
        df = pd.read_csv(MINI, sep="\t", header=None, names=["query", "positive", "negative"], quoting=3)
    else:  # any machine: a synthetic stand-in with MS MARCO-like lengths
        words = [f"w{i}" for i in range(5000)]
        g = torch.Generator().manual_seed(0)
        pick = lambda k: " ".join(words[int(i)] for i in torch.randint(0, 5000, (k,), generator=g))  # noqa: E731
        df = pd.DataFrame(
            {
                "query": [pick(6) for _ in range(n)],
                "positive": [pick(60) for _ in range(n)],
                "negative": [pick(60) for _ in range(n)],
            }
        )
    return df.sample(n=min(n, len(df)), random_state=0).reset_index(drop=True)


def plain_run(base: str, df: pd.DataFrame, a, out: str) -> float:
    """The library's own path: text dataset, default collator (tokenises every batch), default sampler."""
    from datasets import Dataset
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.sentence_transformer.losses import TripletDistanceMetric, TripletLoss

    from ftstudy.lora import apply_lora

    model = SentenceTransformer(base, device=a.device)
    model.max_seq_length = a.seq
    if a.method == "lora":
        apply_lora(model, {"r": 16, "alpha": 32, "dropout": 0.05, "target_modules": ["query", "value"]}, 42)
    loss = TripletLoss(model, distance_metric=TripletDistanceMetric.COSINE, triplet_margin=0.2)
    args = SentenceTransformerTrainingArguments(
        output_dir=out,
        num_train_epochs=a.epochs,
        per_device_train_batch_size=a.batch,
        learning_rate=2e-5,
        warmup_steps=2,
        weight_decay=0.01,
        max_grad_norm=1.0,
        lr_scheduler_type="linear",
        save_strategy="no",
        logging_steps=10**9,
        seed=42,
        report_to="none",
        bf16=a.dtype == "bf16",
        use_cpu=a.device == "cpu",
        disable_tqdm=True,
    )
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=Dataset.from_pandas(df), loss=loss)
    t = time.perf_counter()
    trainer.train()
    if a.device.startswith("cuda"):
        torch.cuda.synchronize()
    return len(df) * a.epochs / (time.perf_counter() - t)


def ours_run(base: str, df: pd.DataFrame, a, tmp: Path) -> float:
    from ftstudy.training import train_variant

    cfg = {
        "dataset_dir": "unused",
        "training": {
            "batch_size": a.batch,
            "max_seq_length": a.seq,
            "warmup_steps": 2,
            "checkpoint_every": 10**6,
            "log_every": 10**6,
            "eval_fraction": 0.01,
            "train_fraction": 1.0,
            "dtype": a.dtype,
        },
        "variants": {"v": {"method": a.method, "negatives": "random", "epochs": a.epochs}},
    }
    from snakemake.utils import validate

    validate(cfg, schema=str(ftconfig.SCHEMA_PATH))
    path = tmp / "triplets.parquet"
    df.to_parquet(path)
    sl, knobs = ftconfig.training_slice(cfg, "v"), ftconfig.training_knobs(cfg, "v")  # no checkpoint, no log row
    s = train_variant(sl, path, base, tmp / "out", tmp / "partial", "v", a.device, knobs=knobs)
    return s["triplets_per_s"]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--method", choices=["full", "lora"], default="full")
    p.add_argument("--n", type=int, default=128)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--seq", type=int, default=64)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"])
    p.add_argument("--threads", type=int, default=None)
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    base = resolve_model(BASE_MODEL_ID)
    df = load_triplets(a.n)
    ours, plain = [], []
    for r in range(a.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            plain.append(plain_run(base, df, a, str(Path(tmp) / "plain")))
            ours.append(ours_run(base, df, a, Path(tmp)))
        print(f"repeat {r}: plain {plain[-1]:.1f} triplets/s, ours {ours[-1]:.1f} triplets/s", flush=True)
    mo, mp = statistics.median(ours), statistics.median(plain)
    dev = torch.cuda.get_device_name(0) if a.device.startswith("cuda") else f"cpu x{torch.get_num_threads()} threads"
    print(
        f"{a.method} n={len(df)} batch={a.batch} seq={a.seq} epochs={a.epochs} {a.dtype} on {dev}: "
        f"median ours {mo:.1f} triplets/s, plain SentenceTransformerTrainer {mp:.1f} triplets/s, "
        f"ratio {mo / mp:.2f}x"
    )


if __name__ == "__main__":
    main()
