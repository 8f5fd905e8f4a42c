"""The stand-in encoder (ftstudy.standin_encoder): loads as any local SentenceTransformer folder, the base model's
tokenizer and max_seq_length, one small layer, unit-norm 384-d output, byte-identical from the same seed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ftstudy.models import resolve_model
from ftstudy.standin_encoder import OUTPUT_DIM, StandinConfig, save_standin

BASE = "sentence-transformers/all-MiniLM-L6-v2"


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("standin")
    base = resolve_model(BASE)
    return {
        "a": save_standin(root / "a", base, seed=11),
        "b": save_standin(root / "b", base, seed=11),
        "c": save_standin(root / "c", base, seed=12),
        "base": Path(base),
    }


def _weights(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*.safetensors"))}


def test_same_seed_gives_byte_identical_weights_and_another_seed_differs(folders):
    a, b, c = (_weights(folders[k]) for k in "abc")
    assert set(a) == {"model.safetensors", "2_Dense/model.safetensors"}
    assert a == b
    assert a["model.safetensors"] != c["model.safetensors"]


def test_loads_as_a_local_base_model_and_gives_unit_norm_384_d_embeddings(folders):
    from sentence_transformers import SentenceTransformer

    assert resolve_model(str(folders["a"])) == str(folders["a"].resolve())  # the workflow's base_model resolution
    model = SentenceTransformer(str(folders["a"]), device="cpu")
    emb = model.encode(["what is the cost of a bat", "Bankbird was born in the band.", "x"], batch_size=2)
    assert emb.shape == (3, OUTPUT_DIM)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    assert np.abs(emb[0] - emb[1]).max() > 1e-3  # different texts, different vectors


def test_has_the_base_tokenizer_and_max_seq_length_and_one_small_layer(folders, base_model):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(folders["a"]), device="cpu")
    assert model.tokenizer.get_vocab() == base_model.tokenizer.get_vocab()
    assert model.max_seq_length == base_model.max_seq_length == 256
    config = model[0].auto_model.config
    assert config.num_hidden_layers == 1 and config.hidden_size <= 64
    assert model.get_embedding_dimension() == base_model.get_embedding_dimension() == OUTPUT_DIM
    text = "how long does it take to grow a bankbird"
    assert model.tokenizer(text)["input_ids"] == base_model.tokenizer(text)["input_ids"]


def test_refuses_a_layer_wider_than_64():
    with pytest.raises(ValueError, match="hidden_size 128"):
        StandinConfig(hidden_size=128).check()
