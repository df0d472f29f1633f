"""Concern matching, the reference's metric: per article, predicted and true concerns paired one-to-one by the
Hungarian algorithm on their embeddings' cosine similarities, a pair counting as a match at similarity >= threshold
(0.65 for SPECTER2); micro precision, recall and F1 over every ground-truth article.

Matching (as the reference's evaluate/metrics.py): cost = 1 - similarity, and cost 1e6 for a pair below the
threshold, so the assignment first maximizes the number of pairs at or above the threshold, then their similarity;
``scipy.optimize.linear_sum_assignment`` always assigns min(m, n) pairs, and an assigned pair below the threshold is
never a match. Similarities are computed in float64 from the stored vectors, and a similarity equal to the threshold
matches.

Micro averages: precision = sum of matches / sum of predicted concerns, recall = sum of matches / sum of true
concerns, F1 = 2 matches / (predicted + true), summed over the articles of the ground truth: an article the model
did not answer counts with no predictions (recall loses its concerns). Predictions for articles outside the ground
truth are left out of the metrics, as the reference does, and counted by the caller.

Breakdowns: per source the same three scores over that source's articles; per category and per severity, recall
over the true concerns of that category (how many of the reviewers' concerns of that kind were found) and precision
over the predicted concerns of that category (how many of the model's concerns of that kind were right): a match
can pair concerns of different categories, so a per-category F1 would mix two populations and is not given.

Intervals: percentile bootstrap over articles (seeded, the same resamples for every system scored on one ground
truth, so systems are compared on paired resamples), computed from per-article count columns with one matrix
product per chunk of resamples.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

from workflow_scripts.eval.stats import bootstrap_indices, percentile_interval, seeded_rng

BELOW_THRESHOLD_COST = 1e6
NO_LABEL = "(none)"  # a concern without a category or severity


# --------------------------------------------------------------------------------------------------------- matching


def match_pairs(sim: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Row and column indices of the matched pairs of one article's (predicted x true) similarity matrix."""
    if sim.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    cost = 1.0 - sim
    cost[sim < threshold] = BELOW_THRESHOLD_COST
    rows, cols = linear_sum_assignment(cost)
    keep = sim[rows, cols] >= threshold
    return rows[keep], cols[keep]


@dataclass(frozen=True)
class FlatConcerns:
    """The concerns of a list of articles in one array: article i owns rows ``offsets[i]:offsets[i + 1]``."""

    offsets: np.ndarray  # int64, one more than the articles
    vectors: np.ndarray  # (concerns, dimension), unit rows

    @classmethod
    def of(cls, per_article: Sequence[np.ndarray], dimension: int) -> "FlatConcerns":
        counts = np.array([len(v) for v in per_article], dtype=np.int64)
        vectors = np.concatenate(per_article) if counts.sum() else np.zeros((0, dimension), dtype=np.float32)
        return cls(np.concatenate([[0], np.cumsum(counts)]), vectors)

    def article_of_rows(self) -> np.ndarray:
        return np.repeat(np.arange(len(self.offsets) - 1), np.diff(self.offsets))


def match_articles(pred: FlatConcerns, true: FlatConcerns, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Whether each predicted and each true concern is matched, article by article."""
    if len(pred.offsets) != len(true.offsets):
        raise ValueError(f"{len(pred.offsets) - 1} articles of predictions, {len(true.offsets) - 1} of truth")
    pred_matched = np.zeros(len(pred.vectors), dtype=bool)
    true_matched = np.zeros(len(true.vectors), dtype=bool)
    for a in range(len(pred.offsets) - 1):
        p0, p1, t0, t1 = pred.offsets[a], pred.offsets[a + 1], true.offsets[a], true.offsets[a + 1]
        if p0 == p1 or t0 == t1:
            continue
        sim = pred.vectors[p0:p1].astype(np.float64) @ true.vectors[t0:t1].astype(np.float64).T
        rows, cols = match_pairs(sim, threshold)
        pred_matched[p0 + rows] = True
        true_matched[t0 + cols] = True
    return pred_matched, true_matched


# ------------------------------------------------------------------------------------------------------- the counts


def _per_article(article: np.ndarray, n_articles: int, weights: np.ndarray | None = None) -> np.ndarray:
    return np.bincount(article, weights=weights, minlength=n_articles).astype(np.float64)


class CountColumns:
    """Named per-article count columns, bootstrapped together."""

    def __init__(self, n_articles: int):
        self.n_articles = n_articles
        self.names: list[str] = []
        self.columns: list[np.ndarray] = []

    def add(self, name: str, per_article: np.ndarray) -> None:
        self.names.append(name)
        self.columns.append(per_article)

    def totals_and_resamples(self, n_boot: int, rng: np.random.Generator) -> tuple[dict, dict | None]:
        matrix = np.stack(self.columns, axis=1) if self.columns else np.zeros((self.n_articles, 0))
        totals = dict(zip(self.names, matrix.sum(axis=0)))
        if not n_boot or not self.n_articles:
            return totals, None
        chunks = []
        n = self.n_articles
        for idx in bootstrap_indices(n, n_boot, rng):
            # each resample as article weights (how often it was drawn): one product sums every column at once
            offsets = n * np.arange(len(idx))[:, None]
            weights = np.bincount((idx + offsets).ravel(), minlength=len(idx) * n).reshape(len(idx), n)
            chunks.append(weights @ matrix)
        resampled = np.concatenate(chunks)
        return totals, {name: resampled[:, k] for k, name in enumerate(self.names)}


def _ratio(num, den):
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    return np.divide(num, den, out=np.full(num.shape, np.nan), where=den > 0)


def _interval(point: np.ndarray, boots: np.ndarray | None, level: float) -> dict:
    value = None if np.isnan(point) else float(point)
    if boots is not None:
        boots = boots[~np.isnan(boots)]
    return percentile_interval(value, boots if boots is not None and len(boots) else None, level)


def _scores(prefix: str, totals: dict, resampled: dict | None, level: float) -> dict:
    """Precision, recall, F1 with intervals from the columns ``{prefix}matched / predicted / true``."""
    def get(src, name):
        return None if src is None else src[prefix + name]

    out = {k: int(totals[prefix + k]) for k in ("matched", "predicted", "true")}
    for score, (num, den) in {"precision": ("matched", "predicted"), "recall": ("matched", "true")}.items():
        boots = None if resampled is None else _ratio(get(resampled, num), get(resampled, den))
        out[score] = _interval(_ratio(totals[prefix + num], totals[prefix + den]), boots, level)
    f1_den = lambda src: src[prefix + "predicted"] + src[prefix + "true"]  # noqa: E731
    boots = None if resampled is None else _ratio(2 * resampled[prefix + "matched"], f1_den(resampled))
    out["f1"] = _interval(_ratio(2 * totals[prefix + "matched"], f1_den(totals)), boots, level)
    return out


def _one_side(prefix: str, side: str, score: str, totals: dict, resampled: dict | None, level: float) -> dict:
    num, den = f"{prefix}{side}_matched", f"{prefix}{side}"
    boots = None if resampled is None else _ratio(resampled[num], resampled[den])
    return {side: int(totals[den]), score: _interval(_ratio(totals[num], totals[den]), boots, level)}


# ---------------------------------------------------------------------------------------------------------- scoring


@dataclass(frozen=True)
class Truth:
    """The ground truth, figure concerns already removed: article ids in order, each one's source and concerns."""

    article_ids: list[str]
    sources: list[str]
    concerns: list[list[dict]]  # [{text, category, severity}] per article


def _label(value: str | None) -> str:
    return NO_LABEL if value is None else value


def _ordered(values: set[str], known: Sequence[str]) -> list[str]:
    return [v for v in known if v in values] + sorted(values - set(known))


def score_system(truth: Truth, predicted: Mapping[str, list[dict]], vectors_of: Callable[[list[str]], np.ndarray],
                 dimension: int, *, threshold: float, n_boot: int, seed: int, level: float,
                 categories: Sequence[str] = (), severities: Sequence[str] = ()) -> dict:
    """The metrics of one system (a model under one postprocessing, an ensemble or a baseline): ``predicted`` maps
    article id -> concerns; ground-truth articles missing from it count as answered with no concern."""
    n = len(truth.article_ids)
    pred_lists = [predicted.get(a, []) for a in truth.article_ids]
    pred = FlatConcerns.of([vectors_of([c["text"] for c in cs]) for cs in pred_lists], dimension)
    true = FlatConcerns.of([vectors_of([c["text"] for c in cs]) for cs in truth.concerns], dimension)
    pred_matched, true_matched = match_articles(pred, true, threshold)
    pred_article, true_article = pred.article_of_rows(), true.article_of_rows()

    cols = CountColumns(n)
    cols.add("matched", _per_article(true_article, n, true_matched))
    cols.add("predicted", _per_article(pred_article, n))
    cols.add("true", _per_article(true_article, n))
    sources = np.array(truth.sources, dtype=object)
    source_names = sorted(set(truth.sources))
    for s in source_names:
        in_source = (sources == s).astype(np.float64)
        for name in ("matched", "predicted", "true"):
            cols.add(f"source:{s}:{name}", cols.columns[cols.names.index(name)] * in_source)
    breakdowns = {}
    for field, known in (("category", categories), ("severity", severities)):
        true_labels = np.array([_label(c.get(field)) for cs in truth.concerns for c in cs], dtype=object)
        pred_labels = np.array([_label(c.get(field)) for cs in pred_lists for c in cs], dtype=object)
        labels = _ordered(set(true_labels) | set(pred_labels), known)
        breakdowns[field] = labels
        for lab in labels:
            t, p = true_labels == lab, pred_labels == lab
            cols.add(f"{field}:{lab}:true", _per_article(true_article[t], n))
            cols.add(f"{field}:{lab}:true_matched", _per_article(true_article[t & true_matched], n))
            cols.add(f"{field}:{lab}:predicted", _per_article(pred_article[p], n))
            cols.add(f"{field}:{lab}:predicted_matched", _per_article(pred_article[p & pred_matched], n))

    totals, resampled = cols.totals_and_resamples(n_boot, seeded_rng(seed, "bioreview", "articles"))
    result = {"articles": n, **_scores("", totals, resampled, level)}
    result["by_source"] = {s: {"articles": int(np.sum(sources == s)), **_scores(f"source:{s}:", totals, resampled,
                                                                                 level)}
                           for s in source_names}
    for field, labels in breakdowns.items():
        result[f"by_{field}"] = {
            lab: {**_one_side(f"{field}:{lab}:", "true", "recall", totals, resampled, level),
                  **_one_side(f"{field}:{lab}:", "predicted", "precision", totals, resampled, level)}
            for lab in labels}
    return result
