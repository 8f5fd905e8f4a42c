"""A preallocated ``.npy`` array filled in row blocks by one or several jobs, with a marker per finished block.

Encoding writes each chunk of vectors straight into the file that becomes the output's ``vectors.npy`` (no chunk
files, no second copy while assembling: at full MS MARCO scale that copy was 13.6 GB per model in fp32):

- :func:`open_row_file` creates ``<folder>/vectors.npy`` of shape (n, d) once (a sparse file: blocks not yet
  written take no disk), atomically, so concurrent shard jobs that open it at the same time all get the same file;
- :func:`write_rows` writes rows ``[lo, lo + len(block))`` with ``os.pwrite`` at their byte offset and syncs them,
  then :func:`mark_done` records block ``i`` as finished (an atomic empty marker file). Blocks of different jobs
  never share a byte, and ``pwrite`` (unlike a writable memory map) writes only those bytes, so jobs on different
  hosts of a shared file system do not overwrite each other's pages;
- :func:`done_blocks` lists the finished blocks: a killed job resumes from them. A block whose marker is missing
  is written again whole.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ftstudy.atomic import atomic_path

FILE = "vectors.npy"


def _marker(folder: Path, i: int) -> Path:
    return folder / f"block_{i:06d}.done"


def open_row_file(folder: str | os.PathLike, shape: tuple[int, int], dtype: str) -> Path:
    """``folder/vectors.npy``: an (n, d) ``.npy`` of ``dtype``, created (zero-filled, sparse) where it is missing.

    An existing file of another shape or dtype is an error. Where the file is missing, any block markers in
    ``folder`` are stale (the file was moved into an output, or never made) and are deleted.
    """
    folder = Path(folder)
    path = folder / FILE
    if not path.exists():
        for m in folder.glob("block_*.done"):
            m.unlink()
        tmp = folder / f".{FILE}.{os.getpid()}.tmp"
        mm = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.dtype(dtype), shape=tuple(shape))
        del mm  # header written, the rest a hole
        try:
            os.link(tmp, path)  # create-if-absent: a concurrent shard that linked first wins, both use its file
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    got = np.load(path, mmap_mode="r")
    if got.shape != tuple(shape) or got.dtype != np.dtype(dtype):
        raise ValueError(f"{path}: holds {got.dtype} {got.shape}, expected {np.dtype(dtype)} {tuple(shape)}")
    return path


def write_rows(path: str | os.PathLike, lo: int, block: np.ndarray) -> None:
    """Write ``block`` ((m, d), cast to the file's dtype) as rows ``[lo, lo + m)`` of the ``.npy`` at ``path``,
    with ``os.pwrite`` at their byte offset, then ``fsync`` so that a marker written afterwards is truthful."""
    mm = np.load(path, mmap_mode="r")
    n, d = mm.shape
    block = np.ascontiguousarray(block, dtype=mm.dtype)
    if block.ndim != 2 or block.shape[1] != d or not 0 <= lo <= n - block.shape[0]:
        raise ValueError(f"{path}: cannot write {block.shape} at row {lo} of ({n}, {d})")
    offset = mm.offset + lo * d * mm.dtype.itemsize
    del mm
    view = memoryview(block).cast("B")
    fd = os.open(path, os.O_WRONLY)
    try:
        done = 0
        while done < len(view):
            done += os.pwrite(fd, view[done:], offset + done)
        os.fsync(fd)
    finally:
        os.close(fd)


def mark_done(folder: str | os.PathLike, i: int) -> None:
    """Record block ``i`` of ``folder`` as written (after :func:`write_rows` returned)."""
    with atomic_path(_marker(Path(folder), i)) as tmp:
        Path(tmp).write_bytes(b"")


def done_blocks(folder: str | os.PathLike) -> set[int]:
    """Indices of the blocks of ``folder`` marked as written."""
    return {int(p.name[6:12]) for p in Path(folder).glob("block_*.done")}
