"""Write MS MARCO-shaped files at full size (ftstudy.scale_dataset) and/or the stand-in encoder.

    nice -n 19 .venv/bin/python bench/make_scale_data.py --out data/scale --seed 0              # full size
    nice -n 19 .venv/bin/python bench/make_scale_data.py --out /tmp/s100 --scale 0.01 --bm25    # 1/100, + BM25
    HF_HUB_OFFLINE=1 .venv/bin/python bench/make_scale_data.py --standin models/standin         # stand-in only

--out DIR: the official file names (collection.tsv, queries/qrels train and dev.small, triples.train.small.tsv,
the TREC DL 2019/2020 queries and graded qrels) and scale_manifest.json (sizes, seed, sha256 of every file);
use DIR as the workflow's dataset_dir (config/msmarco.yaml's eval_sets, download: false). --scale multiplies the
collection, training, triples and dev sizes; --triples sets the triples count (default 8,000,000 x scale).
--bm25 then scores the project's BM25 (k1 0.9, b 0.4) on the dev set of the written files (small sizes only).
--standin DIR: save the stand-in SentenceTransformer there (base_model: DIR loads it); --standin-seed its seed.
Progress goes to stderr about every 10 s; the manifest (or the BM25 figures) to stdout as JSON.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from ftstudy import scale_dataset as sd  # noqa: E402


def bm25_dev(out: Path) -> dict:
    """BM25 MRR@10 / R@100 of the dev queries of the written files, read with the project's readers."""
    import pandas as pd

    from ftstudy.bm25 import ANSERINI_B, ANSERINI_K1, bm25_search, build_bm25
    from ftstudy.metrics import evaluate_run
    from ftstudy.prepare import read_qrels, read_queries
    from ftstudy.tsv import iter_id_text

    pids, texts = [], []
    for _, pid, text in iter_id_text(out / sd.COLLECTION, "pid", progress=False):
        pids.append(pid)
        texts.append(text)
    queries = read_queries(out / sd.DEV_QUERIES)
    qrels = read_qrels(out / sd.DEV_QRELS)
    t0 = time.perf_counter()
    index = build_bm25(texts, ANSERINI_K1, ANSERINI_B)
    scores, rows = bm25_search(index, queries.column("text").to_pylist(), 100, n_threads=2)
    qids = queries.column("qid").to_numpy()
    run = pd.DataFrame({"qid": qids.repeat(rows.shape[1]), "pid": [pids[i] for i in rows.ravel()],
                        "score": scores.ravel()})  # fmt: skip
    run = run[run["score"] > 0]
    means, _ = evaluate_run(run, pd.DataFrame({"qid": qrels.qid, "pid": qrels.pid, "relevance": qrels.relevance}))
    return {"n_passages": len(pids), "n_dev_queries": len(qids), "bm25_s": round(time.perf_counter() - t0, 1),
            **{k: round(v, 4) for k, v in means.items()}}  # fmt: skip


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", help="folder for the data files")
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--triples", type=int, default=None, help="triples.train.small.tsv lines")
    ap.add_argument("--block", type=int, default=50_000, help="lines per block (memory; never changes the bytes)")
    ap.add_argument("--bm25", action="store_true", help="score BM25 on the written dev set")
    ap.add_argument("--standin", help="folder to save the stand-in encoder into")
    ap.add_argument("--standin-seed", type=int, default=0)
    ap.add_argument("--base-model", default="sentence-transformers/all-MiniLM-L6-v2")
    args = ap.parse_args(argv)
    if not args.out and not args.standin:
        ap.error("give --out DIR and/or --standin DIR")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    report = {}
    if args.out:
        sizes = sd.ScaleSizes()
        if args.scale != 1.0 or args.triples is not None:
            sizes = sizes.scaled(args.scale, n_triples=args.triples)
        report["manifest"] = sd.generate(args.out, sizes, seed=args.seed, block=args.block)
        if args.bm25:
            report["bm25_dev"] = bm25_dev(Path(args.out))
    if args.standin:
        from ftstudy.models import resolve_model
        from ftstudy.standin_encoder import save_standin

        folder = save_standin(args.standin, resolve_model(args.base_model), seed=args.standin_seed)
        report["standin"] = str(folder)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
