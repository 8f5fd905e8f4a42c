"""GPU throughput: the plain library call against ours, in the same process, on the same card.

Three figures (goals from issue 4; anchors measured on an H200 with the plain calls):

1. corpus encoding of real-length passages (MS MARCO, ~80 tokens mean):
   plain ``SentenceTransformer.encode`` (bf16 weights, batch 512) vs ours
   (:class:`ftstudy.fast_encode.PipelinedEncoder`: bf16
   weights, tokenisation in a background thread with the fast tokenizer's parallel batch call, batches sorted by
   token length and sized by a token budget so little padding is computed, pinned host buffers, asynchronous copies).
   Also the workflow's current path (``ftstudy.encode.encode_texts_dtype``). Goal: >= 4x plain.
2. exact search of 10,000 queries over 8,841,823 x 384 random fp16 vectors, top-200, corpus resident on the GPU:
   plain torch chunks (query batch 4096, corpus chunk 1M, fp32 scores: :class:`ftstudy.ResidentSearch`)
   vs ours (:func:`fast_search`: all queries at once, fp16 scores and fp16 top-k per chunk, chunk sized by a
   memory budget) and faiss ``knn_gpu`` on the same torch tensors where faiss-gpu is installed. Goal: <= 1 s.
3. end to end, 10,000 queries: query encoding + search (the timing protocol, :func:`ftstudy.timing.time_queries`,
   median of repeats, synchronised). Goal: >= 5,000 QPS.

Diagnostics printed with each figure say what limits it: tokenisation alone, forward passes alone on
pre-tokenised batches, the padding each batching computes, and peak GPU memory.

    python bench/gpu_throughput.py                 # on a GPU machine: full sizes (about 3-5 minutes on an H100)
    python bench/gpu_throughput.py --cpu-smoke     # tiny sizes on the CPU: proves every code path, no figures
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import traceback
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from ftstudy import timing  # noqa: E402
from ftstudy.fast_encode import PipelinedEncoder, budget_batches, padding_overhead  # noqa: E402
from ftstudy.search import ResidentSearch, fast_search  # noqa: E402

MINI = Path(__file__).resolve().parents[2] / "shared" / "data" / "mini-msmarco"
ANCHORS = {  # H200, plain library calls (DESIGN.md)
    "encode_pps": 6190.0,
    "search_s": 0.86,
    "query_encode_s": 1.2,
}
GOALS = {"encode_ratio": 4.0, "search_s": 1.0, "e2e_qps": 5000.0}


# ---- data ------------------------------------------------------------------------------------------------------
def _read_tsv_texts(path: Path) -> list[str]:
    import pandas as pd

    df = pd.read_csv(path, sep="\t", header=None, names=["id", "text"], quoting=3, dtype={"text": str})
    return df["text"].fillna("").tolist()


def synthetic_texts(n: int, mean_words: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    vocab = [f"w{i}" for i in range(5000)] + "the of and a to in is was for on that with as by".split()
    lengths = np.clip(rng.poisson(mean_words, n), 1, None)
    return [" ".join(rng.choice(vocab, size=L)) for L in lengths]


def passages(n: int, seed: int = 0) -> tuple[list[str], str]:
    """``n`` real MS MARCO passages (the shared mini collection, cycled) or synthetic ~80-token text."""
    if (MINI / "collection.tsv").exists():
        base = _read_tsv_texts(MINI / "collection.tsv")
        return [base[i % len(base)] for i in range(n)], f"mini-msmarco collection ({len(base)} passages, cycled)"
    return synthetic_texts(n, 55, seed), "synthetic text (~55 words)"


def query_texts(n: int, seed: int = 0) -> tuple[list[str], str]:
    if (MINI / "queries.dev.small.tsv").exists():
        base = _read_tsv_texts(MINI / "queries.dev.small.tsv") + _read_tsv_texts(MINI / "queries.train.tsv")
        _, texts, _ = timing.sample_queries(list(range(len(base))), base, n, seed)
        return texts, f"mini-msmarco queries ({len(base)}, sampled with replacement)"
    return synthetic_texts(n, 6, seed), "synthetic queries (~6 words)"


# ---- helpers ---------------------------------------------------------------------------------------------------
def torch_dtype(name: str):
    import torch

    return {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[name]


def timed(fn, sync, repeats: int, warmup: int = 1, warm=None) -> tuple[float, list[float], object]:
    """Median wall time of ``fn()`` over ``repeats`` (after ``warmup`` calls of ``warm or fn``), synchronised; plus
    its last result."""
    out = None
    for _ in range(warmup):
        (warm or fn)()
    sync()
    times = []
    for _ in range(repeats):
        sync()
        t0 = time.perf_counter()
        out = fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times, out


def plain_batches(texts: list[str], batch_size: int) -> list[np.ndarray]:
    """The batching SentenceTransformer.encode uses: sorted by character length (longest first), fixed size."""
    order = np.argsort([-len(t) for t in texts], kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(texts), batch_size)]


def faiss_knn_gpu(queries, corpus, k: int):
    """faiss brute-force kNN on torch GPU tensors (fp16 corpus), or None where faiss-gpu is not installed."""
    try:
        import faiss
        import faiss.contrib.torch_utils  # noqa: F401  (lets faiss take torch tensors)
    except ImportError:
        return None
    if not hasattr(faiss, "StandardGpuResources") or faiss.get_num_gpus() == 0 or not corpus.is_cuda:
        return None
    res = faiss.StandardGpuResources()
    return lambda: faiss.knn_gpu(res, queries.to(corpus.dtype), corpus, k, metric=faiss.METRIC_INNER_PRODUCT)


def recall_vs(reference_idx: np.ndarray, idx: np.ndarray) -> float:
    """Mean |top-k ∩ reference top-k| / k: 1.0 means the same top-k (fp16 ties can swap the last few)."""
    return float(np.mean([len(set(a) & set(b)) / len(a) for a, b in zip(reference_idx, idx, strict=True)]))


# ---- the figures -----------------------------------------------------------------------------------------------
def bench_encoding(args, model_path, device, sync) -> dict:
    import torch
    from sentence_transformers import SentenceTransformer

    from ftstudy.encode import encode_texts_dtype

    texts, source = passages(args.passages)
    plain = SentenceTransformer(model_path, device=device).to(torch_dtype(args.dtype)).eval()
    tok_lengths = np.array([len(x) for x in plain.tokenizer(texts, truncation=True, max_length=plain.max_seq_length,
                                                            padding=False)["input_ids"]])  # fmt: skip

    def plain_fn(x=texts):
        return plain.encode(x, batch_size=args.plain_batch, convert_to_numpy=True, normalize_embeddings=True,
                            show_progress_bar=False)  # fmt: skip

    few = texts[: max(1, min(len(texts), 4096))]  # warm-up on a subset: kernels, allocator, tokenizer threads
    t_plain, reps_plain, e_plain = timed(plain_fn, sync, args.repeats, warm=lambda: plain_fn(few))

    ours = PipelinedEncoder(SentenceTransformer(model_path, device=device), device, args.dtype,
                            max_tokens=args.max_tokens, max_batch=args.max_batch, chunk=args.chunk)  # fmt: skip
    t_ours, reps_ours, e_ours = timed(lambda: ours.encode(texts), sync, args.repeats, warm=lambda: ours.encode(few))

    flow = SentenceTransformer(model_path, device=device).eval()
    t_flow, _, _ = timed(lambda: encode_texts_dtype(flow, texts, batch_size=256, dtype=args.dtype), sync, 1,
                         warm=lambda: encode_texts_dtype(flow, few, batch_size=256, dtype=args.dtype))  # fmt: skip

    # What limits it: tokenisation alone, and forward passes alone on pre-tokenised, token-budget batches.
    t_tok, _, _ = timed(lambda: ours.tokenize(texts), lambda: None, 1, warmup=0)
    batches = budget_batches(tok_lengths, args.max_tokens, args.max_batch)
    pre = []
    for b in batches:
        width = int(tok_lengths[b].max())
        ids = plain.tokenizer([texts[i] for i in b], truncation=True, max_length=width, padding="max_length",
                              return_tensors="pt", return_token_type_ids=False)  # fmt: skip
        pre.append((ids["input_ids"].to(device), ids["attention_mask"].to(device)))

    def forward_only():
        with torch.inference_mode():
            for ids, mask in pre:
                ours.model({"input_ids": ids, "attention_mask": mask})

    t_fwd, _, _ = timed(forward_only, sync, 1)
    cos = float(np.min(np.sum(e_plain.astype(np.float32) * e_ours.astype(np.float32), axis=1)))
    n = len(texts)
    return {
        "source": source,
        "n": n,
        "mean_tokens": float(tok_lengths.mean()),
        "plain_pps": n / t_plain,
        "ours_pps": n / t_ours,
        "workflow_pps": n / t_flow,
        "ratio": t_plain / t_ours,
        "plain_repeats_s": reps_plain,
        "ours_repeats_s": reps_ours,
        "tokenize_only_pps": n / t_tok,
        "forward_only_pps": n / t_fwd,
        "padding_overhead_plain": padding_overhead(tok_lengths, plain_batches(texts, args.plain_batch)),
        "padding_overhead_ours": ours.last_padding,
        "min_cosine_ours_vs_plain": cos,
    }


def bench_search(args, device, sync) -> dict:
    import torch

    gen = torch.Generator(device=device).manual_seed(0)
    dt = torch.float16 if device.startswith("cuda") else torch.float32
    corpus = torch.empty((args.corpus_size, args.dim), dtype=dt, device=device)
    step = 1_000_000
    for s in range(0, args.corpus_size, step):  # generate in chunks: no fp32 copy of the whole corpus
        block = torch.randn((min(step, args.corpus_size - s), args.dim), generator=gen, device=device)
        corpus[s : s + block.shape[0]] = torch.nn.functional.normalize(block, dim=1).to(dt)
    queries = torch.nn.functional.normalize(
        torch.randn((args.search_queries, args.dim), generator=gen, device=device), dim=1)  # fmt: skip
    # Plain: chunked torch search over the resident corpus (fp32 scores), as ftstudy.search.exact_search does.
    plain = ResidentSearch(corpus, args.top_k, device, 4096, 1_000_000, dtype=dt)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    t_plain, _, (_, i_plain) = timed(lambda: plain(queries), sync, args.repeats)
    budget = args.score_budget_gb << 30
    t_ours, _, (_, i_ours) = timed(lambda: fast_search(queries, corpus, args.top_k, budget), sync, args.repeats)
    out = {
        "corpus": list(corpus.shape),
        "corpus_dtype": str(dt).replace("torch.", ""),
        "n_queries": args.search_queries,
        "top_k": args.top_k,
        "plain_s": t_plain,
        "ours_s": t_ours,
        "ratio": t_plain / t_ours,
        "recall_ours_vs_plain": recall_vs(i_plain, i_ours),
        "matmul_tflop": 2 * args.search_queries * args.corpus_size * args.dim / 1e12,
    }
    knn = faiss_knn_gpu(queries, corpus, args.top_k)
    out["faiss_s"] = None
    if knn is not None:
        try:
            t_faiss, _, (_, i_faiss) = timed(knn, sync, args.repeats)
            out.update(faiss_s=t_faiss, recall_faiss_vs_plain=recall_vs(i_plain, i_faiss.cpu().numpy()))
        except Exception as exc:  # faiss-gpu builds differ; keep the other figures
            out["faiss_error"] = repr(exc)
    if device.startswith("cuda"):
        out["peak_gpu_gb"] = torch.cuda.max_memory_allocated() / 2**30
    out["_corpus"] = corpus
    return out


def bench_end_to_end(args, model_path, device, sync, corpus) -> dict:
    from sentence_transformers import SentenceTransformer

    texts, source = query_texts(args.e2e_queries)
    k = args.top_k
    plain_model = SentenceTransformer(model_path, device=device).to(torch_dtype(args.dtype)).eval()
    plain_search = ResidentSearch(corpus, k, device, 4096, 1_000_000, dtype=corpus.dtype)
    plain = timing.time_queries(
        lambda t: plain_model.encode(t, batch_size=args.plain_batch, convert_to_tensor=True,
                                     normalize_embeddings=True, show_progress_bar=False),
        plain_search, texts, repeats=args.repeats, sync=sync)  # fmt: skip
    ours_enc = PipelinedEncoder(SentenceTransformer(model_path, device=device), device, args.dtype,
                                max_tokens=args.max_tokens, max_batch=args.max_batch, chunk=args.chunk)  # fmt: skip
    budget = args.score_budget_gb << 30
    ours = timing.time_queries(
        lambda t: ours_enc.encode(t, to_numpy=False),
        lambda q: fast_search(q, corpus, k, budget),
        texts, repeats=args.repeats, sync=sync)  # fmt: skip
    return {
        "source": source,
        "n_queries": len(texts),
        "plain_qps": plain["qps"],
        "ours_qps": ours["qps"],
        "ratio": ours["qps"] / plain["qps"],
        "plain_encode_s": plain["encode_seconds"],
        "plain_search_s": plain["search_seconds"],
        "ours_encode_s": ours["encode_seconds"],
        "ours_search_s": ours["search_seconds"],
    }


def fmt(x, spec=",.0f"):
    return "n/a" if x is None else format(x, spec)


def report(res: dict, device_label: str, smoke: bool) -> str:
    e, s, q = res.get("encoding"), res.get("search"), res.get("end_to_end")
    smoke_note = "   [CPU SMOKE RUN: tiny sizes, proves code paths only; no GPU figures]" if smoke else ""
    lines = [
        f"device: {device_label}{smoke_note}",
        "",
        "| figure | plain library call | ours | ratio (ours vs plain) | goal | limited by |",
        "|---|---|---|---|---|---|",
    ]
    if e:
        lines.append(
            f"| corpus encoding, {e['n']:,} passages ({e['mean_tokens']:.0f} tokens mean) | "
            f"{fmt(e['plain_pps'])} passages/s | {fmt(e['ours_pps'])} passages/s | {e['ratio']:.2f}x | >= 4x | "
            f"tokenise-only {fmt(e['tokenize_only_pps'])}/s, forward-only {fmt(e['forward_only_pps'])}/s; padding "
            f"computed: plain +{e['padding_overhead_plain']:.0%}, ours +{e['padding_overhead_ours']:.0%} |"
        )
    else:
        lines.append("| corpus encoding | failed | failed | | >= 4x | see traceback |")
    if s:
        peak = f", peak {s['peak_gpu_gb']:.1f} GB" if "peak_gpu_gb" in s else ""
        lines.append(
            f"| search {s['n_queries']:,} q x {s['corpus'][0]:,} x {s['corpus'][1]} ({s['corpus_dtype']}), "
            f"top-{s['top_k']} | {s['plain_s']:.3f} s | {s['ours_s']:.3f} s (faiss knn_gpu: "
            f"{fmt(s['faiss_s'], '.3f')} s) | {s['ratio']:.2f}x | <= 1 s | {s['matmul_tflop']:.2f} TFLOP of matmul + "
            f"top-k over {s['n_queries'] * s['corpus'][0] / 1e9:.2f} G scores; recall@k vs plain "
            f"{s['recall_ours_vs_plain']:.4f}{peak} |"
        )
    else:
        lines.append("| search | failed | failed | | <= 1 s | see traceback |")
    if q:
        lines.append(
            f"| end to end, {q['n_queries']:,} queries (encode + search + top-k) | {fmt(q['plain_qps'])} QPS "
            f"(encode {q['plain_encode_s']:.3f} s, search {q['plain_search_s']:.3f} s) | {fmt(q['ours_qps'])} QPS "
            f"(encode {q['ours_encode_s']:.3f} s, search {q['ours_search_s']:.3f} s) | {q['ratio']:.2f}x | "
            f">= 5,000 QPS | the larger of the two stages |"
        )
    else:
        lines.append("| end to end | failed | failed | | >= 5,000 QPS | see traceback |")
    lines.append("")
    if e:
        lines.append(
            f"workflow's current encode path (ftstudy.encode.encode_texts_dtype, batch 256): "
            f"{fmt(e['workflow_pps'])} passages/s; min cosine(ours, plain) = {e['min_cosine_ours_vs_plain']:.4f}"
        )
    lines.append(
        f"H200 anchors (plain calls, DESIGN.md): encode {ANCHORS['encode_pps']:,.0f} passages/s, search "
        f"{ANCHORS['search_s']} s, query encoding {ANCHORS['query_encode_s']} s."
    )
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cpu-smoke", action="store_true", help="tiny sizes on the CPU (proves code paths)")
    ap.add_argument("--model", default="sentence-transformers/all-MiniLM-L6-v2")
    ap.add_argument("--device", default=None, help="default: cuda if visible (cpu with --cpu-smoke)")
    ap.add_argument("--dtype", default="bf16", choices=["bf16", "fp16", "fp32"])
    ap.add_argument("--passages", type=int, default=100_000)
    ap.add_argument("--corpus-size", type=int, default=8_841_823)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--search-queries", type=int, default=10_000)
    ap.add_argument("--e2e-queries", type=int, default=10_000)
    ap.add_argument("--top-k", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--plain-batch", type=int, default=512)
    ap.add_argument("--max-tokens", type=int, default=131072, help="padded tokens per batch (ours)")
    ap.add_argument("--max-batch", type=int, default=4096)
    ap.add_argument("--chunk", type=int, default=32768, help="texts tokenised per background step (ours)")
    ap.add_argument("--score-budget-gb", type=int, default=8)
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args(argv)

    import torch

    from ftstudy.models import resolve_model

    if args.cpu_smoke:
        args.device = args.device or "cpu"
        args.passages, args.corpus_size, args.search_queries, args.e2e_queries = 96, 20_000, 128, 128
        args.repeats, args.max_tokens, args.max_batch, args.chunk, args.score_budget_gb = 2, 4096, 64, 64, 1
        args.plain_batch = 64
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu" and not args.cpu_smoke:
        print("no GPU visible: use --cpu-smoke for the CPU code-path check", file=sys.stderr)
        return 2
    sync = timing.sync_fn(device)
    model_path = resolve_model(args.model)
    label = timing.device_name(device) + f", torch {torch.__version__}, threads {torch.get_num_threads()}"
    res = {"device": label, "args": vars(args)}
    t0 = time.perf_counter()
    state = {}  # the search figure's corpus, reused end to end
    for name, fn in (
        ("encoding", lambda: bench_encoding(args, model_path, device, sync)),
        ("search", lambda: bench_search(args, device, sync)),
        ("end_to_end", lambda: bench_end_to_end(args, model_path, device, sync, state["corpus"])),
    ):
        try:
            res[name] = fn()
        except Exception:  # one failing figure must not cost the others (device time is scarce)
            traceback.print_exc()
            res[name] = None
        if name == "search" and res[name] is not None:
            state["corpus"] = res[name].pop("_corpus")
        if device.startswith("cuda"):
            torch.cuda.empty_cache()
    res["wall_s"] = time.perf_counter() - t0
    print(report(res, label, args.cpu_smoke))
    if any(res[k] is None for k in ("encoding", "search", "end_to_end")):
        print("some figures failed: see the tracebacks above", file=sys.stderr)
    print(f"(bench wall time {res['wall_s']:.0f} s)")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
