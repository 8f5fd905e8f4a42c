"""L2-SP (issue 14, arXiv 1802.01483): the penalty against independent computations, full and LoRA.

The training-level checks (an L2-SP run ends nearer the base; the logged columns) are in tests/test_training.py.
"""

from __future__ import annotations

import copy
import os

import numpy as np
import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from ftstudy.l2sp import L2SPLoss, penalty, start_point  # noqa: E402
from ftstudy.models import BASE_MODEL_ID, resolve_model  # noqa: E402

LAMBDA = 0.37


@pytest.fixture(scope="module")
def base():
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(1)
    return SentenceTransformer(resolve_model(BASE_MODEL_ID), device="cpu")


class _ConstantLoss(torch.nn.Module):
    """A stand-in task loss: 1.5 whatever the input (so the L2-SP term is all that varies)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, features, labels):
        return torch.tensor(1.5)


def test_full_penalty_is_zero_at_start_then_lambda_times_the_squared_delta(base):
    model = copy.deepcopy(base)
    loss = L2SPLoss(_ConstantLoss(model), LAMBDA, start_point(model))
    assert loss(None, None).item() == 1.5 and penalty(loss.start).item() == 0.0
    # Move three weights by known deltas; the penalty is lambda * sum(delta^2), here in float64 from the deltas.
    params = dict(model.named_parameters())
    names = [n for n in params if n.endswith(("layer.0.attention.self.query.weight", "layer.5.output.dense.bias"))]
    names.append(next(n for n in params if "word_embeddings" in n))
    rng = np.random.default_rng(0)
    deltas = {n: rng.normal(0, 1e-2, tuple(params[n].shape)).astype(np.float32) for n in names}
    with torch.no_grad():
        for n, d in deltas.items():
            params[n] += torch.from_numpy(d)
    expected = LAMBDA * sum(float((d.astype(np.float64) ** 2).sum()) for d in deltas.values())
    total = loss(None, None)
    assert total.item() == pytest.approx(1.5 + expected, rel=1e-5)
    task, term = loss.parts.take()  # two calls recorded: at the start and after the move
    assert task == pytest.approx(1.5) and term == pytest.approx(expected / 2, rel=1e-5)
    # Its gradient is 2 lambda (theta - theta_base): zero for the weights that did not move.
    total.backward()
    n0 = names[0]
    # atol: theta - theta_base of float32 weights differs from the delta by about one ulp (~1e-8)
    np.testing.assert_allclose(params[n0].grad.numpy(), 2 * LAMBDA * deltas[n0], rtol=1e-4, atol=2e-8)
    untouched = next(n for n in params if n.endswith("layer.3.intermediate.dense.weight"))
    assert float(params[untouched].grad.abs().max()) == 0.0


def test_lora_penalty_is_lambda_times_the_merged_delta(base):
    from ftstudy.lora import apply_lora, merge_lora

    model = copy.deepcopy(base)
    lora = {"r": 4, "alpha": 12, "dropout": 0.0, "target_modules": ["query", "value"]}
    apply_lora(model, lora, seed=3)
    start = start_point(model)
    assert start.anchored == [] and len(start.lora_layers) == 12  # only the adapters train
    assert penalty(start).item() == 0.0  # B = 0 at the start
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if ".lora_B." in name:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.05)
    # Independently 1: from peft's weights, B @ A * (alpha / r), in float64.
    sd = {k: v.double() for k, v in model.state_dict().items()}
    scale = lora["alpha"] / lora["r"]
    by_hand = sum(
        float(((scale * sd[k.replace("lora_A", "lora_B")] @ sd[k]) ** 2).sum()) for k in sd if ".lora_A." in k
    )
    # Independently 2: what merging adds to each weight.
    merged = copy.deepcopy(model)
    merge_lora(merged)
    base_sd, merged_sd = base.state_dict(), merged.state_dict()
    merge_delta = sum(float(((merged_sd[k].double() - base_sd[k].double()) ** 2).sum()) for k in base_sd)
    assert by_hand == pytest.approx(merge_delta, rel=1e-4)
    loss = L2SPLoss(_ConstantLoss(model), LAMBDA, start)
    assert loss(None, None).item() - 1.5 == pytest.approx(LAMBDA * by_hand, rel=1e-5)
    assert not any(getattr(m, "merged", False) for m in start.lora_layers)  # computed without merging in place


def test_off_adds_nothing_and_strength_needs_a_start(base):
    loss = L2SPLoss(_ConstantLoss(base), 0.0, None)
    assert float(loss(None, None)) == 1.5 and loss.parts.take() == (1.5, 0.0)
    with pytest.raises(ValueError, match="start point"):
        L2SPLoss(_ConstantLoss(base), 0.1, None)
