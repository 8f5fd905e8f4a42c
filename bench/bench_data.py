"""Benchmark: the data stage's streaming readers -- rows/s and peak RSS -- at two input sizes.

    .venv/bin/python bench/bench_data.py                                  # 1M/2M lines and 4x (4M/8M)
    .venv/bin/python bench/bench_data.py --collection 250000 --triples 500000 --scale 4 --repeats 1

Generates a collection (``pid<TAB>passage``, ~300 bytes a line, like MS MARCO's) and a triples file
(``query<TAB>positive<TAB>negative``) in a temporary folder, then runs each job in a fresh subprocess (so the
peak RSS, ``resource.getrusage(RUSAGE_SELF).ru_maxrss``, is that job's alone):

- ``prepare_collection``: collection.tsv -> parquet in row groups (ftstudy.prepare);
- ``sample_triplets``: a seeded reservoir sample of a fixed ``--sample`` lines (ftstudy.triplets);
- baseline, the plain library call: ``pyarrow.csv.read_csv`` of the whole file (quoting off) then
  ``pyarrow.parquet.write_table`` (and for triples, a random ``take`` of ``--sample`` rows).

Prints medians over ``--repeats`` and the ratio ours/baseline. Peak RSS of ours should stay flat from 1x to
``--scale``x (it grows with the sample size, not the input); the baseline's grows with the input.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

WORDS = (
    "the of and to in is for that on with as by was are from it at an be this which or has have its not "
    "passage query retrieval ranking model dense vector cosine neural bm25 marco train dev small judged "
    "donâ€™t café naïve – “quoted” 'single' \"double\" 1,024 3.14 42 2019 2020"
).split()


def _texts(rng: random.Random, n: int, words: int) -> list[str]:
    return [" ".join(rng.choices(WORDS, k=words)) for _ in range(n)]


def generate(folder: Path, n_collection: int, n_triples: int, seed: int = 0) -> tuple[Path, Path]:
    """Write collection.tsv and triples.train.small.tsv (a pool of varied texts, cycled)."""
    rng = random.Random(seed)
    passages = _texts(rng, 4096, 50)  # ~300 bytes
    queries = _texts(rng, 4096, 6)
    coll = folder / f"collection.{n_collection}.tsv"
    with open(coll, "w", encoding="utf-8") as fh:
        for start in range(0, n_collection, 100_000):
            fh.write(
                "".join(
                    f"{i}\t{passages[(i * 7919) % 4096]}\n" for i in range(start, min(n_collection, start + 100_000))
                )
            )
    trip = folder / f"triples.{n_triples}.tsv"
    with open(trip, "w", encoding="utf-8") as fh:
        for start in range(0, n_triples, 100_000):
            fh.write(
                "".join(
                    f"{queries[i % 4096]}\t{passages[(i * 31) % 4096]}\t{passages[(i * 131 + 7) % 4096]}\n"
                    for i in range(start, min(n_triples, start + 100_000))
                )
            )
    return coll, trip


CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, {src!r})
job, inp, out, sample = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
import numpy as np
import pyarrow.csv as pc, pyarrow.parquet as pq
from ftstudy.prepare import prepare_collection
from ftstudy.triplets import sample_triplets
t0 = time.perf_counter()  # imports above are outside the timed region (and in both jobs' RSS)
if job == "ours_collection":
    rows = prepare_collection(inp, out, progress=False)["n_passages"]
elif job == "ours_triples":
    rows = sample_triplets(inp, out, n=sample, seed=42, progress=False)["n_lines"]
else:
    names = ["pid", "text"] if job == "baseline_collection" else ["query", "positive", "negative"]
    table = pc.read_csv(inp, read_options=pc.ReadOptions(column_names=names),
                        parse_options=pc.ParseOptions(delimiter="\t", quote_char=False))
    rows = table.num_rows
    if job == "baseline_triples":
        table = table.take(np.sort(np.random.default_rng(42).choice(rows, size=min(sample, rows), replace=False)))
    pq.write_table(table, out)
secs = time.perf_counter() - t0
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({{"rows": rows, "seconds": secs, "peak_rss_mb": rss}}))
"""


def run_child(job: str, inp: Path, out: Path, sample: int) -> dict:
    code = CHILD.format(src=str(SRC))
    proc = subprocess.run(
        [sys.executable, "-c", code, job, str(inp), str(out), str(sample)], capture_output=True, text=True, check=True
    )
    out.unlink(missing_ok=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--collection", type=int, default=1_000_000, help="collection lines at 1x")
    ap.add_argument("--triples", type=int, default=2_000_000, help="triples lines at 1x")
    ap.add_argument("--scale", type=int, default=4, help="the larger size is this multiple of the first")
    ap.add_argument("--sample", type=int, default=100_000, help="triplets sampled (fixed across sizes)")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--no-baseline", action="store_true")
    ap.add_argument(
        "--baseline-max-mb",
        type=int,
        default=2000,
        help="skip the baseline on files larger than this (it holds the whole file: ~2.3x its size in RAM)",
    )
    ap.add_argument("--tmp", default=None, help="folder for the generated files (default: a temporary one)")
    args = ap.parse_args()

    jobs = ["ours"] + ([] if args.no_baseline else ["baseline"])
    results = []
    with tempfile.TemporaryDirectory(dir=args.tmp, prefix="bench_data.") as tmp:
        folder = Path(tmp)
        for mult in (1, args.scale):
            n_coll, n_trip = args.collection * mult, args.triples * mult
            t0 = time.perf_counter()
            coll, trip = generate(folder, n_coll, n_trip)
            sizes = {"collection": coll.stat().st_size, "triples": trip.stat().st_size}
            print(
                f"# generated {n_coll:,} + {n_trip:,} lines ({sizes['collection'] / 1e6:.0f} + "
                f"{sizes['triples'] / 1e6:.0f} MB) in {time.perf_counter() - t0:.0f} s",
                file=sys.stderr,
            )
            for kind, path in (("collection", coll), ("triples", trip)):
                for job in jobs:
                    if job == "baseline" and sizes[kind] / 1e6 > args.baseline_max_mb:
                        print(
                            f"# baseline skipped on {kind} ({sizes[kind] / 1e6:.0f} MB > --baseline-max-mb)",
                            file=sys.stderr,
                        )
                        continue
                    runs = [
                        run_child(f"{job}_{kind}", path, folder / "out.parquet", args.sample)
                        for _ in range(args.repeats)
                    ]
                    secs = statistics.median(r["seconds"] for r in runs)
                    rss = statistics.median(r["peak_rss_mb"] for r in runs)
                    row = {
                        "file": kind,
                        "lines": runs[0]["rows"],
                        "MB": round(sizes[kind] / 1e6),
                        "job": job,
                        "seconds": round(secs, 2),
                        "rows_per_s": round(runs[0]["rows"] / secs),
                        "peak_rss_mb": round(rss),
                    }
                    results.append(row)
                    print(json.dumps(row), file=sys.stderr)
            coll.unlink()
            trip.unlink()

    print("\n| file | lines | MB | job | median s | rows/s | peak RSS MB | rows/s ours / baseline |")
    print("|---|---:|---:|---|---:|---:|---:|---:|")
    for r in results:
        base = next(
            (b for b in results if b["job"] == "baseline" and b["file"] == r["file"] and b["lines"] == r["lines"]), None
        )
        ratio = f"{r['rows_per_s'] / base['rows_per_s']:.2f}" if base and r["job"] == "ours" else ""
        print(
            f"| {r['file']} | {r['lines']:,} | {r['MB']:,} | {r['job']} | {r['seconds']} | {r['rows_per_s']:,} | "
            f"{r['peak_rss_mb']:,} | {ratio} |"
        )
    for kind in ("collection", "triples"):
        ours = [r for r in results if r["job"] == "ours" and r["file"] == kind]
        if len(ours) == 2:
            print(
                f"\n{kind}: peak RSS at {args.scale}x input / at 1x = "
                f"{ours[1]['peak_rss_mb'] / ours[0]['peak_rss_mb']:.2f}"
                f" (ours)",
                end="",
            )
            base = [r for r in results if r["job"] == "baseline" and r["file"] == kind]
            if len(base) == 2:
                print(f", {base[1]['peak_rss_mb'] / base[0]['peak_rss_mb']:.2f} (baseline)", end="")
    print()


if __name__ == "__main__":
    main()
