"""Benchmark: the stand-in encoder (ftstudy.standin_encoder) vs the real all-MiniLM-L6-v2, passages per second.

    HF_HUB_OFFLINE=1 nice -n 19 .venv/bin/python bench/bench_standin.py --n 4000 --repeats 3
    HF_HUB_OFFLINE=1 .venv/bin/python bench/bench_standin.py --hidden 32 --intermediate 64 --batch-size 512

Texts: the first --n passages of a generated full-size-shaped collection (ftstudy.scale_dataset, --seed, made in
memory at 1/1000 size: the same text model as the full-size files). Both models run
``SentenceTransformer.encode(texts, batch_size)`` in fp32 on the CPU, in the same process, interleaved, after one
warm-up call each. Also times the tokenizer alone (the floor of any encoder's cost). Prints the medians and the
ratio stand-in / real. On a busy machine every figure is a lower bound.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from ftstudy.models import load_model, resolve_model  # noqa: E402
from ftstudy.scale_dataset import ScaleCorpus, ScaleSizes, collection_blocks  # noqa: E402
from ftstudy.standin_encoder import StandinConfig, build_standin  # noqa: E402


def generated_passages(n: int, seed: int) -> list[str]:
    """The first ``n`` passages of a generated collection (at least 1/1000 of full size)."""
    sizes = ScaleSizes().scaled(max(0.001, n / ScaleSizes().n_passages), n_triples=1)
    corpus = ScaleCorpus(sizes, seed)
    texts: list[str] = []
    for block in collection_blocks(corpus, 10_000, progress=False):
        texts += [line.split("\t", 1)[1] for line in block.decode().splitlines()]
        if len(texts) >= n:
            break
    return texts[:n]


def rate(fn, n: int) -> float:
    t0 = time.perf_counter()
    fn()
    return n / (time.perf_counter() - t0)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=4000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--real-batch-size", type=int, default=64)
    ap.add_argument("--hidden", type=int, default=StandinConfig.hidden_size)
    ap.add_argument("--heads", type=int, default=StandinConfig.num_attention_heads)
    ap.add_argument("--intermediate", type=int, default=StandinConfig.intermediate_size)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skip-real", action="store_true", help="time the stand-in and the tokenizer only")
    args = ap.parse_args()

    import torch

    texts = generated_passages(args.n, args.seed)
    base = resolve_model("sentence-transformers/all-MiniLM-L6-v2")
    config = StandinConfig(hidden_size=args.hidden, num_attention_heads=args.heads, intermediate_size=args.intermediate)
    standin = build_standin(base, seed=0, config=config)
    real = None if args.skip_real else load_model(base, device="cpu")
    tok = standin.tokenizer
    max_len = standin.max_seq_length
    n_tokens = sum(len(ids) for ids in tok(texts, truncation=True, max_length=max_len)["input_ids"])
    runs = {"tokenizer": [], "standin": [], "real": []}
    calls = {
        "tokenizer": lambda: [
            tok(texts[i : i + args.batch_size], padding=True, truncation=True, max_length=max_len, return_tensors="pt")
            for i in range(0, len(texts), args.batch_size)
        ],  # fmt: skip
        "standin": lambda: standin.encode(texts, batch_size=args.batch_size),
        "real": (lambda: real.encode(texts[: max(1, len(texts) // 8)], batch_size=args.real_batch_size)),
    }
    sizes = {"tokenizer": len(texts), "standin": len(texts), "real": max(1, len(texts) // 8)}
    names = [k for k in runs if not (k == "real" and real is None)]
    with torch.inference_mode():
        for name in names:  # warm-up
            sizes_small = min(200, sizes[name])
            (standin if name != "real" else real).encode(texts[:sizes_small], batch_size=64)
        for _ in range(args.repeats):
            for name in names:
                runs[name].append(rate(calls[name], sizes[name]))
    med = {k: statistics.median(v) for k, v in runs.items() if v}
    report = {
        "n_passages": len(texts),
        "mean_tokens": round(n_tokens / len(texts), 1),
        "torch_threads": torch.get_num_threads(),
        "standin_config": config.__dict__,
        "batch_size": args.batch_size,
        "real_batch_size": args.real_batch_size,
        "passages_per_s": {k: round(v, 1) for k, v in med.items()},
        "runs": {k: [round(x, 1) for x in v] for k, v in runs.items() if v},
        "load_average_1min": round(os.getloadavg()[0], 2),
    }
    if "real" in med:
        report["ratio_standin_over_real"] = round(med["standin"] / med["real"], 1)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
