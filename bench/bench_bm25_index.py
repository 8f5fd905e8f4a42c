"""Memory, time and disk of the BM25 index (rule bm25_index) against the plain bm25s in-memory call, and of the
search over the memory-mapped index (bm25_retrieve, time_inference_bm25), on generated text.

Usage (the numbers in docs/timing.md came from this, under ``nice -n 19`` on a busy 2-core machine):

    nice -n 19 .venv/bin/python bench/bench_bm25_index.py --sizes 100000 400000 --repeats 3

Each measurement runs in a fresh Python process (peak RSS = ``VmHWM`` of ``/proc/self/status``, the high-water
mark of that process's own memory: ``getrusage``'s ``ru_maxrss`` would carry the parent's size across fork + exec;
the collection is generated in a worker too): ``stream`` = :func:`ftstudy.bm25.index_collection` (pyarrow
batches -> numpy postings -> bm25s' ``BM25.save``); ``plain`` = the old rule's path, the collection read into a
Python list and :func:`ftstudy.bm25.build_bm25` (``bm25s.tokenize`` + ``BM25.index``) on it; ``search`` = load
the saved index memory-mapped and search ``q`` queries (top 1000), for two query counts (memory must not grow
with them).
Medians over ``--repeats``. Prints the factors per MB of collection parquet that the rules' resources use
(``ftstudy.bm25.INDEX_*_PER_MB``, ``SEARCH_S_PER_QUERY_PER_MPASSAGE``) and a linear projection to the full
collection (8,841,823 passages).

Generated text: passage lengths ~ 56 words (the mean of the real MS MARCO slice), words drawn from a Zipf law
(exponent ``--zipf``) over a table of random lowercase pseudo-words whose most frequent 20 are English stop words,
tuned so that postings per passage and parquet bytes per passage are near the real slice's (27.6 and 200).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

FULL_PASSAGES = 8_841_823
SETTINGS = {"k1": 0.9, "b": 0.4, "stemmer": "porter", "stopwords": "en"}
STOP = "the of and to a in is for that on are as with by it be or an from at".split()


def vocabulary(n: int, seed: int) -> np.ndarray:
    """``n`` pseudo-words (object array): 20 stop words, then random lowercase strings of 2-10 letters."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(2, 11, size=n)
    letters = rng.integers(97, 123, size=int(lengths.sum()), dtype=np.uint8).tobytes().decode("ascii")
    ends = np.cumsum(lengths)
    words = [letters[e - n_ : e] for e, n_ in zip(ends.tolist(), lengths.tolist(), strict=True)]
    words[: len(STOP)] = STOP
    return np.array(words, dtype=object)


def passages(n: int, seed: int, zipf: float, vocab_size: int = 2_000_000) -> list[str]:
    """``n`` generated passages (seeded): word counts ~ Poisson(56) clipped to [5, 200], Zipf word ranks."""
    rng = np.random.default_rng(seed)
    words = vocabulary(vocab_size, seed + 1)
    lengths = np.clip(rng.poisson(56, size=n), 5, 200)
    ranks = rng.zipf(zipf, size=int(lengths.sum()))
    ranks = np.where(ranks > vocab_size, rng.integers(1, vocab_size + 1, size=ranks.size), ranks) - 1
    ends = np.cumsum(lengths)
    flat = words[ranks]
    return [" ".join(flat[e - k : e]) for e, k in zip(ends.tolist(), lengths.tolist(), strict=True)]


def write_collection(path: Path, n: int, seed: int, zipf: float) -> None:
    import pandas as pd

    texts = passages(n, seed, zipf)
    pd.DataFrame({"pid": np.arange(n, dtype=np.int64), "text": texts}).to_parquet(path, index=False)


# ---- the measurements, each in its own process ----------------------------------------------------------------
def peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM; ru_maxrss where /proc is absent), MB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker(mode: str, parquet: str, out: str, n_queries: int) -> dict:
    t0 = time.perf_counter()
    rec: dict = {"mode": mode}
    if mode == "generate":  # out: "n,zipf"
        n, zipf = out.split(",")
        write_collection(Path(parquet), int(n), seed=int(n), zipf=float(zipf))
    elif mode == "stream":
        from ftstudy.bm25 import index_collection, index_size_mb

        index = index_collection(parquet, out, SETTINGS)
        rec |= {"disk_mb": index_size_mb(out), "postings": len(index.retriever.scores["data"])}
    elif mode == "plain":
        import pandas as pd

        from ftstudy.bm25 import build_bm25

        texts = pd.read_parquet(parquet, columns=["text"])["text"].tolist()
        build_bm25(texts, SETTINGS["k1"], SETTINGS["b"], SETTINGS["stemmer"], SETTINGS["stopwords"])
    elif mode == "search":
        from ftstudy.bm25 import bm25_search, load_bm25_index

        index = load_bm25_index(out)
        rng = np.random.default_rng(7)
        qs = passages(n_queries, 99, 1.25, vocab_size=50_000)
        queries = [" ".join(q.split()[: int(k)]) for q, k in zip(qs, rng.integers(2, 7, size=n_queries), strict=True)]
        t0 = time.perf_counter()  # loading excluded, as in the timing rule
        bm25_search(index, queries, 1000, n_threads=1)
        rec |= {"n_queries": n_queries}
    rec |= {
        "seconds": time.perf_counter() - t0,
        "peak_rss_mb": peak_rss_mb(),
    }
    return rec


def run_worker(mode: str, parquet: Path, out: Path, n_queries: int = 0) -> dict:
    cmd = [sys.executable, __file__, "--worker", mode, "--parquet", str(parquet), "--out", str(out)]
    proc = subprocess.run([*cmd, "--n-queries", str(n_queries)], capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def median(recs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in recs)


def bench_size(n: int, repeats: int, zipf: float, tmp: Path, query_counts: tuple[int, int]) -> dict:
    parquet = tmp / f"collection_{n}.parquet"
    run_worker("generate", parquet, f"{n},{zipf}")
    mb = parquet.stat().st_size / 1e6
    stream = [run_worker("stream", parquet, tmp / f"idx_{n}_{r}") for r in range(repeats)]
    plain = [run_worker("plain", parquet, tmp / "unused") for _ in range(repeats)]
    search = {q: [run_worker("search", parquet, tmp / f"idx_{n}_0", q) for _ in range(repeats)] for q in query_counts}
    row = {
        "passages": n,
        "parquet_mb": mb,
        "postings_per_passage": stream[0]["postings"] / n,
        "stream_rss_mb": median(stream, "peak_rss_mb"),
        "plain_rss_mb": median(plain, "peak_rss_mb"),
        "stream_s": median(stream, "seconds"),
        "plain_s": median(plain, "seconds"),
        "disk_mb": stream[0]["disk_mb"],
    }
    for q, recs in search.items():
        row[f"search_{q}_rss_mb"] = median(recs, "peak_rss_mb")
        row[f"search_{q}_s_per_query"] = median(recs, "seconds") / q
    return row


def report(rows: list[dict], query_counts: tuple[int, int]) -> None:
    q_lo, q_hi = query_counts
    print("| passages | parquet MB | postings/passage | stream peak RSS MB | plain bm25s peak RSS MB | RSS ratio |"
          " stream s | plain s | time ratio | index MB | search RSS MB "
          f"({q_lo} / {q_hi} queries) | search s/query |")  # fmt: skip
    print("|" + "---|" * 12)
    for r in rows:
        print(f"| {r['passages']:,} | {r['parquet_mb']:.1f} | {r['postings_per_passage']:.1f} | "
              f"{r['stream_rss_mb']:.0f} | {r['plain_rss_mb']:.0f} | {r['stream_rss_mb'] / r['plain_rss_mb']:.2f} | "
              f"{r['stream_s']:.1f} | {r['plain_s']:.1f} | {r['stream_s'] / r['plain_s']:.2f} | {r['disk_mb']:.0f} | "
              f"{r[f'search_{q_lo}_rss_mb']:.0f} / {r[f'search_{q_hi}_rss_mb']:.0f} | "
              f"{r[f'search_{q_hi}_s_per_query']:.4f} |")  # fmt: skip
    big = rows[-1]
    mb, per_mb = big["parquet_mb"], lambda key: big[key] / big["parquet_mb"]
    s_q_mp = big[f"search_{q_hi}_s_per_query"] / (big["passages"] / 1e6)
    print(f"\nfactors at {big['passages']:,} passages, per MB of parquet: stream RSS {per_mb('stream_rss_mb'):.2f}, "
          f"plain RSS {per_mb('plain_rss_mb'):.2f}, stream minutes {big['stream_s'] / 60 / mb:.4f}, "
          f"disk {per_mb('disk_mb'):.2f}; search {s_q_mp:.4f} s per query per million passages")  # fmt: skip
    scale = FULL_PASSAGES / big["passages"]
    print(f"linear projection to {FULL_PASSAGES:,} passages (x{scale:.1f}): parquet {mb * scale / 1e3:.2f} GB, "
          f"stream peak RSS {big['stream_rss_mb'] * scale / 1e3:.1f} GB, "
          f"plain bm25s {big['plain_rss_mb'] * scale / 1e3:.1f} GB, stream {big['stream_s'] * scale / 60:.0f} min, "
          f"index {big['disk_mb'] * scale / 1e3:.2f} GB, "
          f"search {s_q_mp * FULL_PASSAGES / 1e6:.3f} s per query")  # fmt: skip
    if len(rows) > 1:  # by the slope between the two largest sizes (the fixed start-up cost left out of the factor)
        lo = rows[-2]
        for key in ("stream_rss_mb", "plain_rss_mb", f"search_{q_hi}_rss_mb"):
            slope = (big[key] - lo[key]) / (big["passages"] - lo["passages"])
            print(f"  {key} by slope: {slope * 1e6:.0f} MB per million passages -> "
                  f"{(big[key] + slope * (FULL_PASSAGES - big['passages'])) / 1e3:.1f} GB at full size")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 400_000])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--zipf", type=float, default=1.2)
    ap.add_argument("--queries", type=int, nargs=2, default=[100, 1000], help="two query counts for the search")
    ap.add_argument("--worker", choices=["generate", "stream", "plain", "search"], help=argparse.SUPPRESS)
    ap.add_argument("--parquet", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--n-queries", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.parquet, args.out, args.n_queries)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        rows = []
        for n in args.sizes:
            rows.append(bench_size(n, args.repeats, args.zipf, Path(tmp), tuple(args.queries)))
            print(json.dumps(rows[-1]), flush=True)
        report(rows, tuple(args.queries))


if __name__ == "__main__":
    main()
