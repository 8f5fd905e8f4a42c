"""The pipelined encoder: SentenceTransformer embeddings with tokenisation off the critical path.

:class:`PipelinedEncoder` tokenises chunks of texts once, in a background thread, with the fast tokenizer's batch
call (Rust, releases the GIL); sorts each chunk by token length and cuts it into batches of at most
``max_tokens`` padded tokens (:func:`budget_batches`), so little padding is computed; pads each batch into (on a
GPU, pinned) host tensors. The calling thread copies each batch to the device asynchronously, runs the model's
own modules (transformer, pooling, normalize) and scatters the L2-normalised embeddings back into input order.

It computes the same vectors as ``SentenceTransformer.encode`` (the library's modules on the same tokens; only
padding and batch composition differ, at rounding level in fp32). Whether the workflow uses it is decided by
measurement (:data:`ftstudy.encode.PIPELINED_BY_DEVICE`, bench/bench_encode.py).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Sequence

import numpy as np

from ftstudy.encode import embedding_dim

TORCH_DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


def budget_batches(lengths: np.ndarray, max_tokens: int, max_batch: int) -> list[np.ndarray]:
    """Batches of indices into ``lengths`` (tokens per text, (n,) int), longest first, each with (its longest
    length x its size) <= ``max_tokens`` padded tokens and at most ``max_batch`` texts (at least one text)."""
    order = np.argsort(-np.asarray(lengths), kind="stable")
    out, i = [], 0
    while i < len(order):
        longest = max(1, int(lengths[order[i]]))
        size = max(1, min(max_batch, max_tokens // longest))
        out.append(order[i : i + size])
        i += size
    return out


def padding_overhead(lengths: np.ndarray, batches: Sequence[np.ndarray]) -> float:
    """Padded tokens computed / real tokens - 1 (each batch padded to its longest member); 0.0 = no padding."""
    computed = sum(int(lengths[b].max()) * len(b) for b in batches)
    return computed / max(1, int(np.sum(lengths))) - 1


class PipelinedEncoder:
    """Encode texts with a SentenceTransformer, tokenising in a background thread (see the module docstring).

    ``model`` is moved to ``device`` and cast to ``dtype`` weights (fp32/bf16/fp16) in place. ``max_tokens``:
    padded tokens per batch; ``max_batch``: most texts per batch; ``chunk``: texts tokenised per background step;
    ``prefetch``: batches queued ahead. :meth:`encode` returns (n, d) float32 rows with L2 norm 1, in input order.
    """

    def __init__(self, model, device: str | None = None, dtype: str = "fp32", max_tokens: int = 65536,
                 max_batch: int = 2048, chunk: int = 16384, prefetch: int = 4):  # fmt: skip
        import torch

        self.device = str(device or model.device)
        self.model = model.to(device=self.device, dtype=getattr(torch, TORCH_DTYPES[dtype])).eval()
        self.tokenizer = model.tokenizer
        self.max_length = int(getattr(model, "max_seq_length", None) or 256)
        self.max_tokens, self.max_batch, self.chunk, self.prefetch = max_tokens, max_batch, chunk, prefetch
        self.pin = self.device.startswith("cuda")
        self.dim = embedding_dim(model)
        self.last_padding: float | None = None

    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of each text, truncated to the model's max_seq_length, no padding."""
        enc = self.tokenizer(list(texts), truncation=True, max_length=self.max_length, padding=False,
                             return_attention_mask=False, return_token_type_ids=False)  # fmt: skip
        return enc["input_ids"]

    def _batch_tensors(self, ids: list[list[int]], lengths: np.ndarray, b: np.ndarray, start: int):
        """(input_ids, attention_mask, row index) int64 tensors of one batch, pinned on a GPU."""
        import torch

        width = int(lengths[b].max())
        arr = np.full((len(b), width), self.tokenizer.pad_token_id or 0, dtype=np.int64)
        for row, i in enumerate(b):
            arr[row, : lengths[i]] = ids[i]
        mask = (np.arange(width)[None, :] < lengths[b][:, None]).astype(np.int64)
        tensors = (torch.from_numpy(arr), torch.from_numpy(mask), torch.from_numpy(b + start))
        return tuple(t.pin_memory() for t in tensors) if self.pin else tensors

    def _producer(self, texts: Sequence[str], q: queue.Queue, stats: dict) -> None:
        """Background thread: tokenise chunk by chunk and queue padded batches; an exception is queued too."""
        try:
            for start in range(0, len(texts), self.chunk):
                ids = self.tokenize(texts[start : start + self.chunk])
                lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
                batches = budget_batches(lengths, self.max_tokens, self.max_batch)
                stats["real"] += int(lengths.sum())
                stats["computed"] += sum(int(lengths[b].max()) * len(b) for b in batches)
                for b in batches:
                    q.put(self._batch_tensors(ids, lengths, b, start))
        except BaseException as exc:  # surfaced in the calling thread
            q.put(exc)
            return
        q.put(None)

    def encode(self, texts: Sequence[str], to_numpy: bool = True, show_progress: bool = False, desc: str = "encode"):
        """(n, d) L2-normalised float32 embeddings in input order: numpy (``to_numpy``) or a device tensor."""
        import torch
        from tqdm.auto import tqdm

        out = torch.empty((len(texts), self.dim), dtype=torch.float32, device=self.device)
        q: queue.Queue = queue.Queue(maxsize=self.prefetch)
        stats = {"real": 0, "computed": 0}
        worker = threading.Thread(target=self._producer, args=(texts, q, stats), daemon=True)
        worker.start()
        bar = tqdm(total=len(texts), desc=desc, unit="text", disable=not show_progress)
        with torch.inference_mode(), bar:
            while (item := q.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                input_ids, mask, index = (t.to(self.device, non_blocking=True) for t in item)
                emb = self.model({"input_ids": input_ids, "attention_mask": mask})["sentence_embedding"]
                out.index_copy_(0, index, torch.nn.functional.normalize(emb.float(), p=2, dim=1))
                bar.update(len(index))
        worker.join()
        self.last_padding = stats["computed"] / max(1, stats["real"]) - 1
        return out.cpu().numpy() if to_numpy else out
