"""Shared start of every Snakemake script: import path, logging into the rule's log, thread count.

Usage at the top of a script (Snakemake puts this folder on sys.path)::

    from _common import setup
    log = setup(snakemake)                                   # or, for a job that loads a model:
    log = setup(snakemake, preload=("sentence_transformers",))
"""

from __future__ import annotations

import gc
import importlib
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
if str(SRC) not in sys.path:
    sys.path.insert(0, str(SRC))


def setup(smk, name: str | None = None, preload: Sequence[str] = ()) -> logging.Logger:
    """Send stderr (tqdm bars, warnings, tracebacks) and ``logging`` to the rule's log; pin threads; import
    ``preload`` (module names) with :func:`import_frozen`.

    Returns a logger named after the rule. Threads: torch and BLAS use ``smk.threads``.
    """
    if smk.log:
        log_path = Path(str(smk.log[0]))
        log_path.parent.mkdir(parents=True, exist_ok=True)
        sys.stderr = open(log_path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115
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
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import_frozen(preload)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
    return logging.getLogger(name or smk.rule)


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
