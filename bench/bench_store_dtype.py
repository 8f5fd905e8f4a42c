"""What storing vectors as float16 (encoding.store_dtype) costs against float32, on real MS MARCO text.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/bench_store_dtype.py            # the shared slice beside the repository

Encodes the slice's collection once in fp32 with the base model (ftstudy.encode.encode_corpus, float32 store),
rounds the stored vectors to float16 exactly as ``store_dtype: float16`` does (tests/test_encode.py proves the
two agree bit for bit), retrieves the dev queries over both with the workflow's exact search, and scores both with
the workflow's metrics. Prints MRR@10 / nDCG@10 of each, their difference, how many queries' top-10 order
changes, the largest per-query RR@10 change, and the bytes of each vectors.npy.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
MINI = ROOT.parent / "shared" / "data" / "mini-msmarco"


def _tsv(path: Path, names: list[str]):
    import pandas as pd

    return pd.read_csv(path, sep="\t", header=None, names=names, quoting=3, keep_default_na=False)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(MINI))
    ap.add_argument("--k", type=int, default=100)
    args = ap.parse_args()

    import pandas as pd

    from ftstudy.encode import encode_corpus, encode_texts, load_embeddings
    from ftstudy.metrics import evaluate_run
    from ftstudy.models import load_model, resolve_model
    from ftstudy.search import search

    data = Path(args.data)
    coll = _tsv(data / "collection.tsv", ["pid", "text"])
    queries = _tsv(data / "queries.dev.small.tsv", ["qid", "text"])
    qrels = _tsv(data / "qrels.dev.small.tsv", ["qid", "it", "pid", "relevance"])[["qid", "pid", "relevance"]]
    model = load_model(resolve_model("sentence-transformers/all-MiniLM-L6-v2"), device="cpu")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "emb"
        encode_corpus(model, coll.text.tolist(), coll.pid.to_numpy(), out, Path(tmp) / "p" / "k", dtype="fp32",
                      batch_size=64, chunk_size=4000)  # fmt: skip
        v32, ids, _ = load_embeddings(out, mmap=False)
        v16 = v32.astype(np.float16)
        disk32, disk16 = (out / "vectors.npy").stat().st_size, v16.nbytes + 128
    qv = encode_texts(model, queries.text.tolist(), batch_size=64)
    res = {}
    for name, vec in (("float32", v32), ("float16", v16)):
        scores, rows = search(qv, vec, args.k, backend="torch", device="cpu", ids=ids)
        n, k = rows.shape
        run = pd.DataFrame({"qid": np.repeat(queries.qid.to_numpy(), k), "pid": ids[rows].ravel(),
                            "rank": np.tile(np.arange(1, k + 1), n), "score": scores.ravel()})  # fmt: skip
        means, per_query = evaluate_run(run, qrels)
        res[name] = (means, per_query.set_index(["measure", "qid"])["value"], ids[rows][:, :10])
    rr = res["float16"][1]["MRR@10"] - res["float32"][1]["MRR@10"]
    changed = int((res["float16"][2] != res["float32"][2]).any(axis=1).sum())
    print(f"{len(coll)} passages, {len(queries)} dev queries (judged: {res['float32'][1]['MRR@10'].size})")
    for name in res:
        m = res[name][0]
        print(f"{name}: MRR@10 {m['MRR@10']:.4f}  nDCG@10 {m['nDCG@10']:.4f}  R@100 {m['R@100']:.4f}")
    print(f"MRR@10 float16 - float32: {res['float16'][0]['MRR@10'] - res['float32'][0]['MRR@10']:+.5f}; "
          f"queries whose top-10 order changed: {changed}; largest |RR@10 change| {np.abs(rr).max():.4f}")  # fmt: skip
    full = 8_841_823 * 384
    print(f"vectors.npy: float32 {disk32 / 1e6:.2f} MB, float16 {disk16 / 1e6:.2f} MB "
          f"(full scale, 8,841,823 x 384: {full * 4 / 1e9:.1f} GB vs {full * 2 / 1e9:.1f} GB)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
