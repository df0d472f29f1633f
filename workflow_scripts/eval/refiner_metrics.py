"""Refiner evaluation metrics: per-completion scores -> each model's metrics with bootstrap intervals over test tasks.

The input is the score table of ``workflow_scripts.eval.refiner score``: one row per model and test task, scored by
the GRPO reward's own scoring (workflow_scripts.train.rewards.refiner_score) with a fixed judge. Every metric is a
ratio of sums over the completions that have it, so one definition covers means and pass rates alike:

- **reward**: the composite before the x verification_reward of training: (1 - w) x rubric + w x citation, in
  [0, 1] (or rubric + w x citation, as configured); a completion failing the format gate gets 0, as in training.
- **rubric score**: the mean rubric credit of a judged answer (a positive rubric earns its score s, a negative one
  1 - s; the static rubrics included), s the judge's 0..max score over max.
- **positive / negative pass rate**: of the tasks' own rubrics, the share of positive ones judged at the top score
  (s = 1: fully present) and of negative ones judged at 0 (the flaw absent). Static rubrics pass by their kind alike,
  each with its own rate.
- **citation precision / recall / F1**: the reward's per-claim values, averaged over the claims of an answer, then
  over answers; **invalid-id rate**: the share of an answer's distinct cited ids that are not in its tool output
  (answers citing anything); **cited share**: cited claims over claims (answers with claims).
- **format valid**: exactly one ``<answer>`` block citing only ids of the tool output; **answer length**: characters
  of the answer block; **truncated**: generations cut at max_new_tokens; **judge failures**: failed calls / calls.

A value that is missing (a judge call that failed, an answer that was not judged, a component it does not have) is
left out of the numerator and the denominator alike, never read as 0. Intervals: percentile bootstrap over the
completions (test tasks) of a model, resampled together for all its metrics, seeded per model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from workflow_scripts.eval.stats import bootstrap_indices, percentile_interval, seeded_rng

TOP = 1 - 1e-9  # a normalised rubric score at the top of the scale (floats from score / max)
BOTTOM = 1e-9
STATIC_PREFIX = "static:"


@dataclass(frozen=True)
class Metric:
    key: str
    title: str
    unit: str  # "score" (0-1, three decimals), "percent", "chars"
    definition: str


METRICS = (
    Metric("reward", "reward", "score", "composite reward before x verification_reward (format failures 0, as in "
                                        "training)"),
    Metric("rubric_score", "rubric score", "score", "mean rubric credit of a judged answer (negatives as 1 - s)"),
    Metric("positive_pass", "positive pass", "percent", "the task's positive rubrics judged at the top score"),
    Metric("negative_pass", "negative pass", "percent", "the task's negative rubrics judged at 0 (flaw absent)"),
    Metric("citation_precision", "citation P", "score", "mean per-claim citation precision"),
    Metric("citation_recall", "citation R", "score", "mean per-claim citation recall"),
    Metric("citation_f1", "citation F1", "score", "mean per-claim citation F1"),
    Metric("invalid_id_rate", "invalid ids", "percent", "distinct cited ids not in the tool output (answers citing)"),
    Metric("cited_share", "claims cited", "percent", "cited claims over claims (answers with claims)"),
    Metric("format_valid", "format valid", "percent", "one <answer> block citing only ids of the tool output"),
    Metric("answer_chars", "answer length", "chars", "characters of the answer block (answers with one)"),
    Metric("truncated", "truncated", "percent", "generations cut at max_new_tokens"),
    Metric("judge_failure_rate", "judge failures", "percent", "failed judge calls over calls"),
)
METRIC_KEYS = tuple(m.key for m in METRICS)


def _value(x: Any) -> tuple[float, float]:
    return (0.0, 0.0) if x is None else (float(x), 1.0)


def _passes(rubrics: Iterable[Mapping], kind: str) -> tuple[float, float]:
    """(passed, judged) over a completion's own rubrics of ``kind``; failed calls (score None) are not judged."""
    judged = [r["score"] for r in rubrics if not r["static"] and r["kind"] == kind and r["score"] is not None]
    return float(sum(_passed(kind, s) for s in judged)), float(len(judged))


def _passed(kind: str, score: float) -> bool:
    return score >= TOP if kind == "positive" else score <= BOTTOM


def components(row: Mapping[str, Any], static_titles: Sequence[str]) -> dict[str, tuple[float, float]]:
    """(numerator, denominator) of every metric for one scored completion; (0, 0) where it has no value."""
    rubrics = row.get("rubrics") or []
    finished = row.get("finished")
    out = {
        "reward": _value(row["composite"]),
        "rubric_score": _value(row["rubric_score"]),
        "positive_pass": _passes(rubrics, "positive"),
        "negative_pass": _passes(rubrics, "negative"),
        "citation_precision": _value(row["citation_precision"]),
        "citation_recall": _value(row["citation_recall"]),
        "citation_f1": _value(row["citation_f1"]),
        "invalid_id_rate": _value(row["invalid_id_rate"]),
        "cited_share": _value(row["cited_share"]),
        "format_valid": (float(bool(row["format_ok"])), 1.0),
        "answer_chars": _value(row["answer_chars"] if row["has_answer"] else None),
        "truncated": _value(None if finished is None else not finished),
        "judge_failure_rate": (float(row["judge_failures"] or 0), float(row["judge_calls"] or 0)),
    }
    for title in static_titles:
        verdicts = [r for r in rubrics if r["static"] and r["title"] == title and r["score"] is not None]
        out[STATIC_PREFIX + title] = (float(sum(_passed(r["kind"], r["score"]) for r in verdicts)),
                                      float(len(verdicts)))
    return out


def static_titles(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    """The static rubrics' titles, in the order they first appear."""
    titles: dict[str, None] = {}
    for row in rows:
        for r in row.get("rubrics") or []:
            if r["static"]:
                titles.setdefault(r["title"], None)
    return list(titles)


def model_metrics(rows: Sequence[Mapping[str, Any]], titles: Sequence[str], *, n_boot: int, level: float, seed: int,
                  label: str) -> dict[str, dict]:
    """``{metric: {value, ci_low, ci_high, n}}`` for one model's rows; n = the denominator (completions, or rubric
    verdicts for pass rates, or judge calls); value None when nothing has the metric."""
    keys = [*METRIC_KEYS, *(STATIC_PREFIX + t for t in titles)]
    parts = [components(row, titles) for row in rows]
    num = np.array([[p[k][0] for k in keys] for p in parts], dtype=float).reshape(len(rows), len(keys))
    den = np.array([[p[k][1] for k in keys] for p in parts], dtype=float).reshape(len(rows), len(keys))
    total_num, total_den = num.sum(0), den.sum(0)
    boots = None
    if n_boot and len(rows):
        chunks = []
        for idx in bootstrap_indices(len(rows), n_boot, seeded_rng(seed, "refiner", label)):
            b_den = den[idx].sum(1)  # (chunk, metrics)
            with np.errstate(invalid="ignore", divide="ignore"):
                chunks.append(np.where(b_den > 0, num[idx].sum(1) / b_den, np.nan))
        boots = np.concatenate(chunks)
    out = {}
    for j, key in enumerate(keys):
        if total_den[j] == 0:
            out[key] = {"value": None, "ci_low": None, "ci_high": None, "n": 0}
            continue
        column = None if boots is None else boots[:, j][~np.isnan(boots[:, j])]
        stats = percentile_interval(float(total_num[j] / total_den[j]),
                                    column if column is not None and column.size else None, level)
        out[key] = {**stats, "n": int(total_den[j])}
    return out


def compute(rows_by_label: Mapping[str, Sequence[Mapping[str, Any]]], *, n_boot: int, level: float,
            seed: int) -> dict:
    """Every model's metrics, the static rubrics' titles and what each metric means."""
    titles = static_titles(r for rows in rows_by_label.values() for r in rows)
    models = {label: {"completions": len(rows),
                      "metrics": model_metrics(rows, titles, n_boot=n_boot, level=level, seed=seed, label=label)}
              for label, rows in rows_by_label.items()}
    return {"static_rubrics": titles, "models": models,
            "definitions": {m.key: m.definition for m in METRICS},
            "bootstrap": {"resamples": n_boot, "level": level, "seed": seed, "unit": "test task"}}


def cell(stats: Mapping | None, unit: str) -> str:
    """A value with its interval in the metric's unit, ``0.412 [0.350, 0.470]``; "–" without a value."""
    if stats is None or stats["value"] is None:
        return "–"
    fmt = {"score": lambda v: f"{v:.3f}", "percent": lambda v: f"{100 * v:.1f}", "chars": lambda v: f"{v:.0f}"}[unit]
    text = fmt(stats["value"])
    return text if stats["ci_low"] is None else f"{text} [{fmt(stats['ci_low'])}, {fmt(stats['ci_high'])}]"
