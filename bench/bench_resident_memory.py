"""Benchmark: memory of ResidentSearch over a memory-mapped corpus, in place (ours) against a copy in RAM (the
previous version, ``np.array`` of the map, as ``ResidentSearch(np.array(mapped))`` still does).

    .venv/bin/python bench/bench_resident_memory.py --n 2000000 --repeats 3

Writes an (n, 384) float32 ``vectors.npy`` once, then, in a fresh process per run (A, B, A, B ...), memory-maps it,
builds ResidentSearch on the CPU and searches 256 queries, top-200. Each process reports its peak RSS (the kernel's
``VmHWM``) and its anonymous and file-backed resident memory after the search (``RssAnon``, ``RssFile``: mapped
pages are page cache, which the kernel can drop; anonymous memory it cannot). Prints medians and the ratio
copy / ours, and checks that both return the same rows.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

WORKER = """
import json, sys
sys.path.insert(0, {src!r})
import numpy as np
from ftstudy.search import ResidentSearch
mapped = np.load({path!r}, mmap_mode="r")
corpus = np.array(mapped) if {copy!r} else mapped
q = np.asarray(mapped[:256], dtype=np.float32)
rows = ResidentSearch(corpus, 200, "cpu", 256, 250_000)(q)[1]
status = dict(line.split(":", 1) for line in open("/proc/self/status") if ":" in line)
kb = lambda key: int(status[key].split()[0])
print(json.dumps({{"hwm_mb": kb("VmHWM") / 1024, "anon_mb": kb("RssAnon") / 1024, "file_mb": kb("RssFile") / 1024,
                  "rows_sha": __import__("hashlib").sha256(rows.tobytes()).hexdigest()}}))
"""


def run(path: Path, copy: bool) -> dict:
    code = WORKER.format(src=str(ROOT / "src"), path=str(path), copy=copy)
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=2_000_000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "vectors.npy"
        vec = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(args.n, args.dim))
        rng = np.random.default_rng(0)
        for s in range(0, args.n, 100_000):
            block = rng.standard_normal((min(100_000, args.n - s), args.dim), dtype=np.float32)
            vec[s : s + len(block)] = block / np.linalg.norm(block, axis=1, keepdims=True)
        vec.flush()
        del vec
        print(f"{args.n} x {args.dim} float32: {path.stat().st_size / 2**20:.0f} MB on disk")
        results = {"in place (ours)": [], "copy (previous)": []}
        for _ in range(args.repeats):
            results["in place (ours)"].append(run(path, copy=False))
            results["copy (previous)"].append(run(path, copy=True))
    shas = {r["rows_sha"] for rs in results.values() for r in rs}
    print(f"same rows in every run: {len(shas) == 1}")
    med = {name: {k: statistics.median(r[k] for r in rs) for k in ("hwm_mb", "anon_mb", "file_mb")}
           for name, rs in results.items()}  # fmt: skip
    print(f"{'':18s} {'peak RSS MB':>12s} {'anon MB':>10s} {'file MB':>10s}   (medians of {args.repeats})")
    for name, m in med.items():
        print(f"{name:18s} {m['hwm_mb']:12.0f} {m['anon_mb']:10.0f} {m['file_mb']:10.0f}")
    ours, prev = med["in place (ours)"], med["copy (previous)"]
    ratio_rss, ratio_anon = prev["hwm_mb"] / ours["hwm_mb"], prev["anon_mb"] / ours["anon_mb"]
    print(f"ratio copy / ours: peak RSS {ratio_rss:.2f}x, anonymous memory {ratio_anon:.2f}x")
    return 0 if len(shas) == 1 else 1


if __name__ == "__main__":
    raise SystemExit(main())
