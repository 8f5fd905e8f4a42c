"""The scale run: generated MS MARCO-shaped data and the stand-in encoder through the real workflow, stage by stage,
with each job's wall time, peak RSS and the disk its outputs take.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/bench_scale.py --workdir /data/scale --stage data       # full size
    HF_HUB_OFFLINE=1 .venv/bin/python bench/bench_scale.py --workdir /tmp/s --scale 0.002 --stage all  # a smoke run

``--workdir`` gets ``data/`` (``bench/make_scale_data.py``: the official file names, seeded, regenerated the same
bytes each time, so a stage group may run on another day), ``standin/`` (the seeded stand-in encoder, given to the
workflow as ``base_model``), ``scale.yaml`` (the overlay over ``config/msmarco.yaml``) and links to the workflow's
sources; results, logs and benchmarks stay in the work folder, never in the repository. The overlay runs base, one
LoRA variant (``lora_random``) and BM25, no remedies, ``mining.max_queries`` queries mined, ``training.max_steps``
steps and ``timing.n_queries`` queries timed. Stages (``--stage``, repeatable) and their targets:

- ``data``: prepare (collection, train, eval sets) and ``sample_random_triplets``;
- ``retrieval``: the base model's corpus encoding, index, retrieval of every eval set, and evaluation;
- ``bm25_index``: the persisted BM25 index of the collection alone;
- ``bm25``: the persisted BM25 index, BM25 retrieval and evaluation, BM25 timing;
- ``mining``: ``mine_hard_negatives``;
- ``training``: ``train_lora`` (lora_random) on the sampled triplets;
- ``timing``: ``time_inference`` of base;
- ``all``: the workflow's default target (tables, figures).

After the run it prints (and writes ``scale_table.csv``/``.md`` in the work folder) one row per job: rule,
wildcards, wall seconds and peak RSS (``s`` and ``max_rss`` of its ``benchmark:`` file), then the bytes each
``results/`` folder takes on disk; and, where the base model's dev run exists, the correctness checks: the
top-10 of 100 dev queries against a brute-force fp32 computation over the stored vectors, the vectors' ids
against the collection's pids, and the share of dev qrels whose passage is in the collection.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINKED = ("Snakefile", "workflow", "config", "src", "profiles", "envs")
STAGES = {
    "data": ["results/data/collection.parquet", "results/data/queries.train.parquet",
             "results/data/qrels.train.parquet", "results/triplets/random.parquet",
             "results/data/eval/{eval_set}/qrels.parquet"],
    "retrieval": ["results/metrics/base/{eval_set}.json"],
    "bm25_index": ["results/index/bm25/main"],
    "bm25": ["results/metrics/bm25/{eval_set}.json", "results/timing/bm25.json"],
    "mining": ["results/triplets/hard.parquet"],
    "training": ["results/models/lora_random/train_summary.json"],
    "timing": ["results/timing/base.json"],
    "all": [],
}  # fmt: skip
EVAL_SETS = ("dev", "dl19", "dl20")
OVERLAY = """\
# The scale run's overlay over config/msmarco.yaml (bench/bench_scale.py): generated data, the stand-in encoder.
dataset_dir: {data}
download: false
base_model: {standin}
remedies: false
variants:
  full_random: {{enabled: false}}
  full_hard: {{enabled: false}}
  lora_hard: {{enabled: false}}
mining: {{max_queries: {max_queries}}}
training: {{max_steps: {max_steps}}}
timing: {{n_queries: {timing_queries}}}
"""


def prepare_workdir(args) -> Path:
    """The work folder with links to the workflow, the generated data, the stand-in and the overlay."""
    wd = args.workdir.resolve()
    wd.mkdir(parents=True, exist_ok=True)
    for item in LINKED:
        if not (wd / item).exists():
            (wd / item).symlink_to(ROOT / item)
    py = sys.executable
    timings = {}
    if not (wd / "data" / "scale_manifest.json").is_file():
        t0 = time.perf_counter()
        cmd = [py, str(ROOT / "bench" / "make_scale_data.py"), "--out", str(wd / "data"), "--seed", str(args.seed)]
        if args.scale != 1.0:
            cmd += ["--scale", str(args.scale)]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        timings["generate_data_s"] = round(time.perf_counter() - t0, 1)
    if not (wd / "standin" / "modules.json").is_file():
        cmd = [py, str(ROOT / "bench" / "make_scale_data.py"), "--standin", str(wd / "standin")]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    (wd / "scale.yaml").write_text(
        OVERLAY.format(
            data=wd / "data",
            standin=wd / "standin",
            max_queries=args.max_queries,
            max_steps=args.max_steps,
            timing_queries=args.timing_queries,
        )  # fmt: skip
    )
    if timings:
        (wd / "generation.json").write_text(json.dumps(timings))
    return wd


def run_stage(wd: Path, stage: str, cores: str, cpu_profile: bool) -> float:
    """Run one stage's targets with snakemake in ``wd``; returns the wall seconds."""
    targets = [t.format(eval_set=e) for t in STAGES[stage] for e in (EVAL_SETS if "{eval_set}" in t else [""])]
    cmd = [str(Path(sys.executable).with_name("snakemake")), "--cores", cores, "--resources", "gpu=1",
           "--configfile", "config/msmarco.yaml", "scale.yaml"]  # fmt: skip
    if cpu_profile and not _has_gpu():
        cmd += ["--workflow-profile", "profiles/cpu"]
    cmd += ["--", *targets]  # after --: --configfile takes every word that follows it
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=wd, check=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    return time.perf_counter() - t0


def _has_gpu() -> bool:
    import shutil

    return shutil.which("nvidia-smi") is not None


def _disk_bytes(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else 0


def job_table(wd: Path):
    """One row per benchmarked job (rule, job = the benchmark file's path below the rule, wall s, peak RSS MB), and
    the bytes on disk of each folder under results/."""
    import pandas as pd

    rows = []
    for bench in sorted((wd / "benchmarks").rglob("*.tsv")):
        rule = bench.relative_to(wd / "benchmarks").parts[0]
        job = str(bench.relative_to(wd / "benchmarks" / rule).with_suffix(""))
        b = pd.read_csv(bench, sep="\t")
        rows.append({"rule": rule, "job": job, "wall_s": float(b["s"].iloc[-1]),
                     "max_rss_mb": float(pd.to_numeric(b["max_rss"], errors="coerce").iloc[-1])})  # fmt: skip
    df = pd.DataFrame(rows)
    disk = {p.relative_to(wd / "results").parts[0]: _disk_bytes(p) for p in (wd / "results").iterdir()}
    return df, disk


def correctness(wd: Path, n_queries: int = 100, k: int = 10) -> dict:
    """The full-size checks: top-k of ``n_queries`` dev queries from the pipeline's run against fp32 brute force
    over the stored vectors; ids.npy against the collection's pids; the share of dev qrels in the collection."""
    import numpy as np
    import pandas as pd
    import pyarrow.parquet as pq

    from ftstudy.models import load_model
    from ftstudy.runs import read_run

    emb = wd / "results" / "embeddings" / "base" / "main"
    run_path = wd / "results" / "runs" / "base" / "dev.trec"
    out: dict = {}
    qrels_path = wd / "results" / "data" / "eval" / "dev" / "qrels.parquet"
    if not qrels_path.is_file():
        return out
    pids = pq.read_table(wd / "results" / "data" / "collection.parquet", columns=["pid"]).column("pid").to_numpy()
    qrels = pd.read_parquet(qrels_path)
    out["dev_qrels_in_collection"] = float(np.isin(qrels["pid"].to_numpy(), pids).mean())
    if not (emb / "ids.npy").is_file() or not run_path.is_file():
        return out
    ids = np.load(emb / "ids.npy")
    out["ids_equal_collection_pids"] = bool(np.array_equal(ids, pids))
    vectors = np.load(emb / "vectors.npy", mmap_mode="r")
    queries = pd.read_parquet(wd / "results" / "data" / "eval" / "dev" / "queries.parquet").head(n_queries)
    model = load_model(str(wd / "standin"), device="cpu")
    q = model.encode(queries["text"].tolist(), convert_to_numpy=True, normalize_embeddings=True).astype(np.float32)
    scores = np.full((len(q), k), -np.inf, np.float32)
    rows = np.zeros((len(q), k), np.int64)
    for s in range(0, len(vectors), 500_000):  # exact fp32, chunked: (nq, chunk) scores at a time
        block = q @ np.asarray(vectors[s : s + 500_000], dtype=np.float32).T
        top = np.argpartition(-block, min(k, block.shape[1] - 1), axis=1)[:, :k]
        cand_s = np.concatenate([scores, np.take_along_axis(block, top, 1)], axis=1)
        cand_r = np.concatenate([rows, top + s], axis=1)
        order = np.lexsort((ids[cand_r], -cand_s), axis=1)[:, :k]
        scores, rows = np.take_along_axis(cand_s, order, 1), np.take_along_axis(cand_r, order, 1)
    run = read_run(run_path)
    agree = 0
    for qi, qid in enumerate(queries["qid"].to_numpy()):
        got = run[run["qid"] == qid].sort_values("rank")["pid"].to_numpy()[:k]
        agree += bool(np.array_equal(got, ids[rows[qi]]))
    out[f"top{k}_equal_brute_force"] = f"{agree}/{len(q)}"
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir", required=True, type=Path)
    ap.add_argument("--stage", action="append", choices=list(STAGES), help="repeatable; default all")
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-queries", type=int, default=10_000)
    ap.add_argument("--max-steps", type=int, default=200)
    ap.add_argument("--timing-queries", type=int, default=1000)
    ap.add_argument("--cores", default="all")
    ap.add_argument(
        "--cpu-profile",
        action="store_true",
        help="use profiles/cpu where there is no GPU: model jobs side by side, one core each (off by "
        "default: at full size each job is long, and one job on every core finishes first)",
    )
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    wd = prepare_workdir(args)
    walls = {stage: run_stage(wd, stage, args.cores, args.cpu_profile) for stage in (args.stage or ["all"])}
    gen = wd / "generation.json"
    df, disk = job_table(wd)
    df.to_csv(wd / "scale_table.csv", index=False)
    (wd / "scale_table.md").write_text(df.to_markdown(index=False, floatfmt=".1f") + "\n")
    print(df.to_markdown(index=False, floatfmt=".1f"))
    summary = {"stage_wall_s": walls, "generation": json.loads(gen.read_text()) if gen.is_file() else None,
               "disk_bytes": disk, "checks": correctness(wd)}  # fmt: skip
    (wd / "scale_summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
