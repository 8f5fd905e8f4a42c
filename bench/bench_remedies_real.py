"""The paper's variants and the remedies on real MS MARCO text: the shared slice (11,809 passages, 270 training and
270 dev queries), through the real workflow.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/bench_remedies_real.py --workdir /tmp/real            # everything
    HF_HUB_OFFLINE=1 .venv/bin/python bench/bench_remedies_real.py --workdir /tmp/real --paper-only
    HF_HUB_OFFLINE=1 .venv/bin/python bench/bench_remedies_real.py --workdir /tmp/real --other-passages 2000

The run uses the embedded default (config/config.yaml: its remedies, its batch size and warm-up, the paper's
epochs) with the slice as ``dataset_dir``, 1,000 random triplets, every judged training query mined, training at
sequence length 128, and retrieval top-1000. ``--paper-only`` sets ``remedies: false`` (the paper's five models
and BM25); a later run without it adds the remedies to the same folder and reruns nothing else. Each run prints its
wall time, then Table I and the remedies table. ``--other-passages N`` keeps every judged passage and a seeded
sample of N others (encoding all 11,809 passages takes ~5.5 min per model on 2 CPU cores, and the study with its
remedies encodes 12 models). Without nvidia-smi it adds ``--workflow-profile profiles/cpu``, as ``make run``
does. The data stays outside the project: the work folder holds links to the workflow, the results and (with
--other-passages) the reduced copy of the slice.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MINI = ROOT.parent / "shared" / "data" / "mini-msmarco"
LINKED = ("Snakefile", "workflow", "config", "src", "profiles", "envs")

OVERLAY = """\
dataset_dir: {data}
remedies: {remedies}
triplets: {{random: {{n: 1000}}}}
mining: {{max_queries: null}}
training: {{max_seq_length: 128}}
retrieval: {{k: 1000}}
timing: {{n_queries: 270}}
# the embedded default halves the remedies' triplets to keep make run short; here they train on all (as measured)
variants:
  full_hard_mnrl: {{training: {{train_fraction: 1.0}}}}
  lora_perc: {{training: {{train_fraction: 1.0}}}}
  full_random_l2sp: {{training: {{train_fraction: 1.0}}}}
"""


def make_workdir(path: Path) -> Path:
    """``path`` with links to the workflow's sources, so the run never touches the repository's results/."""
    path.mkdir(parents=True, exist_ok=True)
    for item in LINKED:
        if not (path / item).exists():
            (path / item).symlink_to(ROOT / item)
    return path


SLICE_FILES = (
    "queries.train.tsv",
    "qrels.train.tsv",
    "triples.train.small.tsv",
    "queries.dev.small.tsv",
    "qrels.dev.small.tsv",
)


def reduced_slice(src: Path, dst: Path, n_other: int, seed: int = 7) -> Path:
    """A copy of the slice in ``dst`` whose collection keeps every judged passage (train and dev qrels) and a
    seeded sample of ``n_other`` of the rest, in the file's order; the other files are copied unchanged. An existing
    copy is kept as it is (a second stage must not touch the inputs' mtimes)."""
    if (dst / "collection.tsv").is_file():
        return dst
    dst.mkdir(parents=True, exist_ok=True)
    judged = set()
    for name in ("qrels.train.tsv", "qrels.dev.small.tsv"):
        judged |= {line.split("\t")[2] for line in (src / name).read_text(encoding="utf-8").splitlines()}
    lines = (src / "collection.tsv").read_text(encoding="utf-8").splitlines()
    others = [i for i, ln in enumerate(lines) if ln.split("\t", 1)[0] not in judged]
    keep = set(random.Random(seed).sample(others, min(n_other, len(others))))
    kept = [ln for i, ln in enumerate(lines) if i in keep or ln.split("\t", 1)[0] in judged]
    (dst / "collection.tsv").write_text("\n".join(kept) + "\n", encoding="utf-8")
    for name in SLICE_FILES:
        shutil.copy(src / name, dst / name)
    print(f"{dst}: {len(kept)} of {len(lines)} passages ({len(kept) - len(keep)} judged + {len(keep)} others)")
    return dst


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir", required=True, type=Path)
    ap.add_argument("--data", default=str(MINI), type=Path)
    ap.add_argument("--paper-only", action="store_true")
    ap.add_argument("--other-passages", type=int, default=None)
    ap.add_argument("--cores", default="2")
    args = ap.parse_args()
    if not (args.data / "collection.tsv").is_file():
        sys.exit(f"{args.data}: no collection.tsv (the shared slice beside the repository, or --data)")
    wd = make_workdir(args.workdir.resolve())
    if args.other_passages is not None:
        args.data = reduced_slice(args.data, wd / "slice", args.other_passages)
    overlay = wd / "real_slice.yaml"
    overlay.write_text(OVERLAY.format(data=args.data.resolve(), remedies="false" if args.paper_only else "true"))
    cmd = [str(Path(sys.executable).with_name("snakemake")), "--cores", args.cores, "--resources", "gpu=1"]
    cmd += ["--configfile", "config/config.yaml", str(overlay), "--rerun-triggers", "mtime", "params", "input"]
    if shutil.which("nvidia-smi") is None:  # as make run: without a GPU, model jobs run side by side
        cmd += ["--workflow-profile", "profiles/cpu"]
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=wd, check=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    print(f"wall time: {time.perf_counter() - t0:.0f} s ({' '.join(cmd)})")
    for table in ("mrr", "remedies"):
        md = wd / "results" / "tables" / f"{table}.md"
        if md.is_file():
            print(f"\n## {md}\n\n{md.read_text()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
