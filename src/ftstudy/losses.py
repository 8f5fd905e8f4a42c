"""The study's training losses, chosen per variant, all taken from sentence-transformers: the ONE list of names.

:data:`REGISTRY` maps each name a variant may give as ``variants.<name>.loss`` to its builder. The config schema
names no losses; :func:`ftstudy.config.check_config` checks a variant's loss against :data:`LOSSES` (this
registry's keys), so adding a loss here is all it takes. Importing this module is cheap (no torch, no
sentence-transformers: the builders import them when called), because ``ftstudy.config`` imports it while
Snakemake builds the DAG.

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

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


def _triplet(metric: str, margin_key: str) -> Callable[[Any, dict], Any]:
    """Builder of ``TripletLoss`` with distance ``metric`` (a ``TripletDistanceMetric`` attribute) and the margin
    read from ``training[margin_key]``."""

    def build(model, training: dict):
        from sentence_transformers.sentence_transformer import losses as st_losses

        return st_losses.TripletLoss(
            model,
            distance_metric=getattr(st_losses.TripletDistanceMetric, metric),
            triplet_margin=float(training[margin_key]),
        )

    return build


def _mnrl(model, training: dict):
    """``MultipleNegativesRankingLoss`` with scale ``training["mnrl_scale"]`` (cosine similarity x scale)."""
    from sentence_transformers.sentence_transformer import losses as st_losses

    return st_losses.MultipleNegativesRankingLoss(model, scale=float(training["mnrl_scale"]))


@dataclass(frozen=True)
class LossSpec:
    """One registered loss: ``build(model, training) -> loss module``; ``unnormalised``: trained without the
    model's ``Normalize`` layer."""

    build: Callable[[Any, dict], Any]
    unnormalised: bool = False


REGISTRY: dict[str, LossSpec] = {
    "triplet_cosine": LossSpec(_triplet("COSINE", "triplet_margin")),
    "triplet_euclidean": LossSpec(_triplet("EUCLIDEAN", "euclidean_margin"), unnormalised=True),
    "mnrl": LossSpec(_mnrl),
}
LOSSES: tuple[str, ...] = tuple(REGISTRY)


def loss_spec(loss_name: str) -> LossSpec:
    """The registry entry of ``loss_name``; ValueError listing the known names otherwise."""
    try:
        return REGISTRY[loss_name]
    except KeyError:
        raise ValueError(f"unknown loss '{loss_name}'; expected one of {list(LOSSES)}") from None


def needs_unnormalised(loss_name: str) -> bool:
    """True for the loss that trains without the Normalize layer (the original code's setting)."""
    return loss_spec(loss_name).unnormalised


def build_loss(model, loss_name: str, training: dict):
    """A sentence-transformers loss module for ``loss_name`` with the margins/scale from ``training``."""
    return loss_spec(loss_name).build(model, training)


def drop_normalize(model) -> list[int]:
    """Remove every ``Normalize`` module from a SentenceTransformer in place; return their positions."""
    from sentence_transformers.sentence_transformer.modules import Normalize

    positions = [i for i, module in enumerate(model) if isinstance(module, Normalize)]
    for i in reversed(positions):
        del model[i]
    return positions


def restore_normalize(model, positions: list[int]) -> None:
    """Put ``Normalize`` modules back at ``positions`` (as returned by :func:`drop_normalize`)."""
    from sentence_transformers.sentence_transformer.modules import Normalize

    for i in positions:
        model.insert(i, Normalize())
