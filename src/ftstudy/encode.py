"""Text -> embedding. Every embedding in the study goes through :func:`encode_texts`.

Output is always L2-normalised float32, so inner product equals cosine similarity whatever loss trained the
model. (The retrieval issue owns this module and may make it faster; the signature is the contract.)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def encode_texts(
    model, texts: Sequence[str], batch_size: int = 256, show_progress: bool = False
) -> np.ndarray:
    """Encode ``texts`` with a SentenceTransformer.

    Returns an array of shape (len(texts), dim), float32, each row with L2 norm 1 (cosine = inner product).
    """
    emb = model.encode(
        list(texts),
        batch_size=batch_size,
        convert_to_numpy=True,
        normalize_embeddings=True,
        show_progress_bar=show_progress,
    )
    return np.asarray(emb, dtype=np.float32)
