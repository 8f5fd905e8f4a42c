"""workflow/scripts/_common.py's import_frozen: the start-up path of every job that loads a model."""

from __future__ import annotations

import subprocess
import sys

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
