"""LoRA on a SentenceTransformer with peft: wrap, count, save the adapter, merge.

transformers >= 5.2x refuses ``model.add_adapter`` with peft 0.21.x, so the Hugging Face transformer inside the
first module (``model[0].model`` in sentence-transformers 6; ``auto_model`` is a read-only alias there) is wrapped
with :func:`peft.get_peft_model` directly and put back in place.
"""

from __future__ import annotations

import torch


def _holder(model):
    """(module, attribute) that holds the Hugging Face transformer of a SentenceTransformer."""
    first = model[0]
    for attr in ("model", "auto_model"):
        prop = getattr(type(first), attr, None)
        if isinstance(prop, property) and prop.fset is None:
            continue  # read-only alias
        if isinstance(getattr(first, attr, None), torch.nn.Module):
            return first, attr
    raise TypeError(f"{type(first).__name__}: no transformer attribute ('model' or 'auto_model') to wrap with LoRA")


def transformer_of(model) -> torch.nn.Module:
    """The Hugging Face transformer (possibly a peft wrapper) inside a SentenceTransformer."""
    holder, attr = _holder(model)
    return getattr(holder, attr)


def apply_lora(model, lora: dict, seed: int):
    """Wrap the transformer of ``model`` in place with a LoRA adapter; returns the ``PeftModel``.

    ``lora``: ``{"r", "alpha", "dropout", "target_modules"}``. The adapter's random init (lora_A) is seeded with
    ``seed``; lora_B starts at zero, so the wrapped model initially embeds exactly like the base model. Base weights
    are frozen (requires_grad False).
    """
    from peft import LoraConfig, get_peft_model

    holder, attr = _holder(model)
    config = LoraConfig(
        r=int(lora["r"]),
        lora_alpha=float(lora["alpha"]),
        lora_dropout=float(lora["dropout"]),
        target_modules=list(lora["target_modules"]),
        bias="none",
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        peft_model = get_peft_model(getattr(holder, attr), config)
    setattr(holder, attr, peft_model)
    return peft_model


def save_adapter(model, path) -> None:
    """Save the peft adapter (``adapter_config.json`` + ``adapter_model.safetensors``) into ``path``."""
    transformer_of(model).save_pretrained(str(path))


def merge_lora(model) -> None:
    """Fold the LoRA weights into the base weights in place (``merge_and_unload``); the model becomes plain."""
    holder, attr = _holder(model)
    setattr(holder, attr, getattr(holder, attr).merge_and_unload())


def count_parameters(model) -> tuple[int, int]:
    """(trainable, total) parameter counts of a torch module, each tensor counted once."""
    seen, trainable, total = set(), 0, 0
    for p in model.parameters():
        if id(p) in seen:
            continue
        seen.add(id(p))
        total += p.numel()
        if p.requires_grad:
            trainable += p.numel()
    return trainable, total
