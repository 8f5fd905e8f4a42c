"""Reruns a user relies on (docs/cluster.md), on config/test.yaml: -R, -f, a changed variant, --until, and
resuming an interrupted run with --rerun-incomplete.

The expected job sets are computed independently from the full DAG (a dry run in an empty folder): a forced job's
downstream closure, a stage's upstream closure. Most checks are dry runs against the session's one completed
run (conftest.completed_test_run), which they never modify.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import make_workdir, snakemake

pytestmark = pytest.mark.workflow

CONFIG = ("--configfile", "config/test.yaml")
EXTRA: tuple[str, ...] = ()  # more options for every dry run (none in the tests)


@dataclass(frozen=True)
class Job:
    rule: str
    output: tuple[str, ...]
    input: tuple[str, ...]
    log: tuple[str, ...]

    @property
    def key(self) -> tuple[str, tuple[str, ...]]:
        return (self.rule, self.output)


def parse_jobs(out: str) -> list[Job]:
    """The jobs that a dry run (or a run) prints: 'rule X:' / 'localrule X:' blocks with their fields."""
    jobs, cur = [], None
    for line in out.splitlines():
        if m := re.match(r"^(?:local)?(?:rule|checkpoint) (\w+):\s*$", line):
            if cur:
                jobs.append(cur)
            cur = {"rule": m[1]}
        elif cur is not None and (m := re.match(r"^    (\w+): (.*)$", line)):
            cur[m[1]] = m[2]
        elif cur is not None and not line.startswith("    "):
            jobs.append(cur)
            cur = None
    if cur:
        jobs.append(cur)

    def split(v):
        return tuple(s.strip() for s in v.split(", ")) if v else ()

    return [
        Job(j["rule"], split(j.get("output", "")), split(j.get("input", "")), split(j.get("log", ""))) for j in jobs
    ]


def dry_run(wd: Path, *args: str) -> list[Job]:
    """Targets must come before the options (``--configfile`` takes several values; a later one wins)."""
    cfg = () if "--configfile" in args else CONFIG
    return parse_jobs(snakemake(wd, *args, "-n", "--cores", "2", *EXTRA, *cfg).stdout)


def _covers(path: str, outputs: tuple[str, ...]) -> bool:
    return any(path == o or path.startswith(o.rstrip("/") + "/") for o in outputs)


def producer(jobs: list[Job], path: str) -> Job:
    found = [j for j in jobs if _covers(path, j.output)]
    assert len(found) == 1, f"{path}: {found}"
    return found[0]


def _closure(jobs: list[Job], start: Job, linked) -> set:
    """Keys of ``start`` and every job reachable from it through ``linked(frontier_job, other_job)``."""
    keys, frontier = {start.key}, [start]
    while frontier:
        j = frontier.pop()
        for k in jobs:
            if k.key not in keys and linked(j, k):
                keys.add(k.key)
                frontier.append(k)
    return keys


def downstream(jobs: list[Job], start: Job) -> set:
    """start and every job that (transitively) consumes its outputs."""
    return _closure(jobs, start, lambda j, k: any(_covers(i, j.output) for i in k.input))


def upstream(jobs: list[Job], start: Job) -> set:
    """start and every job whose outputs it (transitively) consumes."""
    return _closure(jobs, start, lambda j, k: any(_covers(i, k.output) for i in j.input))


def keys(jobs: list[Job]) -> set:
    return {j.key for j in jobs}


@pytest.fixture(scope="module")
def dag(tmp_path_factory) -> list[Job]:
    """Every job of the test config's study (rule all), from a dry run in an empty folder: the full DAG."""
    jobs = dry_run(make_workdir(tmp_path_factory.mktemp("dag")))
    assert len(jobs) > 20
    return jobs


LORA_HARD_TRAINED = "results/models/lora_hard/train_summary.json"


def test_forcerun_of_one_models_training_rebuilds_that_branch_only(completed_test_run, dag):
    train = producer(dag, LORA_HARD_TRAINED)
    expected = downstream(dag, train)
    got = dry_run(completed_test_run, "-R", LORA_HARD_TRAINED)
    assert keys(got) == expected
    # the branch reaches evaluation and the aggregate tables, and leaves the other models alone
    assert any("results/metrics/lora_hard/dev.json" in j.output for j in got)
    others = [j for j in got if any(m in " ".join(j.output) for m in ("full_random", "full_hard", "lora_random"))]
    assert others == [], others
    # -R by rule name forces every job of that rule (each variant trained by that rule) and what follows them
    by_rule = dry_run(completed_test_run, "-R", train.rule)
    same_rule = [j for j in dag if j.rule == train.rule]
    assert keys(by_rule) == set().union(*(downstream(dag, j) for j in same_rule))


def test_force_one_output_rebuilds_only_that_output(completed_test_run, dag):
    target = "results/metrics/lora_hard/dev.json"
    got = dry_run(completed_test_run, target, "-f")
    assert keys(got) == {producer(dag, target).key}


def test_changing_one_variant_reruns_that_variant_only(completed_test_run, dag, tmp_path):
    # lora_hard's epochs change in a config overlay: its training's params change, and so does everything after
    overlay = tmp_path / "lora_hard_epochs.yaml"
    overlay.write_text("variants:\n  lora_hard: {epochs: 2}\n")
    got = dry_run(completed_test_run, "--configfile", "config/test.yaml", str(overlay))
    assert keys(got) == downstream(dag, producer(dag, LORA_HARD_TRAINED))
    # the same config without the change: nothing to do (the shared completed run is up to date)
    assert dry_run(completed_test_run) == []


# Execution knobs: sizes of chunks and batches, the token budget, threads. They change floats at rounding level
# only (tests/test_encode.py, test_search.py, test_mining.py), so a completed run stays up to date.
KNOBS = """
encoding: {chunk_size: 7, batch_size: 3, max_tokens: 512}
retrieval: {query_batch_size: 2, corpus_chunk_size: 5, score_budget_mb: 1}
mining: {query_batch_size: 3}
"""


def test_changing_execution_knobs_reruns_nothing(completed_test_run, tmp_path):
    overlay = tmp_path / "knobs.yaml"
    overlay.write_text(KNOBS)
    assert dry_run(completed_test_run, "--configfile", "config/test.yaml", str(overlay)) == []
    only_chunk = tmp_path / "chunk.yaml"
    only_chunk.write_text("encoding: {chunk_size: 3}\n")
    assert dry_run(completed_test_run, "--configfile", "config/test.yaml", str(only_chunk)) == []


def test_changing_the_mining_seed_reruns_only_the_hard_negative_branch(completed_test_run, dag, tmp_path):
    overlay = tmp_path / "mining_seed.yaml"
    overlay.write_text("mining: {seed: 7}\n")
    got = dry_run(completed_test_run, "--configfile", "config/test.yaml", str(overlay))
    mining = producer(dag, "results/triplets/hard.parquet")
    # and the diagnosis, which mines the eval queries with the same settings (it reads no mined file)
    diagnosis = {j.key for j in dag if j.rule == "diagnose_negatives"}
    assert diagnosis and keys(got) == downstream(dag, mining) | diagnosis
    assert mining.key in keys(got)
    # no job of base or of a random-negative variant (aggregate tables and figures are downstream of every model)
    own = [o for j in got for o in j.output if re.search(r"/(base|full_random|lora_random)(/|\.|_)", o)]
    assert own == [], own
    # the hard-negative variants and those on a filtered set (drawn from the same candidates), no random one
    trained = {j.output[0].split("/")[2] for j in got if j.rule.startswith("train")}
    assert {"full_hard", "lora_hard"} <= trained and not trained & {"full_random", "lora_random"}, trained


def test_until_stops_at_a_stage(tmp_path, dag):
    mining = producer(dag, "results/triplets/hard.parquet")
    got = dry_run(make_workdir(tmp_path), "--until", mining.rule)
    assert keys(got) == upstream(dag, mining)
    rules = {j.rule for j in got}
    assert mining.rule in rules
    assert not rules & {producer(dag, LORA_HARD_TRAINED).rule, producer(dag, "results/metrics/base/dev.json").rule}


def test_interrupted_run_resumes_with_rerun_incomplete(tmp_path):
    """Snakemake dies (kill -9) while a job runs; the job itself finishes its output (as a cluster job would).

    That output is marked incomplete: a plain run refuses it, --rerun-incomplete redoes that job and what follows,
    and the jobs that had finished before the kill are not repeated.
    """
    wd = make_workdir(tmp_path)
    target = "results/metrics/bm25/dev.json"
    chain = dry_run(wd, target)
    runner = producer(chain, "results/runs/bm25/dev.trec")
    assert runner.log, runner
    exe = Path(sys.executable).with_name("snakemake")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    with open(tmp_path / "first.log", "w") as first_log:
        proc = subprocess.Popen(
            [str(exe), target, "--cores", "1", *CONFIG],
            cwd=wd,
            env=env,
            stdout=first_log,
            stderr=subprocess.STDOUT,
        )
        try:
            end = time.monotonic() + 300
            while not (wd / runner.log[0]).exists():
                assert proc.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
                assert time.monotonic() < end, "the run never reached " + runner.rule
                time.sleep(0.1)
            proc.send_signal(signal.SIGKILL)  # Snakemake dies; its running job goes on as an orphan
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
    end = time.monotonic() + 120
    while not all((wd / o).exists() for o in runner.output):
        assert time.monotonic() < end, "the orphaned job did not finish"
        time.sleep(0.2)
    time.sleep(1.0)
    finished = [j for j in chain if j.key not in downstream(chain, runner)]
    assert finished, "some jobs must have finished before the kill"
    mtimes = {o: (wd / o).stat().st_mtime_ns for j in finished for o in j.output}

    refused = snakemake(wd, target, "-n", "--cores", "1", *CONFIG, check=False)
    assert refused.returncode != 0 and "incomplete" in refused.stdout.lower(), refused.stdout[-3000:]
    plan = dry_run(wd, target, "--rerun-incomplete")
    assert keys(plan) == downstream(chain, runner)

    snakemake(wd, "--unlock", "--cores", "1", *CONFIG)  # the killed run left its lock behind
    resumed = snakemake(wd, target, "--cores", "1", "--rerun-incomplete", *CONFIG).stdout
    assert keys(parse_jobs(resumed)) == downstream(chain, runner)
    assert {o: (wd / o).stat().st_mtime_ns for o in mtimes} == mtimes  # finished jobs were not repeated
    assert (wd / target).exists()


# Growth (issue 14): a new remedy variant, interpolation weight or fusion method is a config edit, and the rerun
# makes only its branch. The expected jobs come from the full DAG of the grown config (a dry run in an empty
# folder): every job whose outputs the test config's DAG does not have, and what follows them.
GROWTH = {
    "variant": "variants:\n  lora_hard_grown: {method: lora, negatives: hard, modifies: lora_hard, epochs: 1}\n",
    "weight": "wise_ft: {weights: [0.5, 0.3]}\n",
    "fusion": "fusion: {methods: [rrf, wsum]}\n",
}


@pytest.mark.parametrize("what", sorted(GROWTH))
def test_adding_a_remedy_runs_only_its_branch(completed_test_run, dag, tmp_path, what):
    overlay = tmp_path / f"grow_{what}.yaml"
    overlay.write_text(GROWTH[what])
    args = ("--configfile", "config/test.yaml", str(overlay))
    grown = dry_run(make_workdir(tmp_path / "empty"), *args)
    known = {o for j in dag for o in j.output}
    new = [j for j in grown if not set(j.output) <= known]
    assert new, "the overlay adds no job: the test config has changed"
    expected = set().union(*(downstream(grown, j) for j in new))
    got = dry_run(completed_test_run, *args)
    assert keys(got) == expected
    # the paper's family is untouched: no training of a paper variant, no Table I or significance.csv
    rules = {j.rule for j in got}
    assert not {"significance", "figure_mrr_ci"} & rules, rules
    paper = [
        o for j in got for o in j.output if re.search(r"models/(base|full_random|full_hard|lora_random|lora_hard)/", o)
    ]
    assert paper == [], paper
