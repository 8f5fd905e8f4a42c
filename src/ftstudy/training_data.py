"""Training data for one job: read and split the triplets, tokenise every distinct text once, fix the batch order.

- **Split.** Triplets are split BY QUERY (seeded): ``eval_fraction`` of the distinct queries are held out for the
  TripletEvaluator, then ``train_fraction`` of the remaining triplets is kept for training (seeded sample).
- **Tokenise once.** Every distinct text (queries and passages repeat across triplets) is tokenised once with the
  model's own ``preprocess`` (same truncation to ``max_seq_length`` as the library's collator) and stored as one
  flat int32 token array plus offsets. The training set is then a column of row numbers; :class:`TokenCollator`
  pads the stored tokens of each batch. The library's collator would re-tokenise every text in every epoch.
- **Data order.** The order of ALL epochs is fixed up front (:func:`epoch_batches`); the trainer sees one long
  "epoch" of these batches (:class:`ScheduleBatchSampler`), so resuming after a kill skips exactly the batches
  already trained and every later batch is the same as in an uninterrupted run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

TRIPLET_COLUMNS = ("query", "positive", "negative")


def read_triplets(path: str | os.PathLike) -> pd.DataFrame:
    """Read a triplet parquet; raise ValueError naming the file when columns are missing or texts are empty."""
    df = pd.read_parquet(path)
    missing = [c for c in TRIPLET_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}; expected {list(TRIPLET_COLUMNS)}")
    df = df[list(TRIPLET_COLUMNS)].reset_index(drop=True)
    for col in TRIPLET_COLUMNS:
        bad = df[col].isna() | (df[col].astype(str).str.strip() == "")
        if bad.any():
            raise ValueError(f"{path}: row {int(np.flatnonzero(bad)[0])} has an empty '{col}' (expected text)")
    if len(df) == 0:
        raise ValueError(f"{path}: no triplets")
    return df


def split_triplets(
    df: pd.DataFrame, eval_fraction: float, train_fraction: float, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, eval): ``eval_fraction`` of the distinct queries held out (at least one, never all), then a seeded
    ``train_fraction`` sample of the rest. Both keep the input's row order."""
    queries = np.array(sorted(df["query"].unique()), dtype=object)
    if len(queries) < 2:
        raise ValueError("need triplets from at least 2 distinct queries to hold some out for evaluation")
    rng = np.random.default_rng([seed, 1])
    n_eval = min(len(queries) - 1, max(1, round(eval_fraction * len(queries))))
    eval_queries = set(queries[rng.permutation(len(queries))[:n_eval]])
    is_eval = df["query"].isin(eval_queries).to_numpy()
    eval_df, train_df = df[is_eval], df[~is_eval]
    if train_fraction < 1.0:
        keep = max(1, round(train_fraction * len(train_df)))
        rows = np.sort(np.random.default_rng([seed, 2]).choice(len(train_df), size=keep, replace=False))
        train_df = train_df.iloc[rows]
    return train_df.reset_index(drop=True), eval_df.reset_index(drop=True)


@dataclass
class TokenTable:
    """Ragged token ids of distinct texts: text ``i`` is ``ids[offsets[i]:offsets[i+1]]``."""

    ids: np.ndarray  # int32, all tokens back to back
    offsets: np.ndarray  # int64, (n_texts + 1,)
    pad_id: int
    with_token_type_ids: bool
    extra: dict = field(default_factory=dict)  # non-tensor keys of model.preprocess (e.g. modality)


def tokenize_once(model, texts: list[str], chunk: int = 4096) -> TokenTable:
    """Tokenise ``texts`` once with ``model.preprocess`` (the library's own tokenisation and truncation), ``chunk``
    texts at a time, with a progress bar (texts done, rate, ETA: ~2.5M distinct texts for 1M triplets)."""
    from tqdm.auto import tqdm

    pieces, lengths = [], []
    with_tt, extra = False, {}
    bar = tqdm(total=len(texts), desc="tokenising training texts", unit="text", unit_scale=True)
    for start in range(0, len(texts), chunk):
        feats = model.preprocess(texts[start : start + chunk])
        bar.update(min(chunk, len(texts) - start))
        mask = feats["attention_mask"].bool()
        lens = mask.sum(1)
        if not torch.equal(mask, torch.arange(mask.shape[1])[None, :] < lens[:, None]):
            raise RuntimeError("tokenizer pads on the left; TokenCollator expects right padding")
        if "token_type_ids" in feats:
            with_tt = True
            if bool(feats["token_type_ids"][mask].any()):
                raise RuntimeError("non-zero token_type_ids in single-text inputs; not supported")
        extra.update({k: v for k, v in feats.items() if not isinstance(v, torch.Tensor)})
        pieces.append(feats["input_ids"][mask].to(torch.int32).numpy())
        lengths.append(lens.numpy())
    bar.close()
    lens = np.concatenate(lengths) if lengths else np.zeros(0, np.int64)
    offsets = np.zeros(len(lens) + 1, dtype=np.int64)
    np.cumsum(lens, out=offsets[1:])
    pad_id = model.tokenizer.pad_token_id or 0
    ids = np.concatenate(pieces) if pieces else np.zeros(0, np.int32)
    return TokenTable(ids=ids, offsets=offsets, pad_id=int(pad_id), with_token_type_ids=with_tt, extra=extra)


def index_texts(df: pd.DataFrame) -> tuple[list[str], np.ndarray]:
    """Distinct texts of all three columns and an (n, 3) int64 array of positions into them."""
    codes, uniques = pd.factorize(pd.concat([df[c] for c in TRIPLET_COLUMNS], ignore_index=True))
    return list(uniques), codes.reshape(len(TRIPLET_COLUMNS), len(df)).T.copy()


@dataclass
class TokenCollator:
    """Batches of row numbers -> padded model inputs, from a :class:`TokenTable` (no tokenisation here).

    Output keys match the library's collator: ``{column}_input_ids``, ``{column}_attention_mask``,
    ``{column}_token_type_ids`` (BERT), plus the non-tensor keys of ``model.preprocess``.
    """

    table: TokenTable
    rows: np.ndarray  # (n, 3) positions into the table
    columns: tuple[str, ...] = TRIPLET_COLUMNS
    valid_label_columns: list = field(default_factory=list)

    def pad(self, text_idx: np.ndarray) -> dict[str, Any]:
        """Model inputs of the texts ``text_idx`` (n,): ``input_ids``/``attention_mask`` (n, longest) int64,
        right-padded with the tokenizer's pad id."""
        t = self.table
        starts, ends = t.offsets[text_idx], t.offsets[text_idx + 1]
        lens = ends - starts
        width = int(lens.max())
        ids = np.full((len(text_idx), width), t.pad_id, dtype=np.int64)
        for i, (s, n) in enumerate(zip(starts, lens, strict=True)):
            ids[i, :n] = t.ids[s : s + n]
        mask = (np.arange(width)[None, :] < lens[:, None]).astype(np.int64)
        out = {"input_ids": torch.from_numpy(ids)}
        if t.with_token_type_ids:
            out["token_type_ids"] = torch.zeros_like(out["input_ids"])
        out["attention_mask"] = torch.from_numpy(mask)
        out.update(t.extra)
        return out

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        """A batch of dataset rows (``{"row": i}``) -> ``{column}_{key}`` tensors for each triplet column."""
        rows = np.asarray([f["row"] for f in features], dtype=np.int64)
        batch: dict[str, Any] = {}
        for j, col in enumerate(self.columns):
            for key, value in self.pad(self.rows[rows, j]).items():
                batch[f"{col}_{key}"] = value
        return batch


def epoch_batches(n: int, batch_size: int, epochs: int, seed: int) -> list[np.ndarray]:
    """The batches of every epoch, in training order: epoch e shuffles with ``default_rng([seed, 0, e])``."""
    out = []
    for e in range(epochs):
        perm = np.random.default_rng([seed, 0, e]).permutation(n)
        out += [perm[i : i + batch_size] for i in range(0, n, batch_size)]
    return out


class ScheduleBatchSampler:
    """A batch sampler over a fixed, precomputed list of batches (stateless, so resume is exact)."""

    def __init__(self, batches: list[np.ndarray]):
        self.batches = batches

    def __iter__(self):
        """Each batch as a list of row numbers, in the fixed order."""
        for b in self.batches:
            yield [int(i) for i in b]

    def __len__(self) -> int:
        return len(self.batches)

    def set_epoch(self, epoch: int) -> None:  # the trainer calls this; the order is already fixed
        pass
