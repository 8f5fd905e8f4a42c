"""Atomic writes: a failing writer leaves neither a partial target nor temporary files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ftstudy.atomic import atomic_dir, atomic_path, write_json, write_text


def test_failed_write_leaves_nothing(tmp_path):
    target = tmp_path / "out.parquet"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def test_failed_write_keeps_previous_version(tmp_path):
    target = tmp_path / "a.json"
    write_json(target, {"v": 1})
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(target) as tmp:
            tmp.write_text("{")
            raise KeyboardInterrupt
    assert json.loads(target.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_atomic_dir_replaces_only_on_success(tmp_path):
    target = tmp_path / "model"
    with atomic_dir(target) as tmp:
        (tmp / "w").write_text("1")
    with pytest.raises(ValueError):
        with atomic_dir(target) as tmp:
            (tmp / "w").write_text("2")
            raise ValueError
    assert (target / "w").read_text() == "1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_outputs_get_the_usual_permissions_not_tempfile_ones(tmp_path):
    import os

    mask = os.umask(0o022)
    try:
        write_json(tmp_path / "x.json", {})
        with atomic_dir(tmp_path / "d") as tmp:
            (tmp / "f").write_text("")
    finally:
        os.umask(mask)
    assert (tmp_path / "x.json").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "d").stat().st_mode & 0o777 == 0o755


def test_a_killed_writers_temporary_is_removed_by_the_next_write(tmp_path):
    """SIGKILL runs no clean-up, so the temporary stays; the next write of the same output deletes it."""
    import signal
    import subprocess
    import sys
    import textwrap

    target = tmp_path / "big.parquet"
    code = textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {str(Path(__file__).resolve().parents[1] / "src")!r})
        from ftstudy.atomic import atomic_path
        with atomic_path({str(target)!r}) as tmp:
            tmp.write_bytes(b"x" * 1000)
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", code], check=False)
    assert proc.returncode == -signal.SIGKILL
    left = [p.name for p in tmp_path.iterdir()]
    assert len(left) == 1 and left[0].startswith(".big.parquet.") and left[0].endswith(".parquet.tmp")
    (tmp_path / ".other.parquet.abc.parquet.tmp").write_bytes(b"")  # another output's temporary: kept
    write_text(target, "ok")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.parquet.abc.parquet.tmp", "big.parquet"]
