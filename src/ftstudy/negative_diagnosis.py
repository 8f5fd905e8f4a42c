"""Diagnosing the paper's negatives: how many of them would judges call relevant?

MS MARCO's training queries carry about one judged positive each, so the paper's ranks-51-200 "hard negatives" may
be unjudged relevant passages (false negatives). A graded eval set (TREC DL 2019/2020: judged deeply, relevance
0-3) tells how often that happens: its queries are mined exactly as the training queries are (the same miner,
``top_k``, ``rank_range``, ``negatives_per_query``, ``seed`` and draw, :func:`ftstudy.negatives.draw_query`, over
the main corpus), and the drawn negatives are then looked up in the eval set's qrels.

One choice differs, necessarily: the judgments are hidden from the miner. A training query's miner removes its one
sparse label before drawing; here nothing judged is removed (the deep judgments are what is measured), so no
positive is drawn and the margin guard, which needs a positive's score, is not applied. ``mining.max_queries`` does
not apply either: every query of the eval set is mined.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import asdict, replace

import numpy as np
import pandas as pd

from ftstudy.atomic import write_json
from ftstudy.candidates import Retriever
from ftstudy.mining_io import read_qrels, read_queries
from ftstudy.negatives import SKIP_REASONS, MiningSettings, draw_query

log = logging.getLogger(__name__)

HIDDEN_NOTE = (
    "judgments hidden from the miner: a training query's miner removes its one sparse judged positive before "
    "drawing; here nothing judged is removed before drawing (no positive is drawn, no margin guard), so the "
    "drawn negatives are what the paper's procedure would draw for an unjudged query"
)


def judged_fractions(qids: np.ndarray, pids: np.ndarray, qrels: pd.DataFrame) -> dict:
    """How many (qid, pid) pairs the qrels judge at all, with relevance >= 1 and >= 2: counts and fractions of
    the ``n`` pairs (a pair judged twice counts once, by its highest grade)."""
    pairs = pd.DataFrame({"qid": np.asarray(qids, np.int64), "pid": np.asarray(pids, np.int64)})
    grades = qrels.groupby(["qid", "pid"], as_index=False)["relevance"].max()
    rel = pairs.merge(grades, on=["qid", "pid"], how="left")["relevance"]
    n = len(pairs)
    out = {"n": n}
    for name, mask in (("judged", rel.notna()), ("relevance_ge_1", rel >= 1), ("relevance_ge_2", rel >= 2)):
        out[name] = {"count": int(mask.sum()), "fraction": float(mask.sum()) / n if n else None}
    return out


def draw_hidden(
    qids: np.ndarray, cand: np.ndarray, settings: MiningSettings
) -> tuple[dict[str, list], dict[str, list], dict[str, int]]:
    """Draw each query's negatives with its judgments hidden: (drawn, in range, skipped counts).

    cand: (b, k) candidate pids per query in rank order, -1 padding last. drawn / in range: ``qid``, ``pid``,
    ``rank`` lists of the drawn negatives and of every candidate in ``rank_range``.
    """
    drawn = {"qid": [], "pid": [], "rank": []}
    in_range = {"qid": [], "pid": [], "rank": []}
    skipped = dict.fromkeys(SKIP_REASONS, 0)
    start, end = settings.rank_range
    for qid, row in zip(qids.tolist(), cand, strict=True):
        c = row[row >= 0]
        res = draw_query(qid, c, None, settings)
        if isinstance(res, str):
            skipped[res] += 1
            continue
        for d, pids, ranks in ((drawn, res.neg_pids, res.neg_ranks), (in_range, c[start - 1 : end], None)):
            ranks = np.arange(start, start + pids.size) if ranks is None else ranks
            d["qid"] += [qid] * pids.size
            d["pid"] += pids.tolist()
            d["rank"] += ranks.tolist()
    return drawn, in_range, skipped


def diagnose_negatives(
    queries_path: str | os.PathLike,
    qrels_path: str | os.PathLike,
    out_json: str | os.PathLike,
    settings: MiningSettings,
    embed,
    retrieve: Retriever,
    query_batch_size: int,
    eval_set: str = "eval",
    provenance: dict | None = None,
) -> dict:
    """Mine an eval set's queries as the training queries are (judgments hidden) and write the fractions of drawn
    negatives, and of all candidates in the rank range, that its qrels judge (at all, >= 1, >= 2); returns them.

    embed: texts -> (n, d) base-model query embeddings; retrieve: :data:`ftstudy.candidates.Retriever`.
    """
    settings.validate()
    hidden = replace(settings, margin=None)
    queries = read_queries(queries_path)
    qrels = read_qrels(qrels_path).to_pandas()
    qids, texts = queries["qid"].to_numpy(), queries["text"].to_pylist()
    drawn, in_range, skipped = {"qid": [], "pid": [], "rank": []}, {"qid": [], "pid": [], "rank": []}, {}
    for s in range(0, qids.size, query_batch_size):
        batch_texts = texts[s : s + query_batch_size]
        _, cand = retrieve(np.asarray(embed(batch_texts), np.float32), batch_texts)
        d, r, k = draw_hidden(qids[s : s + query_batch_size], cand, hidden)
        for acc, part in ((drawn, d), (in_range, r)):
            for key in acc:
                acc[key] += part[key]
        skipped = {x: skipped.get(x, 0) + k[x] for x in k}
        log.info("eval set '%s': %d of %d queries mined", eval_set, min(s + query_batch_size, qids.size), qids.size)
    result = {
        "eval_set": eval_set,
        "n_queries": int(qids.size),
        "n_queries_mined": int(np.unique(drawn["qid"]).size),
        "skipped": skipped,
        "n_drawn_negatives": len(drawn["qid"]),
        "drawn": judged_fractions(drawn["qid"], drawn["pid"], qrels),
        "candidates_in_range": judged_fractions(in_range["qid"], in_range["pid"], qrels),
        "judgments_hidden_from_miner": True,
        "note": HIDDEN_NOTE,
        "margin_applied": False,
        "paper_margin": settings.margin,
        "settings": asdict(settings),
        "provenance": provenance or {},
    }
    write_json(out_json, result)
    log.info(
        "eval set '%s': %d drawn negatives, %.4f judged >= 1, %.4f judged >= 2",
        eval_set,
        result["n_drawn_negatives"],
        result["drawn"]["relevance_ge_1"]["fraction"] or 0.0,
        result["drawn"]["relevance_ge_2"]["fraction"] or 0.0,
    )
    return result


def diagnose_for_workflow(
    inputs: Mapping[str, str],
    out_json: str | os.PathLike,
    job_slice: Mapping,
    eval_set: str,
    query_batch_size: int,
    encoding_batch_size: int,
    threads: int = 1,
    backend: str = "auto",
) -> dict:
    """Rule ``diagnose_negatives``: the eval set's ``queries`` and ``qrels`` (parquet), searched as rule
    ``mine_hard_negatives`` searches (:func:`ftstudy.mining.load_miner`: ``model``, ``embeddings``,
    ``collection`` of the main corpus). job_slice: the mining job's slice. The rest are execution knobs."""
    from ftstudy.mining import load_miner
    from ftstudy.provenance import config_hash, versions

    settings = MiningSettings.from_config(job_slice["mining"])
    m = load_miner(inputs, job_slice, encoding_batch_size, threads, backend)
    execution = {"query_batch_size": query_batch_size, "encoding_batch_size": encoding_batch_size, "threads": threads,
                 "backend": backend}  # fmt: skip
    provenance = {"config_hash": config_hash(dict(job_slice)), "config": dict(job_slice), "device": m.device,
                  "query_dtype": m.dtype, "embeddings_meta": m.embeddings_meta, "execution": execution,
                  "versions": versions()}  # fmt: skip
    return diagnose_negatives(
        inputs["queries"], inputs["qrels"], out_json, settings, m.embed, m.retrieve, query_batch_size, eval_set,
        provenance,
    )  # fmt: skip
