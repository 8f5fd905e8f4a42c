"""Benchmark: corpus encoding (ftstudy.encode) vs plain SentenceTransformer.encode, same model, texts, process.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/bench_encode.py --n 2000 --repeats 3            # CPU, real passages
    HF_HUB_OFFLINE=1 .venv/bin/python bench/bench_encode.py --n 200000 --batch-size 512 --dtype bf16  # GPU

Texts: the first --n passages of --collection (default: the shared mini MS MARCO slice, real passages).
Baseline: ``model.encode(texts, batch_size, normalize_embeddings=True)`` in fp32 (the library's default
precision). Ours: ``ftstudy.encode.encode_texts_dtype`` (what encode_corpus runs per chunk): token-length-sorted
batches, inference_mode, autocast at --dtype. Prints medians and the ratio baseline / ours (> 1: ours faster),
and the largest cosine gap between the two outputs.
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
    encode_texts_dtype(model, texts[:64], batch_size=args.batch_size, dtype=args.dtype)  # warm-up
    model.encode(texts[:64], batch_size=args.batch_size)
    base_t, ours_t = [], []
    for _ in range(args.repeats):  # interleaved, so both see the same machine load
        t0 = time.perf_counter()
        ref = model.encode(texts, batch_size=args.batch_size, normalize_embeddings=True, convert_to_numpy=True)
        if model.device.type == "cuda":
            torch.cuda.synchronize()
        t1 = time.perf_counter()
        got = encode_texts_dtype(model, texts, batch_size=args.batch_size, dtype=args.dtype)
        t2 = time.perf_counter()
        base_t.append(t1 - t0)
        ours_t.append(t2 - t1)
    b, o = statistics.median(base_t), statistics.median(ours_t)
    cos = (np.asarray(ref, np.float32) * got).sum(1)
    print(f"SentenceTransformer.encode median {b:8.3f} s  ({len(texts) / b:8.1f} passages/s)  runs {base_t}")
    print(f"ftstudy encode             median {o:8.3f} s  ({len(texts) / o:8.1f} passages/s)  runs {ours_t}")
    print(f"ratio {b / o:.3f}x   min cosine(ours, library) {cos.min():.6f}")


if __name__ == "__main__":
    main()
