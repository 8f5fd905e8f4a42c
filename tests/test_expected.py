"""Expected values: each result is marked matching, off or n/a against its published reference (Table I)."""

from __future__ import annotations

import copy
import functools
import hashlib
import json

import pyarrow.parquet as pq
import pytest

from ftstudy.config import load_config
from ftstudy.expected import (
    GENERATED_MANIFEST,
    MATCHING,
    NA,
    OFF,
    CollectionFacts,
    Setting,
    collection_facts,
    expected_columns,
    mark,
    setting_mismatch,
)
from ftstudy.prepare import prepare_collection
from ftstudy.tables import mrr_table, to_markdown

BASE_SHA = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
FULL = CollectionFacts(n_passages=8_841_823, sha256="ab" * 32)


@functools.cache
def _load_refs(path: str) -> dict:
    return load_config(path)["expected_values"]


def _refs(repo):
    """config/msmarco.yaml's expected_values (validated once per session: schema validation takes seconds)."""
    return copy.deepcopy(_load_refs(str(repo / "config" / "msmarco.yaml")))


def test_msmarco_holds_the_published_references(repo):
    ev = _refs(repo)
    assert ev["tolerance"] == 0.002
    by_model = {(r["model"], r["eval_set"]): r for r in ev["references"]}
    assert by_model[("base", "dev")]["metrics"] == {"MRR@10": 0.3056, "R@1000": 0.964}
    assert by_model[("base", "dev")]["model_sha256"] == BASE_SHA  # DESIGN.md's genuine weights
    assert by_model[("bm25", "dev")]["metrics"] == {"MRR@10": 0.1840, "R@1000": 0.8526}
    assert by_model[("bm25", "dev")]["bm25"] == {"k1": 0.9, "b": 0.4}
    assert all(r["collection"]["n_passages"] == 8_841_823 for r in ev["references"])


def test_the_embedded_default_has_no_expected_values(repo):
    assert load_config(repo / "config" / "config.yaml")["expected_values"]["references"] == []


@pytest.mark.parametrize(
    ("value", "want"),
    [(0.3056, MATCHING), (0.3075, MATCHING), (0.3037, MATCHING), (0.3077, OFF), (0.2900, OFF), (float("nan"), OFF)],
)
def test_mark_is_matching_within_the_tolerance_and_off_beyond(value, want):
    assert mark(value, 0.3056, 0.002, None) == want


def test_mark_is_na_whatever_the_value_when_the_setting_differs():
    assert mark(0.3056, 0.3056, 0.002, "model weights differ") == NA


def test_one_matching_one_off_and_one_na_row(repo):
    ev = _refs(repo)
    genuine = Setting(collection=FULL, model_sha256=BASE_SHA)
    standin = Setting(collection=FULL, model_sha256="0" * 64)
    matching = expected_columns("base", "dev", {"MRR@10": 0.3061, "R@1000": 0.9655}, ev, genuine)
    assert (matching["mark_MRR@10"], matching["mark_R@1000"]) == (MATCHING, MATCHING)
    assert matching["expected_MRR@10"] == 0.3056 and matching["expected_note"] == ""
    off = expected_columns("base", "dev", {"MRR@10": 0.2950, "R@1000": 0.9641}, ev, genuine)
    assert (off["mark_MRR@10"], off["mark_R@1000"]) == (OFF, MATCHING)
    na = expected_columns("base", "dev", {"MRR@10": 0.3056, "R@1000": 0.964}, ev, standin)
    assert (na["mark_MRR@10"], na["mark_R@1000"]) == (NA, NA)
    assert na["expected_note"] == "model weights differ"
    assert expected_columns("full_hard", "dev", {"MRR@10": 0.3}, ev, genuine) == {}  # no reference, no columns


@pytest.mark.parametrize(
    ("setting", "reason"),
    [
        (Setting(collection=CollectionFacts(8_841_823, generated=True), bm25={"k1": 0.9, "b": 0.4}), "generated"),
        (Setting(collection=CollectionFacts(12_000), bm25={"k1": 0.9, "b": 0.4}), "12000 passages"),
        (Setting(collection=FULL, bm25={"k1": 0.82, "b": 0.68}), "k1=0.82"),
        (Setting(collection=FULL, bm25=None), "k1=None"),
    ],
)
def test_bm25_is_na_on_another_collection_or_other_settings(repo, setting, reason):
    bm25_ref = next(r for r in _refs(repo)["references"] if r["model"] == "bm25")
    assert reason in setting_mismatch(bm25_ref, setting)
    assert setting_mismatch(bm25_ref, Setting(collection=FULL, bm25={"k1": 0.9, "b": 0.4})) is None


def test_a_known_collection_checksum_is_checked(repo):
    ref = next(r for r in _refs(repo)["references"] if r["model"] == "base")
    strict = ref | {"collection": {"n_passages": 8_841_823, "sha256": "cd" * 32}}
    assert setting_mismatch(strict, Setting(collection=FULL, model_sha256=BASE_SHA)) == "collection sha256 differs"
    same = Setting(collection=CollectionFacts(8_841_823, sha256="cd" * 32), model_sha256=BASE_SHA)
    assert setting_mismatch(strict, same) is None


def test_prepare_records_what_identifies_the_collection(tmp_path):
    real, generated = tmp_path / "real", tmp_path / "generated"
    for folder in (real, generated):
        folder.mkdir()
        (folder / "collection.tsv").write_bytes(b"0\tfirst passage\n7\tsecond passage\n")
    (generated / GENERATED_MANIFEST).write_text(json.dumps({"seed": 1}))
    for folder in (real, generated):
        prepare_collection(folder / "collection.tsv", folder / "collection.parquet", progress=False)
    want_sha = hashlib.sha256(b"0\tfirst passage\n7\tsecond passage\n").hexdigest()  # independent of the code
    assert collection_facts(real / "collection.parquet") == CollectionFacts(2, want_sha, False)
    assert collection_facts(generated / "collection.parquet") == CollectionFacts(2, want_sha, True)
    assert pq.read_table(real / "collection.parquet").column("pid").to_pylist() == [0, 7]


def test_table_one_carries_the_marks(tmp_path, repo):
    ev = _refs(repo)
    files = {}
    for model, mrr in (("base", 0.3050), ("bm25", 0.1700), ("full_hard", 0.2500)):
        path = tmp_path / f"{model}.json"
        path.write_text(json.dumps({"n_queries": 6980, "metrics": {"MRR@10": mrr, "R@1000": 0.9}}))
        files[(model, "dev")] = path
    settings = {
        ("base", "dev"): Setting(collection=FULL, model_sha256=BASE_SHA),
        ("bm25", "dev"): Setting(collection=FULL, bm25={"k1": 0.9, "b": 0.4}),
        ("full_hard", "dev"): Setting(collection=FULL, model_sha256="1" * 64),
    }
    trained = {"full_hard": {"variant": "full_hard", "seed": 42}}
    df = mrr_table(files, trained, {}, expected_values=ev, settings=settings).set_index("model")
    assert df.loc["base", "mark_MRR@10"] == MATCHING and df.loc["base", "mark_R@1000"] == OFF
    assert df.loc["bm25", "mark_MRR@10"] == OFF and df.loc["bm25", "expected_R@1000"] == 0.8526
    assert df.loc["full_hard", "mark_MRR@10"] != df.loc["full_hard", "mark_MRR@10"]  # NaN: no reference
    md = to_markdown(df.reset_index())
    assert "mark_MRR@10" in md and "matching" in md and "expected_source" not in md.splitlines()[0]
    without = mrr_table(files, trained, {})
    assert not [c for c in without.columns if c.startswith(("mark_", "expected_"))]


def test_the_marker_is_the_scale_generators_own_manifest():
    from ftstudy import scale_dataset

    assert GENERATED_MANIFEST == scale_dataset.MANIFEST
