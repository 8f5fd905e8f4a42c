"""The cross-encoder of a filtered set: loading it and scoring (query, passage) pairs with progress in the log.

sentence-transformers' MS MARCO bi-encoder recipe (``examples/.../ms_marco/train_bi-encoder_mnrl.py``) keeps a
mined negative only if ``cross_encoder_score(query, negative) <= cross_encoder_score(query, positive) - 3``,
with the scores of ``cross-encoder/ms-marco-MiniLM-L6-v2`` as raw logits. Here the scores are raw logits too
(``activation_fn`` = identity, whatever the model's default), so the margin (``cross_encoder_margin``, 3.0) means
the same thing. A Hub id loads from the Hub (or its cache); a local folder is a model folder on disk (the rule
then declares it as an input, so a changed model reruns the set).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

LOG_EVERY_PAIRS = 50_000


def is_local_model(spec: str) -> bool:
    """Whether a ``cross_encoder`` value names a folder on disk (relative to the working directory)."""
    return Path(spec).expanduser().is_dir()


def load_cross_encoder(spec: str, device: str | None = None, dtype: str = "fp32"):
    """A ``sentence_transformers.CrossEncoder`` from a Hub id or a local folder, on ``device`` (default: a GPU
    where there is one), with weights in ``dtype`` (fp32, bf16 or fp16; see :func:`ftstudy.encode.resolve_dtype`).
    A name that is neither a folder nor loadable gives an error naming it."""
    import torch
    from sentence_transformers import CrossEncoder

    from ftstudy.models import pick_device

    device = pick_device(device)
    try:
        model = CrossEncoder(str(Path(spec).expanduser()) if is_local_model(spec) else spec, device=device)
    except OSError as exc:
        raise OSError(
            f"cross_encoder '{spec}': neither a model folder (relative to the working directory) nor a Hub id that "
            f"loads here ({exc})"
        ) from None
    if dtype != "fp32":
        model.to({"bf16": torch.bfloat16, "fp16": torch.float16}[dtype])
    model.eval()
    return model


def cross_encoder_scorer(model, batch_size: int = 64, log_every: int = LOG_EVERY_PAIRS) -> Callable:
    """``score(query_texts, passage_texts) -> (n,) float32`` raw logits of ``model`` (a CrossEncoder), scored
    ``batch_size`` pairs per forward pass (an execution knob), in blocks of ``log_every`` pairs, each logged with
    the running count and rate."""
    import torch

    state = {"pairs": 0, "seconds": 0.0}

    def score(queries: list[str], passages: list[str]) -> np.ndarray:
        out = np.empty(len(queries), np.float32)
        for s in range(0, len(queries), log_every):
            t0 = time.perf_counter()
            pairs = list(zip(queries[s : s + log_every], passages[s : s + log_every], strict=True))
            logits = model.predict(
                pairs, batch_size=batch_size, activation_fn=torch.nn.Identity(), show_progress_bar=False
            )
            out[s : s + len(pairs)] = np.asarray(logits, np.float32).reshape(-1)
            state["pairs"] += len(pairs)
            state["seconds"] += time.perf_counter() - t0
            log.info(
                "cross-encoder: %d pairs scored (%.0f pairs/s)",
                state["pairs"],
                state["pairs"] / max(state["seconds"], 1e-9),
            )
        return out

    return score


def model_signature(spec: str) -> dict:
    """What identifies the cross-encoder in the stats: the id or folder, and the folder's weight files' sha256."""
    from ftstudy.provenance import model_weights_sha256

    if not is_local_model(spec):
        return {"cross_encoder": spec, "local": False}
    return {"cross_encoder": os.fspath(spec), "local": True, "weights_sha256": model_weights_sha256(spec)}
