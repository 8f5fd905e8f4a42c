"""The study's training losses, chosen per variant, all taken from sentence-transformers.

- ``triplet_cosine`` (default, the paper as written): ``max(0, cos(q, n) - cos(q, p) + margin)``, margin
  ``training.triplet_margin`` (0.2). This is ``TripletLoss`` with ``TripletDistanceMetric.COSINE``: the distance
  ``1 - cos`` turns ``d(q, p) - d(q, n) + m`` into the formula above.
- ``triplet_euclidean`` (what the original code ran): ``TripletLoss`` with its defaults, Euclidean distance and
  margin ``training.euclidean_margin`` (5), trained on UNNORMALISED embeddings because the original code dropped
  the base model's ``Normalize`` layer. :func:`drop_normalize` removes it for training and
  :func:`restore_normalize` puts it back before saving, so the saved model keeps the base's module layout (and
  retrieval, which always L2-normalises, is unaffected either way).
- ``mnrl``: ``MultipleNegativesRankingLoss`` (scale ``training.mnrl_scale``); each triplet's negative is an extra
  hard negative beside the in-batch negatives (the third column of the training set).
"""

from __future__ import annotations

from sentence_transformers.sentence_transformer import losses as st_losses
from sentence_transformers.sentence_transformer.modules import Normalize

LOSSES = ("triplet_cosine", "triplet_euclidean", "mnrl")


def needs_unnormalised(loss_name: str) -> bool:
    """True for the loss that trains without the Normalize layer (the original code's setting)."""
    return loss_name == "triplet_euclidean"


def build_loss(model, loss_name: str, training: dict):
    """A sentence-transformers loss module for ``loss_name`` with the margins/scale from ``training``."""
    if loss_name == "triplet_cosine":
        return st_losses.TripletLoss(
            model,
            distance_metric=st_losses.TripletDistanceMetric.COSINE,
            triplet_margin=float(training["triplet_margin"]),
        )
    if loss_name == "triplet_euclidean":
        return st_losses.TripletLoss(
            model,
            distance_metric=st_losses.TripletDistanceMetric.EUCLIDEAN,
            triplet_margin=float(training["euclidean_margin"]),
        )
    if loss_name == "mnrl":
        return st_losses.MultipleNegativesRankingLoss(model, scale=float(training["mnrl_scale"]))
    raise ValueError(f"unknown loss '{loss_name}'; expected one of {LOSSES}")


def drop_normalize(model) -> list[int]:
    """Remove every ``Normalize`` module from a SentenceTransformer in place; return their positions."""
    positions = [i for i, module in enumerate(model) if isinstance(module, Normalize)]
    for i in reversed(positions):
        del model[i]
    return positions


def restore_normalize(model, positions: list[int]) -> None:
    """Put ``Normalize`` modules back at ``positions`` (as returned by :func:`drop_normalize`)."""
    for i in positions:
        model.insert(i, Normalize())
