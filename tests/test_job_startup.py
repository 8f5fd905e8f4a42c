"""workflow/scripts/_common.py's import_frozen: the start-up path of every job that loads a model."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import REPO

PROBE = """
import gc, sys
sys.path.insert(0, {scripts!r})
from _common import import_frozen
try:
    import_frozen({modules!r})
except ModuleNotFoundError as exc:
    print("error", exc.name)
print("enabled", gc.isenabled())
print("frozen", gc.get_freeze_count())
print("loaded", [m for m in {modules!r} if m in sys.modules])
"""


def _probe(modules: list[str]) -> dict[str, str]:
    """Run import_frozen(modules) in a fresh interpreter; its printed state, key -> rest of line."""
    code = PROBE.format(scripts=str(REPO / "workflow/scripts"), modules=modules)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return dict(line.split(" ", 1) for line in out.splitlines())


def test_import_frozen_loads_the_modules_and_leaves_the_collector_on():
    state = _probe(["json", "decimal"])
    assert state["loaded"] == "['json', 'decimal']"
    assert state["enabled"] == "True"
    assert int(state["frozen"]) > 1000  # the interpreter's and the modules' objects sit in the permanent generation


def test_import_frozen_turns_the_collector_back_on_when_an_import_fails():
    state = _probe(["no_such_module_for_ftstudy"])
    assert state["error"] == "no_such_module_for_ftstudy"
    assert state["enabled"] == "True"


# ---- which ftstudy a job imports -------------------------------------------------------------------------
# A job's script as Snakemake runs it: a temporary file whose preamble appends workflow/scripts to sys.path, then
# `from _common import setup`. {before} runs first (what an earlier import or a site hook may have done).
JOB = """
import sys
sys.path.extend([{scripts!r}])
{before}
from _common import setup
import ftstudy, ftstudy.tsv
print(ftstudy.__file__)
print(ftstudy.tsv.__file__)
"""
BEFORE = {
    "other_checkout_first_on_pythonpath": "",
    "other_checkout_already_imported": "import ftstudy.tsv; assert 'other' in ftstudy.__file__, ftstudy.__file__",
}
# A finder ahead of every path entry that always serves the other checkout: _common cannot win, so it must fail.
FINDER_FIRST = """
import importlib.machinery, sys
class Other(importlib.machinery.PathFinder):
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        return super().find_spec(name, [{other!r}] if path is None else path, target)
sys.meta_path.insert(0, Other)
"""


def _other_checkout(root) -> str:
    """A fake second checkout's src/ with its own ftstudy (and ftstudy.tsv)."""
    pkg = root / "other" / "src" / "ftstudy"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("OTHER = True\n")
    (pkg / "tsv.py").write_text("OTHER = True\n")
    return str(pkg.parent)


def _run_job(tmp_path, before: str) -> subprocess.CompletedProcess:
    other = _other_checkout(tmp_path)
    script = tmp_path / "job.py"  # like .snakemake/scripts/tmpXXXX.<script>.py: not beside _common.py
    script.write_text(JOB.format(scripts=str(REPO / "workflow/scripts"), before=before.format(other=other)))
    env = {**os.environ, "PYTHONPATH": other}
    return subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, cwd=tmp_path)


@pytest.mark.parametrize("case", sorted(BEFORE))
def test_a_job_imports_the_ftstudy_of_its_own_checkout(tmp_path, case):
    proc = _run_job(tmp_path, BEFORE[case])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        str(REPO / "src" / "ftstudy" / "__init__.py"),
        str(REPO / "src" / "ftstudy" / "tsv.py"),
    ]


def test_a_job_that_cannot_get_its_own_ftstudy_fails_naming_the_other_file(tmp_path):
    proc = _run_job(tmp_path, FINDER_FIRST)
    assert proc.returncode != 0
    other_init = tmp_path / "other" / "src" / "ftstudy" / "__init__.py"
    expected = f"ImportError: ftstudy was imported from {other_init}, not from this checkout's {REPO / 'src'}"
    assert expected in proc.stderr


# ---- threads ------------------------------------------------------------------------------------------------
SETUP_THREADS = """
import os, sys, types
sys.path.extend([{scripts!r}])
from _common import setup
setup(types.SimpleNamespace(log=[], threads={threads}, rule="probe"))
print(os.environ["TOKENIZERS_PARALLELISM"], os.environ["RAYON_NUM_THREADS"], os.environ["OMP_NUM_THREADS"])
"""


@pytest.mark.parametrize(("threads", "user", "want"), [
    (4, None, "true 4 4"), (1, None, "false 1 1"), (4, "false", "false 4 4"),
])  # fmt: skip
def test_the_tokenizer_runs_on_the_jobs_threads_unless_the_user_says_otherwise(tmp_path, threads, user, want):
    """A multi-threaded job's fast tokenizer uses a Rust pool of the job's size (it was single-threaded: the
    bottleneck of full-size encoding and training); a one-thread job stays serial; the user's setting wins."""
    env = {k: v for k, v in os.environ.items() if k not in ("TOKENIZERS_PARALLELISM", "RAYON_NUM_THREADS")}
    if user is not None:
        env["TOKENIZERS_PARALLELISM"] = user
    code = SETUP_THREADS.format(scripts=str(REPO / "workflow/scripts"), threads=threads)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[-2] == want
