"""The fixed batch order of one training job: ``training.batch_sampler`` (``shuffled`` or ``no_duplicates``).

Both samplers fix the batches of ALL epochs before training starts (the trainer then reads one long pass over
that list, :class:`ftstudy.training_data.ScheduleBatchSampler`), so resuming after a kill skips exactly the
batches already trained and every later batch equals an uninterrupted run's.

- ``shuffled`` (the paper): epoch ``e`` is the permutation ``default_rng([seed, 0, e])`` cut into batches
  (:func:`ftstudy.training_data.epoch_batches`).
- ``no_duplicates``: no batch holds the same text twice, across the query, positive and negative columns, so
  with in-batch negatives (``mnrl``) no other row's passage is a copy of a row's own positive. The batches come
  from sentence-transformers' own ``NoDuplicatesBatchSampler`` (``drop_last=False``), run once per epoch up front
  with its seed and ``set_epoch(e)`` (its generator is seeded with ``seed + e``), over a table of text ids
  (equal id = equal text, one id space for all three columns) instead of the texts themselves. The library's
  rule: walk the epoch's permutation, put each row into the current batch unless one of its texts is already
  there, in which case the row is deferred to a later batch (never dropped). An epoch may so have more, and
  smaller, batches than ``ceil(n / batch_size)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ftstudy.training_data import TRIPLET_COLUMNS, epoch_batches

BATCH_SAMPLERS = ("shuffled", "no_duplicates")


@dataclass
class Schedule:
    """The batches of every epoch in training order, how many fall in each epoch, and the sampler's counts."""

    batches: list[np.ndarray]  # row numbers, int64
    batches_per_epoch: list[int]
    stats: dict = field(default_factory=dict)

    def epoch_at(self, step: int) -> float:
        """Epochs done after optimiser step ``step`` (1-based): ``e + k / batches_per_epoch[e]`` for the k-th
        step of epoch ``e`` (so the last step of epoch ``e`` gives ``e + 1``)."""
        done = 0
        for e, count in enumerate(self.batches_per_epoch):
            if step <= done + count:
                return e + (step - done) / count
            done += count
        return float(len(self.batches_per_epoch))


class _TextIdTable:
    """What ``NoDuplicatesBatchSampler`` reads of a dataset: column names, length and row ``i`` as a dict of text
    ids. Counts how often each row is looked at: the sampler looks a row up once per visit, so a row visited more
    than once was deferred (it clashed with a text already in the batch)."""

    def __init__(self, rows: np.ndarray):
        self.rows = rows
        self.column_names = list(TRIPLET_COLUMNS)
        self.visits = np.zeros(len(rows), dtype=np.int64)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, int]:
        self.visits[i] += 1
        return dict(zip(self.column_names, (int(v) for v in self.rows[i]), strict=True))


def no_duplicate_batches(rows: np.ndarray, batch_size: int, epochs: int, seed: int) -> Schedule:
    """Batches with no repeated text id in any batch (sentence-transformers' ``NoDuplicatesBatchSampler``).

    ``rows``: (n, 3) int text ids of each triplet's query, positive and negative (one id space: equal id = equal
    text, :func:`ftstudy.training_data.index_texts`). Returns the :class:`Schedule`; its ``stats`` count the
    triplets deferred to a later batch, in all and per epoch. RuntimeError if an epoch does not hold every triplet
    exactly once (none is left out with ``drop_last=False``)."""
    import torch
    from sentence_transformers.base.sampler import NoDuplicatesBatchSampler

    table = _TextIdTable(np.asarray(rows, dtype=np.int64))
    sampler = NoDuplicatesBatchSampler(
        table, batch_size=batch_size, drop_last=False, generator=torch.Generator(), seed=seed
    )
    batches, per_epoch, deferred = [], [], []
    for e in range(epochs):
        table.visits[:] = 0
        sampler.set_epoch(e)
        epoch = [np.asarray(b, dtype=np.int64) for b in sampler]
        covered = np.bincount(np.concatenate(epoch), minlength=len(table)) if epoch else np.zeros(0, np.int64)
        if len(table) and not (covered == 1).all():
            raise RuntimeError(
                f"no_duplicates epoch {e}: {int((covered == 0).sum())} triplets left out, "
                f"{int((covered > 1).sum())} repeated; expected every triplet exactly once"
            )
        batches += epoch
        per_epoch.append(len(epoch))
        deferred.append(int((table.visits > 1).sum()))
    stats = {"deferred_triplets": int(sum(deferred)), "deferred_triplets_per_epoch": deferred}
    return Schedule(batches, per_epoch, stats)


def schedule_stats(schedule: Schedule, rows: np.ndarray, batch_size: int) -> dict:
    """Counts for train_summary.json: ``left_out_triplets`` (0 for both samplers: every epoch covers every
    triplet), ``extra_batches`` (beyond ``epochs x ceil(n / batch_size)``), ``short_batches`` (fewer than
    ``batch_size`` rows) and ``self_duplicate_triplets`` (a text repeated within one triplet, e.g. negative =
    positive: no sampler can keep those apart), plus the sampler's own ``stats``."""
    n, epochs = len(rows), len(schedule.batches_per_epoch)
    rows = np.asarray(rows)
    self_dup = (rows[:, :, None] == rows[:, None, :]).sum(axis=(1, 2)) > rows.shape[1] if n else np.zeros(0, bool)
    return {
        "deferred_triplets": 0,
        "left_out_triplets": epochs * n - int(sum(len(b) for b in schedule.batches)),
        "extra_batches": int(sum(schedule.batches_per_epoch) - epochs * -(-n // batch_size)),
        "short_batches": int(sum(len(b) < batch_size for b in schedule.batches)),
        "self_duplicate_triplets": int(self_dup.sum()),
        **schedule.stats,
    }


def make_schedule(sampler: str, rows: np.ndarray, batch_size: int, epochs: int, seed: int) -> Schedule:
    """The job's fixed batch order for ``training.batch_sampler`` = ``sampler`` (see the module docstring).
    ``rows``: (n, 3) text ids of the training triplets. ValueError for an unknown sampler."""
    if sampler == "shuffled":
        n = len(rows)
        batches = epoch_batches(n, batch_size, epochs, seed)
        return Schedule(batches, [-(-n // batch_size)] * epochs, {})
    if sampler == "no_duplicates":
        return no_duplicate_batches(rows, batch_size, epochs, seed)
    raise ValueError(f"unknown training.batch_sampler '{sampler}'; expected one of {list(BATCH_SAMPLERS)}")
