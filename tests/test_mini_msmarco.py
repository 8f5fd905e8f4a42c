"""The workflow on real MS MARCO text: a slice of ../shared/data/mini-msmarco (every judged passage plus a seeded
sample of the rest, so CPU encoding stays short). lora_random trains end to end and its metrics appear beside
base's, and an eval set that brings its own collection gets its own embeddings per model."""

from __future__ import annotations

import json
import random
import shutil

import numpy as np
import pandas as pd
import pytest
from conftest import make_workdir, snakemake

pytestmark = pytest.mark.workflow


def _read_tsv(path):
    return [line.split("\t") for line in path.read_text(encoding="utf-8").splitlines()]


def _write_slice(src, dst, n_extra: int, seed: int = 7) -> set[int]:
    """Copy the mini data set into ``dst`` with a smaller collection: judged passages + ``n_extra`` others."""
    dst.mkdir(parents=True)
    judged = {int(r[2]) for name in ("qrels.train.tsv", "qrels.dev.small.tsv") for r in _read_tsv(src / name)}
    lines = (src / "collection.tsv").read_text(encoding="utf-8").splitlines()
    others = [ln for ln in lines if int(ln.split("\t", 1)[0]) not in judged]
    keep = [ln for ln in lines if int(ln.split("\t", 1)[0]) in judged]
    keep += random.Random(seed).sample(others, n_extra)
    (dst / "collection.tsv").write_text("\n".join(keep) + "\n", encoding="utf-8")
    for name in (
        "queries.train.tsv",
        "qrels.train.tsv",
        "triples.train.small.tsv",
        "queries.dev.small.tsv",
        "qrels.dev.small.tsv",
    ):
        shutil.copy(src / name, dst / name)
    # an eval set with its own, smaller collection: the dev positives plus other passages
    dev_judged = {int(r[2]) for r in _read_tsv(src / "qrels.dev.small.tsv")}
    own = [ln for ln in lines if int(ln.split("\t", 1)[0]) in dev_judged]
    own += random.Random(seed + 1).sample(others, 200)
    (dst / "own_collection.tsv").write_text("\n".join(own) + "\n", encoding="utf-8")
    return judged


def test_lora_random_and_own_collection_on_real_text(mini_msmarco, tmp_path):
    wd = make_workdir(tmp_path / "wd")
    data = tmp_path / "mini"
    _write_slice(mini_msmarco, data, n_extra=400)
    (wd / "mini.yaml").write_text(
        f"dataset_dir: {data}\n"
        "remedies: false\n"  # the paper's models on real text (fusion would need BM25)
        "bm25: {enabled: false}\n"
        "eval_sets:\n"
        "  dev: {queries: queries.dev.small.tsv, qrels: qrels.dev.small.tsv}\n"
        "  own: {queries: queries.dev.small.tsv, qrels: qrels.dev.small.tsv, collection: own_collection.tsv}\n"
    )
    targets = [f"results/metrics/{m}/{e}.json" for m in ("base", "lora_random") for e in ("dev", "own")]
    # 290 s alone; beside the other pytest-xdist worker it can take much longer
    snakemake(
        wd,
        *targets,
        "--cores",
        "2",
        "--resources",
        "gpu=1",
        "--configfile",
        "config/test.yaml",
        "mini.yaml",
        timeout=2400,
    )

    n_dev = len({r[0] for r in _read_tsv(mini_msmarco / "qrels.dev.small.tsv")})
    metrics = {
        (m, e): json.loads((wd / f"results/metrics/{m}/{e}.json").read_text())
        for m in ("base", "lora_random")
        for e in ("dev", "own")
    }
    for (model, eval_set), m in metrics.items():
        assert m["model"] == model and m["eval_set"] == eval_set and m["n_queries"] == n_dev == 270
        assert 0.3 < m["metrics"]["MRR@10"] <= 1.0  # real queries against their own judged passages
    # lora_random is a different model from base, trained on the real triples
    summary = json.loads((wd / "results/models/lora_random/train_summary.json").read_text())
    assert 0.005 < summary["trainable_fraction"] < 0.008
    assert (wd / "results/models/lora_random/adapter").is_dir()
    # the own-collection eval set has its own embeddings and index, searched instead of the main collection
    for model in ("base", "lora_random"):
        ids = pd.read_parquet(wd / "results/data/eval/own/collection.parquet")["pid"]
        vec_ids = np.load(wd / f"results/embeddings/{model}/own/ids.npy")
        assert sorted(vec_ids.tolist()) == sorted(ids.tolist()) and len(ids) < 1000
        assert not (wd / f"results/index/{model}/own.faiss").exists()  # exact search reads the stored vectors
        run = pd.read_csv(wd / f"results/runs/{model}/own.trec", sep=r"\s+", header=None)
        assert set(run[2]) <= set(ids)
