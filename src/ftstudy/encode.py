"""Text -> embedding. Every embedding in the study goes through this module.

Output is always L2-normalised, so inner product equals cosine similarity whatever loss trained the model.

- :func:`encode_texts` encodes a list of texts in memory (queries, small corpora): float32 (n, d).
- :func:`encode_corpus` encodes a whole collection in resumable chunks and writes the contract's embedding folder
  (``vectors.npy`` float32 (n, d) by default, float16 with ``store_dtype``; ``ids.npy`` int64; ``meta.json``). Each
  chunk goes straight into its rows of the final ``vectors.npy``, which is built in a caller-given partial folder
  (``results/.partial/...``, :mod:`ftstudy.partial`, :mod:`ftstudy.row_file`) and moved into the output on
  success: the vectors are never on disk twice. A killed job restarts from its last finished chunk.
- :func:`encode_shard` encodes one shard's block of those chunks into the same folder (``encoding.shards``
  jobs, :mod:`ftstudy.shards`); :func:`encode_corpus` then reuses them and writes the same bytes.
- :func:`partial_key` is the key of that folder: what changes a vector (settings, compute precision, weights,
  collection).

Two encoding paths compute the same vectors: the sorted path (batches sorted by *token* length, fixed size, the
model's own ``preprocess``/forward under ``torch.inference_mode``, bf16/fp16 autocast when ``dtype`` asks) and the
pipelined path (:class:`ftstudy.fast_encode.PipelinedEncoder`: background tokenisation, token-budget batches).
:data:`PIPELINED_BY_DEVICE` records which one the workflow takes for fp32 encoding on each device, and the
measurement behind it; reduced-precision encoding takes the sorted (autocast) path.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ftstudy.atomic import atomic_dir

LOG = logging.getLogger(__name__)
DTYPES = ("auto", "fp32", "bf16", "fp16")
STORE_DTYPES = ("float32", "float16")
# device type -> (use the pipelined encoder for fp32 encoding, the measurement that decided it; docs/retrieval.md)
PIPELINED_BY_DEVICE = {
    "cpu": (
        False,
        "bench/bench_encode.py --n 1000 --batch-size 64 --repeats 3 --threads 2 (2-core build machine): sorted path "
        "1.29x SentenceTransformer.encode, pipelined 1.37x, so pipelined/sorted 1.06x < the 1.1x adoption bar",
    ),
    "cuda": (False, "not measured on a GPU yet (bench/gpu_throughput.py, the GPU issue decides)"),
}


def use_pipelined(device: str, dtype: str) -> bool:
    """Whether :func:`encode_texts_dtype` takes the pipelined path for ``dtype`` (resolved) on ``device``."""
    return dtype == "fp32" and PIPELINED_BY_DEVICE["cuda" if str(device).startswith("cuda") else "cpu"][0]


def resolve_dtype(dtype: str, device: str) -> str:
    """``auto`` -> ``bf16`` on a GPU that supports it (else ``fp16``), ``fp32`` on CPU; other values unchanged."""
    if dtype not in DTYPES:
        raise ValueError(f"encoding dtype '{dtype}': expected one of {DTYPES}")
    if dtype != "auto":
        return dtype
    if str(device).startswith("cuda"):
        import torch

        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "fp32"


def embedding_dim(model) -> int:
    """Output dimension of a SentenceTransformer (the method's name changed in sentence-transformers 6)."""
    fn = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    return int(fn())


def _model_device(model) -> str:
    return str(getattr(model, "device", "cpu"))


class _TokenizedOnce:
    """The texts of one :func:`_encode_sorted` call tokenised once (fast tokenizer, truncated, no padding): their
    lengths sort the batches, and each batch is padded from these ids (``tokenizer.pad``) instead of being
    tokenised a second time by ``model.preprocess``. The first batch is checked against ``model.preprocess``: where
    its tensors differ (a model whose preprocessing adds prompts or other modules), every batch goes through
    ``model.preprocess`` as before. Without a callable tokenizer, lengths are character counts."""

    def __init__(self, model, texts: Sequence[str]):
        self.model, self.texts = model, texts
        tok = getattr(model, "tokenizer", None)
        self.enc, self.extra, self.checked = None, {}, False
        if tok is not None and callable(tok) and hasattr(tok, "pad"):
            max_len = getattr(model, "max_seq_length", None) or 512
            self.enc = tok(list(texts), add_special_tokens=True, truncation=True, max_length=max_len, padding=False)
            ids = self.enc["input_ids"]
            self.lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(texts))
        else:
            self.lengths = np.array([len(t) for t in texts], dtype=np.int64)

    def features(self, idx: np.ndarray) -> dict:
        """The model's input features of the texts at positions ``idx`` (padded to the longest)."""
        if self.enc is None:
            return self.model.preprocess([self.texts[i] for i in idx])
        padded = self.model.tokenizer.pad({k: [v[i] for i in idx] for k, v in self.enc.items()}, padding=True,
                                          return_tensors="pt")  # fmt: skip
        if not self.checked:
            self.checked = True
            ref = self.model.preprocess([self.texts[i] for i in idx])
            tensors = {k for k, v in ref.items() if hasattr(v, "shape")}
            if tensors != set(padded) or not all(padded[k].equal(ref[k]) for k in tensors):
                LOG.info("batches are tokenised by model.preprocess (its features differ from the tokenizer's)")
                self.enc = None
                return ref
            self.extra = {k: v for k, v in ref.items() if k not in tensors}
        return {**padded, **self.extra}


def _encode_sorted(
    model,
    texts: Sequence[str],
    batch_size: int,
    dtype: str,
    show_progress: bool,
    out: np.ndarray,
    desc: str = "encode",
) -> None:
    """Encode ``texts`` into ``out`` (shape (len(texts), d), any float dtype), rows L2-normalised. Batches of
    ``batch_size`` texts in descending token length; each text is tokenised once (:class:`_TokenizedOnce`)."""
    import torch
    from tqdm.auto import tqdm

    n = len(texts)
    if n == 0:
        return
    device = _model_device(model)
    dev_type = "cuda" if device.startswith("cuda") else "cpu"
    amp = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(dtype)
    tokenized = _TokenizedOnce(model, texts)
    order = np.argsort(-tokenized.lengths, kind="stable")  # longest first: OOM shows up at once
    model.eval()
    with (
        torch.inference_mode(),
        torch.autocast(device_type=dev_type, dtype=amp, enabled=amp is not None),
        tqdm(total=n, desc=desc, unit="text", disable=not show_progress) as bar,
    ):
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            features = tokenized.features(idx)
            features = {k: (v.to(device) if hasattr(v, "to") else v) for k, v in features.items()}
            emb = model(features)["sentence_embedding"].float()
            emb = torch.nn.functional.normalize(emb, p=2, dim=1)
            out[idx] = emb.cpu().numpy()
            bar.update(len(idx))


def encode_texts(model, texts: Sequence[str], batch_size: int = 256, show_progress: bool = False) -> np.ndarray:
    """Encode ``texts`` with a SentenceTransformer, in fp32 (the model's own precision).

    Returns an array of shape (len(texts), dim), float32, each row with L2 norm 1 (cosine = inner product).
    For bf16/fp16 GPU encoding use :func:`encode_texts_dtype`.
    """
    return encode_texts_dtype(model, texts, batch_size=batch_size, dtype="fp32", show_progress=show_progress)


def encode_texts_dtype(
    model,
    texts: Sequence[str],
    batch_size: int = 256,
    dtype: str = "auto",
    show_progress: bool = False,
    pipelined: bool | None = None,
    max_tokens: int = 65536,
    desc: str = "encode",
) -> np.ndarray:
    """Like :func:`encode_texts`, with the compute precision ``dtype`` (auto/fp32/bf16/fp16, see resolve_dtype).

    ``pipelined``: take the pipelined path (None = :func:`use_pipelined`); ``batch_size`` is then the most texts
    per batch and ``max_tokens`` the padded tokens per batch. Output is float32 (n, d), rows L2-normalised,
    whatever the path and compute precision.
    """
    device = _model_device(model)
    compute = resolve_dtype(dtype, device)
    if pipelined is None:
        pipelined = use_pipelined(device, compute)
    if pipelined and compute == "fp32":
        from ftstudy.fast_encode import PipelinedEncoder

        enc = PipelinedEncoder(model, device, "fp32", max_tokens=max_tokens, max_batch=batch_size)
        return enc.encode(list(texts), show_progress=show_progress, desc=desc)
    out = np.empty((len(texts), embedding_dim(model)), dtype=np.float32)
    _encode_sorted(model, list(texts), batch_size, compute, show_progress, out, desc=desc)
    return out


def _chunk_bounds(i: int, chunk_size: int, n: int) -> tuple[int, int]:
    return i * chunk_size, min(n, (i + 1) * chunk_size)


def _encode_missing_chunks(
    model, texts, partial: Path, layout: dict, encode_kw: dict, on_chunk, show_progress, chunks=None
):
    """Encode every chunk of ``chunks`` (default: all) not yet marked done in ``partial`` straight into its rows of
    ``partial/vectors.npy`` (:mod:`ftstudy.row_file`, in ``layout['store_dtype']``); returns the indices encoded
    now."""
    from ftstudy.row_file import done_blocks, mark_done, open_row_file, write_rows

    n, chunk_size, n_chunks = layout["n"], layout["chunk_size"], layout["n_chunks"]
    chunks = range(n_chunks) if chunks is None else chunks
    path = open_row_file(partial, (n, layout["dim"]), layout["store_dtype"])
    done = done_blocks(partial)
    done_before = [i for i in chunks if i in done]
    if done_before:
        LOG.info("resuming: %d of %d chunks already encoded in %s", len(done_before), len(chunks), partial)
    encoded_now = []
    for i in chunks:
        if i in done:
            continue
        lo, hi = _chunk_bounds(i, chunk_size, n)
        desc = f"chunk {i + 1}/{n_chunks}"
        vec = encode_texts_dtype(model, texts[lo:hi], show_progress=show_progress, desc=desc, **encode_kw)
        write_rows(path, lo, vec)
        mark_done(partial, i)
        encoded_now.append(i)
        LOG.info("chunk %d/%d encoded (%d passages)", i + 1, n_chunks, hi - lo)
        if on_chunk is not None:
            on_chunk(i, n_chunks)
    return encoded_now


def _write_embedding_dir(out_dir, partial: Path, ids: np.ndarray, layout: dict, info: dict) -> None:
    """Move ``partial/vectors.npy`` (every chunk written) into ``out_dir`` with ids.npy and meta.json, atomically:
    a rename, not a copy, so the vectors are on disk once."""
    from ftstudy.row_file import FILE, done_blocks

    missing = sorted(set(range(layout["n_chunks"])) - done_blocks(partial))
    if missing:
        raise RuntimeError(f"{partial}: chunks {missing[:5]} ... not encoded ({len(missing)} missing)")
    with atomic_dir(out_dir) as tmp:
        np.save(tmp / "ids.npy", ids)
        (tmp / "meta.json").write_text(json.dumps(info, indent=2, sort_keys=True, default=str) + "\n")
        try:  # last: a kill before this leaves the partial state whole
            os.replace(partial / FILE, tmp / FILE)
        except OSError as exc:  # results/.partial on another file system than the output: a copy, then delete
            if exc.errno != errno.EXDEV:
                raise
            shutil.move(partial / FILE, tmp / FILE)


def partial_key(encoding: dict, compute_dtype: str, model_dir, collection_path) -> tuple[dict, str]:
    """(slice, key): what a chunk depends on (the ``encoding`` config slice, the resolved compute precision, the
    model's weights and the collection file, by sha256) and its hash, the partial folder's name. The
    encode_corpus and encode_corpus_shard scripts both key their folder with it, so the shards' chunks are the
    chunks that rule encode_corpus looks for."""
    from ftstudy.provenance import config_hash, model_weights_sha256, sha256_file

    slice_ = {
        "encoding": encoding,
        "compute_dtype": compute_dtype,
        "model_sha256": model_weights_sha256(model_dir),
        "collection_sha256": sha256_file(collection_path),
    }
    return slice_, config_hash(slice_)


def chunk_layout(model, n: int, chunk_size: int, store_dtype: str) -> dict:
    """The chunk layout of ``n`` passages (the stamp of the partial folder): n, dim, chunk_size, store_dtype and
    n_chunks = ceil(n / chunk_size) (at least 1). Checks chunk_size and store_dtype."""
    if chunk_size < 1:
        raise ValueError(f"encode_corpus: chunk_size must be >= 1, got {chunk_size}")
    if store_dtype not in STORE_DTYPES:
        raise ValueError(f"encoding.store_dtype '{store_dtype}': expected one of {STORE_DTYPES}")
    layout = {"n": n, "dim": embedding_dim(model), "chunk_size": chunk_size, "store_dtype": store_dtype}
    layout["n_chunks"] = max(1, -(-n // chunk_size))
    return layout


def encode_shard(
    model,
    texts: Sequence[str],
    partial_dir: str | os.PathLike,
    shard: int,
    n_shards: int,
    chunk_size: int = 200_000,
    batch_size: int = 256,
    dtype: str = "auto",
    show_progress: bool = True,
    on_chunk: Callable[[int, int], None] | None = None,
    store_dtype: str = "float32",
    max_tokens: int = 65536,
) -> dict:
    """Shard ``shard`` of ``n_shards`` of :func:`encode_corpus`: encode its block of chunks
    (:func:`ftstudy.shards.shard_range` over the chunks, so its bounds are multiples of ``chunk_size``) into
    ``partial_dir``, the folder that :func:`encode_corpus` is given for the same corpus, settings and chunk size,
    which then finds them done and only writes the output. Chunks already there are kept (a killed shard
    resumes). Several shards may run at once (:func:`ftstudy.shards.open_shared_partial`).

    Returns a record: shard, n_shards, chunks [first, stop), chunks encoded now / reused, passages, seconds,
    device, compute_dtype.
    """
    from ftstudy.shards import open_shared_partial, shard_range

    layout = chunk_layout(model, len(texts), chunk_size, store_dtype)
    chunks = shard_range(layout["n_chunks"], n_shards, shard)
    device = _model_device(model)
    compute = resolve_dtype(dtype, device)
    partial = open_shared_partial(Path(partial_dir).parent, Path(partial_dir).name, layout)
    encode_kw = {"batch_size": batch_size, "dtype": compute, "max_tokens": max_tokens}
    LOG.info("shard %d/%d: chunks %d-%d of %d", shard + 1, n_shards, chunks.start, chunks.stop - 1,
             layout["n_chunks"])  # fmt: skip
    t0 = time.perf_counter()
    encoded = _encode_missing_chunks(model, texts, partial, layout, encode_kw, on_chunk, show_progress, chunks)
    bounds = [_chunk_bounds(i, chunk_size, layout["n"]) for i in chunks]
    return {
        "shard": shard,
        "n_shards": n_shards,
        "chunks": [chunks.start, chunks.stop],
        "chunks_encoded": len(encoded),
        "chunks_reused": len(chunks) - len(encoded),
        "passages": sum(hi - lo for lo, hi in bounds),
        "encode_seconds": round(time.perf_counter() - t0, 3),
        "device": device,
        "compute_dtype": compute,
        "partial_dir": str(partial),
    }


def encode_corpus(
    model,
    texts: Sequence[str],
    ids: np.ndarray,
    out_dir: str | os.PathLike,
    partial_dir: str | os.PathLike,
    chunk_size: int = 200_000,
    batch_size: int = 256,
    dtype: str = "auto",
    meta: dict | None = None,
    show_progress: bool = True,
    on_chunk: Callable[[int, int], None] | None = None,
    store_dtype: str = "float32",
    max_tokens: int = 65536,
) -> dict:
    """Encode a collection in resumable chunks and write ``out_dir`` (vectors.npy, ids.npy, meta.json).

    texts: n passages; ids: n int64 pids (same order). Chunk ``i`` covers rows ``[i*chunk_size, (i+1)*chunk_size)``
    and is written, in ``store_dtype`` (float32 or float16), into those rows of ``partial_dir/vectors.npy``, then
    marked done; chunks marked done are reused (when the folder's stamp, :func:`ftstudy.partial.open_partial`,
    matches this layout), so a rerun after a kill encodes only the missing ones. ``partial_dir`` must be keyed by
    everything that changes the vectors (model weights, encoding settings, collection): the caller's job (see the
    encode_corpus script).
    ``on_chunk(i, n_chunks)`` is called after each newly encoded chunk is written (progress hooks; tests raise
    from it to simulate a kill). On success the vectors file is renamed into ``out_dir``, which appears
    atomically, and ``partial_dir`` is deleted.

    Returns the meta dict written to meta.json (adds n, dim, dtype, chunks encoded now / reused, seconds).
    """
    from ftstudy.partial import open_partial

    ids = np.asarray(ids, dtype=np.int64)
    n = len(texts)
    if ids.shape != (n,):
        raise ValueError(f"encode_corpus: {n} texts but ids has shape {ids.shape}")
    layout = chunk_layout(model, n, chunk_size, store_dtype)
    device = _model_device(model)
    compute = resolve_dtype(dtype, device)
    partial = open_partial(Path(partial_dir).parent, Path(partial_dir).name, stamp=layout)
    encode_kw = {"batch_size": batch_size, "dtype": compute, "max_tokens": max_tokens}
    t0 = time.perf_counter()
    encoded_now = _encode_missing_chunks(model, texts, partial, layout, encode_kw, on_chunk, show_progress)
    seconds = time.perf_counter() - t0
    n_new = sum(hi - lo for lo, hi in (_chunk_bounds(i, chunk_size, n) for i in encoded_now))
    info = dict(meta or {})
    info.update(
        {
            "n": n,
            "dim": layout["dim"],
            "dtype": store_dtype,
            "normalized": True,
            "compute_dtype": compute,
            "pipelined": use_pipelined(device, compute),
            "device": device,
            "chunks_encoded": len(encoded_now),
            "chunks_reused": layout["n_chunks"] - len(encoded_now),
            "encode_seconds": round(seconds, 3),
            "passages_per_s_this_run": round(n_new / seconds, 2) if seconds > 0 and encoded_now else None,
        }
    )
    _write_embedding_dir(out_dir, partial, ids, layout, info)
    shutil.rmtree(partial, ignore_errors=True)
    return info


def load_embeddings(emb_dir: str | os.PathLike, mmap: bool = True) -> tuple[np.ndarray, np.ndarray, dict]:
    """(vectors (n, d) float32 or float16 as stored, memory-mapped; ids int64 (n,); meta) of an embedding folder;
    checks shapes."""
    d = Path(emb_dir)
    vec = np.load(d / "vectors.npy", mmap_mode="r" if mmap else None)
    ids = np.load(d / "ids.npy")
    meta = json.loads((d / "meta.json").read_text())
    if vec.ndim != 2 or ids.shape != (vec.shape[0],):
        raise ValueError(f"{d}: vectors.npy shape {vec.shape} does not match ids.npy shape {ids.shape}")
    return vec, ids, meta
