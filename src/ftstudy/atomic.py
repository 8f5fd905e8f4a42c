"""Atomic writes: an output either appears complete or not at all.

Every writer in the package goes through these helpers, so that an interrupted job (SIGTERM, SIGKILL, an
exception) never leaves a truncated file that looks complete. Files are written to a temporary sibling in the
same directory and moved into place with :func:`os.replace`, which is atomic on POSIX file systems.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _default_mode(is_dir: bool) -> int:
    """The mode a plain open()/mkdir() would give (mkstemp/mkdtemp use 0600/0700, too strict for shared results)."""
    return (0o777 if is_dir else 0o666) & ~_umask()


def remove_stale_temporaries(target: Path, suffix: str) -> list[Path]:
    """Delete the temporaries that an earlier writer of ``target`` left behind when it was killed (SIGKILL runs no
    clean-up; at full scale such a file can hold gigabytes). Snakemake runs one job per output, so no other live
    writer owns them. Returns what was deleted."""
    import glob

    stale = [Path(p) for p in glob.glob(str(target.parent / f".{glob.escape(target.name)}.*{suffix}.tmp"))]
    for p in stale:
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
    return stale


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it onto ``path`` only if the block succeeds.

    ``suffix`` defaults to the target's suffix, so libraries that infer a format from the name still work.
    The temporary file is removed when the block raises, and a killed earlier writer's temporaries when the next
    write starts.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    suffix = target.suffix if suffix is None else suffix
    remove_stale_temporaries(target, suffix)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix + ".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, _default_mode(is_dir=False))
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a fresh temporary directory beside ``path``; it replaces ``path`` only if the block succeeds."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(target, "")
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    os.chmod(tmp, _default_mode(is_dir=True))
    try:
        yield tmp
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented, key-sorted JSON to ``path`` atomically."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def write_parquet(df, path: str | os.PathLike) -> None:
    """Write a pandas DataFrame to parquet atomically (no index column)."""
    with atomic_path(path) as tmp:
        df.to_parquet(tmp, index=False)
