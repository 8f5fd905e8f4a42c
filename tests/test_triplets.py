"""Seeded reservoir sample of triples.train.small.tsv: deterministic, uniform, n > lines takes every line."""

from __future__ import annotations

import logging
import random
from collections import Counter

import pyarrow.parquet as pq

from ftstudy.parquet_meta import read_provenance
from ftstudy.triplets import reservoir_sample, sample_triplets


def _triples_file(path, n_lines):
    lines = [f'query {i}\tpositive {i} "quoted"\tnegative {i}' for i in range(n_lines)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return [tuple(line.split("\t")) for line in lines]


def _rows(path):
    t = pq.read_table(path)
    assert t.schema.names == ["query", "positive", "negative"]
    assert all(str(ty) == "string" for ty in t.schema.types)
    return list(zip(*(t.column(c).to_pylist() for c in t.schema.names), strict=True))


def test_sample_is_seeded_distinct_and_in_file_order(tmp_path):
    lines = _triples_file(tmp_path / "t.tsv", 1000)
    a = sample_triplets(tmp_path / "t.tsv", tmp_path / "a.parquet", n=100, seed=7, row_group_size=30, progress=False)
    sample_triplets(tmp_path / "t.tsv", tmp_path / "b.parquet", n=100, seed=7, progress=False)
    sample_triplets(tmp_path / "t.tsv", tmp_path / "c.parquet", n=100, seed=8, progress=False)
    ra, rb, rc = _rows(tmp_path / "a.parquet"), _rows(tmp_path / "b.parquet"), _rows(tmp_path / "c.parquet")
    assert a == {
        "n_requested": 100,
        "n_lines": 1000,
        "n_sampled": 100,
        "took_all": False,
        "seed": 7,
        "source": str(tmp_path / "t.tsv"),
    }
    assert read_provenance(tmp_path / "a.parquet") == a
    assert ra == rb and ra != rc
    assert len(set(ra)) == 100 and set(ra) <= set(lines)
    positions = [lines.index(r) for r in ra]
    assert positions == sorted(positions)
    assert pq.ParquetFile(tmp_path / "a.parquet").metadata.num_row_groups == 4


def test_n_larger_than_file_takes_every_line_and_says_so(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    lines = _triples_file(tmp_path / "t.tsv", 37)
    stats = sample_triplets(tmp_path / "t.tsv", tmp_path / "all.parquet", n=1000, seed=1, progress=False)
    assert stats["took_all"] and stats["n_sampled"] == 37
    assert _rows(tmp_path / "all.parquet") == lines
    warned = [r.message for r in caplog.records if r.levelname == "WARNING"]
    assert len(warned) == 1 and "has 37 lines, not more than the 1000 requested" in warned[0]
    # the shortfall is recorded in the output itself
    prov = read_provenance(tmp_path / "all.parquet")
    assert (prov["n_requested"], prov["n_lines"], prov["n_sampled"], prov["took_all"]) == (1000, 37, 37, True)


def test_the_warning_goes_to_the_given_callback_only_when_the_file_is_short(tmp_path):
    _triples_file(tmp_path / "t.tsv", 20)
    seen: list[str] = []
    sample_triplets(tmp_path / "t.tsv", tmp_path / "a.parquet", n=19, seed=1, progress=False, warn=seen.append)
    assert seen == [] and read_provenance(tmp_path / "a.parquet")["took_all"] is False
    sample_triplets(tmp_path / "t.tsv", tmp_path / "b.parquet", n=20, seed=1, progress=False, warn=seen.append)
    assert len(seen) == 1 and "has 20 lines, not more than the 20 requested" in seen[0]


def test_reservoir_is_uniform():
    """Each of N items is kept with probability k/N (Algorithm L), checked over 4000 seeded draws."""
    n_items, k, trials = 40, 5, 4000
    counts = Counter()
    for seed in range(trials):
        sample, seen = reservoir_sample(range(n_items), k, random.Random(seed))
        assert seen == n_items and len(sample) == k and len({i for i, _ in sample}) == k
        counts.update(item for _, item in sample)
    expected = trials * k / n_items  # 500 per item; binomial sd ~ 20.9
    assert all(abs(counts[i] - expected) < 6 * 20.9 for i in range(n_items)), counts
    # early and late items alike: no position bias
    first, last = sum(counts[i] for i in range(10)), sum(counts[i] for i in range(30, 40))
    assert abs(first - last) < 0.1 * first
