"""Config: schema validation, the paper's values at full scale, conda envs against pyproject."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

import pytest
import yaml
from conftest import make_workdir

from ftstudy.config import ConfigError, check_paths, load_config, resolve_variant, trained_models, training_slice


def test_full_scale_config_has_the_papers_values(repo):
    c = load_config(repo / "config" / "msmarco.yaml")
    assert c["base_model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert c["triplets"]["random"]["n"] == 1_000_000
    assert c["mining"] == c["mining"] | {
        "miner": "base",
        "top_k": 200,
        "rank_range": [51, 200],
        "negatives_per_query": 1,
        "margin": None,
        "max_queries": None,
    }
    t = c["training"]
    assert (t["lr"], t["warmup_steps"], t["warmup_ratio"], t["batch_size"]) == (2e-5, 1000, None, 128)
    assert (t["adam_betas"], t["max_grad_norm"], t["weight_decay"]) == ([0.9, 0.999], 1.0, 0.01)
    assert (t["max_seq_length"], t["triplet_margin"], t["save"], t["train_fraction"]) == (256, 0.2, "last", 1.0)
    assert c["lora"] == {"r": 16, "alpha": 32, "dropout": 0.05, "target_modules": ["query", "value"]}
    expected = {
        "full_random": ("full", "random", 3),
        "full_hard": ("full", "hard", 5),
        "lora_random": ("lora", "random", 3),
        "lora_hard": ("lora", "hard", 3),
    }
    for name, (method, negatives, epochs) in expected.items():
        v = resolve_variant(c, name)
        assert (v["method"], v["negatives"], v["epochs"], v["loss"]) == (method, negatives, epochs, "triplet_cosine")
    assert c["eval_sets"]["dev"]["queries"] == "queries.dev.small.tsv"
    assert c["eval_sets"]["dev"]["qrels"] == "qrels.dev.small.tsv"
    assert c["retrieval"]["k"] == 1000
    assert (c["timing"]["n_queries"], c["timing"]["repeats"], c["timing"]["top_k"]) == (10000, 3, 200)
    assert c["analysis"]["n_pairs"] == 1000


def _leaves(d, prefix=()):
    for k, v in d.items():
        if isinstance(v, dict):
            yield from _leaves(v, (*prefix, k))
        else:
            yield (*prefix, k)


def _is_remedy_key(key: tuple, default: dict) -> bool:
    """A key that ``remedies: false`` drops (ftstudy.config.apply_remedies_gate)."""
    if key[0] in ("wise_ft", "fusion") or key[:2] in (("mining", "filtered_sets"), ("mining", "diagnose_eval_sets")):
        return True
    return key[0] == "variants" and "modifies" in default["variants"][key[1]]


def test_msmarco_restates_every_key_the_default_overrides(repo):
    default = yaml.safe_load((repo / "config" / "config.yaml").read_text())
    full = yaml.safe_load((repo / "config" / "msmarco.yaml").read_text())
    full_leaves = set(_leaves(full))
    paper = [k for k in _leaves(default) if not _is_remedy_key(k, default)]
    missing = [".".join(k) for k in paper if k not in full_leaves]
    assert not missing, f"config/msmarco.yaml does not restate: {missing}"
    # the remedies' keys are dropped by msmarco.yaml's remedies: false, and restated at full scale by remedies.yaml
    remedies = set(_leaves(yaml.safe_load((repo / "config" / "remedies.yaml").read_text())))
    remedy_keys = [k for k in _leaves(default) if _is_remedy_key(k, default)]
    assert remedy_keys, "the embedded default has no remedy"
    missing = [".".join(k) for k in remedy_keys if k not in remedies]
    assert not missing, f"config/remedies.yaml does not restate: {missing}"


@pytest.mark.parametrize(
    "override, key",
    [
        ({"minin": {"top_k": 3}}, "minin"),
        ({"mining": {"top_k": "many"}}, "top_k"),
        ({"training": {"lr": -1}}, "lr"),
        ({"mining": {"rank_range": [60, 50]}}, "mining.rank_range"),
        ({"mining": {"rank_range": [0, 50]}}, "mining.rank_range"),
        ({"mining": {"rank_range": [51, 300]}}, "mining.rank_range"),
        ({"variants": {"x": {"method": "qlora", "negatives": "random"}}}, "method"),
        ({"variants": {"x": {"method": "full", "negatives": "random", "loss": "hinge"}}}, "loss"),
        ({"variants": {"x": {"method": "full", "negatives": "bm25neg"}}}, "negatives"),
        ({"variants": {"base": {"method": "full", "negatives": "random"}}}, "base"),
        ({"variants": {"x": {"method": "full", "negatives": "random", "training": {"lrr": 1}}}}, "variants.x.training"),
        ({"timing": {"eval_set": "nope"}}, "timing.eval_set"),
    ],
)
def test_bad_config_is_rejected_naming_the_key(override, key):
    with pytest.raises(ConfigError) as err:
        load_config(overrides=override)
    assert key in str(err.value)


def test_variant_overrides_merge_into_shared_settings():
    c = load_config(
        overrides={
            "variants": {
                "extra": {
                    "method": "lora",
                    "negatives": "hard",
                    "loss": "mnrl",
                    "epochs": 1,
                    "training": {"lr": 1e-4},
                    "lora": {"r": 8},
                }
            }
        }
    )
    v = resolve_variant(c, "extra")
    assert v["training"]["lr"] == 1e-4 and v["training"]["batch_size"] == c["training"]["batch_size"]
    assert v["lora"]["r"] == 8 and v["lora"]["alpha"] == 32
    assert "extra" in [m["model_id"] for m in trained_models(c)]


def test_several_seeds_give_one_model_per_seed():
    c = load_config(overrides={"training": {"seeds": [1, 2]}})
    ids = [m["model_id"] for m in trained_models(c)]
    assert "full_random" in ids and "full_random_seed2" in ids
    assert len(ids) == 2 * len(c["variants"])


def test_training_slice_depends_only_on_its_variant():
    a = load_config()
    b = load_config(overrides={"variants": {"lora_hard": {"epochs": 9}}})
    assert training_slice(a, "full_random") == training_slice(b, "full_random")
    assert training_slice(a, "lora_hard") != training_slice(b, "lora_hard")


def _req_name(req: str) -> str:
    return re.split(r"[<>=!~\[; ]", req, maxsplit=1)[0].lower().replace("_", "-")


# Packages the Snakemake driver needs but no rule's environment does.
DRIVER_ONLY = {"snakemake", "snakemake-executor-plugin-slurm", "jsonschema"}


def test_conda_envs_list_the_same_packages_as_pyproject(repo):
    project = tomllib.loads((repo / "pyproject.toml").read_text())["project"]
    declared = {_req_name(r) for r in project["dependencies"]} | {"faiss-cpu"}
    pinned = {}
    for env in sorted((repo / "envs").glob("*.yaml")):
        spec = yaml.safe_load(env.read_text())
        pip = next(d["pip"] for d in spec["dependencies"] if isinstance(d, dict) and "pip" in d)
        for line in pip:
            name, _, version = line.partition("==")
            assert version, f"{env.name}: '{line}' is not pinned with =="
            pinned.setdefault(_req_name(name), set()).add(version)
    assert set(pinned) == declared - DRIVER_ONLY
    inconsistent = {k: v for k, v in pinned.items() if len(v) > 1}
    assert not inconsistent, f"envs pin different versions: {inconsistent}"
    from packaging.requirements import Requirement

    for req in map(Requirement, project["dependencies"]):
        name = _req_name(req.name)
        if name in pinned:
            (version,) = pinned[name]
            assert req.specifier.contains(version, prereleases=True), f"{name}=={version} outside {req}"


# ---- the file system, checked before any job starts (ftstudy.config.check_paths, from common.smk) -------------
@pytest.fixture
def open_workdir():
    """A scratch copy of the workflow that another user may enter (pytest's own tmp folders are private)."""
    path = Path(tempfile.mkdtemp(prefix="ftstudy-paths-"))
    path.chmod(0o777)
    (path / "home").mkdir()
    (path / "home").chmod(0o777)  # the user's HOME (snakemake's cache), writable whatever the case
    yield make_workdir(path)
    for p in (path, *path.rglob("*")):
        if p.is_dir() and not p.is_symlink():
            p.chmod(0o777)
    shutil.rmtree(path)


def _dry_run(wd: Path, *args: str) -> subprocess.CompletedProcess:
    """``snakemake -n`` in ``wd`` as a user without root's override of file permissions (root runs it as
    nobody, with setpriv, so that an unwritable folder really is unwritable)."""
    cmd = [str(Path(sys.executable).with_name("snakemake")), "-n", *args]
    if os.geteuid() == 0:
        if not shutil.which("setpriv"):
            pytest.skip("running as root without setpriv: cannot make a folder unwritable")
        cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *cmd]
    home = wd / "home"
    env = {**os.environ, "HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache"), "HF_HUB_OFFLINE": "1"}
    return subprocess.run(cmd, cwd=wd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _results_read_only(wd: Path) -> None:
    (wd / "results").mkdir(mode=0o555)


def _workdir_read_only(wd: Path) -> None:
    wd.chmod(0o555)


BAD_PATHS = {
    "dataset_dir_is_a_file": (
        lambda wd: (wd / "msmarco.tsv").write_text("0\tnot a folder\n"),
        ["--config", "dataset_dir=msmarco.tsv"],
        "config key 'dataset_dir': 'msmarco.tsv' is a file; expected a folder that holds MS MARCO's files",
    ),
    "results_not_writable": (_results_read_only, [], "'results/' ({wd}/results) is not writable by this user"),
    "workdir_not_writable": (
        _workdir_read_only,
        [],
        "'results/' ({wd}/results) cannot be created: its parent {wd} is not writable by this user",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_PATHS))
def test_bad_paths_stop_a_dry_run_with_a_clear_message(open_workdir, case):
    make_bad, args, message = BAD_PATHS[case]
    wd = open_workdir
    make_bad(wd)
    proc = _dry_run(wd, *args)
    assert proc.returncode != 0
    assert message.format(wd=wd) in proc.stdout, proc.stdout[-3000:]
    assert "Traceback" not in proc.stdout


def test_full_scale_dry_run_needs_no_data_folder_yet(open_workdir):
    """download: true, data/msmarco absent: the dry run lists the downloads (no path error)."""
    proc = _dry_run(open_workdir, "--configfile", "config/msmarco.yaml", "--", "results/data/collection.parquet")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "download_collectionandqueries" in proc.stdout and not (open_workdir / "data").exists()


def _paths_error(root: Path, dataset_dir: str) -> str:
    with pytest.raises(ConfigError) as err:
        check_paths({"dataset_dir": dataset_dir}, root)
    return str(err.value)


def test_check_paths_names_what_is_in_the_way(tmp_path):
    (tmp_path / "a.tsv").write_text("0\tx\n")
    assert _paths_error(tmp_path, "a.tsv/msmarco") == (
        "config key 'dataset_dir': 'a.tsv/msmarco' lies inside "
        f"{tmp_path / 'a.tsv'}, which is a file; expected a folder that holds MS MARCO's files under their "
        "official names (collection.tsv, queries.train.tsv, ...)"
    )
    (tmp_path / "logs").write_text("not a folder\n")
    assert _paths_error(tmp_path, "data") == (
        f"'logs/' ({tmp_path / 'logs'}) is a file; expected a folder that the workflow writes its outputs into"
    )
    (tmp_path / "logs").unlink()
    (tmp_path / "results").symlink_to(tmp_path / "gone")
    assert f"'results/' ({tmp_path / 'results'}): {tmp_path / 'results'} is a broken link" in _paths_error(
        tmp_path, "data"
    )


def test_check_paths_accepts_folders_that_do_not_exist_yet(tmp_path):
    check_paths({"dataset_dir": "data/msmarco"}, tmp_path)  # download: true creates it; results/ is created too
    (tmp_path / "results").mkdir()
    check_paths({"dataset_dir": str(tmp_path / "results")}, tmp_path)  # an existing folder, absolute
