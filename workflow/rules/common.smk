# Helper functions and config validation shared by every rule file. Pure path logic lives here; the study's
# logic lives in src/ftstudy (imported below) so that it can be tested without Snakemake.
import errno
import os
import re
import sys

from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version, validate

min_version("9.0")

sys.path.insert(0, os.path.join(workflow.basedir, "src"))

from ftstudy import bm25_resources as ftbm25  # noqa: E402
from ftstudy import job_resources as ftres  # noqa: E402
from ftstudy import config as ftconfig  # noqa: E402
from ftstudy.provenance import config_hash  # noqa: E402

validate(config, schema="../schemas/config.schema.yaml")
try:
    ftconfig.drop_disabled_variants(config)  # enabled: false switches a variant off
    ftconfig.apply_remedies_gate(config)  # remedies: false drops every remedy entry
    ftconfig.check_config(config)
    ftconfig.check_paths(config)
except ftconfig.ConfigError as exc:
    raise WorkflowError(str(exc)) from None


# ---- ids -------------------------------------------------------------------------------------------------
TRAINED = {m["model_id"]: m for m in ftconfig.trained_models(config)}
# base + trained: timed (paper family only) and drawn in the UMAP figure
NEURAL_MODELS = ftconfig.neural_model_ids(config)
# weight-space interpolations and BM25 + dense fusions (the remedies)
WISE = {m["model_id"]: m for m in ftconfig.wise_models(config)}
HYBRID = {m["model_id"]: m for m in ftconfig.hybrid_models(config)}
# neural + interpolated: encoded and retrieved
DENSE_MODELS = ftconfig.dense_model_ids(config)
# + bm25 when enabled, + fused runs: every model with metrics
ALL_MODELS = ftconfig.model_ids(config)
# the paper's family (base, paper variants, bm25): Table I, significance.csv, timing
PAPER_MODELS = ftconfig.paper_model_ids(config)
TIMED_MODELS = ftconfig.timed_model_ids(config)
# remedies.csv's models, their own Holm family
REMEDIES = ftconfig.remedy_catalog(config)
# hard + mining.filtered_sets
MINED_SETS = ftconfig.mined_set_names(config)
EVAL_SETS = list(config["eval_sets"])
LORA_MODELS = [
    m
    for m, e in TRAINED.items()
    if config["variants"][e["variant"]]["method"] == "lora"
]


def _alternation(names):
    """A regex that matches exactly one of ``names`` (for wildcard_constraints)."""
    return "|".join(re.escape(n) for n in names) or "(?!)"


NEURAL_RE = _alternation(NEURAL_MODELS)
DENSE_RE = _alternation(DENSE_MODELS)
TRAINED_RE = _alternation(list(TRAINED))
LORA_RE = _alternation(LORA_MODELS)
# LoRA models timed unmerged too
TIMED_LORA = [m for m in LORA_MODELS if m in TIMED_MODELS]


wildcard_constraints:
    model=r"[a-z][a-z0-9_]*",
    eval_set=r"[a-z][a-z0-9_]*",
    corpus=r"[a-z][a-z0-9_]*",
    variant=r"[a-z][a-z0-9_]*",


# ---- data paths ------------------------------------------------------------------------------------------
def dataset_file(name):
    """An official MS MARCO file name inside dataset_dir."""
    return os.path.join(config["dataset_dir"], name)


def eval_set_file(eval_set, key):
    """queries/qrels/collection file of an eval set: relative to dataset_dir unless absolute."""
    return ftconfig.resolve_data_path(config, config["eval_sets"][eval_set][key])


def eval_corpus(eval_set):
    """The corpus an eval set is searched against: its own collection's name, or 'main'."""
    return eval_set if "collection" in config["eval_sets"][eval_set] else "main"


CORPORA = ["main"] + [e for e in EVAL_SETS if eval_corpus(e) != "main"]


def collection_parquet(corpus):
    """Prepared collection parquet (pid int64, text string) of a corpus."""
    if corpus == "main":
        return "results/data/collection.parquet"
    return f"results/data/eval/{corpus}/collection.parquet"


def model_dir(model):
    """SentenceTransformer folder of a neural model (base is copied to results/models/base/model)."""
    return f"results/models/{model}/model"


# ---- named input functions (wildcards -> paths) ---------------------------------------------------------------
def model_of(wildcards):
    """SentenceTransformer folder of ``wildcards.model``."""
    return model_dir(wildcards.model)


def collection_of(wildcards):
    """Prepared collection parquet of ``wildcards.corpus``."""
    return collection_parquet(wildcards.corpus)


def eval_collection_tsv_of(wildcards):
    """The TSV collection of the eval set named ``wildcards.corpus``."""
    return eval_set_file(wildcards.corpus, "collection")


def eval_queries_tsv_of(wildcards):
    """The TSV queries of ``wildcards.eval_set``."""
    return eval_set_file(wildcards.eval_set, "queries")


def eval_qrels_tsv_of(wildcards):
    """The TSV qrels of ``wildcards.eval_set``."""
    return eval_set_file(wildcards.eval_set, "qrels")


def triplets_of(wildcards):
    """Random or mined hard triplets of the trained model ``wildcards.model``, by its variant's ``negatives``."""
    variant = config["variants"][TRAINED[wildcards.model]["variant"]]
    return ftconfig.negatives_path(variant["negatives"])


def eval_collection_of(wildcards):
    """Prepared collection parquet that ``wildcards.eval_set`` is searched in."""
    return collection_parquet(eval_corpus(wildcards.eval_set))


def eval_embeddings_of(wildcards):
    """Embedding folder that ``wildcards.eval_set`` is searched in, for ``wildcards.model``."""
    return f"results/embeddings/{wildcards.model}/{eval_corpus(wildcards.eval_set)}"


def eval_index_of(wildcards):
    """Index file that ``wildcards.eval_set`` is searched in, for ``wildcards.model``: IVF and HNSW only. A flat
    (exact) index would hold the stored vectors a second time (13.6 GB per model at full scale), so exact search
    reads results/embeddings/ itself and no .faiss file is built."""
    if config["retrieval"]["index"]["type"] == "flat":
        return []
    return f"results/index/{wildcards.model}/{eval_corpus(wildcards.eval_set)}.faiss"


def bm25_index_of(wildcards):
    """BM25 index folder of the corpus that ``wildcards.eval_set`` is searched in."""
    return f"results/index/bm25/{eval_corpus(wildcards.eval_set)}"


def timing_embeddings_of(wildcards):
    """Embeddings of the timing corpus for ``wildcards.model``."""
    return f"results/embeddings/{wildcards.model}/{eval_corpus(config['timing']['eval_set'])}"


def evaluation_inputs(wildcards):
    """The run, the eval set's qrels and queries, and (neural models) the model folder for its provenance."""
    w = wildcards
    return {
        "run": f"results/runs/{w.model}/{w.eval_set}.trec",
        "qrels": f"results/data/eval/{w.eval_set}/qrels.parquet",
        "queries": f"results/data/eval/{w.eval_set}/queries.parquet",
        **({"model": model_dir(w.model)} if w.model in DENSE_MODELS else {}),
    }


# ---- remedies: input functions and params of the rules in mining.smk, remedies.smk, report.smk -----------
def filtered_slice(wildcards):
    """What feeds one filtered set: the paper's mining slice (which made the candidates) and the set's own
    resolved settings. Other sets' settings are not in it, so changing one set reruns only that set.
    """
    return {
        **MINING_SLICE,
        "name": wildcards.name,
        "filtered": ftconfig.filtered_set(config, wildcards.name),
    }


def filter_inputs(wildcards):
    """Candidates, the paper's hard.parquet (its negatives are checked against the filter), texts, and the
    cross-encoder's folder when the set names a local one (a Hub id is not a file)."""
    ce = ftconfig.filtered_set(config, wildcards.name)["cross_encoder"]
    return {
        "candidates": "results/mining/candidates.parquet",
        "hard": "results/triplets/hard.parquet",
        "queries": "results/data/queries.train.parquet",
        "collection": collection_parquet("main"),
        **({"cross_encoder": ce} if ce and os.path.isdir(ce) else {}),
    }


def filter_gpu(wildcards):
    """A GPU only for a set with a cross-encoder."""
    return int(bool(ftconfig.filtered_set(config, wildcards.name)["cross_encoder"]))


def wise_source_of(wildcards):
    """Model folder of the fine-tuned model that the WiSE-FT id ``wildcards.model`` interpolates with base."""
    return model_dir(WISE[wildcards.model]["source"])


def fused_dense_run_of(wildcards):
    """The dense run that the hybrid id ``wildcards.model`` fuses with BM25, for ``wildcards.eval_set``."""
    return f"results/runs/{HYBRID[wildcards.model]['dense']}/{wildcards.eval_set}.trec"


def fuse_slice(wildcards):
    """What changes a fused run: the method's fusion settings, the depth (retrieval.k) and, for the weighted
    sum only (its weight is tuned on the judged queries), the eval set's min_relevance.
    """
    method = HYBRID[wildcards.model]["method"]
    out = {"fusion": fusion_slice(config, method), "depth": config["retrieval"]["k"]}
    if method == "wsum":
        out["min_relevance"] = config["eval_sets"][wildcards.eval_set]["min_relevance"]
    return out


def models_slice(models):
    """Each model's config hash: what a rule over ``models`` hashes (its models' slices, no other model's)."""
    return {m: REPORT_INFO[m]["config_hash"] for m in models}


# ---- resources -------------------------------------------------------------------------------------------
def _gpu():
    """gpu=1, and gpu_model when config sets one."""
    model = config["resources"]["gpu_model"]
    return {"gpu": 1, **({"gpu_model": model} if model else {})}


def gpu_resources(mem_mb, runtime):
    """Resources of a GPU rule: gpu=1 (and gpu_model), memory (MB), runtime (minutes)."""
    return {"gpu": 1, "mem_mb": mem_mb, "runtime": runtime, **_gpu()}


def sized_resources(estimate, gpu=False):
    """Resources whose mem_mb, runtime (minutes) and disk_mb follow from the job's inputs: ``estimate(wildcards,
    input)`` returns all three (ftstudy.job_resources, measured factors); ``gpu`` adds gpu=1 and gpu_model.
    """
    res = _gpu() if gpu else {}
    for key in ("mem_mb", "runtime", "disk_mb"):
        res[key] = lambda wildcards, input, key=key: estimate(wildcards, input)[key]
    return res


STORE_ITEMSIZE = 2 if config["encoding"]["store_dtype"] == "float16" else 4


def _in(input, name):
    """The input named ``name``, or None while the job's inputs are not known yet (a step waiting for a
    checkpoint; ftstudy.job_resources counts None as empty). An input not built yet raises FileNotFoundError
    with its path: Snakemake then shows the resource as <TBD> and evaluates it once the input exists.
    """
    path = getattr(input, name, None)
    if path is not None and not os.path.exists(path):
        raise FileNotFoundError(errno.ENOENT, "input not built yet", path)
    return path


def _mined_queries(input):
    """Queries that mining searches: mining.max_queries, or every judged training query (qrels lines, an upper
    bound)."""
    cap = config["mining"]["max_queries"]
    judged = ftres.parquet_rows(_in(input, "qrels"))
    return min(cap, judged) if cap else judged


def encode_estimate(n_shards=1):
    """encode_corpus's (or, with ``n_shards``, a shard's) resources from its collection parquet."""
    return lambda wildcards, input: ftres.encode(
        ftres.tree_mb(_in(input, "collection")),
        ftres.parquet_rows(_in(input, "collection")),
        STORE_ITEMSIZE,
        n_shards,
    )


def search_estimate(wildcards, input):
    """retrieve's resources: its embedding folder, its eval set's queries, retrieval.k."""
    ret = config["retrieval"]
    vec_mb = ftres.tree_mb(_in(input, "embeddings"))
    n = ftres.parquet_rows(_in(input, "queries"))
    return ftres.search(
        vec_mb,
        n,
        ret["k"],
        ret["corpus_chunk_size"],
        STORE_ITEMSIZE,
        ret["score_budget_mb"],
        ret["query_batch_size"],
    )


def timing_estimate(wildcards, input):
    """time_inference's resources: the timing corpus's vectors, warm-up + repeats of timing.n_queries."""
    t, ret = config["timing"], config["retrieval"]
    vec_mb = ftres.tree_mb(_in(input, "embeddings"))
    n = t["n_queries"] * (t["repeats"] + 1)
    return ftres.search(
        vec_mb,
        n,
        t["top_k"],
        ret["corpus_chunk_size"],
        STORE_ITEMSIZE,
        ret["score_budget_mb"],
        t["n_queries"],
    )


def mining_estimate(wildcards, input):
    """mine_hard_negatives's resources: the base model's vectors and the mined queries."""
    m = config["mining"]
    vec_mb = ftres.tree_mb(_in(input, "embeddings"))
    return ftres.mine(vec_mb, _mined_queries(input), m["top_k"], m["query_batch_size"])


def training_estimate(wildcards, input):
    """A training job's resources: its triplets and the variant's epochs, max_steps and batch size."""
    v = ftconfig.training_slice(config, wildcards.model)["variant"]
    tr = v["training"]
    n = ftres.parquet_rows(_in(input, "triplets"))
    return ftres.train(n, v["method"], v["epochs"], tr["max_steps"], tr["batch_size"])


# ---- targets ---------------------------------------------------------------------------------------------
TABLES = ["mrr", "inference", "training", "significance", "geometry"]
FIGURES = ["umap", "training_loss", "mrr_ci", "hard_negative_ranks"]


def all_targets():
    """Every output of the study for the current config (rule all)."""
    out = [
        "results/data/collection.parquet",
        "results/data/queries.train.parquet",
        "results/data/qrels.train.parquet",
        "results/triplets/random.parquet",
        "results/triplets/hard.parquet",
        "results/triplets/hard_stats.json",
    ]
    for e in EVAL_SETS:
        out += [
            f"results/data/eval/{e}/queries.parquet",
            f"results/data/eval/{e}/qrels.parquet",
        ]
    for m in TRAINED:
        out += [
            f"results/models/{m}/train_summary.json",
            f"results/models/{m}/train_log.csv",
        ]
    for name in MINED_SETS[1:]:  # filtered sets (hard is listed above)
        out += [
            f"results/triplets/{name}.parquet",
            f"results/triplets/{name}_stats.json",
        ]
    out += [
        f"results/analysis/negatives/{e}.json"
        for e in config["mining"]["diagnose_eval_sets"]
    ]
    out += [f"results/timing/{m}.json" for m in TIMED_MODELS]
    for m in ALL_MODELS:
        for e in EVAL_SETS:
            out += [
                f"results/metrics/{m}/{e}.json",
                f"results/metrics/{m}/{e}.per_query.parquet",
            ]
    out += [f"results/timing/{m}.unmerged.json" for m in TIMED_LORA]
    out += [f"results/tables/{t}.{ext}" for t in TABLES for ext in ("csv", "md")]
    out += [f"results/figures/{f}.{ext}" for f in FIGURES for ext in ("png", "pdf")]
    if REMEDIES:
        out += [f"results/tables/remedies.{ext}" for ext in ("csv", "md")]
        out += [f"results/figures/remedies.{ext}" for ext in ("png", "pdf")]
    if WISE:
        out += [f"results/figures/wise_ft.{ext}" for ext in ("png", "pdf")]
    return out


def all_cores():
    """Every core given with --cores (timing rules take them all so nothing runs beside the timed region);
    1 where no --cores is given (--unlock, --report, a cluster run without the profile's cores).
    """
    try:
        return workflow.cores
    except WorkflowError:
        return 1
