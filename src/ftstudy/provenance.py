"""Provenance: library versions, content hashes and config hashes recorded beside every number."""

from __future__ import annotations

import hashlib
import json
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

TRACKED_PACKAGES = (
    "torch",
    "sentence-transformers",
    "transformers",
    "peft",
    "faiss-cpu",
    "faiss-gpu",
    "numpy",
    "pandas",
    "pyarrow",
    "ir-measures",
    "ranx",
    "bm25s",
    "umap-learn",
    "scipy",
    "snakemake",
)


def versions(packages: tuple[str, ...] = TRACKED_PACKAGES) -> dict[str, str]:
    """Installed versions of ``packages`` (those not installed are left out) plus Python's."""
    out = {"python": platform.python_version()}
    for name in packages:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def sha256_file(path: str | Path, chunk_bytes: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes, read in ``chunk_bytes`` chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk_bytes):
            h.update(block)
    return h.hexdigest()


def model_weights_sha256(model_dir: str | Path) -> str:
    """sha256 of a SentenceTransformer folder's weights (``model.safetensors`` or ``pytorch_model.bin``).

    Looks in the folder itself and in its first-level sub-folders; raises FileNotFoundError if none is found.
    """
    root = Path(model_dir)
    for name in ("model.safetensors", "pytorch_model.bin"):
        hits = sorted(root.glob(name)) or sorted(root.glob(f"*/{name}"))
        if hits:
            return sha256_file(hits[0])
    raise FileNotFoundError(f"{root}: no model.safetensors or pytorch_model.bin found")


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no whitespace: equal configs give equal strings."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def config_hash(obj: Any, length: int = 12) -> str:
    """Short sha256 of the canonical JSON of a config slice; keys partial state and provenance columns."""
    return hashlib.sha256(canonical_json(obj).encode("utf-8")).hexdigest()[:length]
