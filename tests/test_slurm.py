"""The cluster profile on a real SLURM: a single-node cluster on 127.0.0.1 with one fake GPU (tests/slurm/).

Runs as root with Debian's packages (installed here with apt-get if missing); skips with the reason elsewhere,
except in CI (CI=true), where it must run. Every daemon it starts is stopped by pid at the end.

    snakemake --profile profiles/slurm --profile tests/slurm/profile ...

tests/slurm/profile only shortens the executor's start delay and status polling and sizes the defaults for the
test cluster; everything else comes from profiles/slurm (and profiles/default, the workflow profile).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
from conftest import REPO, make_workdir, snakemake
from slurm import cluster

pytestmark = [pytest.mark.slurm, pytest.mark.workflow]

PROFILE_ARGS = ["--profile", str(REPO / "profiles/slurm"), "--profile", str(REPO / "tests/slurm/profile")]
# The chain that the cluster run builds: data preparation, the base model, encoding, retrieval, evaluation.
TARGET = "results/metrics/base/dev.json"
PER_QUERY = "results/metrics/base/dev.per_query.parquet"
CONFIG = ("--configfile", "config/test.yaml")
# Thread counts are pinned the same way in both runs: conftest.completed_test_run runs with --cores 2, so rules
# get min(threads, 2); the cluster run passes --max-threads 2.
LOCAL_CORES = "2"


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    reason = cluster.unavailable_reason()
    in_ci = os.environ.get("CI", "").lower() == "true"
    if reason:
        if in_ci:
            pytest.fail(f"CI=true, and the SLURM test cannot run: {reason}")
        pytest.skip(reason)
    c = cluster.SlurmCluster(tmp_path_factory.mktemp("slurm-state"))
    try:
        c.start()
    except RuntimeError as exc:
        if in_ci or cluster.installed():
            raise
        pytest.skip(f"could not install SLURM (no package registry?): {exc}")
    pids = c.alive_pids()
    assert len(pids) == 3, "munged, slurmctld and slurmd should be running"
    yield c
    c.stop()
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # reaped: no such process
    assert not (Path("/etc/slurm/slurm.conf").exists() and "ftstudy-test" in Path("/etc/slurm/slurm.conf").read_text())


def _snakemake(slurm, workdir: Path, *args: str, timeout: int = 600) -> str:
    return snakemake(workdir, *args, timeout=timeout, env=slurm.slurm_env()).stdout


def _sbatch_calls(log: str) -> dict[str, list[str]]:
    """rule -> the sbatch command lines the executor ran for it (from --verbose output)."""
    calls: dict[str, list[str]] = {}
    for line in log.splitlines():
        if line.startswith("sbatch call: "):
            rule = re.search(r"--comment '?rule_(\w+?)(?:_wildcards_\S*)?'?\s", line)
            assert rule, line
            calls.setdefault(rule[1], []).append(line.split(" --wrap=", 1)[0])
    return calls


def _slurm_jobs(slurm) -> list[dict[str, str]]:
    """Every job slurmctld still remembers (MinJobAge=600 s), as key -> value."""
    out = slurm.run("scontrol", "show", "job", "-o", check=False)
    jobs = []
    for line in out.splitlines():
        if line.startswith("JobId="):
            jobs.append(dict(kv.split("=", 1) for kv in line.split() if "=" in kv))
    return jobs


def _gpu_rules(workdir: Path, slurm) -> set[str]:
    """Rules of the chain whose resources hold gpu=1, from a local dry run (independent of the cluster run)."""
    out = _snakemake(slurm, workdir, TARGET, "-n", "--forceall", "--cores", LOCAL_CORES, *CONFIG)
    gpu, rule = set(), None
    for line in out.splitlines():
        if m := re.match(r"^(?:local)?rule (\w+):", line):
            rule = m[1]
        elif (m := re.match(r"^\s+resources: (.*)$", line)) and rule and re.search(r"\bgpu=1\b", m[1]):
            gpu.add(rule)
    return gpu


def test_gpu_jobs_are_not_limited_to_one_by_the_local_profile(slurm, tmp_path):
    """profiles/default caps local GPU jobs (gpu=1) but scopes it local: both GPU jobs are submitted at once."""
    wd = tmp_path / "gpu_scope"
    wd.mkdir()
    shutil.copy(REPO / "tests/slurm/gpu_scope/Snakefile", wd / "Snakefile")
    shutil.copytree(REPO / "profiles/default", wd / "profiles/default")  # the workflow profile, as in the repo
    log = _snakemake(
        slurm,
        wd,
        *PROFILE_ARGS,
        "--verbose",
        "--set-resources",
        "gpu_a:slurm_partition=gpu",
        "gpu_b:slurm_partition=gpu",
    )
    assert "gpu=local" in log  # the workflow profile was applied
    calls = _sbatch_calls(log)
    assert set(calls) == {"gpu_a", "gpu_b", "cpu"}
    for rule in ("gpu_a", "gpu_b"):
        assert " --gpus=1" in calls[rule][0] and " -p gpu " in calls[rule][0]
    assert "--gpus" not in calls["cpu"][0] and " -p main " in calls["cpu"][0]
    # Both GPU jobs were handed to SLURM before either finished (one fake GPU: SLURM ran them one after another).
    lines = log.splitlines()
    submitted = [i for i, s in enumerate(lines) if re.search(r"Job \d+ has been submitted with SLURM jobid", s)]
    first_gpu_done = min(i for i, s in enumerate(lines) if re.match(r"Finished jobid: \d+ \(Rule: gpu_[ab]\)", s))
    assert len([i for i in submitted if i < first_gpu_done]) >= 2
    jobs = {j["Comment"]: j for j in _slurm_jobs(slurm) if j.get("Comment", "").startswith("rule_gpu_")}
    assert jobs["rule_gpu_a"]["TresPerJob"] == jobs["rule_gpu_b"]["TresPerJob"] == "gres:gpu:1"
    a, b = sorted(jobs.values(), key=lambda j: j["StartTime"])
    assert a["EndTime"] <= b["StartTime"]  # one fake GPU: serialised by SLURM, not by Snakemake
    for f in ("gpu_a.txt", "gpu_b.txt"):
        assert (wd / f).read_text().strip() == "CUDA_VISIBLE_DEVICES=0"


def test_workflow_on_slurm_matches_a_local_run(slurm, tmp_path, completed_test_run):
    """The chain to base's dev metrics (data, base model, encoding, index, retrieval, evaluation) through sbatch.

    GPU rules ask for a GPU of the type set in config (resources.gpu_model), on the partition set per rule; the
    metrics equal those of the local run of the same config (conftest: --cores 2, so rules get min(threads, 2),
    pinned here with --max-threads 2).
    """
    wd = make_workdir(tmp_path / "cluster")
    gpu_rules = _gpu_rules(wd, slurm)
    assert gpu_rules, "no GPU rule in the chain"
    log = _snakemake(
        slurm,
        wd,
        TARGET,
        *PROFILE_ARGS,
        "--max-threads",
        LOCAL_CORES,
        "--verbose",
        "--set-resources",
        *(f"{r}:slurm_partition=gpu" for r in sorted(gpu_rules)),
        "--config",
        "resources={'gpu_model': 'fake'}",
        *CONFIG,
    )
    calls = _sbatch_calls(log)
    ran = set(re.findall(r"^(?:local)?rule (\w+):", log, flags=re.M)) - {"all"}
    assert ran == set(calls), f"jobs that did not go through sbatch: {ran - set(calls)}"
    assert gpu_rules <= set(calls) and "evaluate" in calls
    for rule, rule_calls in calls.items():
        for call in rule_calls:
            assert re.search(r" -t \d+", call) and re.search(r" --mem \d+", call), call
            if rule in gpu_rules:
                assert " --gpus=fake:1" in call and " -p gpu " in call, call
            else:
                assert "--gpus" not in call and " -p main " in call, call
    # SLURM's side: the jobs of this run, with the GPU request recorded for the GPU rules
    run_id = re.search(r"SLURM run ID: (\S+)", log)[1]
    jobs = [j for j in _slurm_jobs(slurm) if j["JobName"] == run_id]
    assert len(jobs) == sum(len(c) for c in calls.values())
    for j in jobs:
        rule = re.sub(r"_wildcards_.*$", "", j["Comment"][len("rule_") :])
        assert j["JobState"] == "COMPLETED", j
        assert (j.get("TresPerJob") == "gres:gpu:fake:1") == (rule in gpu_rules), j

    a = json.loads((wd / TARGET).read_text())
    b = json.loads((completed_test_run / TARGET).read_text())
    assert a["n_queries"] == b["n_queries"] > 0
    assert set(a["metrics"]) == set(b["metrics"])
    for k, v in b["metrics"].items():
        assert a["metrics"][k] == pytest.approx(v, abs=1e-4), k
    pa = pd.read_parquet(wd / PER_QUERY).sort_values(["measure", "qid"]).reset_index(drop=True)
    pb = pd.read_parquet(completed_test_run / PER_QUERY).sort_values(["measure", "qid"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(pa, pb, atol=1e-4, rtol=0)
