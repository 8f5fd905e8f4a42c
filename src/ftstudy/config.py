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
#: Derived model ids: a seed's model, a weight-space interpolation, a fused run. Variant names may not take them.
RESERVED_ID_PATTERNS = {
    r"_seed\d+$": "names ending in _seed<N> are reserved for seeds",
    r"_wise\d+": "names holding _wise<NN> are reserved for weight-space interpolation (wise_ft)",
    r"^hybrid_": "names starting with hybrid_ are reserved for BM25 + dense fusion (fusion)",
}


def negatives_path(name: str) -> str:
    """The triplet file of a negatives source: ``random``, ``hard`` or a ``mining.filtered_sets`` name."""
    return f"results/triplets/{name}.parquet"


# negatives -> the triplet file that the workflow produces for it (filtered sets: negatives_path(name)).
NEGATIVE_SOURCES = {"random": negatives_path("random"), "hard": negatives_path("hard")}


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
MINING_EXECUTION_KNOBS = ("query_batch_size", "shards")


#: Keys of ``mining`` that define other outputs (the filtered sets, the diagnosis), not ``hard.parquet``.
MINING_OTHER_OUTPUTS = ("filtered_sets", "diagnose_eval_sets")


def mining_slice(config: dict) -> dict:
    """The ``mining`` config without its execution knobs and the keys of other outputs: exactly what changes
    ``hard.parquet`` (and the candidates it is drawn from)."""
    drop = (*MINING_EXECUTION_KNOBS, *MINING_OTHER_OUTPUTS)
    return {k: v for k, v in config["mining"].items() if k not in drop}


def schema_defaults() -> dict:
    """The config that the schema's defaults make on their own (the paper's values), filled in the way
    Snakemake's ``validate`` does; ``dataset_dir`` (required, no default) is ``"."``."""
    from snakemake.utils import validate

    config = {"dataset_dir": "."}
    validate(config, str(SCHEMA_PATH), set_default=True)
    return config


def check_mining(mining: dict, key: str = "mining") -> None:
    """The ``mining`` checks that need more than one key (the schema checks types and single-key bounds):
    ``1 <= rank_range[0] <= rank_range[1] <= top_k``, and ``negatives_per_query`` at most the range's size.
    ``key`` names the section in errors (``mining`` or ``mining.filtered_sets.<name>``). Raises ConfigError."""
    start, end = mining["rank_range"]
    if start < 1:
        raise ConfigError(f"config key '{key}.rank_range': start {start} must be >= 1 (ranks count from 1)")
    if start > end:
        raise ConfigError(f"config key '{key}.rank_range': start {start} is greater than end {end}")
    if end > mining["top_k"]:
        raise ConfigError(
            f"config key '{key}.rank_range': end {end} exceeds mining.top_k {mining['top_k']}; "
            "candidates beyond top_k are never retrieved"
        )
    if mining["negatives_per_query"] > end - start + 1:
        raise ConfigError(
            f"config key '{key}.negatives_per_query': {mining['negatives_per_query']} is more than the "
            f"{end - start + 1} ranks in {key}.rank_range {[start, end]}"
        )
    if mining.get("margin") is not None and mining.get("margin_mode") == "relative" and not 0 <= mining["margin"] < 1:
        raise ConfigError(f"config key '{key}.margin': a relative margin must be in [0, 1), got {mining['margin']}")


#: Keys a filtered set inherits from ``mining`` when it does not set them.
FILTERED_SET_INHERITS = ("rank_range", "negatives_per_query", "seed")


def mined_set_names(config: dict) -> list[str]:
    """``hard`` (the paper's mined set) and every ``mining.filtered_sets`` name, in config order."""
    return ["hard", *config["mining"]["filtered_sets"]]


def filtered_set(config: dict, name: str) -> dict:
    """One filtered set's full settings: its own keys, with ``rank_range``, ``negatives_per_query`` and ``seed``
    taken from ``mining`` where it sets none (the schema fills in the rest)."""
    sets = config["mining"]["filtered_sets"]
    if name not in sets:
        raise ConfigError(f"config key 'mining.filtered_sets': no set named '{name}'")
    own = sets[name]
    return {**{k: config["mining"][k] for k in FILTERED_SET_INHERITS}, **own}


def check_config(config: dict) -> None:
    """Semantic checks that the JSON Schema cannot express. Raises ConfigError naming the key.

    Expects a config that already passed the schema (which rejects unknown keys, wrong types, out-of-range
    numbers, unknown methods and negative sources, and variant names that break the id pattern or reuse base/bm25;
    those are not checked again here).
    """
    check_mining(config["mining"])
    for name in config["mining"]["filtered_sets"]:
        check_mining({**config["mining"], **filtered_set(config, name)}, key=f"mining.filtered_sets.{name}")
    sources = ("random", *mined_set_names(config))
    for name, variant in config["variants"].items():
        for pattern, why in RESERVED_ID_PATTERNS.items():
            if re.search(pattern, name):
                raise ConfigError(f"config key 'variants.{name}': {why}")
        if variant["negatives"] not in sources:
            raise ConfigError(
                f"config key 'variants.{name}.negatives': '{variant['negatives']}' is not one of {list(sources)} "
                "(random, hard, or a mining.filtered_sets name)"
            )
        ref = variant.get("modifies")
        if (
            ref is not None
            and ref != "base"
            and (ref not in config["variants"] or "modifies" in config["variants"][ref])
        ):
            raise ConfigError(
                f"config key 'variants.{name}.modifies': '{ref}' is neither base nor a paper variant "
                f"(one without modifies: {paper_variants(config)})"
            )
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
    for e in config["mining"]["diagnose_eval_sets"]:
        if e not in config["eval_sets"]:
            raise ConfigError(
                f"config key 'mining.diagnose_eval_sets': '{e}' is not one of eval_sets {sorted(config['eval_sets'])}"
            )
    _check_wise_ft(config)
    _check_fusion(config)


def _check_wise_ft(config: dict) -> None:
    wise = config["wise_ft"]
    for w in wise["weights"]:
        if abs(w * 100 - round(w * 100)) > 1e-9:
            raise ConfigError(
                f"config key 'wise_ft.weights': {w} is not a multiple of 0.01 (ids are {{variant}}_wise<NN>)"
            )
    for v in wise["variants"] or []:
        if v not in config["variants"]:
            raise ConfigError(
                f"config key 'wise_ft.variants': '{v}' is not one of variants {sorted(config['variants'])}"
            )


def _check_fusion(config: dict) -> None:
    fusion = config["fusion"]
    if fusion["methods"] and not config["bm25"]["enabled"]:
        raise ConfigError("config key 'fusion.methods': fusion with BM25 needs bm25.enabled: true")
    for m in fusion["models"] or []:
        if m != "base" and m not in config["variants"]:
            raise ConfigError(
                f"config key 'fusion.models': '{m}' is neither base nor one of variants {sorted(config['variants'])}"
            )


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
    """``base`` followed by every trained model id (the models that are timed and drawn in the UMAP figure)."""
    return ["base", *(m["model_id"] for m in trained_models(config))]


def paper_variants(config: dict) -> list[str]:
    """The variants without ``modifies``: the paper's four (or a user's own), the Holm family of Tables I-III."""
    return [n for n, v in config["variants"].items() if "modifies" not in v]


def remedy_variants(config: dict) -> list[str]:
    """The variants with ``modifies``: trained remedies (MNRL, filtered negatives, L2-SP, ...)."""
    return [n for n, v in config["variants"].items() if "modifies" in v]


def _seed_models(config: dict, variants: list[str]) -> list[dict]:
    return [m for m in trained_models(config) if m["variant"] in variants]


def wise_weight_tag(weight: float) -> str:
    """``0.5`` -> ``"50"``, ``0.05`` -> ``"05"``: the NN of ``{variant}_wise{NN}``."""
    return f"{round(weight * 100):02d}"


def wise_models(config: dict) -> list[dict]:
    """One entry per (trained model of a ``wise_ft.variants`` variant, weight): ``{"model_id", "source", "variant",
    "seed", "weight"}`` with model id ``{source}_wise{NN}``; NN = 100 w."""
    variants = config["wise_ft"]["variants"]
    chosen = paper_variants(config) if variants is None else list(variants)
    return [
        {
            "model_id": f"{m['model_id']}_wise{wise_weight_tag(w)}",
            "source": m["model_id"],
            "variant": m["variant"],
            "seed": m["seed"],
            "weight": float(w),
        }
        for m in _seed_models(config, chosen)
        for w in config["wise_ft"]["weights"]
    ]


def hybrid_models(config: dict) -> list[dict]:
    """One entry per (fusion method, dense model): ``{"model_id": "hybrid_{method}_{dense}", "method", "dense",
    "variant", "seed"}``; ``fusion.models`` null = base and every trained model of a paper variant."""
    fusion = config["fusion"]
    if not fusion["methods"]:
        return []
    chosen = ["base", *paper_variants(config)] if fusion["models"] is None else list(fusion["models"])
    dense = [{"model_id": "base", "variant": None, "seed": None}] if "base" in chosen else []
    dense += _seed_models(config, [v for v in chosen if v != "base"])
    return [
        {
            "model_id": f"hybrid_{method}_{d['model_id']}",
            "method": method,
            "dense": d["model_id"],
            "variant": d["variant"],
            "seed": d["seed"],
        }
        for method in fusion["methods"]
        for d in dense
    ]


def dense_model_ids(config: dict) -> list[str]:
    """Every model with a SentenceTransformer folder, embeddings and a dense run: neural + interpolated."""
    return [*neural_model_ids(config), *(m["model_id"] for m in wise_models(config))]


def model_ids(config: dict) -> list[str]:
    """Every model that gets runs and metrics: dense models, ``bm25`` if enabled, then the fused runs."""
    ids = dense_model_ids(config)
    ids = [*ids, "bm25"] if config["bm25"]["enabled"] else ids
    return [*ids, *(m["model_id"] for m in hybrid_models(config))]


def timed_model_ids(config: dict) -> list[str]:
    """The models Table II times: the paper's family (:func:`paper_model_ids`). A remedy variant has its reference's
    architecture, so the same speed; interpolated and fused models are not timed either."""
    return paper_model_ids(config)


def paper_model_ids(config: dict) -> list[str]:
    """The paper's family: base, the trained models of paper variants, bm25 (Tables I-III, significance.csv)."""
    ids = ["base", *(m["model_id"] for m in _seed_models(config, paper_variants(config)))]
    return [*ids, "bm25"] if config["bm25"]["enabled"] else ids


def remedy_catalog(config: dict) -> dict[str, dict]:
    """Every remedy model: ``model_id -> {"kind", "group", "seed", "reference"}``.

    ``kind`` is ``variant``, ``wise`` or ``hybrid``; ``group`` is the id of its first-seed model (what the remedies
    table averages seeds under); ``reference`` is the model it modifies, of the same seed (``base`` for base-made
    ones). The remedies form their own Holm families (results/tables/remedies.*)."""
    models = trained_models(config)
    first = {m["variant"]: m["model_id"] for m in reversed(models)}
    by_seed = {(m["variant"], m["seed"]): m["model_id"] for m in models}

    def same_seed(variant: str, seed: int) -> str:
        """The model of ``variant`` trained with ``seed`` (its first seed's model where it has no such seed)."""
        return "base" if variant == "base" else by_seed.get((variant, seed), first[variant])

    out: dict[str, dict] = {}
    for m in _seed_models(config, remedy_variants(config)):
        ref = config["variants"][m["variant"]]["modifies"]
        out[m["model_id"]] = {
            "kind": "variant",
            "group": first[m["variant"]],
            "seed": m["seed"],
            "reference": same_seed(ref, m["seed"]),
        }
    for m in wise_models(config):
        out[m["model_id"]] = {
            "kind": "wise",
            "group": f"{first[m['variant']]}_wise{wise_weight_tag(m['weight'])}",
            "seed": m["seed"],
            "reference": m["source"],
        }
    for m in hybrid_models(config):
        group_dense = "base" if m["variant"] is None else first[m["variant"]]
        out[m["model_id"]] = {
            "kind": "hybrid",
            "group": f"hybrid_{m['method']}_{group_dense}",
            "seed": m["seed"],
            "reference": m["dense"],
        }
    return out


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
    neg = variant["negatives"]
    data = {"triplets": config["triplets"]} if neg == "random" else {"mining": mining_slice(config)}
    if neg not in ("random", "hard"):  # a filtered set: the paper's mining slice plus the set's own settings
        data["filtered"] = filtered_set(config, neg)
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
    """Validate ``config`` against the JSON Schema the way Snakemake does (filling in defaults), run
    :func:`drop_disabled_variants` and :func:`apply_remedies_gate`, then :func:`check_config`, as common.smk does.
    Returns the (mutated) config. Raises ConfigError
    naming the key."""
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    try:
        validate(config, str(SCHEMA_PATH), set_default=True)
    except WorkflowError as exc:
        raise ConfigError(str(exc)) from None
    drop_disabled_variants(config)
    apply_remedies_gate(config)  # remedies: false drops what it gates before anything checks it
    check_config(config)
    return config


def drop_disabled_variants(config: dict) -> dict:
    """Drop the variants with ``enabled: false`` in place (before :func:`check_config`, so that nothing may refer to
    them). Snakemake deep-merges configfiles and cannot delete a key: this is how an overlay switches one off.
    Returns ``config``."""
    config["variants"] = {n: v for n, v in config["variants"].items() if v.get("enabled", True)}
    return config


def apply_remedies_gate(config: dict) -> dict:
    """With ``remedies: false``, drop every remedy entry in place: the variants with ``modifies``,
    ``mining.filtered_sets``, ``mining.diagnose_eval_sets``, ``wise_ft.weights`` and ``fusion.methods``. Snakemake
    deep-merges every configfile over config/config.yaml and cannot delete keys, so this is how
    ``--configfile config/msmarco.yaml`` runs exactly the paper's models. Returns ``config``."""
    if config["remedies"]:
        return config
    config["variants"] = {n: v for n, v in config["variants"].items() if "modifies" not in v}
    config["mining"]["filtered_sets"] = {}
    config["mining"]["diagnose_eval_sets"] = []
    config["wise_ft"]["weights"] = []
    config["fusion"]["methods"] = []
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
ENCODING_EXECUTION_KNOBS = ("batch_size", "chunk_size", "max_tokens", "shards")
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
