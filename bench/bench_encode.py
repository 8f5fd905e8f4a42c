"""Benchmark: corpus encoding (ftstudy.encode) vs plain SentenceTransformer.encode, same model, texts, process.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/bench_encode.py --n 2000 --repeats 3            # CPU, real passages
    HF_HUB_OFFLINE=1 .venv/bin/python bench/bench_encode.py --n 200000 --batch-size 512 --dtype bf16  # GPU

Texts: the first --n passages of --collection (default: the shared mini MS MARCO slice, real passages).
Baseline: ``model.encode(texts, batch_size, normalize_embeddings=True)`` in fp32 (the library's default
precision). Two contenders, interleaved with it in the same process: ``ftstudy.encode.encode_texts_dtype`` with
the sorted path (token-length-sorted fixed-size batches, inference_mode, autocast at --dtype) and
``ftstudy.fast_encode.PipelinedEncoder`` (background tokenisation, token-budget batches). Prints medians, the ratio
baseline / each (> 1: faster than the library) and the largest cosine gap to the library's output.
ftstudy.encode.PIPELINED_BY_DEVICE records which path the workflow takes per device, from this benchmark.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from ftstudy.encode import encode_texts_dtype  # noqa: E402
from ftstudy.fast_encode import PipelinedEncoder  # noqa: E402
from ftstudy.models import load_model, resolve_model  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--collection", default=str(ROOT.parent / "shared/data/mini-msmarco/collection.tsv"))
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--dtype", default="auto", choices=["auto", "fp32", "bf16", "fp16"])
    ap.add_argument("--device", default=None)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--max-tokens", type=int, default=65536, help="PipelinedEncoder's padded tokens per batch")
    args = ap.parse_args()

    import pandas as pd
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    texts = pd.read_csv(args.collection, sep="\t", header=None, names=["pid", "text"], nrows=args.n, quoting=3)[
        "text"
    ].tolist()
    model = load_model(resolve_model("sentence-transformers/all-MiniLM-L6-v2"), device=args.device)
    print(
        f"{len(texts)} passages, batch {args.batch_size}, device {model.device}, dtype {args.dtype}, "
        f"torch threads {torch.get_num_threads()}"
    )
    dtype = "fp32" if args.dtype == "auto" and model.device.type == "cpu" else args.dtype
    dtype = "bf16" if dtype == "auto" else dtype
    pipe = PipelinedEncoder(load_model(resolve_model("sentence-transformers/all-MiniLM-L6-v2"), device=args.device),
                            dtype=dtype, max_tokens=args.max_tokens, max_batch=args.batch_size)  # fmt: skip
    sync = torch.cuda.synchronize if model.device.type == "cuda" else (lambda: None)
    runs = {
        "library": lambda: model.encode(texts, batch_size=args.batch_size, normalize_embeddings=True),
        "sorted": lambda: encode_texts_dtype(
            model, texts, batch_size=args.batch_size, dtype=args.dtype, pipelined=False
        ),  # fmt: skip
        "pipelined": lambda: pipe.encode(texts),
    }
    for fn in runs.values():  # warm-up
        fn()
    times, out = {k: [] for k in runs}, {}
    for _ in range(args.repeats):  # interleaved, so all see the same machine load
        for name, fn in runs.items():
            sync()
            t0 = time.perf_counter()
            out[name] = np.asarray(fn(), dtype=np.float32)
            sync()
            times[name].append(time.perf_counter() - t0)
    base = statistics.median(times["library"])
    for name in runs:
        t = statistics.median(times[name])
        cos = (out["library"] * out[name]).sum(1).min()
        print(f"{name:10s} median {t:8.3f} s ({len(texts) / t:8.1f} passages/s)  ratio {base / t:5.3f}x  "
              f"min cosine vs library {cos:.6f}  runs {[round(x, 3) for x in times[name]]}")  # fmt: skip


if __name__ == "__main__":
    main()
