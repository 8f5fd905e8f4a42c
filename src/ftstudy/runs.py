"""TREC run files: ``qid Q0 pid rank score run_name``, one line per retrieved passage, rank from 1; and the
scores a metric library must see so that it evaluates the retrieved order (:func:`evaluation_scores`)."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from ftstudy.atomic import atomic_path

RUN_COLUMNS = ["qid", "Q0", "pid", "rank", "score", "run_name"]


class RunFormatError(ValueError):
    """A run file line that is not ``qid Q0 pid rank score run_name``; the message names file and line."""


def write_run(
    path: str | os.PathLike,
    qids: np.ndarray,
    pids: np.ndarray,
    scores: np.ndarray,
    run_name: str,
) -> None:
    """Write a TREC run atomically.

    qids: (nq,) int; pids, scores: (nq, k) (row i belongs to qids[i]). Each row is written in the study's order,
    score descending, then pid ascending, whatever order it comes in (so ties break the same way for every
    retriever, BM25 included). Entries with pid < 0 (faiss pads with -1 when fewer than k hits exist) are
    skipped. Scores are written with 6 decimals; ranks are 1..k in that order.
    """
    qids = np.asarray(qids, dtype=np.int64)
    pids = np.asarray(pids, dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float64)
    if pids.shape != scores.shape or pids.shape[0] != qids.shape[0]:
        raise ValueError(f"write_run: qids {qids.shape}, pids {pids.shape}, scores {scores.shape} do not match")
    if any(c.isspace() for c in run_name) or not run_name:
        raise ValueError(f"write_run: run_name '{run_name}' must be non-empty without whitespace")
    order = np.lexsort((pids, -scores), axis=-1)
    pids, scores = np.take_along_axis(pids, order, -1), np.take_along_axis(scores, order, -1)
    nq, k = pids.shape
    ranks = np.tile(np.arange(1, k + 1, dtype=np.int64), nq)
    df = pd.DataFrame(
        {
            "qid": np.repeat(qids, k),
            "Q0": "Q0",
            "pid": pids.ravel(),
            "rank": ranks,
            "score": scores.ravel(),
            "run_name": run_name,
        }
    )
    df = df[df["pid"] >= 0]
    with atomic_path(path) as tmp:
        df.to_csv(tmp, sep=" ", header=False, index=False, float_format="%.6f", lineterminator="\n")


def _find_bad_line(path: str, what: str) -> str:
    with open(path, encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, 1):
            parts = line.split()
            if len(parts) != 6:
                return f"{path}, line {lineno}: expected 6 fields 'qid Q0 pid rank score run_name', got {len(parts)}"
            try:
                int(parts[0]), int(parts[2]), int(parts[3]), float(parts[4])
            except ValueError:
                return (
                    f"{path}, line {lineno}: expected integer qid, pid and rank and a numeric score, "
                    f"got {line.strip()!r}"
                )
    return f"{path}: {what}"


def read_run(path: str | os.PathLike) -> pd.DataFrame:
    """Read a TREC run into a DataFrame (qid int64, pid int64, rank int64, score float64, run_name str).

    Raises RunFormatError naming the file and the first bad line, or FileNotFoundError.
    """
    path = str(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"run file {path} not found")
    try:
        df = pd.read_csv(
            path,
            sep=r"\s+",
            header=None,
            names=RUN_COLUMNS,
            dtype={"qid": np.int64, "Q0": str, "pid": np.int64, "rank": np.int64, "score": np.float64, "run_name": str},
            engine="c",
        )
    except (ValueError, pd.errors.ParserError) as exc:
        raise RunFormatError(_find_bad_line(path, str(exc))) from None
    if df.isna().any().any():
        raise RunFormatError(_find_bad_line(path, "missing fields"))
    dup = df.duplicated(["qid", "pid"])
    if dup.any():
        i = int(np.flatnonzero(dup.to_numpy())[0])
        raise RunFormatError(f"{path}, line {i + 1}: passage {df.pid.iat[i]} appears twice for query {df.qid.iat[i]}")
    return df.drop(columns="Q0")


def evaluation_scores(run: pd.DataFrame) -> np.ndarray:
    """Scores that make a metric library evaluate the run in its retrieved order.

    trec_eval (under ir-measures) re-sorts each query's passages by score and breaks ties by docno, so two
    passages with the same score could be evaluated in the other order than retrieved. Returns float64 (n,):
    ``-rank`` where the run has a ``rank`` column (ranks from the file), else minus the position within its
    query in row order: strictly decreasing along each query's ranking, so no tie is left to re-sort.
    """
    if "rank" in run.columns:
        return -run["rank"].to_numpy(dtype=np.float64)
    return -(run.groupby("qid", sort=False).cumcount().to_numpy(dtype=np.float64) + 1)
