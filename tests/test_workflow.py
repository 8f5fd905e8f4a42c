"""The workflow as a user runs it: dry runs, a full run of config/test.yaml, a no-op rerun, lint, bad config."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest
import yaml
from conftest import REPO, make_workdir, snakemake

pytestmark = pytest.mark.workflow


def _jobs(dry_run_output: str) -> dict[str, int]:
    """Rule -> job count from the 'Job stats' table that a dry run prints."""
    table = dry_run_output.split("Job stats:", 1)[1]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)\s*$", table, flags=re.M) if m[1] != "total"}


def _job_blocks(dry_run_output: str) -> list[dict]:
    """One dict per job that a dry run lists: rule, threads (1 where not printed), resources (name -> text)."""
    jobs = []
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", dry_run_output)[1:]:
        rule = re.match(r"(?:local)?rule (\w+):", block)[1]
        threads = re.search(r"^\s+threads: (\d+)", block, flags=re.M)
        res = re.search(r"^\s+resources: (.*)$", block, flags=re.M)
        pairs = (kv.split("=", 1) for kv in res[1].split(", ")) if res else ()
        jobs.append({"rule": rule, "threads": int(threads[1]) if threads else 1, "resources": dict(pairs)})
    return jobs


def test_dry_run_of_the_embedded_default(tmp_path):
    out = snakemake(make_workdir(tmp_path), "-n", "--cores", "2").stdout
    jobs = _jobs(out)
    for rule in (
        "prepare_collection",
        "sample_random_triplets",
        "mine_hard_negatives",
        "encode_corpus",
        "retrieve",
        "evaluate",
        "time_inference",
        "tables",
        "significance",
        "geometry",
        "umap",
    ):
        assert rule in jobs, f"{rule} missing from the default DAG: {sorted(jobs)}"
    # the paper's four variants and the embedded default's remedies, one job each
    variants = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["variants"]
    assert len(variants) > 4 and sum(v for k, v in jobs.items() if k.startswith("train")) == len(variants)
    for rule in ("filter_negatives", "diagnose_negatives", "interpolate", "fuse", "remedies_table"):
        assert rule in jobs, f"{rule} missing from the default DAG: {sorted(jobs)}"
    assert any(k.startswith("figure") for k in jobs)


def test_only_an_approximate_index_gets_a_faiss_file(tmp_path):
    """Exact (flat) search reads the stored vectors, so the default DAG builds no index (a flat .faiss would hold
    every vector a second time); IVF gets one build_index job per encoding, and retrieve reads it."""
    wd = make_workdir(tmp_path)
    flat = _jobs(snakemake(wd, "-n", "--cores", "2").stdout)
    assert "build_index" not in flat and flat["encode_corpus"] > 0
    ivf = tmp_path / "ivf.yaml"
    ivf.write_text("retrieval: {index: {type: ivf, nlist: 16}}\n")
    out = snakemake(wd, "-n", "--cores", "2", "--configfile", "config/config.yaml", str(ivf)).stdout
    assert _jobs(out)["build_index"] == flat["encode_corpus"]
    retrieve = [b for b in re.split(r"\n(?=rule \w+:)", out) if b.startswith("rule retrieve:")]
    assert retrieve and all(re.search(r"input: .*results/index/\w+/\w+\.faiss", b) for b in retrieve)


def test_dry_run_of_the_full_scale_config_needs_no_data(tmp_path):
    out = snakemake(make_workdir(tmp_path), "-n", "--cores", "2", "--configfile", "config/msmarco.yaml").stdout
    jobs = _jobs(out)
    assert jobs.get("download_msmarco", 0) >= 1 or any(r.startswith("download") for r in jobs)
    n_trained = 4
    assert sum(v for k, v in jobs.items() if k.startswith("train")) == n_trained
    assert jobs["evaluate"] == (n_trained + 2) * 3  # base, bm25, 4 variants x dev, dl19, dl20


def test_cpu_profile_frees_every_gpu_rule_and_keeps_timing_exclusive(tmp_path):
    """profiles/cpu (no GPU here): every rule that claims the GPU under profiles/default claims none, model jobs
    take one core each, and timing jobs still take every core."""
    wd = make_workdir(tmp_path)
    args = ("-n", "-F", "--cores", "2", "--resources", "gpu=1", "--configfile", "config/test.yaml")
    default = _job_blocks(snakemake(wd, *args).stdout)
    cpu = _job_blocks(snakemake(wd, "--workflow-profile", "profiles/cpu", *args).stdout)
    assert [j["rule"] for j in cpu] and sorted(j["rule"] for j in cpu) == sorted(j["rule"] for j in default)
    gpu_rules = {j["rule"] for j in default if j["resources"].get("gpu") == "1"}
    assert {"encode_corpus", "retrieve", "train_full", "train_lora", "time_inference"} <= gpu_rules
    assert not [j for j in cpu if j["resources"].get("gpu", "0") != "0"]
    for job in cpu:
        if job["rule"].startswith("time_inference"):
            assert job["threads"] == 2, job
        else:
            assert job["threads"] == 1, job


def test_bad_config_is_rejected_before_any_job(tmp_path):
    wd = make_workdir(tmp_path)
    (wd / "bad.yaml").write_text("mining:\n  rank_range: [300, 10]\n")
    proc = snakemake(wd, "-n", "--cores", "1", "--configfile", "bad.yaml", check=False)
    assert proc.returncode != 0
    assert "mining.rank_range" in proc.stdout and "greater than end" in proc.stdout
    assert not (wd / "results").exists()


def test_lint_passes(tmp_path):
    proc = snakemake(make_workdir(tmp_path), "--lint", check=False)
    assert proc.returncode == 0, proc.stdout[-4000:]


def test_full_run_of_the_test_config(completed_test_run):
    wd = completed_test_run
    config_models = ["base", "bm25", "full_random", "full_hard", "lora_random", "lora_hard"]
    for model in config_models:
        m = json.loads((wd / f"results/metrics/{model}/dev.json").read_text())
        assert m["model"] == model and m["eval_set"] == "dev"
        assert set(m["metrics"]) == {"MRR@10", "MRR@100", "nDCG@10", "R@100", "R@1000"}
        assert 0.0 <= m["metrics"]["MRR@10"] <= m["metrics"]["MRR@100"] <= 1.0
        per_query = pd.read_parquet(wd / f"results/metrics/{model}/dev.per_query.parquet")
        assert per_query["qid"].nunique() == m["n_queries"]
    judged = pd.read_parquet(wd / "results/data/eval/dev/queries.parquet")
    assert m["n_queries"] == len(judged)
    for table in ("mrr", "inference", "training", "significance", "geometry"):
        assert (wd / f"results/tables/{table}.md").stat().st_size > 0
    for fig in ("umap", "training_loss", "mrr_ci", "hard_negative_ranks"):
        assert (wd / f"results/figures/{fig}.png").stat().st_size > 10_000


def test_second_run_has_nothing_to_do(completed_test_run):
    out = snakemake(completed_test_run, "-n", "--cores", "2", "--configfile", "config/test.yaml").stdout
    assert "Nothing to be done" in out, out[-3000:]
