"""Weight-space interpolation of a fine-tuned model with its base (WiSE-FT, Wortsman et al., arXiv 2109.01903).

The model ``{source}_wise{NN}`` is ``(1 - w) * base + w * fine-tuned``, parameter by parameter, with w = NN / 100.
A LoRA variant's model folder holds the merged weights, which differ from base only by the adapter's delta
``B @ A * scaling``; interpolating that folder gives ``base + w * delta`` for the adapted matrices and base
elsewhere, the "scale the merged delta by w" of the issue, with one implementation for both methods.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch

from ftstudy.atomic import atomic_dir
from ftstudy.provenance import model_weights_sha256


class InterpolationError(ValueError):
    """Two models that cannot be interpolated (other parameters, shapes or modules); the message names both."""


def _check_compatible(base: Mapping, tuned: Mapping, base_name: str, tuned_name: str) -> None:
    """Same keys, shapes and dtypes in both state dicts, else InterpolationError naming the first difference."""
    only_base, only_tuned = sorted(set(base) - set(tuned)), sorted(set(tuned) - set(base))
    if only_base or only_tuned:
        raise InterpolationError(
            f"{base_name} and {tuned_name} hold different parameters: only in the base {only_base[:5]}, "
            f"only in the fine-tuned model {only_tuned[:5]} (expected the same architecture)"
        )
    for key, b in base.items():
        t = tuned[key]
        if b.shape != t.shape or b.dtype != t.dtype:
            raise InterpolationError(
                f"parameter '{key}': {base_name} has {tuple(b.shape)} {b.dtype}, {tuned_name} has "
                f"{tuple(t.shape)} {t.dtype} (expected the same shape and dtype)"
            )


def interpolate_state_dicts(
    base: Mapping[str, torch.Tensor],
    tuned: Mapping[str, torch.Tensor],
    weight: float,
    base_name: str = "base",
    tuned_name: str = "fine-tuned",
) -> dict[str, torch.Tensor]:
    """``(1 - weight) * base + weight * tuned`` for every floating tensor; other tensors (integer buffers) copied.

    ``base`` and ``tuned``: state dicts with the same keys, shapes and dtypes (else InterpolationError naming
    ``base_name`` / ``tuned_name``); ``weight`` in [0, 1]. Each tensor is computed in float64 with
    :func:`torch.lerp`, which is exact at both ends (``start + w * (end - start)`` for w < 0.5, ``end - (end -
    start) * (1 - w)`` otherwise), and cast back to its dtype: w = 0 gives base and w = 1 gives tuned bit for bit.
    Non-floating tensors must be equal in both (else InterpolationError). Returns a new dict on the CPU.
    """
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"interpolation weight {weight} is outside [0, 1]")
    _check_compatible(base, tuned, base_name, tuned_name)
    out = {}
    for key, b in base.items():
        b, t = b.detach().cpu(), tuned[key].detach().cpu()
        if b.is_floating_point():
            out[key] = torch.lerp(b.double(), t.double(), float(weight)).to(b.dtype)
        elif torch.equal(b, t):
            out[key] = t.clone()
        else:
            raise InterpolationError(
                f"non-floating tensor '{key}' ({b.dtype}) differs between {base_name} and {tuned_name}; "
                "it cannot be interpolated (expected equal buffers)"
            )
    return out


def _module_types(model) -> list[str]:
    return [type(m).__name__ for m in model]


def interpolate_models(base_dir: str | Path, tuned_dir: str | Path, weight: float, out_dir: str | Path) -> dict:
    """Write the SentenceTransformer ``(1 - weight) * base + weight * tuned`` to ``out_dir`` (atomically).

    Both folders are loaded on the CPU; they must have the same module stack (e.g. Transformer, Pooling,
    Normalize) and state-dict layout. The fine-tuned model is the template: its module configuration is saved with
    the interpolated weights. Returns a record for ``interpolation.json``: weight, the folders and the sha256 of
    each one's weights (base, source, output).
    """
    from sentence_transformers import SentenceTransformer

    base = SentenceTransformer(str(base_dir), device="cpu")
    tuned = SentenceTransformer(str(tuned_dir), device="cpu")
    if _module_types(base) != _module_types(tuned):
        raise InterpolationError(
            f"{base_dir} has modules {_module_types(base)} but {tuned_dir} has {_module_types(tuned)} "
            "(expected the same module stack)"
        )
    mixed = interpolate_state_dicts(base.state_dict(), tuned.state_dict(), weight, str(base_dir), str(tuned_dir))
    tuned.load_state_dict(mixed, strict=True)
    with atomic_dir(out_dir) as tmp:
        tuned.save_pretrained(str(tmp))
    floating = [v for v in mixed.values() if v.is_floating_point()]
    return {
        "weight": float(weight),
        "formula": "(1 - weight) * base + weight * source, every floating tensor (torch.lerp in float64)",
        "base": str(base_dir),
        "source": str(tuned_dir),
        "base_sha256": model_weights_sha256(base_dir),
        "source_sha256": model_weights_sha256(tuned_dir),
        "sha256": model_weights_sha256(out_dir),
        "n_tensors": len(mixed),
        "n_interpolated_tensors": len(floating),
        "n_parameters": int(sum(v.numel() for v in floating)),
    }
