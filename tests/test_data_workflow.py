"""The data rules as a user runs them: warnings that reach the terminal, and the README's resume after a hard kill.

Each test runs only data rules (no torch) in a scratch copy of the workflow, on a small handmade data set.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from conftest import REPO, make_workdir, snakemake

from ftstudy.parquet_meta import read_provenance

pytestmark = pytest.mark.workflow

SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))


def _handmade(wd: Path, collection: str, qrels: str, triples: str, n_random: int) -> list[str]:
    """A data set in MS MARCO's file names under ``wd/handmade`` and a config overlay pointing at it; returns
    the ``--configfile`` arguments."""
    data = wd / "handmade"
    data.mkdir()
    (data / "collection.tsv").write_text(collection, encoding="utf-8")
    (data / "queries.train.tsv").write_text("1\tfirst query\n2\tsecond query\n3\tthird query\n", encoding="utf-8")
    (data / "qrels.train.tsv").write_text(qrels, encoding="utf-8")
    (data / "triples.train.small.tsv").write_text(triples, encoding="utf-8")
    overlay = {"dataset_dir": "handmade", "triplets": {"random": {"n": n_random}}}
    (wd / "handmade.yaml").write_text(yaml.safe_dump(overlay), encoding="utf-8")
    return ["--configfile", "handmade.yaml"]


def test_data_warnings_reach_the_terminal_and_the_log(tmp_path):
    wd = make_workdir(tmp_path / "wd")
    config = _handmade(
        wd,
        collection="10\tpassage ten\n11\tpassage eleven\n12\tpassage twelve\n",
        qrels="1 0 10 1\n2 0 404 1\n3 0 405 1\n",  # pids 404 and 405 are not in the collection
        triples="first query\tpassage ten\tpassage eleven\nsecond query\tpassage eleven\tpassage twelve\n",
        n_random=5,  # the file has 2 lines
    )
    targets = ["results/data/qrels.train.parquet", "results/triplets/random.parquet"]
    out = snakemake(wd, "--cores", "1", *targets, *config).stdout
    terminal = sorted(line for line in out.splitlines() if line.startswith("WARNING ("))  # jobs' order may vary
    assert len(terminal) == 2, out[-4000:]
    qrels_line = "WARNING (prepare_train): handmade/qrels.train.tsv: 2 of 3 qrels name passages missing"
    assert terminal[0].startswith(qrels_line) and "pid 404 on line 2" in terminal[0]
    triples_line = "WARNING (sample_random_triplets): handmade/triples.train.small.tsv has 2 lines, not more"
    assert terminal[1].startswith(triples_line) and "than the 5 requested" in terminal[1]
    # the same warnings in the rules' logs, and the counts in the outputs
    assert "2 of 3 qrels name passages missing" in (wd / "logs/prepare_train/train.log").read_text()
    assert "has 2 lines" in (wd / "logs/sample_random_triplets/random.log").read_text()
    assert read_provenance(wd / "results/data/qrels.train.parquet")["n_qrels_missing_passage"] == 2
    prov = read_provenance(wd / "results/triplets/random.parquet")
    assert (prov["n_requested"], prov["n_lines"], prov["n_sampled"]) == (5, 2, 2)


def _documented_resume() -> list[list[str]]:
    """The README's "resume after a kill" line, split into its commands (each a list of arguments)."""
    lines = [ln for ln in (REPO / "README.md").read_text().splitlines() if ln.endswith("# resume after a kill")]
    assert len(lines) == 1, lines
    commands = [shlex.split(part) for part in lines[0].split("#", 1)[0].split("&&")]
    assert all(cmd[0] == ".venv/bin/snakemake" for cmd in commands), commands
    return [[SNAKEMAKE, *cmd[1:]] for cmd in commands]


def _run(wd: Path, cmd: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, cwd=wd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _start_and_kill(wd: Path, args: list[str], started: Path, timeout: float = 120.0) -> None:
    """Start snakemake in its own process group; once ``started`` has content (the job is running), SIGKILL
    the whole group (Snakemake and its job) and wait for Snakemake to be gone."""
    proc = subprocess.Popen([SNAKEMAKE, *args], cwd=wd, start_new_session=True, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while not (started.is_file() and started.stat().st_size > 0):
        assert proc.poll() is None, "snakemake ended before its job started"
        assert time.monotonic() < deadline, f"{started} never appeared"
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def test_the_readme_resume_command_works_after_a_hard_kill(tmp_path):
    wd = make_workdir(tmp_path / "wd")
    # 300,000 lines (18 MB): over a second of parsing on a fast core, so the job is still running at the kill
    big = "".join(f"{i}\tpassage number {i}, long enough to take a while to parse\n" for i in range(300_000))
    config = _handmade(wd, collection=big, qrels="1 0 1 1\n", triples="q\tp\tn\n", n_random=1)
    target = "results/data/collection.parquet"
    _start_and_kill(wd, ["--cores", "1", target, *config], started=wd / "logs/prepare_collection/main.log")
    assert not (wd / target).exists(), "the job finished before the kill: the test did not interrupt it"
    assert list((wd / ".snakemake/locks").iterdir()), "a killed Snakemake leaves its lock"

    small = "7\tpassage seven\n8\tpassage eight\n9\tpassage nine\n"
    (wd / "handmade/collection.tsv").write_text(small, encoding="utf-8")  # the rerun has less to do
    unlock, resume = _documented_resume()
    rerun_alone = _run(wd, [*resume, target, *config])
    assert rerun_alone.returncode != 0 and "LockException" in rerun_alone.stdout  # why the README unlocks first
    unlocked = _run(wd, unlock)
    assert unlocked.returncode == 0, unlocked.stdout[-3000:]
    resumed = _run(wd, [*resume, target, *config])
    assert resumed.returncode == 0, resumed.stdout[-3000:]
    assert pq.read_table(wd / target).column("pid").to_pylist() == [7, 8, 9]
    locks = wd / ".snakemake/locks"
    assert not (locks.exists() and list(locks.iterdir())), "the resumed run released its lock"
