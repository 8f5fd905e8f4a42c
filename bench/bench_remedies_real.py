"""The paper's variants and the remedies on real MS MARCO text: the shared slice (11,809 passages, 270 training and
270 dev queries), through the real workflow.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/bench_remedies_real.py --workdir /tmp/real            # everything
    HF_HUB_OFFLINE=1 .venv/bin/python bench/bench_remedies_real.py --workdir /tmp/real --paper-only

The run uses the embedded default (config/config.yaml: its remedies, its batch size and warm-up, the paper's
epochs) with the slice as ``dataset_dir``, 1,000 random triplets, every judged training query mined, training at
sequence length 128, and retrieval top-1000. ``--paper-only`` sets ``remedies: false`` (the paper's five models
and BM25); a later run without it adds the remedies to the same folder and reruns nothing else. Each run prints its
wall time, then Table I and the remedies table. On 2 CPU cores the whole study takes about 1.5-2 hours.
The data stays outside the project: the work folder holds links to the workflow and the results.
"""

from __future__ import annotations

import argparse
import os
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
"""


def make_workdir(path: Path) -> Path:
    """``path`` with links to the workflow's sources, so the run never touches the repository's results/."""
    path.mkdir(parents=True, exist_ok=True)
    for item in LINKED:
        if not (path / item).exists():
            (path / item).symlink_to(ROOT / item)
    return path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir", required=True, type=Path)
    ap.add_argument("--data", default=str(MINI), type=Path)
    ap.add_argument("--paper-only", action="store_true")
    ap.add_argument("--cores", default="2")
    args = ap.parse_args()
    if not (args.data / "collection.tsv").is_file():
        sys.exit(f"{args.data}: no collection.tsv (the shared slice beside the repository, or --data)")
    wd = make_workdir(args.workdir.resolve())
    overlay = wd / "real_slice.yaml"
    overlay.write_text(OVERLAY.format(data=args.data.resolve(), remedies="false" if args.paper_only else "true"))
    cmd = [str(Path(sys.executable).with_name("snakemake")), "--cores", args.cores, "--resources", "gpu=1"]
    cmd += ["--configfile", "config/config.yaml", str(overlay), "--rerun-triggers", "mtime", "params", "input"]
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
