"""Base-model resolution: offline copy with a checked sha256, local folders, one clear error otherwise."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from ftstudy import models
from ftstudy.models import BASE_MODEL_ID, ModelNotFoundError, resolve_model
from ftstudy.provenance import sha256_file


def test_default_model_resolves_offline_to_the_genuine_weights(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    path = resolve_model(BASE_MODEL_ID)
    assert sha256_file(f"{path}/model.safetensors") == models.BASE_MODEL_SHA256


def test_tampered_packaged_weights_are_refused(tmp_path, monkeypatch):
    fake = tmp_path / "model"
    shutil.copytree(models.packaged_base_model_dir(), fake, ignore=shutil.ignore_patterns("model.safetensors"))
    (fake / "model.safetensors").write_bytes(b"not the real weights")
    monkeypatch.setattr(models, "packaged_base_model_dir", lambda: fake)
    with pytest.raises(ValueError, match="sha256"):
        resolve_model(BASE_MODEL_ID)


def test_local_folder_is_used_as_is(tmp_path):
    folder = tmp_path / "m"
    shutil.copytree(models.packaged_base_model_dir(), folder)
    assert resolve_model(str(folder)) == str(folder.resolve())


@pytest.mark.parametrize("spec", ["./no/such/model", "/definitely/missing"])
def test_missing_local_model_is_one_clear_error(spec):
    with pytest.raises(ModelNotFoundError, match="no such folder"):
        resolve_model(spec)


def test_unknown_hub_id_offline_is_one_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError, match="HF_HUB_OFFLINE"):
        resolve_model("someone/unknown-model")


def test_folder_without_a_model_is_rejected(tmp_path):
    with pytest.raises(ModelNotFoundError, match="modules.json"):
        resolve_model(str(tmp_path))


def test_base_model_embeds_normalised_384d(base_model):
    from ftstudy.encode import encode_texts

    emb = encode_texts(base_model, ["what is the boiling point of water", "water boils at 100 degrees"])
    assert emb.shape == (2, 384) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    assert float(emb[0] @ emb[1]) > 0.5
