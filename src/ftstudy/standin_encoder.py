"""A stand-in for the base model: same tokenizer and output, one tiny random transformer layer (no download).

For timing the full-size workflow on CPUs, where the real all-MiniLM-L6-v2 would encode 8.8M passages for days,
:func:`build_standin` makes a SentenceTransformer that the workflow treats as any local model
(``base_model: <folder>``; :func:`ftstudy.models.resolve_model` accepts a folder with ``modules.json``):

- the base model's tokenizer (files copied from its folder, so the vocabulary is identical) and max_seq_length;
- one BERT layer built from a ``BertConfig`` (default hidden 64, 2 heads, intermediate 128), randomly initialised;
- mean pooling, a ``Dense`` layer to 384 dimensions (identity activation) and ``Normalize``: L2-normalised
  384-d embeddings, like the base model's.

Everything random is drawn from ``torch.manual_seed(seed)``, so the same seed gives byte-identical
``model.safetensors`` files. Its embeddings mean nothing; its cost per passage is what it is for
(bench/bench_standin.py measures it against the real model; docs/scale.md has the figures).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

OUTPUT_DIM = 384  # the base model's embedding size
TOKENIZER_FILES = ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


@dataclass(frozen=True)
class StandinConfig:
    """The stand-in's architecture: one BERT layer of ``hidden_size`` (<= 64), ``num_attention_heads`` heads and
    an ``intermediate_size`` feed-forward layer; ``output_dim`` of the Dense projection."""

    hidden_size: int = 64
    num_attention_heads: int = 2
    intermediate_size: int = 128
    num_hidden_layers: int = 1
    output_dim: int = OUTPUT_DIM

    def check(self) -> None:
        if not 1 <= self.hidden_size <= 64:
            raise ValueError(f"stand-in hidden_size {self.hidden_size}: expected 1..64")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(f"stand-in hidden_size {self.hidden_size} is not a multiple of the head count")
        if self.num_hidden_layers != 1:
            raise ValueError("the stand-in has exactly one transformer layer")


def base_settings(base_dir: str | os.PathLike) -> dict:
    """The base model folder's ``max_seq_length`` and BERT vocabulary/position sizes (read from its files)."""
    base = Path(base_dir)
    st_config = json.loads((base / "sentence_bert_config.json").read_text())
    bert = json.loads((base / "config.json").read_text())
    return {
        "max_seq_length": int(st_config["max_seq_length"]),
        "vocab_size": int(bert["vocab_size"]),
        "max_position_embeddings": int(bert["max_position_embeddings"]),
        "type_vocab_size": int(bert.get("type_vocab_size", 2)),
        "pad_token_id": int(bert.get("pad_token_id", 0)),
    }


def build_standin(base_dir: str | os.PathLike, seed: int = 0, config: StandinConfig | None = None):
    """A stand-in SentenceTransformer (on the CPU) with ``base_dir``'s tokenizer and max_seq_length and random
    weights from ``seed``. ``base_dir``: a local base model folder (:func:`ftstudy.models.resolve_model`)."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Dense, Normalize, Pooling, Transformer
    from transformers import BertConfig, BertModel

    config = config or StandinConfig()
    config.check()
    base = Path(base_dir)
    settings = base_settings(base)
    bert_config = BertConfig(
        vocab_size=settings["vocab_size"],
        hidden_size=config.hidden_size,
        num_hidden_layers=config.num_hidden_layers,
        num_attention_heads=config.num_attention_heads,
        intermediate_size=config.intermediate_size,
        max_position_embeddings=settings["max_position_embeddings"],
        type_vocab_size=settings["type_vocab_size"],
        pad_token_id=settings["pad_token_id"],
    )
    torch.manual_seed(int(seed))
    bert = BertModel(bert_config)
    with tempfile.TemporaryDirectory(prefix="standin-") as tmp:
        bert.save_pretrained(tmp)
        for name in TOKENIZER_FILES:
            if (base / name).exists():
                shutil.copy2(base / name, Path(tmp) / name)
        transformer = Transformer(tmp, max_seq_length=settings["max_seq_length"])
    pooling = Pooling(config.hidden_size, pooling_mode="mean")
    dense = Dense(config.hidden_size, config.output_dim, activation_function=torch.nn.Identity())
    return SentenceTransformer(modules=[transformer, pooling, dense, Normalize()], device="cpu")


def save_standin(
    out_dir: str | os.PathLike, base_dir: str | os.PathLike, seed: int = 0, config: StandinConfig | None = None
) -> Path:
    """Build the stand-in and save it to ``out_dir`` (atomically: a sibling temporary folder moved into place),
    with ``standin.json`` recording the seed, the architecture and the base folder's settings. Returns the folder."""
    from ftstudy.atomic import atomic_dir

    config = config or StandinConfig()
    model = build_standin(base_dir, seed, config)
    with atomic_dir(out_dir) as tmp:
        model.save(str(tmp))
        record = {"seed": int(seed), "config": asdict(config), "base": base_settings(base_dir)}
        (tmp / "standin.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    return Path(out_dir)
