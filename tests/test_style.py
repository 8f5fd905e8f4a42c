"""House limits that keep the package readable: no function in src/ftstudy longer than 80 lines."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "ftstudy"
MAX_LINES = 80


def _functions(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield node


def test_no_function_longer_than_80_lines():
    long = []
    for path in sorted(SRC.rglob("*.py")):
        for fn in _functions(ast.parse(path.read_text(), filename=str(path))):
            n = fn.end_lineno - fn.lineno + 1
            if n > MAX_LINES:
                long.append(f"{path.relative_to(SRC.parent)}:{fn.lineno} {fn.name} ({n} lines)")
    assert not long, "functions over 80 lines:\n" + "\n".join(long)


def test_the_check_sees_a_long_function():
    """The walk above finds nested and long functions (guards against a check that cannot fail)."""
    body = "".join(f"        x{i} = {i}\n" for i in range(MAX_LINES))
    tree = ast.parse(f"def outer():\n    def inner():\n{body}        return 0\n    return inner\n")
    lengths = {fn.name: fn.end_lineno - fn.lineno + 1 for fn in _functions(tree)}
    assert lengths["inner"] > MAX_LINES and lengths["outer"] > lengths["inner"]
