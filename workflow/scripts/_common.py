"""Shared start of every Snakemake script: import path, logging into the rule's log, thread count.

Usage at the top of a script (Snakemake puts this folder on sys.path)::

    from _common import setup
    log = setup(snakemake)                                   # or, for a job that loads a model:
    log = setup(snakemake, preload=("sentence_transformers",))
"""

from __future__ import annotations

import functools
import gc
import importlib
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"


def use_local_package(src: Path = SRC, package: str = "ftstudy") -> None:
    """Make ``package`` come from ``src`` (this checkout), whatever else is on the path.

    ``src`` goes first on ``sys.path``, ahead of ``PYTHONPATH`` entries and of an editable install of another
    checkout (a ``.pth`` path or a meta-path finder, which sit after the path entries). A copy of ``package``
    imported from elsewhere before this ran is dropped from ``sys.modules`` and imported again from ``src``;
    if that still does not give this checkout's copy, ImportError says which file won.
    """
    entry = str(src)
    sys.path[:] = [entry, *(p for p in sys.path if p != entry)]
    importlib.invalidate_caches()
    if package in sys.modules and not _is_inside(sys.modules[package], src):
        for name in [m for m in sys.modules if m == package or m.startswith(package + ".")]:
            del sys.modules[name]
    module = importlib.import_module(package)
    if not _is_inside(module, src):
        raise ImportError(f"{package} was imported from {module.__file__}, not from this checkout's {src}")


def _is_inside(module, src: Path) -> bool:
    """Whether ``module``'s file lies inside the folder ``src``."""
    file = getattr(module, "__file__", None)
    return file is not None and Path(file).resolve().is_relative_to(src.resolve())


use_local_package()


def setup(smk, name: str | None = None, preload: Sequence[str] = ()) -> logging.Logger:
    """Send stderr (tqdm bars, warnings, tracebacks) and ``logging`` to the rule's log; pin threads; import
    ``preload`` (module names) with :func:`import_frozen`.

    Returns a logger named after the rule. Threads: torch and BLAS use ``smk.threads``.
    """
    if smk.log:
        from ftstudy.log_stream import LineLog

        log_path = Path(str(smk.log[0]))
        log_path.parent.mkdir(parents=True, exist_ok=True)
        # progress bars as one line per update (no carriage returns), every 30 s unless a bar sets its own interval
        sys.stderr = LineLog(open(log_path, "a", buffering=1, encoding="utf-8"))  # noqa: SIM115
        os.environ.setdefault("TQDM_MININTERVAL", "30")
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )
    threads = max(1, int(getattr(smk, "threads", 1) or 1))
    # Set before torch/numpy load (they read these at import), so jobs that never import torch don't pay for it.
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    # The fast tokenizer's Rust pool on the job's threads (it tokenises whole chunks in one call: the encoding's
    # length sort, training's tokenise-once), one thread for a one-thread job. Single-threaded, it was the
    # bottleneck of the full-size encoding (~40 s of each 200,000-passage chunk on one core while the forward pass
    # waited) and of training (508 s for 1.75M texts); bench/bench_tokenizer_threads.py. A user's setting wins.
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "true" if threads > 1 else "false")
    os.environ.setdefault("RAYON_NUM_THREADS", str(threads))
    import_frozen(preload)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
    return logging.getLogger(name or smk.rule)


def warn_user(log: logging.Logger, msg: str) -> None:
    """A warning the user must see: into the rule's log (``log.warning``) and, as one line, on the terminal
    that started Snakemake (``sys.__stderr__``: :func:`setup` sends ``sys.stderr`` to the log)."""
    log.warning(msg)
    terminal = sys.__stderr__
    if terminal is not None and terminal is not sys.stderr:
        terminal.write(f"WARNING ({log.name}): {' '.join(msg.split())}\n")
        terminal.flush()


def user_warnings(log: logging.Logger):
    """:func:`warn_user` bound to ``log``: the ``warn`` callback that ftstudy's data functions take."""
    return functools.partial(warn_user, log)


def import_frozen(modules: Sequence[str]) -> None:
    """Import ``modules`` with CPython's cyclic garbage collector paused, then move every object loaded so far
    into the collector's permanent generation (``gc.freeze``) and turn the collector back on.

    Importing sentence-transformers creates about 820,000 tracked objects: the collections that the import
    triggers, and the one at interpreter exit, each walk all of them. Frozen, they are never walked again; the
    job's own objects are collected as usual. This takes about 2 s (of about 7) off every job that loads a
    model on 2 CPU cores (bench/bench_startup.py measures it).
    """
    gc.disable()
    try:
        for name in modules:
            importlib.import_module(name)
    finally:
        gc.freeze()
        gc.enable()
