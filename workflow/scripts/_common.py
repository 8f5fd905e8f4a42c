"""Shared start of every Snakemake script: import path, logging into the rule's log, thread count.

Usage at the top of a script (Snakemake puts this folder on sys.path)::

    from _common import setup
    log = setup(snakemake)
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
if str(SRC) not in sys.path:
    sys.path.insert(0, str(SRC))


def setup(smk, name: str | None = None) -> logging.Logger:
    """Send stderr (tqdm bars, warnings, tracebacks) and ``logging`` to the rule's log; pin threads.

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
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
    return logging.getLogger(name or smk.rule)
