# remedies built from other models' outputs (issue 14; src/ftstudy/interpolation.py, fusion.py):
# - interpolate: WiSE-FT, {source}_wise{NN} = (1 - w) * base + w * the fine-tuned model {source} (LoRA: its merged
#   folder, so base + w * the adapter's delta). Its folder is a SentenceTransformer like any model's, so
#   encode_corpus, build_index, retrieve and evaluate take it as they take the trained ones (DENSE_MODELS).
# - fuse: hybrid_{rrf,wsum}_{dense} = the BM25 run fused with the dense model's run by ranx, cut at retrieval.k;
#   evaluate scores it as any run (ALL_MODELS). The weighted sum's BM25 weight is cross-validated over the eval
#   set's judged queries (fusion.cv_folds folds): a query never gets a weight tuned on itself.
# Both are small CPU jobs.
from ftstudy.model_provenance import fusion_slice, model_slice  # noqa: E402

WISE_RE = _alternation(list(WISE))
HYBRID_RE = _alternation(list(HYBRID))


rule interpolate:
    input:
        base=model_dir("base"),
        source=wise_source_of,
    output:
        model=directory("results/models/{model}/model"),
        record="results/models/{model}/interpolation.json",
    log:
        "logs/interpolate/{model}.log",
    benchmark:
        "benchmarks/interpolate/{model}.tsv"
    wildcard_constraints:
        model=WISE_RE,
    conda:
        "../../envs/ml.yaml"
    threads: 2
    resources:
        # two models and the float64 copy of one tensor at a time: MiniLM needs well under 1 GB
        mem_mb=4000,
        runtime=15,
    params:
        # the weight and the source's own slice (its training branch, base_model included)
        slice=lambda wc: model_slice(config, wc.model),
    script:
        "../scripts/interpolate.py"


rule fuse:
    input:
        bm25="results/runs/bm25/{eval_set}.trec",
        dense=fused_dense_run_of,
        qrels="results/data/eval/{eval_set}/qrels.parquet",
        queries="results/data/eval/{eval_set}/queries.parquet",
    output:
        run="results/runs/{model}/{eval_set}.trec",
        record="results/runs/{model}/{eval_set}.fusion.json",
    log:
        "logs/fuse/{model}/{eval_set}.log",
    benchmark:
        "benchmarks/fuse/{model}/{eval_set}.tsv"
    wildcard_constraints:
        model=HYBRID_RE,
    conda:
        "../../envs/ml.yaml"
    threads: 2
    resources:
        # ranx keeps the runs, their min-max copies and the fused run as numba dicts: 1.3 GB peak RSS measured
        # for two 14 MB run files (500 queries x 1000), about 33 MB per MB of input beyond the imports
        mem_mb=lambda wildcards, input: max(2000, int(1000 + 35 * input.size_mb)),
        # measured 53 s (wsum, 11-point grid, 2 folds) and 6 s (rrf) for 500 queries x 1000 on 1 loaded core
        runtime=90,
    params:
        slice=fuse_slice,
    script:
        "../scripts/fuse.py"
