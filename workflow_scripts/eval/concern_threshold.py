"""The matching threshold for an embedding model other than SPECTER2, calibrated on labelled concern pairs.

The reference's 0.65 is a point on SPECTER2's cosine scale; another model puts the same paraphrases elsewhere
(all-MiniLM-L6-v2 gave 0.47 to two wordings of one sample-size concern, 0.13-0.15 to unrelated concerns). The rule:
over pairs labelled paraphrase (the same concern in other words) or not, the threshold is the similarity value t that
maximizes the F1 of "similarity >= t means paraphrase", paraphrase being the positive class; among equal F1 the
highest t (the stricter matcher). The pairs file (parquet or JSON lines) has columns text_a, text_b and the label,
either ``paraphrase`` (bool) or ``label`` (1 = paraphrase, 0 = not; the demo world's pairs); the result, with its F1,
precision, recall and pair counts, goes into the metrics.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from workflow_scripts.eval.concern_embeddings import Embedder
from workflow_scripts.eval.concern_tables import ConcernInputError

RULE = "max F1 of (cosine >= t) against paraphrase labels; ties: highest t"


def best_threshold(similarities: np.ndarray, paraphrase: np.ndarray) -> dict:
    sims = np.asarray(similarities, dtype=np.float64)
    labels = np.asarray(paraphrase, dtype=bool)
    n_pos = int(labels.sum())
    if n_pos == 0 or n_pos == len(labels):
        raise ConcernInputError(f"threshold calibration needs paraphrase and non-paraphrase pairs; got {n_pos} of "
                                f"{len(labels)} labelled paraphrase")
    order = np.argsort(-sims, kind="stable")
    sims, labels = sims[order], labels[order]
    true_pos = np.cumsum(labels)
    # a threshold at a value admits every pair with that value: score only the last position of each run of equals
    last_of_value = np.r_[sims[1:] != sims[:-1], True]
    candidates = np.nonzero(last_of_value)[0]
    predicted = candidates + 1
    f1 = 2 * true_pos[candidates] / (predicted + n_pos)
    best = candidates[np.flatnonzero(f1 == f1.max())[0]]  # sims descend: the first best is the highest threshold
    tp, admitted = int(true_pos[best]), int(best) + 1
    return {"threshold": float(sims[best]), "f1": 2 * tp / (admitted + n_pos), "precision": tp / admitted,
            "recall": tp / n_pos, "pairs": int(len(labels)), "paraphrases": n_pos, "rule": RULE}


def calibrate(path: str | Path, embedder: Embedder) -> dict:
    pairs = pl.read_parquet(path) if str(path).endswith(".parquet") else pl.read_ndjson(path)
    label = next((c for c in ("paraphrase", "label") if c in pairs.columns), None)
    missing = [c for c in ("text_a", "text_b") if c not in pairs.columns] + ([] if label else ["paraphrase"])
    if missing:
        raise ConcernInputError(f"{path}: calibration pairs need columns text_a, text_b and paraphrase (bool) or "
                                f"label (0/1); missing {missing}")
    if label == "label":
        not_binary = pairs.filter(~pl.col("label").is_in([0, 1]))
        if not_binary.height:
            raise ConcernInputError(f"{path}: label must be 1 (paraphrase) or 0, e.g. {not_binary.row(0, named=True)}")
        pairs = pairs.with_columns((pl.col("label") == 1).alias("paraphrase"))
    blank = pairs.filter(pl.any_horizontal(pl.col("text_a", "text_b").fill_null("").str.strip_chars() == "")
                         | pl.col("paraphrase").is_null())
    if blank.height:
        raise ConcernInputError(f"{path}: {blank.height} pair(s) with an empty text or no label, e.g. "
                                f"{blank.row(0, named=True)}")
    a = embedder.encode(pairs["text_a"].to_list()).astype(np.float64)
    b = embedder.encode(pairs["text_b"].to_list()).astype(np.float64)
    return {**best_threshold(np.einsum("ij,ij->i", a, b), pairs["paraphrase"].to_numpy()), "file": str(path)}
