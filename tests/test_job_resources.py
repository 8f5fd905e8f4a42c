"""Resources from input sizes (ftstudy.job_resources): the full-size run's measured peaks are covered, within the
24 GB machine, and the rules ask for figures that follow their inputs, not constants."""

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import make_workdir, snakemake

from ftstudy import job_resources as R

GB = 1000  # MB

# Measured in the full-size scale run (docs/scale.md): input sizes and each job's peak RSS (benchmark max_rss, MB).
FULL = {"collection_tsv_mb": 2996, "collection_parquet_mb": 1829, "passages": 8_841_823, "triples_tsv_mb": 5728}
PEAK = {
    "prepare_collection": 311,
    "sample_random_triplets": 1093,
    "encode_corpus": 13_801,
    "retrieve": 14_481,
    "mine_hard_negatives": 15_683,
    "train_lora": 4_705,  # 1,000,000 triplets, all tokenised; max_steps 200
}


def test_full_size_estimates_cover_the_measured_peaks_and_fit_the_machine():
    cases = {
        "prepare_collection": R.prepare(FULL["collection_tsv_mb"]),
        "sample_random_triplets": R.sample_triplets(FULL["triples_tsv_mb"], 1_000_000),
        "encode_corpus": R.encode(FULL["collection_parquet_mb"], FULL["passages"]),
        "train_lora": R.train(1_000_000, "lora", 3, 200, 512),
    }
    for rule, res in cases.items():
        assert PEAK[rule] <= res["mem_mb"] <= max(3 * PEAK[rule], 1000), (rule, res)
        assert res["mem_mb"] <= 24 * GB, rule
    # the vectors are on disk once: 8,841,823 x (384 float32 + an int64 id)
    assert cases["encode_corpus"]["disk_mb"] == pytest.approx(8_841_823 * (384 * 4 + 8) / 1e6, abs=1)
    assert R.encode(FULL["collection_parquet_mb"], FULL["passages"], itemsize=2)["disk_mb"] == pytest.approx(
        8_841_823 * (384 * 2 + 8) / 1e6, abs=1
    )
    # exact search over the memory-mapped float32 vectors: the measured dev retrieval's peak, within 20 GB
    search = R.search(13_652, 6980, 1000)
    assert PEAK["retrieve"] <= search["mem_mb"] <= 20 * GB
    # timing and mining do not grow with the number of queries beyond their results
    small, large = R.search(13_652, 1000, 200)["mem_mb"], R.search(13_652, 100_000, 200)["mem_mb"]
    assert large - small <= 2 * 100_000 * 216 * 12 / 1e6 + 1
    assert PEAK["mine_hard_negatives"] <= R.mine(13_652, 10_000, 200)["mem_mb"] <= 20 * GB  # measured: 10,000
    assert R.mine(13_652, 502_939, 200)["mem_mb"] <= 20 * GB  # all judged queries: one batch at a time


def test_figures_grow_with_the_inputs_and_have_floors():
    assert R.encode(2 * 1829, 2 * 8_841_823)["runtime"] > R.encode(1829, 8_841_823)["runtime"]
    assert R.encode(1829, 8_841_823, n_shards=4)["runtime"] < R.encode(1829, 8_841_823)["runtime"]
    tiny = R.encode(0.1, 960)
    assert tiny["mem_mb"] >= R.MODEL_JOB_BASE_MB and tiny["runtime"] >= 10 and tiny["disk_mb"] >= 100
    full, lora = R.train(1_000_000, "full", 3, None, 128), R.train(1_000_000, "lora", 3, None, 128)
    assert full["runtime"] > lora["runtime"]
    assert R.train(1_000_000, "full", 3, 200, 128)["runtime"] < full["runtime"]  # training.max_steps caps it


def test_sizes_of_folders_and_parquet_rows(tmp_path):
    """A directory input counts every file below it (Snakemake's input.size_mb counts the entry alone)."""
    d = tmp_path / "emb"
    (d / "sub").mkdir(parents=True)
    (d / "vectors.npy").write_bytes(b"x" * 3_000_000)
    (d / "sub" / "ids.npy").write_bytes(b"x" * 500_000)
    assert R.tree_mb(d) == pytest.approx(3.5) and R.tree_mb(tmp_path / "missing") == 0
    pq.write_table(pa.table({"pid": list(range(1234))}), tmp_path / "c.parquet")
    assert R.parquet_rows(tmp_path / "c.parquet") == 1234 and R.parquet_rows(tmp_path / "none.parquet") == 0


@pytest.mark.workflow
def test_the_rules_ask_for_what_their_inputs_need(tmp_path):
    """Once the collection exists, encode_corpus asks for memory, time and disk from its size (not a constant)."""
    wd = make_workdir(tmp_path)
    cfg = ("--configfile", "config/test.yaml")
    snakemake(wd, "results/data/collection.parquet", "--cores", "2", *cfg)
    out = snakemake(wd, "results/embeddings/base/main", "-n", "--cores", "2", *cfg).stdout
    block = next(b for b in out.split("\n\n") if "rule encode_corpus:" in b)
    res = dict(kv.split("=", 1) for kv in block.split("resources: ", 1)[1].splitlines()[0].split(", "))
    coll = wd / "results/data/collection.parquet"
    want = R.encode(coll.stat().st_size / 1e6, pq.ParquetFile(coll).metadata.num_rows)
    assert int(res["mem_mb"]) == want["mem_mb"] and int(res["disk_mb"]) == want["disk_mb"]
    assert int(res["disk_mb"]) >= pq.ParquetFile(coll).metadata.num_rows * 384 * 4 / 1e6
