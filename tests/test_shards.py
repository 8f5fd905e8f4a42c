"""Shards (encoding.shards, mining.shards; docs/cluster.md): N jobs give the bytes of one job, create the jobs
they should, resume after a kill, and a change of the shard count after a complete run reruns nothing."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import make_workdir, snakemake
from test_mining import SETTINGS, _brute_search, tiny  # noqa: F401  (tiny is a fixture)

from ftstudy.candidates import dense_retriever
from ftstudy.config import encoding_slice, mining_slice, schema_defaults
from ftstudy.encode import encode_corpus, encode_shard
from ftstudy.mining import mine_hard_negatives, mine_shard, prepare_mining
from ftstudy.shards import shard_range


# ---- which pieces each shard takes ------------------------------------------------------------------------
@pytest.mark.parametrize(("pieces", "shards"), [(10, 3), (6, 6), (7, 1), (2, 5), (0, 2), (503, 8)])
def test_shard_ranges_split_the_pieces_in_order_and_balanced(pieces, shards):
    ranges = [shard_range(pieces, shards, i) for i in range(shards)]
    assert [p for r in ranges for p in r] == list(range(pieces))  # every piece once, in order
    # the same sizes as numpy's split into N nearly equal parts (an independent computation)
    assert sorted(len(r) for r in ranges) == sorted(len(a) for a in np.array_split(np.arange(pieces), shards))


def test_shard_range_rejects_a_shard_outside_the_count():
    with pytest.raises(ValueError, match="shard 3 is not in"):
        shard_range(10, 3, 3)
    with pytest.raises(ValueError, match="shards must be >= 1"):
        shard_range(10, 0, 0)


def test_shard_counts_are_execution_knobs():
    config = schema_defaults()
    assert config["encoding"]["shards"] == 1 and config["mining"]["shards"] == 1
    changed = {**config, "encoding": {**config["encoding"], "shards": 8}, "mining": {**config["mining"], "shards": 4}}
    assert encoding_slice(changed) == encoding_slice(config)
    assert mining_slice(changed) == mining_slice(config)


# ---- encoding: N shards + encode_corpus == encode_corpus alone, byte for byte ------------------------------
TEXTS = [f"passage {i}: " + " ".join(["word"] * (i % 9)) + f" topic {i % 5}" for i in range(22)]
IDS = np.arange(100, 122, dtype=np.int64)[::-1].copy()


def _encode_kw():
    return {"chunk_size": 3, "batch_size": 4, "dtype": "fp32", "show_progress": False}


def test_sharded_encoding_equals_one_job_byte_for_byte_and_a_killed_shard_resumes(base_model, tmp_path):
    one = encode_corpus(base_model, TEXTS, IDS, tmp_path / "one", tmp_path / "p1" / "key", **_encode_kw())
    assert one["chunks_encoded"] == 8  # 22 passages in chunks of 3
    partial, encoded = tmp_path / "p3" / "key", []

    def die_after_first(i, n):
        encoded.append(i)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):  # shard 1 of 3 (chunks 2-4) is killed after its first chunk
        encode_shard(base_model, TEXTS, partial, 1, 3, on_chunk=die_after_first, **_encode_kw())
    records = [encode_shard(base_model, TEXTS, partial, i, 3, on_chunk=lambda i, n: encoded.append(i),
                            **_encode_kw()) for i in (1, 0)]  # fmt: skip
    assert encoded == [2, 3, 4, 0, 1]  # the killed shard resumed at its next chunk
    # 8 chunks split 2 / 3 / 3; each shard starts at a multiple of chunk_size
    assert [r["chunks"] for r in records] == [[2, 5], [0, 2]] and [r["passages"] for r in records] == [9, 6]
    assert records[0]["chunks_reused"] == 1 and records[0]["chunks_encoded"] == 2
    # shard 2 never ran: encode_corpus encodes its 3 chunks itself and assembles the shards' 5
    meta = encode_corpus(base_model, TEXTS, IDS, tmp_path / "three", partial, **_encode_kw())
    assert meta["chunks_encoded"] == 3 and meta["chunks_reused"] == 5
    for name in ("vectors.npy", "ids.npy"):
        assert (tmp_path / "three" / name).read_bytes() == (tmp_path / "one" / name).read_bytes(), name
    assert not partial.exists()


# ---- mining: N shards + mine_hard_negatives == mine_hard_negatives alone, byte for byte -------------------
def _mining_args(data, out: Path):
    retrieve = dense_retriever(data["vec"], data["pids"], SETTINGS.top_k, _brute_search(data["vec"]))
    common = (SETTINGS, data["embed"], retrieve, data["vec"], data["pids"], out / "partial", 2)
    return (data["dir"] / "queries.parquet", data["dir"] / "qrels.parquet"), common


def _mine_all(data, out: Path):
    (queries, qrels), common = _mining_args(data, out)
    files = (out / "hard.parquet", out / "hard_stats.json")
    return mine_hard_negatives(
        queries, qrels, data["dir"] / "collection.parquet", *files, *common, progress=False,
        partial_key={"test": 1}, out_candidates=out / "candidates.parquet",
    )  # fmt: skip


def test_sharded_mining_equals_one_job_byte_for_byte(tiny, tmp_path):  # noqa: F811
    _mine_all(tiny, tmp_path / "one")
    out = tmp_path / "three"
    (queries, qrels), common = _mining_args(tiny, out)
    # 8 queries in batches of 2: 4 batches over 3 shards (1 / 1 / 2)
    records = []
    for i in range(3):
        run = prepare_mining(queries, qrels, *common, partial_key={"test": 1}, shared=True)
        records.append(mine_shard(run, 2, i, 3, progress=False))
    assert [r["batches"] for r in records] == [[0, 1], [1, 2], [2, 4]]
    assert sum(r["queries"] for r in records) == 8 and all(r["batches_mined"] for r in records)
    assert len(list((out / "partial").glob("*/batch_*.npz"))) == 4

    def no_more_mining(texts):
        raise AssertionError("mine_hard_negatives mined a batch that a shard had mined")

    _mine_all({**tiny, "embed": no_more_mining}, out)  # finds every batch done: only writes the outputs
    for name in ("hard.parquet", "hard_stats.json", "candidates.parquet"):
        assert (out / name).read_bytes() == (tmp_path / "one" / name).read_bytes(), name
    assert not (out / "partial").exists()


# ---- the workflow: the jobs shards create, a sharded run, and no rerun when the count changes -------------
def _jobs(out: str) -> dict[str, int]:
    table = out.split("Job stats:", 1)[1]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)\s*$", table, flags=re.M) if m[1] != "total"}


def _overlay(tmp_path: Path, encoding: int, mining: int) -> str:
    path = tmp_path / f"shards_{encoding}_{mining}.yaml"
    # small chunks and batches, so each shard has several (the test data: 96 passages, 48 training queries)
    path.write_text(
        f"encoding: {{shards: {encoding}, chunk_size: 16}}\nmining: {{shards: {mining}, query_batch_size: 8}}\n"
    )
    return str(path)


def _dry(wd: Path, tmp_path: Path, encoding: int, mining: int, *targets: str) -> str:
    cfg = ("--configfile", "config/test.yaml", _overlay(tmp_path, encoding, mining))
    return snakemake(wd, *targets, "-n", "--cores", "2", *cfg).stdout


@pytest.mark.workflow
def test_dry_run_job_counts_for_one_and_three_shards(tmp_path):
    wd = make_workdir(tmp_path / "wd")
    one, three = _jobs(_dry(wd, tmp_path, 1, 1)), _jobs(_dry(wd, tmp_path, 3, 3))
    shard_rules = {"encode_corpus_shard", "gather_encode_shards", "mine_hard_negatives_shard", "gather_mining_shards"}
    assert not shard_rules & set(one)  # one shard: the DAG as it was, no extra job
    assert {k: v for k, v in three.items() if k not in shard_rules} == one
    assert three["encode_corpus_shard"] == 3 * one["encode_corpus"]
    assert three["gather_encode_shards"] == one["encode_corpus"]
    assert three["mine_hard_negatives_shard"] == 3 and three["gather_mining_shards"] == 1


@pytest.mark.workflow
def test_sharded_run_and_changing_the_shard_count_reruns_nothing(tmp_path):
    wd = make_workdir(tmp_path / "wd")
    targets = ("results/embeddings/base/main", "results/triplets/hard.parquet")
    cfg = ("--configfile", "config/test.yaml", _overlay(tmp_path, 2, 2))
    run = snakemake(wd, *targets, "--workflow-profile", "profiles/cpu", "--cores", "2", "--resources", "gpu=1", *cfg)
    assert run.stdout.count("rule encode_corpus_shard:") == 2  # 3 chunks each
    assert run.stdout.count("rule mine_hard_negatives_shard:") == 2  # 3 query batches each
    # encode_corpus and mine_hard_negatives only assembled what the shards made (the scripts key alike)
    meta = json.loads((wd / "results/embeddings/base/main/meta.json").read_text())
    assert meta["chunks_encoded"] == 0 and meta["chunks_reused"] == 6, meta
    assert "12 finished pieces" in (wd / "logs/mine_hard_negatives/main.log").read_text()  # 6 batches x 2 files
    assert not list((wd / "results/.partial").rglob("*"))  # chunks, batches and shard records all removed
    for encoding, mining in ((1, 1), (3, 3)):
        assert "Nothing to be done" in _dry(wd, tmp_path, encoding, mining, *targets), (encoding, mining)
    # a setting that changes the triplets still reruns mining (and nothing upstream): an output that exists is
    # rebuilt by its own job, since a job that waits for a checkpoint has its params checked only afterwards
    seed = tmp_path / "seed.yaml"
    seed.write_text("mining: {seed: 7}\n")
    out = snakemake(wd, *targets, "-n", "--cores", "2", *cfg, str(seed)).stdout
    assert _jobs(out) == {"mine_hard_negatives": 1}
