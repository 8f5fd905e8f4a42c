# The embedded default's data set: MS MARCO's six TSV files, generated deterministically from synthetic.seed.
# The rule exists only when dataset_dir is synthetic.dir, so a real dataset_dir is never overwritten.
# Logic: src/ftstudy/synthetic.py (docs/synthetic.md has the measured difficulty).

if os.path.normpath(config["dataset_dir"]) == os.path.normpath(
    config["synthetic"]["dir"]
):

    rule synthetic_dataset:
        output:
            collection=dataset_file("collection.tsv"),
            queries_train=dataset_file("queries.train.tsv"),
            qrels_train=dataset_file("qrels.train.tsv"),
            triples=dataset_file("triples.train.small.tsv"),
            queries_dev=dataset_file("queries.dev.small.tsv"),
            qrels_dev=dataset_file("qrels.dev.small.tsv"),
        log:
            "logs/synthetic_dataset/synthetic.log",
        benchmark:
            "benchmarks/synthetic_dataset/synthetic.tsv"
        conda:
            "../../envs/ml.yaml"  # bm25s picks the triples' negatives
        threads: 1
        resources:
            mem_mb=500,
            runtime=5,
        params:
            synthetic={k: v for k, v in config["synthetic"].items() if k != "dir"},
        script:
            "../scripts/synthetic_dataset.py"
