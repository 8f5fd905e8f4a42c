# report stage: tables (paper's Tables I-III and more), paired significance tests,
# embedding geometry of seeded dev query/positive pairs, figures, and the captions that
# `snakemake --report results/report.html` shows (front page: workflow/report/workflow.rst).
# Logic: src/ftstudy/{tables,significance,geometry,figures,paper,model_provenance,remedies}.py.
# Everything here runs on the CPU (analysis env) except encode_pairs, which encodes the
# pairs with each neural model (a GPU rule, ml env).
# Families: Table I, significance.csv and mrr_ci hold the paper's family (PAPER_MODELS); Table
# II the timed models (TIMED_MODELS); Table III and the loss figure every trained model;
# geometry and UMAP the neural models. The remedies (REMEDIES) have their own table, Holm
# family and figures (remedies.*, wise_ft.*). Adding a remedy leaves the paper's rules' inputs
# and params as they were, so they do not rerun.

# Light on purpose (no pandas/SciPy): this runs on every dry run (tests/test_tables.py checks it).
from ftstudy.model_provenance import row_info as report_row_info

ANALYSIS = config["analysis"]
ANALYSIS_SET = ANALYSIS["eval_set"]


TRAINED_GROUPS = {
    m: {"variant": e["variant"], "seed": e["seed"]} for m, e in TRAINED.items()
}
METRIC_KEYS = [[m, e] for e in EVAL_SETS for m in PAPER_MODELS]  # the paper's family
PER_QUERY_FILES = [f"results/metrics/{m}/{e}.per_query.parquet" for m, e in METRIC_KEYS]
REPORT_INFO = report_row_info(config)  # per model: config_hash, seed


TABLE_SLICE = {"analysis": ANALYSIS, "models": models_slice(PAPER_MODELS)}
# Tables I-III and the neural-model rules; without remedies the same models as TABLE_SLICE.
TIMED_SLICE = {"analysis": ANALYSIS, "models": models_slice(TIMED_MODELS)}
EVAL_QUERY_FILES = expand(
    "results/data/eval/{eval_set}/queries.parquet", eval_set=EVAL_SETS
)
PAIRS_SLICE = {
    "eval_set": ANALYSIS_SET,
    "definition": config["eval_sets"][ANALYSIS_SET],
    "n_pairs": ANALYSIS["n_pairs"],
    "seed": ANALYSIS["seed"],
}


rule significance:
    input:
        per_query=PER_QUERY_FILES,
        queries=EVAL_QUERY_FILES,
    output:
        csv=report(
            "results/tables/significance.csv",
            caption="../report/significance.rst",
            category="Tables",
            labels={"table": "significance"},
        ),
        md="results/tables/significance.md",
    log:
        "logs/significance/significance.log",
    benchmark:
        "benchmarks/significance/significance.tsv"
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        metric_keys=METRIC_KEYS,
        eval_sets=EVAL_SETS,
        n_resamples=ANALYSIS["n_resamples"],
        seed=ANALYSIS["seed"],
        alpha=ANALYSIS["alpha"],
        config_hash=config_hash(TABLE_SLICE),
    script:
        "../scripts/significance.py"


rule tables:
    input:
        metrics=[f"results/metrics/{m}/{e}.json" for m, e in METRIC_KEYS],
        timing=[f"results/timing/{m}.json" for m in TIMED_MODELS]
        + [f"results/timing/{m}.unmerged.json" for m in TIMED_LORA],
        summaries=[f"results/models/{m}/train_summary.json" for m in TRAINED],
        significance="results/tables/significance.csv",
        # what identifies each eval set's collection, for the expected-value marks (its parquet's metadata); only
        # where the config lists references, so that other configs' DAGs are unchanged
        collections=(
            [collection_parquet(eval_corpus(e)) for e in EVAL_SETS]
            if config["expected_values"]["references"]
            else []
        ),
    output:
        mrr_csv=report(
            "results/tables/mrr.csv",
            caption="../report/mrr.rst",
            category="Tables",
            labels={"table": "mrr (Table I)"},
        ),
        mrr_md="results/tables/mrr.md",
        inference_csv=report(
            "results/tables/inference.csv",
            caption="../report/inference.rst",
            category="Tables",
            labels={"table": "inference (Table II)"},
        ),
        inference_md="results/tables/inference.md",
        training_csv=report(
            "results/tables/training.csv",
            caption="../report/training.rst",
            category="Tables",
            labels={"table": "training (Table III)"},
        ),
        training_md="results/tables/training.md",
    log:
        "logs/tables/tables.log",
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        metric_keys=METRIC_KEYS,
        # Table II's "weights" column: bm25 has none; the neural models are timed as saved (LoRA merged), and
        # LoRA again with the adapter unmerged.
        timing_keys=[[m, "none" if m == "bm25" else "merged"] for m in TIMED_MODELS]
        + [[m, "unmerged"] for m in TIMED_LORA],
        trained_models=list(TRAINED),
        trained=TRAINED_GROUPS,
        info={m: REPORT_INFO[m] for m in TIMED_MODELS},
        config_hash=config_hash(TIMED_SLICE),
        eval_sets=EVAL_SETS,
        expected_values=config["expected_values"],
        bm25=BM25_PARAMS,
    script:
        "../scripts/tables.py"


rule sample_pairs:
    input:
        queries=f"results/data/eval/{ANALYSIS_SET}/queries.parquet",
        qrels=f"results/data/eval/{ANALYSIS_SET}/qrels.parquet",
        collection=collection_parquet(eval_corpus(ANALYSIS_SET)),
    output:
        pairs="results/analysis/pairs.parquet",
    log:
        "logs/sample_pairs/sample_pairs.log",
    # Fig. 1's chain (sample_pairs -> encode_pairs -> umap) goes first among the jobs that are ready: UMAP's
    # numba compilation (about 25 s on 2 cores, whatever the data size) then overlaps retrieval and evaluation
    # instead of ending the run.
    priority: 10
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=15,
    params:
        n_pairs=ANALYSIS["n_pairs"],
        seed=ANALYSIS["seed"],
        min_relevance=config["eval_sets"][ANALYSIS_SET]["min_relevance"],
        config_hash=config_hash(PAIRS_SLICE),
    script:
        "../scripts/sample_pairs.py"


rule encode_pairs:
    input:
        pairs="results/analysis/pairs.parquet",
        model=model_of,
    output:
        npz="results/analysis/pairs/{model}.npz",
    log:
        "logs/encode_pairs/{model}.log",
    benchmark:
        "benchmarks/encode_pairs/{model}.tsv"
    wildcard_constraints:
        model=NEURAL_RE,
    priority: 10
    conda:
        "../../envs/ml.yaml"
    threads: 2
    resources:
        **gpu_resources(mem_mb=8000, runtime=20),
    params:
        # what changes a vector; encoding.batch_size is an execution knob, read by the script from the config
        max_seq_length=config["encoding"]["max_seq_length"],
    script:
        "../scripts/encode_pairs.py"


rule geometry:
    input:
        npz=expand("results/analysis/pairs/{model}.npz", model=NEURAL_MODELS),
    output:
        csv=report(
            "results/tables/geometry.csv",
            caption="../report/geometry.rst",
            category="Tables",
            labels={"table": "geometry"},
        ),
        md="results/tables/geometry.md",
    log:
        "logs/geometry/geometry.log",
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=10,
    params:
        models=NEURAL_MODELS,
        trained=TRAINED_GROUPS,
        info={m: REPORT_INFO[m] for m in TIMED_MODELS},
        config_hash=config_hash({"pairs": PAIRS_SLICE, "models": TIMED_SLICE["models"]}),
    script:
        "../scripts/geometry.py"


rule umap:
    input:
        npz=expand("results/analysis/pairs/{model}.npz", model=NEURAL_MODELS),
    output:
        png=report(
            "results/figures/umap.png",
            caption="../report/umap.rst",
            category="Figures",
            labels={"figure": "UMAP (Fig. 1)"},
        ),
        pdf="results/figures/umap.pdf",
        coords="results/analysis/umap_coords.parquet",
    log:
        "logs/umap/umap.log",
    benchmark:
        "benchmarks/umap/umap.tsv"
    priority: 10
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        models=NEURAL_MODELS,
        n_neighbors=ANALYSIS["umap_neighbors"],
        min_dist=ANALYSIS["umap_min_dist"],
        seed=ANALYSIS["seed"],
        config_hash=config_hash(
            {
                "pairs": PAIRS_SLICE,
                "umap": [ANALYSIS["umap_neighbors"], ANALYSIS["umap_min_dist"]],
                "models": TIMED_SLICE["models"],
            }
        ),
    script:
        "../scripts/umap_figure.py"


rule figure_training_loss:
    input:
        logs=[f"results/models/{m}/train_log.csv" for m in TRAINED],
        summaries=[f"results/models/{m}/train_summary.json" for m in TRAINED],
    output:
        png=report(
            "results/figures/training_loss.png",
            caption="../report/training_loss.rst",
            category="Figures",
            labels={"figure": "training loss (Fig. 2)"},
        ),
        pdf="results/figures/training_loss.pdf",
    log:
        "logs/figure_training_loss/training_loss.log",
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        models=list(TRAINED),
        trained=TRAINED_GROUPS,
        config_hash=config_hash({m: REPORT_INFO[m]["config_hash"] for m in TRAINED}),
    script:
        "../scripts/figure_training_loss.py"


rule figure_mrr_ci:
    input:
        per_query=PER_QUERY_FILES,
        queries=EVAL_QUERY_FILES,
    output:
        png=report(
            "results/figures/mrr_ci.png",
            caption="../report/mrr_ci.rst",
            category="Figures",
            labels={"figure": "MRR@10 with CIs"},
        ),
        pdf="results/figures/mrr_ci.pdf",
    log:
        "logs/figure_mrr_ci/mrr_ci.log",
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=15,
    params:
        metric_keys=METRIC_KEYS,
        eval_sets=EVAL_SETS,
        trained={m: TRAINED_GROUPS[m] for m in PAPER_MODELS if m in TRAINED_GROUPS},
        n_resamples=ANALYSIS["n_resamples"],
        seed=ANALYSIS["seed"],
        config_hash=config_hash(TABLE_SLICE),
    script:
        "../scripts/figure_mrr_ci.py"


rule figure_hard_negative_ranks:
    input:
        hard="results/triplets/hard.parquet",
        stats="results/triplets/hard_stats.json",
    output:
        png=report(
            "results/figures/hard_negative_ranks.png",
            caption="../report/hard_negative_ranks.rst",
            category="Figures",
            labels={"figure": "hard-negative ranks"},
        ),
        pdf="results/figures/hard_negative_ranks.pdf",
    log:
        "logs/figure_hard_negative_ranks/hard_negative_ranks.log",
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        rank_range=config["mining"]["rank_range"],
        config_hash=config_hash({"mining": ftconfig.mining_slice(config)}),
    script:
        "../scripts/figure_hard_negative_ranks.py"


# ---- remedies (issue 14): their own table, Holm family and figures ---------------------------------------
# Compared: base, every remedy model and the model each one modifies (its reference, same seed).
REMEDY_COMPARED = list(
    dict.fromkeys(["base", *REMEDIES, *(e["reference"] for e in REMEDIES.values())])
)
REMEDY_KEYS = [[m, e] for e in EVAL_SETS for m in REMEDY_COMPARED]
REMEDIES_SLICE = {
    "analysis": {k: ANALYSIS[k] for k in ("n_resamples", "seed", "alpha")},
    "models": models_slice(REMEDY_COMPARED),
    "remedies": REMEDIES,
}
# The models of the WiSE-FT curve: base (w = 0), each fine-tuned source (w = 1), the interpolations.
WISE_CURVE = list(dict.fromkeys(["base", *(m["source"] for m in WISE.values()), *WISE]))
WISE_KEYS = [[m, e] for e in EVAL_SETS for m in WISE_CURVE]


rule remedies_table:
    input:
        per_query=[f"results/metrics/{m}/{e}.per_query.parquet" for m, e in REMEDY_KEYS],
        metrics=[f"results/metrics/{m}/{e}.json" for m, e in REMEDY_KEYS],
        queries=EVAL_QUERY_FILES,
    output:
        csv=report(
            "results/tables/remedies.csv",
            caption="../report/remedies.rst",
            category="Tables",
            labels={"table": "remedies"},
        ),
        md="results/tables/remedies.md",
    log:
        "logs/remedies_table/remedies.log",
    benchmark:
        "benchmarks/remedies_table/remedies.tsv"
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        # full scale (config/remedies.yaml): about 150 comparisons on dev's 6,980 queries, 5-15 s each
        runtime=120,
    params:
        metric_keys=REMEDY_KEYS,
        eval_sets=EVAL_SETS,
        catalog=REMEDIES,
        # the name a reference goes by in the table: its variant (seeds share it), or base
        labels={
            m: TRAINED[m]["variant"] if m in TRAINED else m for m in REMEDY_COMPARED
        },
        info={m: REPORT_INFO[m] for m in REMEDY_COMPARED},
        n_resamples=ANALYSIS["n_resamples"],
        seed=ANALYSIS["seed"],
        alpha=ANALYSIS["alpha"],
        config_hash=config_hash(REMEDIES_SLICE),
    script:
        "../scripts/remedies_table.py"


rule figure_remedies:
    input:
        csv="results/tables/remedies.csv",
    output:
        png=report(
            "results/figures/remedies.png",
            caption="../report/remedies_forest.rst",
            category="Figures",
            labels={"figure": "remedies (forest plot)"},
        ),
        pdf="results/figures/remedies.pdf",
    log:
        "logs/figure_remedies/remedies.log",
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        n_resamples=ANALYSIS["n_resamples"],
        seed=ANALYSIS["seed"],
        config_hash=config_hash(REMEDIES_SLICE),
    script:
        "../scripts/figure_remedies.py"


rule figure_wise_ft:
    input:
        metrics=[f"results/metrics/{m}/{e}.json" for m, e in WISE_KEYS],
    output:
        png=report(
            "results/figures/wise_ft.png",
            caption="../report/wise_ft.rst",
            category="Figures",
            labels={"figure": "WiSE-FT"},
        ),
        pdf="results/figures/wise_ft.pdf",
    log:
        "logs/figure_wise_ft/wise_ft.log",
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        metric_keys=WISE_KEYS,
        eval_sets=EVAL_SETS,
        wise=WISE,
        config_hash=config_hash({"wise": WISE, "models": models_slice(WISE_CURVE)}),
    script:
        "../scripts/figure_wise_ft.py"
