"""The fixed batch order (issue 14): ``training.batch_sampler: no_duplicates`` and the paper's ``shuffled``.

Pure functions over small made-up triplets with many repeated queries and passages; no model is loaded. The
training-level checks (resume after a kill stays exact with no_duplicates) are in tests/test_training.py.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ftstudy.batching import make_schedule, schedule_stats
from ftstudy.training_data import epoch_batches, index_texts


def _dupe_heavy(n: int = 120, seed: int = 0) -> pd.DataFrame:
    """Triplets drawn from 12 queries and 25 passages (positives and negatives share one pool, so a row's
    negative is often another row's positive); never the same passage as a row's own positive and negative."""
    rng = np.random.default_rng(seed)
    q = rng.integers(0, 12, n)
    pos = rng.integers(0, 25, n)
    neg = (pos + rng.integers(1, 25, n)) % 25  # != pos
    return pd.DataFrame(
        {"query": [f"query {i}" for i in q], "positive": [f"passage {i}" for i in pos],
         "negative": [f"passage {i}" for i in neg]}
    )  # fmt: skip


def _schedule(df: pd.DataFrame, sampler: str, batch_size: int = 8, epochs: int = 3, seed: int = 5):
    _, rows = index_texts(df)
    return make_schedule(sampler, rows, batch_size, epochs, seed), rows


def test_no_batch_holds_a_query_or_passage_twice():
    df = _dupe_heavy()
    sched, rows = _schedule(df, "no_duplicates")
    q, p, n = (df[c].to_numpy() for c in ("query", "positive", "negative"))
    for b in sched.batches:  # checked on the texts themselves, by set sizes
        assert len(set(q[b])) == len(b), "a query twice in one batch"
        assert len(set(p[b]) | set(n[b])) == 2 * len(b), "a passage twice in one batch (positive or negative)"
        assert len(b) <= 8
    # Without the sampler the same data does put duplicates into batches (so the check above can fail).
    plain, _ = _schedule(df, "shuffled")
    assert any(len(set(q[b])) < len(b) for b in plain.batches)
    # Every epoch still holds every triplet exactly once: nothing is left out, clashes are only deferred.
    starts = np.cumsum([0, *sched.batches_per_epoch])
    for e in range(3):
        epoch = np.concatenate(sched.batches[starts[e] : starts[e + 1]])
        assert sorted(epoch.tolist()) == list(range(len(df)))
    stats = schedule_stats(sched, rows, 8)
    assert stats["left_out_triplets"] == 0 and stats["self_duplicate_triplets"] == 0
    assert stats["deferred_triplets"] > 0 and len(stats["deferred_triplets_per_epoch"]) == 3
    # 12 distinct queries cap a batch at 12 rows, but 8 is already hard to fill: more batches than ceil(120 / 8).
    assert stats["extra_batches"] == len(sched.batches) - 3 * 15 > 0
    assert stats["short_batches"] == sum(len(b) < 8 for b in sched.batches)


def test_same_seed_same_batches_other_seed_other_batches():
    df = _dupe_heavy()
    a, _ = _schedule(df, "no_duplicates", seed=5)
    b, _ = _schedule(df, "no_duplicates", seed=5)
    c, _ = _schedule(df, "no_duplicates", seed=6)
    assert a.batches_per_epoch == b.batches_per_epoch
    assert all(np.array_equal(x, y) for x, y in zip(a.batches, b.batches, strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(a.batches, c.batches, strict=False))
    # Each epoch is its own draw (the library seeds epoch e with seed + e).
    e1 = a.batches[: a.batches_per_epoch[0]]
    e2 = a.batches[a.batches_per_epoch[0] : a.batches_per_epoch[0] + a.batches_per_epoch[1]]
    assert not all(np.array_equal(x, y) for x, y in zip(e1, e2, strict=False))


def test_text_ids_give_the_librarys_batches_over_the_texts():
    """Our sampler is sentence-transformers' NoDuplicatesBatchSampler: run over text ids it gives exactly the
    batches that the library gives over a datasets.Dataset of the texts themselves, epoch by epoch."""
    import torch
    from datasets import Dataset
    from sentence_transformers.base.sampler import NoDuplicatesBatchSampler

    df = _dupe_heavy(n=60, seed=3)
    sched, _ = _schedule(df, "no_duplicates", batch_size=6, epochs=2, seed=11)
    lib = NoDuplicatesBatchSampler(
        Dataset.from_pandas(df), batch_size=6, drop_last=False, generator=torch.Generator(), seed=11
    )
    expected = []
    for e in range(2):
        lib.set_epoch(e)
        expected += [list(b) for b in lib]
    assert [b.tolist() for b in sched.batches] == expected


def test_shuffled_is_the_papers_order_and_all_distinct_texts_need_no_deferral():
    df = _dupe_heavy()
    sched, rows = _schedule(df, "shuffled", batch_size=8, epochs=3, seed=5)
    assert all(np.array_equal(x, y) for x, y in zip(sched.batches, epoch_batches(120, 8, 3, 5), strict=True))
    assert sched.batches_per_epoch == [15, 15, 15]
    distinct = pd.DataFrame({c: [f"{c} {i}" for i in range(40)] for c in ("query", "positive", "negative")})
    nodup, rows = _schedule(distinct, "no_duplicates", batch_size=8, epochs=2)
    stats = schedule_stats(nodup, rows, 8)
    assert [len(b) for b in nodup.batches] == [8] * 10
    assert stats["deferred_triplets"] == 0 and stats["extra_batches"] == 0 and stats["short_batches"] == 0


def test_epoch_at_counts_each_epochs_own_batches():
    from ftstudy.batching import Schedule

    s = Schedule(batches=[np.zeros(1, np.int64)] * 7, batches_per_epoch=[4, 3])
    assert [s.epoch_at(k) for k in range(1, 8)] == pytest.approx([0.25, 0.5, 0.75, 1.0, 1 + 1 / 3, 1 + 2 / 3, 2.0])


def test_a_triplet_repeating_its_own_text_is_counted_and_unknown_sampler_named():
    df = _dupe_heavy(n=30)
    df.loc[4, "negative"] = df.loc[4, "positive"]
    sched, rows = _schedule(df, "no_duplicates")
    assert schedule_stats(sched, rows, 8)["self_duplicate_triplets"] == 1
    with pytest.raises(ValueError, match="training.batch_sampler.*'sorted'.*no_duplicates"):
        make_schedule("sorted", rows, 8, 1, 0)
