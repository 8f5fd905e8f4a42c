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
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import REPO, make_workdir
from slurm import cluster

pytestmark = [pytest.mark.slurm, pytest.mark.workflow]

PROFILE_ARGS = ["--profile", str(REPO / "profiles/slurm"), "--profile", str(REPO / "tests/slurm/profile")]
# The chain that the cluster run builds: data preparation, the base model, encoding, retrieval, evaluation.
TARGET = "results/metrics/base/dev.json"
PER_QUERY = "results/metrics/base/dev.per_query.parquet"
# Thread counts are pinned the same way in both runs: rules get min(threads, 2) (local: --cores 2).
THREADS = "2"


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
    env = {**slurm.slurm_env(), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    exe = Path(sys.executable).with_name("snakemake")
    proc = subprocess.run(
        [str(exe), *args],
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, f"snakemake {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-6000:]}"
    return proc.stdout


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


def _rule_resources(workdir: Path, slurm, *args: str) -> dict[str, str]:
    """rule -> its resources line, from a dry run (independent of the cluster run's log)."""
    out = _snakemake(slurm, workdir, "-n", "--forceall", "--cores", THREADS, *args)
    res: dict[str, str] = {}
    rule = None
    for line in out.splitlines():
        if m := re.match(r"^(?:local)?rule (\w+):", line):
            rule = m[1]
        elif (m := re.match(r"^\s+resources: (.*)$", line)) and rule:
            res[rule] = m[1]
    return res


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


def test_workflow_on_slurm_matches_a_local_run(slurm, tmp_path):
    """The workflow's chain to base's dev metrics goes through sbatch; GPU rules ask for GPUs; same metrics."""
    config = ["--configfile", "config/test.yaml"]
    cluster_wd = make_workdir(tmp_path / "cluster")
    log = _snakemake(
        slurm,
        cluster_wd,
        *PROFILE_ARGS,
        *config,
        "--max-threads",
        THREADS,
        "--verbose",
        TARGET,
    )
    assert (cluster_wd / TARGET).exists()
    calls = _sbatch_calls(log)
    # every job that ran went through sbatch ("localrule" headers would mark jobs run by Snakemake itself)
    ran = set(re.findall(r"^rule (\w+):", log, flags=re.M))
    assert ran and ran <= set(calls), f"jobs not submitted with sbatch: {ran - set(calls)}"
    assert "evaluate" in calls or any("evaluate" in r for r in calls)
    resources = _rule_resources(cluster_wd, slurm, *config, TARGET)
    gpu_rules = {r for r, res in resources.items() if re.search(r"\bgpu=1\b", res)}
    assert gpu_rules & set(calls), f"no GPU rule in the chain: {sorted(calls)}"
    for rule, rule_calls in calls.items():
        for call in rule_calls:
            assert ("--gpus=1" in call) == (rule in gpu_rules), (rule, call)
            assert re.search(r" -t \d+", call) and re.search(r" --mem \d+", call), call
    on_slurm = {j["Comment"][len("rule_") :].split("_wildcards")[0] for j in _slurm_jobs(slurm)}
    assert set(calls) <= on_slurm

    local_wd = make_workdir(tmp_path / "local")
    _snakemake(slurm, local_wd, "--cores", THREADS, "--resources", "gpu=1", *config, TARGET)
    a = json.loads((cluster_wd / TARGET).read_text())
    b = json.loads((local_wd / TARGET).read_text())
    assert a["n_queries"] == b["n_queries"] > 0
    assert set(a["metrics"]) == set(b["metrics"])
    for k, v in b["metrics"].items():
        assert a["metrics"][k] == pytest.approx(v, abs=1e-4), k
    pa = pd.read_parquet(cluster_wd / PER_QUERY).sort_values(["measure", "qid"]).reset_index(drop=True)
    pb = pd.read_parquet(local_wd / PER_QUERY).sort_values(["measure", "qid"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(pa, pb, atol=1e-4, rtol=0)
