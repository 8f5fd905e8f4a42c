"""The embedded default's generated data set: determinism, MS MARCO formats, sizes, and difficulty measured with
the real base model (MRR@10 inside [0.3, 0.8]; hard negatives closer to the query than random passages)."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import REPO, make_workdir, snakemake

from ftstudy import synthetic
from ftstudy.synthetic import FILES, generate, write_dataset

SCHEMA_DEFAULTS = {
    k: v["default"]
    for k, v in yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())["properties"]["synthetic"][
        "properties"
    ].items()
}
TEST_YAML = yaml.safe_load((REPO / "config/test.yaml").read_text())
SIZE_KEYS = ("n_topics", "passages_per_topic", "n_train_queries", "n_dev_queries", "triples_per_query")


def _sizes(overrides: dict) -> dict:
    return {k: overrides.get(k, SCHEMA_DEFAULTS[k]) for k in SIZE_KEYS}


TEST_SIZES = _sizes(TEST_YAML["synthetic"])  # config/test.yaml's sizes
DEFAULT_SIZES = _sizes({})  # the embedded default's sizes (schema defaults; config/config.yaml keeps them)
SEED = TEST_YAML.get("synthetic", {}).get("seed", SCHEMA_DEFAULTS["seed"])


def _write(tmp: Path, seed: int, sizes: dict) -> Path:
    write_dataset(generate(seed, **sizes), tmp)
    return tmp


def _digests(folder: Path) -> dict:
    return {name: hashlib.sha256((folder / name).read_bytes()).hexdigest() for name in FILES}


def _read_tsv(path: Path, n_fields: int) -> list[list[str]]:
    """Parse a TSV strictly: every line has exactly ``n_fields`` non-empty fields (like the official files)."""
    rows = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").split("\n"), start=1):
        if line == "":
            continue
        fields = line.split("\t")
        assert len(fields) == n_fields, f"{path.name}:{lineno}: {len(fields)} fields, expected {n_fields}"
        assert all(f.strip() == f and f for f in fields), f"{path.name}:{lineno}: empty or padded field"
        rows.append(fields)
    assert path.read_bytes().endswith(b"\n")
    return rows


def _parse(folder: Path) -> dict:
    coll = _read_tsv(folder / "collection.tsv", 2)
    out = {"collection": {int(p): t for p, t in coll}, "n_collection_lines": len(coll)}
    for split, qfile, rfile in (
        ("train", "queries.train.tsv", "qrels.train.tsv"),
        ("dev", "queries.dev.small.tsv", "qrels.dev.small.tsv"),
    ):
        rows = _read_tsv(folder / qfile, 2)
        out[f"{split}_queries"] = {int(q): t for q, t in rows}
        out[f"n_{split}_query_lines"] = len(rows)
        qrels = _read_tsv(folder / rfile, 4)
        assert all(r[1] == "0" and r[3] == "1" for r in qrels), f"{rfile}: expected 'qid 0 pid 1' lines"
        out[f"{split}_qrels"] = [(int(q), int(p)) for q, _, p, _ in qrels]
    out["triples"] = _read_tsv(folder / "triples.train.small.tsv", 3)
    return out


# ---- determinism -----------------------------------------------------------------------------------------
def test_same_seed_same_bytes_other_seed_other_data(tmp_path):
    a = _digests(_write(tmp_path / "a", SEED, TEST_SIZES))
    b = _digests(_write(tmp_path / "b", SEED, TEST_SIZES))
    assert a == b
    c = _digests(_write(tmp_path / "c", SEED + 1, TEST_SIZES))
    for name in FILES:
        assert a[name] != c[name], f"{name} does not depend on the seed"


# config/test.yaml's data set as generated before the templates moved out of synthetic.py into the package data
# file (commit 8e78fb1). A deliberate change to the templates, the generator or bm25s/PyStemmer updates these.
PINNED_TEST_DIGESTS = {
    "collection.tsv": "5ae81aeac7bf65a7be03ec3b0757f66c3e8e7bbdb4f1a9e11d52405cb9c54f83",
    "queries.train.tsv": "8bf3344f68bd13766ff86be39d41cbb73df089f95e857167daff7b33a24ac893",
    "qrels.train.tsv": "a693d79aae1c9f7f3414bd95b0ee4197b9b137f21a459eab3ddc126af58672be",
    "triples.train.small.tsv": "ed8412eab8c548b9e1d29eac29607ebc02ceea004b4c5c4336426109c73d0f86",
    "queries.dev.small.tsv": "a50a5ed303a041caa1f548b0c9d1010cd1fc459abf167a5474fb7c95fd4efc24",
    "qrels.dev.small.tsv": "b5a73cb35485a7dc2945081f6967b17686a005ee7b9be9940841ee1f285dc6a1",
}


def test_test_config_bytes_are_pinned(tmp_path):
    assert (SEED, TEST_SIZES["n_topics"], TEST_SIZES["n_dev_queries"]) == (20261126, 12, 32), "test.yaml changed"
    assert _digests(_write(tmp_path, SEED, TEST_SIZES)) == PINNED_TEST_DIGESTS


def test_generate_defaults_are_the_schema_defaults_and_the_cli_uses_them(tmp_path, capsys):
    import inspect

    defaults = {n: p.default for n, p in inspect.signature(generate).parameters.items() if n in SIZE_KEYS}
    assert defaults == DEFAULT_SIZES
    synthetic.main(["--seed", str(SEED), "--out", str(tmp_path / "cli"), "--n-topics", "12", "--passages-per-topic",
                    "8", "--n-train-queries", "48", "--n-dev-queries", "32", "--triples-per-query", "2"])  # fmt: skip
    assert json.loads(capsys.readouterr().out)["seed"] == SEED
    assert _digests(tmp_path / "cli") == PINNED_TEST_DIGESTS


def test_generation_does_not_touch_global_random_state():
    import random

    random.seed(5)
    expected = random.random()
    random.seed(5)
    generate(SEED, **TEST_SIZES)
    assert random.random() == expected


# ---- formats and sizes -----------------------------------------------------------------------------------
@pytest.mark.parametrize("sizes", [TEST_SIZES, DEFAULT_SIZES], ids=["test_yaml", "default"])
def test_formats_and_sizes_follow_config(tmp_path, sizes):
    d = _parse(_write(tmp_path, SEED, sizes))
    coll = d["collection"]
    assert d["n_collection_lines"] == len(coll) == sizes["n_topics"] * sizes["passages_per_topic"]  # unique pids
    assert len(set(coll.values())) == len(coll), "duplicate passage texts"
    words = [len(t.split()) for t in coll.values()]
    assert synthetic.MIN_WORDS <= min(words) and max(words) <= synthetic.MAX_WORDS
    for split in ("train", "dev"):
        queries, qrels = d[f"{split}_queries"], d[f"{split}_qrels"]
        assert d[f"n_{split}_query_lines"] == len(queries) == sizes[f"n_{split}_queries"]  # unique qids
        assert len(set(queries.values())) == len(queries), f"duplicate {split} query texts"
        judged = [q for q, _ in qrels]
        assert sorted(judged) == sorted(queries), f"{split}: every query has exactly one judged passage"
        assert all(p in coll for _, p in qrels), f"{split} qrels name a pid missing from the collection"
        assert all(re.fullmatch(r"[a-z0-9 '/.,-]+", t) for t in queries.values()), "queries look like search queries"
    assert not set(d["train_queries"]) & set(d["dev_queries"]), "train and dev qids overlap"
    assert not set(d["train_queries"].values()) & set(d["dev_queries"].values()), "train and dev texts overlap"
    # triples: (query, its judged positive's text, a different passage of the collection)
    triples = d["triples"]
    assert len(triples) == sizes["n_train_queries"] * sizes["triples_per_query"]
    pos_text = {d["train_queries"][q]: coll[p] for q, p in d["train_qrels"]}
    texts = set(coll.values())
    for query, pos, neg in triples:
        assert pos_text[query] == pos
        assert neg in texts and neg != pos


def test_triple_negatives_look_relevant(tmp_path):
    """Like the official file (negatives from BM25's top 1000): a negative shares words with its query far more
    often than a random passage does, and usually talks about the same entity."""
    ds = generate(SEED, **DEFAULT_SIZES)
    topic_of_text = {t: ds.topics[p] for p, t in ds.collection}

    def overlap(a, b):
        wa, wb = set(re.findall(r"[a-z0-9]+", a.lower())), set(re.findall(r"[a-z0-9]+", b.lower()))
        return len(wa & wb)

    rng = np.random.default_rng(0)
    texts = [t for _, t in ds.collection]
    neg = np.mean([overlap(q, n) for q, _, n in ds.triples])
    rand = np.mean([overlap(q, texts[rng.integers(len(texts))]) for q, _, _ in ds.triples])
    same_topic = np.mean([topic_of_text[n] == topic_of_text[p] for _, p, n in ds.triples])
    assert neg > 2 * rand
    assert same_topic > 0.5


def test_bad_sizes_are_rejected():
    with pytest.raises(ValueError, match="n_topics"):
        generate(SEED, n_topics=1)
    with pytest.raises(ValueError, match="queries requested"):
        generate(SEED, n_topics=2, passages_per_topic=4, n_train_queries=500, n_dev_queries=10)


def test_generator_bm25_is_the_baselines_default():
    """The triples' negatives come from BM25 with ftstudy.bm25's Anserini k1/b: the schema's bm25 defaults."""
    from ftstudy import bm25

    schema = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
    props = schema["properties"]["bm25"]["properties"]
    assert (props["k1"]["default"], props["b"]["default"]) == (bm25.ANSERINI_K1, bm25.ANSERINI_B) == (0.9, 0.4)
    assert "k1=0.9" not in (REPO / "src/ftstudy/synthetic.py").read_text()


# ---- the templates: a package data file --------------------------------------------------------------------------
def test_templates_are_read_from_the_package_data_file():
    raw = json.loads((REPO / "src/ftstudy/data/synthetic_templates.json").read_text(encoding="utf-8"))
    tpl = synthetic.load_templates()
    assert [k.name for k in tpl.kinds] == [k["name"] for k in raw["kinds"]]
    assert len(tpl.kinds) == 6 and sum(len(k.attrs) for k in tpl.kinds) == sum(len(k["attrs"]) for k in raw["kinds"])
    assert tpl.prefixes == tuple(raw["prefixes"].split()) and len(tpl.prefixes) == 42
    river = tpl.kinds[0]
    assert river.attrs[0].queries[0] == raw["kinds"][0]["attrs"][0]["queries"][0] == "how long is the {q}"
    ds = generate(SEED, **TEST_SIZES)
    assert any(e.startswith("the ") and e.endswith(" River") for e in ds.entities)  # the file's entity pattern


def test_a_regular_install_ships_the_templates(tmp_path):
    """A wheel (not the editable install) contains the data file, and the installed package generates from it."""
    import shutil
    import subprocess
    import sys
    import zipfile

    src = tmp_path / "checkout"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    shutil.copytree(REPO / "src", src / "src", ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"))
    pip = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", tmp_path / "whl", src], check=True)
    (wheel,) = (tmp_path / "whl").glob("ftstudy-*.whl")
    assert "ftstudy/data/synthetic_templates.json" in zipfile.ZipFile(wheel).namelist()
    target = tmp_path / "site"
    subprocess.run([*pip, "install", "--no-deps", "--no-index", "--target", target, wheel], check=True)
    code = (
        f"import ftstudy.synthetic as s; assert s.__file__.startswith({str(target)!r}), s.__file__; "
        f"print(len(s.generate({SEED}, **{TEST_SIZES!r}).collection))"
    )
    # -S: no site-packages (so not the editable install); the installed copy alone, bm25s from the venv's path
    env = {"PYTHONPATH": f"{target}:{':'.join(p for p in sys.path if 'site-packages' in p)}", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-S", "-c", code], env=env, capture_output=True, text=True, check=True)
    assert int(out.stdout) == TEST_SIZES["n_topics"] * TEST_SIZES["passages_per_topic"]


def test_bad_template_file_names_file_line_and_entry(tmp_path):
    good = (REPO / "src/ftstudy/data/synthetic_templates.json").read_text(encoding="utf-8")
    with pytest.raises(ValueError, match=r"mine.json:3: not valid JSON"):
        synthetic.parse_templates('{\n "prefixes": "a b",\n oops\n}', "mine.json")
    bad = json.loads(good)
    bad["kinds"][1]["attrs"][0]["value"] = {"gaussian": [0, 1]}
    with pytest.raises(ValueError, match=r"mine.json: kind 'mountain', attribute 'height': value must be one of"):
        synthetic.parse_templates(json.dumps(bad), "mine.json")
    del bad["kinds"]
    with pytest.raises(ValueError, match=r"mine.json: missing or malformed entry.*kinds"):
        synthetic.parse_templates(json.dumps(bad), "mine.json")


def test_interrupted_write_leaves_no_partial_file(tmp_path, monkeypatch):
    ds = generate(SEED, **TEST_SIZES)
    calls = {"n": 0}
    real = Path.write_bytes

    def flaky(self, data):
        calls["n"] += 1
        if calls["n"] == 3:
            real(self, data[: len(data) // 2])
            raise OSError("disk full")
        return real(self, data)

    monkeypatch.setattr(Path, "write_bytes", flaky)
    with pytest.raises(OSError):
        write_dataset(ds, tmp_path)
    present = sorted(p.name for p in tmp_path.iterdir())
    assert present == sorted(FILES[:2]), present  # no third file, no temporary leftovers


# ---- difficulty with the real base model -----------------------------------------------------------------
def test_base_model_difficulty(base_model, tmp_path):
    """Exact cosine search over the whole generated collection (config/test.yaml's sizes): the base model's
    MRR@10 on the dev queries (ir_measures, checked against a direct NumPy computation) lies in [0.3, 0.8], and
    its hard negatives (ranks 6-50, positive excluded) are closer to the query than random passages."""
    import ir_measures
    from ir_measures import RR

    from ftstudy.encode import encode_texts

    d = _parse(_write(tmp_path, SEED, TEST_SIZES))
    pids = np.array(sorted(d["collection"]))
    corpus = encode_texts(base_model, [d["collection"][p] for p in pids], batch_size=64)
    qids = sorted(d["dev_queries"])
    queries = encode_texts(base_model, [d["dev_queries"][q] for q in qids], batch_size=64)
    scores = queries @ corpus.T
    order = np.argsort(-scores, axis=1, kind="stable")

    qrels = [ir_measures.Qrel(str(q), str(p), 1) for q, p in d["dev_qrels"]]
    run = [
        ir_measures.ScoredDoc(str(q), str(pids[j]), float(scores[i, j]))
        for i, q in enumerate(qids)
        for j in order[i, :100]
    ]
    mrr = ir_measures.calc_aggregate([RR @ 10], qrels, run)[RR @ 10]

    positive = dict(d["dev_qrels"])
    ranks = np.array([1 + int(np.flatnonzero(pids[order[i]] == positive[q])[0]) for i, q in enumerate(qids)])
    direct = float(np.mean(np.where(ranks <= 10, 1.0 / ranks, 0.0)))
    assert mrr == pytest.approx(direct, abs=1e-6)
    assert 0.3 <= mrr <= 0.8, f"base MRR@10 {mrr:.3f} outside [0.3, 0.8]"

    rng = np.random.default_rng(0)
    hard, rand = [], []
    for i, q in enumerate(qids):
        others = order[i][pids[order[i]] != positive[q]]
        hard.append(scores[i, others[5:50]].mean())
        rand.append(scores[i, rng.choice(others, size=45, replace=False)].mean())
    assert np.mean(hard) > np.mean(rand) + 0.02, (np.mean(hard), np.mean(rand))


# ---- the rule ----------------------------------------------------------------------------------------------
@pytest.mark.workflow
def test_rule_writes_the_files_only_for_the_synthetic_dir(tmp_path):
    wd = make_workdir(tmp_path / "wd")
    targets = [f"results/synthetic-msmarco/{name}" for name in FILES]
    snakemake(wd, *targets, "--cores", "1", "--configfile", "config/test.yaml")
    expected = tmp_path / "expected"
    write_dataset(generate(SEED, **TEST_SIZES), expected)
    assert _digests(wd / "results/synthetic-msmarco") == _digests(expected)
    n = TEST_SIZES["n_topics"] * TEST_SIZES["passages_per_topic"]
    assert f"{n} passages" in (wd / "logs/synthetic_dataset/synthetic.log").read_text()
    # A real dataset_dir: no rule may write there.
    proc = snakemake(wd, "--list-rules", "--configfile", "config/test.yaml", "--config", "dataset_dir=elsewhere")
    assert "synthetic_dataset" not in proc.stdout
