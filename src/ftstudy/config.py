"""Config helpers: semantic checks beyond the JSON Schema, variant resolution and model ids.

The JSON Schema (``workflow/schemas/config.schema.yaml``) checks names, types and defaults. The checks here need
more than one key at a time (a rank range against ``top_k``, a variant's overrides against the shared settings).
Every error names the offending key.
"""

from __future__ import annotations

import copy
import functools
import os
import re
from pathlib import Path

import jsonschema
import yaml

from ftstudy.losses import LOSSES as TRAINING_LOSSES  # the one list of loss names (the schema has no enum)

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"
RESERVED_MODEL_IDS = ("base", "bm25")
# negatives -> the triplet file that the workflow produces for it (the schema's enum names the same keys).
NEGATIVE_SOURCES = {"random": "results/triplets/random.parquet", "hard": "results/triplets/hard.parquet"}


class ConfigError(ValueError):
    """A config value that cannot work; the message names the key."""


def deep_merge(base: dict, override: dict) -> dict:
    """Return a new dict: ``override`` merged into ``base`` recursively (override wins on leaves)."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_schema(path: Path = SCHEMA_PATH) -> dict:
    """The config JSON Schema as a dict."""
    with open(path, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def _sub_schema(name: str) -> dict:
    schema = load_schema()
    sub = dict(schema["$defs"][name])
    sub["$defs"] = schema["$defs"]
    return sub


def _validate_overrides(overrides: dict, defs_name: str, key: str) -> None:
    """Check a variant's ``training``/``lora`` overrides against the shared settings' schema."""
    sub = _sub_schema(defs_name)
    # Overrides are partial: no defaults, but every given key must be known and well-typed.
    validator = jsonschema.Draft202012Validator(sub)
    errors = sorted(validator.iter_errors(overrides), key=lambda e: list(e.path))
    if errors:
        err = errors[0]
        where = ".".join([key, *map(str, err.path)])
        raise ConfigError(f"config key '{where}': {err.message}")


#: Keys of ``mining`` that are execution knobs: they change no mined triplet, so no rerun-triggering param holds them.
MINING_EXECUTION_KNOBS = ("query_batch_size",)


def mining_slice(config: dict) -> dict:
    """The ``mining`` config without its execution knobs: exactly what changes ``hard.parquet``."""
    return {k: v for k, v in config["mining"].items() if k not in MINING_EXECUTION_KNOBS}


def schema_defaults() -> dict:
    """The config that the schema's defaults make on their own (the paper's values), filled in the way
    Snakemake's ``validate`` does; ``dataset_dir`` (required, no default) is ``"."``."""
    from snakemake.utils import validate

    config = {"dataset_dir": "."}
    validate(config, str(SCHEMA_PATH), set_default=True)
    return config


def check_mining(mining: dict) -> None:
    """The ``mining`` checks that need more than one key (the schema checks types and single-key bounds):
    ``1 <= rank_range[0] <= rank_range[1] <= top_k``, and ``negatives_per_query`` at most the range's size.
    Raises ConfigError naming the key."""
    start, end = mining["rank_range"]
    if start < 1:
        raise ConfigError(f"config key 'mining.rank_range': start {start} must be >= 1 (ranks count from 1)")
    if start > end:
        raise ConfigError(f"config key 'mining.rank_range': start {start} is greater than end {end}")
    if end > mining["top_k"]:
        raise ConfigError(
            f"config key 'mining.rank_range': end {end} exceeds mining.top_k {mining['top_k']}; "
            "candidates beyond top_k are never retrieved"
        )
    if mining["negatives_per_query"] > end - start + 1:
        raise ConfigError(
            f"config key 'mining.negatives_per_query': {mining['negatives_per_query']} is more than the "
            f"{end - start + 1} ranks in mining.rank_range {[start, end]}"
        )


def check_config(config: dict) -> None:
    """Semantic checks that the JSON Schema cannot express. Raises ConfigError naming the key.

    Expects a config that already passed the schema (which rejects unknown keys, wrong types, out-of-range
    numbers, unknown methods and negative sources, and variant names that break the id pattern or reuse base/bm25;
    those are not checked again here).
    """
    check_mining(config["mining"])
    for name, variant in config["variants"].items():
        if re.search(r"_seed\d+$", name):
            raise ConfigError(f"config key 'variants.{name}': names ending in _seed<N> are reserved for seeds")
        loss = resolve_variant(config, name)["loss"]
        if loss not in TRAINING_LOSSES:  # the loss registry is the one list of names: the schema has no enum
            raise ConfigError(f"config key 'variants.{name}.loss': '{loss}' is not one of {list(TRAINING_LOSSES)}")
        _validate_overrides(variant.get("training", {}), "training", f"variants.{name}.training")
        _validate_overrides(variant.get("lora", {}), "lora", f"variants.{name}.lora")
        if variant.get("lora") and variant["method"] != "lora":
            raise ConfigError(
                f"config key 'variants.{name}.lora': LoRA settings given for method '{variant['method']}'"
            )
    for key in ("timing", "analysis"):
        if config[key]["eval_set"] not in config["eval_sets"]:
            raise ConfigError(
                f"config key '{key}.eval_set': '{config[key]['eval_set']}' is not one of eval_sets "
                f"{sorted(config['eval_sets'])}"
            )
    if config["mining"]["miner"] == "bm25" and not config["bm25"]["enabled"]:
        raise ConfigError("config key 'mining.miner': 'bm25' needs bm25.enabled: true")


@functools.cache
def _variant_defaults() -> tuple:
    props = load_schema()["properties"]["variants"]["additionalProperties"]["properties"]
    return tuple((k, p["default"]) for k, p in props.items() if "default" in p and k not in ("training", "lora"))


def variant_defaults() -> dict:
    """The schema's defaults of a variant's own keys (loss, epochs): JSON Schema validation does not fill them in
    for the entries of ``variants`` (they are additionalProperties), so :func:`resolve_variant` does."""
    return dict(_variant_defaults())


def resolve_variant(config: dict, name: str) -> dict:
    """The full settings of one variant: shared ``training``/``lora`` with the variant's overrides merged in.

    Returns ``{"name", "method", "negatives", "loss", "epochs", "training": {...}, "lora": {...} | None}``.
    """
    if name not in config["variants"]:
        raise ConfigError(f"config key 'variants': no variant named '{name}'")
    v = {**variant_defaults(), **config["variants"][name]}
    training = deep_merge(config["training"], v.get("training", {}))
    lora = deep_merge(config["lora"], v.get("lora", {})) if v["method"] == "lora" else None
    return {
        "name": name,
        "method": v["method"],
        "negatives": v["negatives"],
        "loss": v["loss"],
        "epochs": v["epochs"],
        "training": training,
        "lora": lora,
    }


def trained_models(config: dict) -> list[dict]:
    """One entry per (variant, seed): ``{"model_id", "variant", "seed"}``.

    The first seed's model id is the variant name itself (the contract's ``results/models/{variant}/``);
    further seeds get ``{variant}_seed{seed}``.
    """
    out = []
    for name in config["variants"]:
        seeds = resolve_variant(config, name)["training"]["seeds"]
        for i, seed in enumerate(seeds):
            out.append({"model_id": name if i == 0 else f"{name}_seed{seed}", "variant": name, "seed": seed})
    return out


def neural_model_ids(config: dict) -> list[str]:
    """``base`` followed by every trained model id."""
    return ["base", *(m["model_id"] for m in trained_models(config))]


def model_ids(config: dict) -> list[str]:
    """Every model that gets runs and metrics: the neural models, plus ``bm25`` if enabled."""
    ids = neural_model_ids(config)
    return [*ids, "bm25"] if config["bm25"]["enabled"] else ids


#: Keys of ``training`` that change how a training job runs, not its outputs: execution knobs, read from
#: ``snakemake.config`` by workflow/scripts/train.py, never params. ``seeds`` lists the other models' seeds.
#: ``checkpoint_every`` is a knob only with ``save: last``; with ``save: best`` it sets the evaluation steps, so it
#: picks the saved model and stays in the slice. ``log_every`` stays in the slice: it sets train_log.csv's rows
#: and final_train_loss (the mean over the last ``log_every`` steps, Table III), which are outputs.
TRAINING_EXECUTION_KNOBS = ("checkpoint_every", "dataloader_workers")


def _trained_entry(config: dict, model_id: str) -> dict:
    """``{"model_id", "variant", "seed"}`` of one trained model; ConfigError if there is none."""
    entry = next((m for m in trained_models(config) if m["model_id"] == model_id), None)
    if entry is None:
        raise ConfigError(f"no trained model with id '{model_id}'")
    return entry


def training_knobs(config: dict, model_id: str) -> dict:
    """The execution knobs (:data:`TRAINING_EXECUTION_KNOBS`) of one trained model, the variant's overrides in."""
    training = resolve_variant(config, _trained_entry(config, model_id)["variant"])["training"]
    return {k: training[k] for k in TRAINING_EXECUTION_KNOBS}


def training_slice(config: dict, model_id: str) -> dict:
    """Everything that determines one trained model: the resolved variant, its seed, the data that feeds it.

    Used as a Snakemake ``params`` value so that editing one variant reruns only that variant's branch. The
    execution knobs (:func:`training_knobs`) and the variant's seed list are left out: they change no weight.
    """
    entry = _trained_entry(config, model_id)
    variant = resolve_variant(config, entry["variant"])
    tr = variant["training"]
    knobs = {k for k in TRAINING_EXECUTION_KNOBS if not (k == "checkpoint_every" and tr["save"] == "best")}
    variant["training"] = {k: v for k, v in tr.items() if k not in knobs and k != "seeds"}
    data = {"triplets": config["triplets"]} if variant["negatives"] == "random" else {"mining": mining_slice(config)}
    return {"variant": variant, "seed": entry["seed"], "base_model": config["base_model"], "data": data}


def resolve_data_path(config: dict, path: str) -> str:
    """A path from ``eval_sets``: relative to ``dataset_dir`` unless absolute."""
    p = Path(path)
    return str(p if p.is_absolute() else Path(config["dataset_dir"]) / p)


OUTPUT_DIRS = ("results", "logs", "benchmarks")  # what every job writes into, relative to the working directory


def check_paths(config: dict, root: str | os.PathLike = ".") -> None:
    """Checks of the file system before any job starts; ConfigError names the key or folder and what was expected.

    ``dataset_dir`` may be missing (``download: true`` creates it; otherwise the missing input files are
    reported), but a path that exists must be a folder, and so must its nearest existing parent. Each of
    :data:`OUTPUT_DIRS` under ``root`` (the working directory) must be a writable folder, or be creatable there.
    """
    root = Path(root)
    for name in OUTPUT_DIRS:
        _check_writable_dir(root / name, f"{name}/")
    data = root / config["dataset_dir"]
    found = _nearest_existing(data)
    if not found.is_dir():
        where = "is a file" if found == data else f"lies inside {found}, which is a file"
        raise ConfigError(
            f"config key 'dataset_dir': '{config['dataset_dir']}' {where}; expected a folder that holds "
            "MS MARCO's files under their official names (collection.tsv, queries.train.tsv, ...)"
        )


def _nearest_existing(path: Path) -> Path:
    """``path`` itself if it exists, else its closest existing parent (a broken link counts as existing)."""
    while not (path.exists() or path.is_symlink()) and path != path.parent:
        path = path.parent
    return path


def _check_writable_dir(path: Path, name: str) -> None:
    """ConfigError unless ``path`` is a folder this user may write into, or can be created as one."""
    found = _nearest_existing(path)
    shown = f"'{name}' ({path.absolute()})"
    if found.is_symlink() and not found.exists():
        raise ConfigError(f"{shown}: {found} is a broken link (to {os.readlink(found)}); expected a folder")
    if not found.is_dir():
        where = "is a file" if found == path else f"lies inside {found}, which is a file"
        raise ConfigError(f"{shown} {where}; expected a folder that the workflow writes its outputs into")
    if not os.access(found, os.W_OK | os.X_OK):
        what = "is" if found == path else f"cannot be created: its parent {found.absolute()} is"
        raise ConfigError(
            f"{shown} {what} not writable by this user; expected a writable folder (change its permissions, "
            "or run the workflow from a folder you may write into, e.g. with --directory)"
        )


def validate_config(config: dict) -> dict:
    """Validate ``config`` against the JSON Schema the way Snakemake does (filling in defaults), then run
    :func:`check_config`. Returns the (mutated) config. Raises ConfigError naming the key."""
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    try:
        validate(config, str(SCHEMA_PATH), set_default=True)
    except WorkflowError as exc:
        raise ConfigError(str(exc)) from None
    check_config(config)
    return config


def load_config(*paths: str | Path, overrides: dict | None = None) -> dict:
    """Resolve a config as ``snakemake --configfile A --configfile B --config ...`` would: the Snakefile's
    ``config/config.yaml`` first, each file deep-merged over it, then ``overrides``; validated."""
    repo = SCHEMA_PATH.parents[2]
    config: dict = {}
    for path in (repo / "config" / "config.yaml", *paths):
        with open(path, encoding="utf-8") as fh:
            config = deep_merge(config, yaml.safe_load(fh) or {})
    config = deep_merge(config, overrides or {})
    return validate_config(config)


# ---- retrieval: what changes an output (params) vs execution knobs (read from config in the scripts) ---------
ENCODING_EXECUTION_KNOBS = ("batch_size", "chunk_size", "max_tokens")
INDEX_BUILD_KEYS = {"flat": (), "ivf": ("nlist", "seed"), "hnsw": ("hnsw_m", "ef_construction")}
INDEX_SEARCH_KEYS = {"flat": (), "ivf": ("nprobe",), "hnsw": ("ef_search",)}


def encoding_slice(config: dict) -> dict:
    """The encoding settings that change a vector: ``config['encoding']`` without its execution knobs
    (batch and chunk sizes and the token budget change fp32 vectors at rounding level only, <= 1e-6)."""
    return {k: v for k, v in config["encoding"].items() if k not in ENCODING_EXECUTION_KNOBS}


def index_build_slice(config: dict) -> dict:
    """The settings that change the index file of ``retrieval.index.type`` (a flat index: none but its type)."""
    idx = config["retrieval"]["index"]
    return {"type": idx["type"], **{k: idx[k] for k in INDEX_BUILD_KEYS[idx["type"]]}}


def search_slice(config: dict) -> dict:
    """The settings that change a retrieved run: k, the rescoring depth, the index and its search-time settings;
    the backend only with an approximate index (every exact backend returns the same top-k: ftstudy.topk).
    Query batch and corpus chunk sizes are execution knobs (they change no output)."""
    ret = config["retrieval"]
    idx = ret["index"]
    out = {"k": ret["k"], "rescore_depth": ret["rescore_depth"], "index": index_build_slice(config)}
    out["index"].update({k: idx[k] for k in INDEX_SEARCH_KEYS[idx["type"]]})
    if idx["type"] != "flat":
        out["backend"] = ret["backend"]
    return out
