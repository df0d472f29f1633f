"""Reviewer metrics: the card's decision metrics, per venue, with the always-accept baseline beside them, and
calibration from p(accept).

Per model (accept = the positive class): F1, accuracy, precision and recall with percentile bootstrap intervals over
papers (seeded; models that answered the same papers share resamples), the confusion matrix, predicted vs true accept
rate with Wilson intervals, per-venue F1 and accept rates, parse failures and truncations, seconds per paper. An
output without a decision counts as a reject or leaves its paper out of that model's decision metrics
(``unparsed_as``). Calibration uses the papers with a p(accept): Brier score, expected calibration error over
equal-mass bins (few bins: ~95 papers) and the reliability diagram's points.
"""

from __future__ import annotations

import json
import logging
from typing import Mapping

import numpy as np
import polars as pl

from workflow_scripts.eval.plots import png_bytes, pyplot
from workflow_scripts.eval.stats import (
    bootstrap_indices, interval_cell, pct, percentile_interval, seeded_rng, wilson_interval,
)

log = logging.getLogger(__name__)

UNPARSED_AS = ("reject", "exclude")
SCORES = ("f1", "accuracy", "precision", "recall")
ALL_VENUES = "all"


# ---------------------------------------------------------------------------------------------------------- metrics


def point_scores(y: np.ndarray, predicted: np.ndarray) -> dict[str, float | None]:
    """F1, accuracy, precision, recall with accept as the positive class (0 where a ratio has no denominator)."""
    from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

    if len(y) == 0:
        return dict.fromkeys(SCORES)
    kw = dict(pos_label=True, zero_division=0)
    return {"f1": float(f1_score(y, predicted, **kw)), "accuracy": float(accuracy_score(y, predicted)),
            "precision": float(precision_score(y, predicted, **kw)), "recall": float(recall_score(y, predicted, **kw))}


def resampled_scores(y: np.ndarray, predicted: np.ndarray, idx: np.ndarray) -> dict[str, np.ndarray]:
    """The same scores on each resample (rows of ``idx``), vectorised: sklearn once per resample is slow."""
    ys, ps = y[idx], predicted[idx]
    tp, fp, fn = (ys & ps).sum(1), (~ys & ps).sum(1), (ys & ~ps).sum(1)

    def ratio(num, den):
        return np.divide(num, den, out=np.zeros(len(num)), where=den > 0)

    return {"f1": ratio(2 * tp, 2 * tp + fp + fn), "accuracy": 1 - (fp + fn) / idx.shape[1],
            "precision": ratio(tp, tp + fp), "recall": ratio(tp, tp + fn)}


def decision_scores(y: np.ndarray, predicted: np.ndarray, n_boot: int, seed: int, level: float) -> dict[str, dict]:
    points = point_scores(y, predicted)
    boots: dict[str, list] = {s: [] for s in SCORES}
    if n_boot and len(y):
        # one stream for every model: models that answered the same papers get the same resamples (paired)
        for idx in bootstrap_indices(len(y), n_boot, seeded_rng(seed, "reviewer", "papers")):
            for score, values in resampled_scores(y, predicted, idx).items():
                boots[score].append(values)
    return {s: percentile_interval(points[s], np.concatenate(boots[s]) if boots[s] else None, level) for s in SCORES}


def rate(successes: int, n: int, level: float) -> dict:
    """A proportion with its Wilson interval."""
    lo, hi = wilson_interval(successes, n, level)
    return {"value": successes / n if n else None, "ci_low": lo, "ci_high": hi, "successes": successes, "n": n}


def confusion(y: np.ndarray, predicted: np.ndarray) -> dict[str, int]:
    from sklearn.metrics import confusion_matrix

    tn, fp, fn, tp = confusion_matrix(y, predicted, labels=[False, True]).ravel().tolist()
    return {"tp": tp, "fp": fp, "fn": fn, "tn": tn}


def calibration(y: np.ndarray, p: np.ndarray, bins: int) -> dict | None:
    """Brier score, ECE over equal-mass bins and the bins themselves; None without any p(accept)."""
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import brier_score_loss

    if len(p) == 0:
        return None
    accept_fraction, mean_p = calibration_curve(y, p, n_bins=bins, strategy="quantile")
    # calibration_curve's own binning (quantile edges, searchsorted), for the counts it does not return; ties can
    # leave a bin empty, and it drops empty bins
    edges = np.percentile(p, np.linspace(0, 100, bins + 1))
    counts = np.bincount(np.searchsorted(edges[1:-1], p), minlength=bins)
    counts = counts[counts > 0]
    if len(counts) != len(mean_p):
        raise AssertionError(f"bin counts {counts.tolist()} do not match calibration_curve's {len(mean_p)} bins")
    weights = counts / len(p)
    return {
        "n": int(len(p)),
        "brier": float(brier_score_loss(y, p, pos_label=True)),
        "ece": float(np.sum(weights * np.abs(accept_fraction - mean_p))),
        "bins": [{"n": int(c), "mean_p_accept": float(m), "accept_fraction": float(f)}
                 for c, m, f in zip(counts, mean_p, accept_fraction)],
    }


def _arrays(frame: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    return (frame["label"].to_numpy().astype(bool),
            (frame["decision"] == "accept").fill_null(False).to_numpy().astype(bool))


def model_metrics(frame: pl.DataFrame, *, n_boot: int, seed: int, level: float, bins: int, unparsed_as: str) -> dict:
    if unparsed_as not in UNPARSED_AS:
        raise ValueError(f"unparsed_as {unparsed_as!r}: choose one of {list(UNPARSED_AS)}")
    counted = frame if unparsed_as == "reject" else frame.filter(pl.col("decision").is_not_null())
    y, predicted = _arrays(counted)
    venues = {}
    for venue in sorted(counted["venue"].unique().to_list()):
        vy, vp = _arrays(counted.filter(pl.col("venue") == venue))
        venues[venue] = {"n": len(vy), "f1": point_scores(vy, vp)["f1"],
                         "predicted_accept_rate": rate(int(vp.sum()), len(vp), level),
                         "true_accept_rate": rate(int(vy.sum()), len(vy), level)}
    with_p = frame.filter(pl.col("p_accept").is_not_null())
    latency = frame["latency_s"].drop_nulls()
    return {
        "backend": ", ".join(sorted(frame["backend"].unique().to_list())),
        "papers": frame.height,
        "n": counted.height,  # papers in the decision metrics
        **decision_scores(y, predicted, n_boot, seed, level),
        "confusion": confusion(y, predicted),
        "predicted_accept_rate": rate(int(predicted.sum()), len(predicted), level),
        "true_accept_rate": rate(int(y.sum()), len(y), level),
        "by_venue": venues,
        "unparsed": {"total": int(frame["decision"].null_count()),
                     "by_problem": dict(frame.group_by("parse_problem").len().drop_nulls().sort("parse_problem")
                                        .iter_rows())},
        "truncated": int((frame["finished"] == False).sum()),  # noqa: E712 (null: not generated, not counted)
        "seconds_per_paper": float(latency.mean()) if latency.len() else None,
        "calibration": calibration(with_p["label"].to_numpy().astype(bool), with_p["p_accept"].to_numpy(), bins),
    }


def benchmark_stats(frames: Mapping[str, pl.DataFrame], level: float) -> dict:
    """The papers and their true labels, which every predictions file must agree on."""
    truth: dict[str, tuple[str, bool]] = {}
    for label, frame in frames.items():
        for key, venue, accepted in frame.select("key", "venue", "label").iter_rows():
            if truth.setdefault(key, (venue, accepted)) != (venue, accepted):
                raise ValueError(f"paper {key!r}: the predictions of {label!r} give it venue/label {venue}/{accepted},"
                                 f" an earlier file {truth[key][0]}/{truth[key][1]}: not the same benchmark")
    for label, frame in frames.items():
        if frame.height != len(truth):
            log.warning("%s predicted %d of the %d papers in the predictions files", label, frame.height, len(truth))
    venues: dict[str, list[bool]] = {}
    for venue, accepted in truth.values():
        venues.setdefault(venue, []).append(accepted)
    accepts = sum(accepted for _, accepted in truth.values())
    return {"papers": len(truth), "true_accept_rate": rate(accepts, len(truth), level),
            "by_venue": {v: rate(sum(a), len(a), level) for v, a in sorted(venues.items())}}


def compute_metrics(frames: Mapping[str, pl.DataFrame], *, n_boot: int = 1000, seed: int = 1234, level: float = 0.95,
                    bins: int = 5, unparsed_as: str = "reject", reference_accept_rate: float | None = None,
                    provenance: Mapping[str, str] | None = None) -> dict:
    """Metrics of every model (``frames``: label -> predictions, in table order)."""
    if not frames:
        raise ValueError("no predictions given")
    return {
        "protocol": {
            "positive_class": "accept",
            "unparsed_as": unparsed_as,
            "bootstrap": {"resamples": n_boot, "seed": seed, "level": level, "unit": "paper", "method": "percentile"},
            "accept_rate_interval": {"method": "wilson", "level": level},
            "calibration": {"bins": bins, "strategy": "equal-mass (quantile)",
                            "p_accept": "decision-token top log-probabilities, renormalised over accept/reject"},
        },
        "benchmark": {**benchmark_stats(frames, level), "reference_accept_rate": reference_accept_rate},
        "provenance": dict(provenance) if provenance else None,
        "model_order": list(frames),  # the tables' row order (the JSON file sorts its keys)
        "models": {label: {"predictions": None, **model_metrics(frame, n_boot=n_boot, seed=seed, level=level,
                                                               bins=bins, unparsed_as=unparsed_as)}
                   for label, frame in frames.items()},
    }


# ----------------------------------------------------------------------------------------------------------- report


def _number(x: float | None, digits: int = 3) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def _rate_cell(r: Mapping) -> str:
    return "–" if r["value"] is None else f"{interval_cell(r)} ({r['successes']}/{r['n']})"


def markdown_table(metrics: Mapping) -> str:
    proto, bench = metrics["protocol"], metrics["benchmark"]
    models = {label: metrics["models"][label] for label in metrics["model_order"]}
    boot, true = proto["bootstrap"], bench["true_accept_rate"]
    reference = bench["reference_accept_rate"]
    level = f"{100 * boot['level']:.0f}%"
    unparsed = ("count as reject" if proto["unparsed_as"] == "reject"
                else "leave their paper out of that model's decision metrics (n)")
    lines = [
        "# Reviewer: accept/reject decisions",
        "",
        f"Benchmark: {bench['papers']} papers, true accept rate {pct(true['value'])}% ({true['successes']}/"
        f"{true['n']})" + (f"; the reference reports {pct(reference)}%." if reference is not None else "."),
        f"Accept is the positive class; outputs without a decision {unparsed}. F1, accuracy, precision and recall "
        f"in % [{level} bootstrap CI, {boot['resamples']} resamples of papers, seed {boot['seed']}]; accept rates "
        f"with {level} Wilson intervals. Calibration from p(accept) at the decision token (papers with one): Brier "
        f"score and ECE over {proto['calibration']['bins']} equal-mass bins. A constant answer's F1 is the baseline "
        "a skewed benchmark needs.",
    ]
    if metrics.get("provenance"):
        lines.append("Provenance: " + "; ".join(f"{k}: {v}" for k, v in metrics["provenance"].items()) + ".")
    lines += ["", "| model | backend | n | F1 | accuracy | precision | recall | predicted accept rate | "
                  "TP / FP / FN / TN | unparsed (truncated) | p(accept) n | Brier | ECE | s / paper |",
              "|---|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|"]
    for label, m in models.items():
        c, cal = m["confusion"], m["calibration"] or {}
        lines.append(
            f"| {label} | {m['backend']} | {m['n']} | "
            + " | ".join(interval_cell(m[s]) for s in SCORES)
            + f" | {_rate_cell(m['predicted_accept_rate'])} | {c['tp']} / {c['fp']} / {c['fn']} / {c['tn']}"
            + f" | {m['unparsed']['total']} ({m['truncated']}) | {cal.get('n', 0)} | {_number(cal.get('brier'))}"
            + f" | {_number(cal.get('ece'))} | {_number(m['seconds_per_paper'], 2)} |")
    venues = list(bench["by_venue"])
    lines += ["", "## F1 per venue", "", "| venue | n | " + " | ".join(models) + " |",
              "|---|---:|" + "---:|" * len(models)]
    for v in venues:
        cells = [models[label]["by_venue"].get(v) for label in models]
        lines.append(f"| {v} | {bench['by_venue'][v]['n']} | "
                     + " | ".join("–" if c is None else _number(c["f1"]) for c in cells) + " |")
    lines += ["", f"## Accept rate per venue (%) [{level} Wilson interval]", "",
              "| venue | true | " + " | ".join(models) + " |", "|---|---:|" + "---:|" * len(models)]
    for v in venues:
        cells = [models[label]["by_venue"].get(v) for label in models]
        lines.append(f"| {v} | {_rate_cell(bench['by_venue'][v])} | "
                     + " | ".join("–" if c is None else _rate_cell(c["predicted_accept_rate"]) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def reliability_png(metrics: Mapping) -> bytes:
    """Reliability diagram: observed accept fraction against mean p(accept) per equal-mass bin, one line per model
    that has p(accept), the diagonal, the papers per bin at each point."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 5.5))
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1, label="perfectly calibrated")
    drawn = 0
    for k, label in enumerate(metrics["model_order"]):
        cal = metrics["models"][label]["calibration"]
        if not cal:
            continue
        x = [b["mean_p_accept"] for b in cal["bins"]]
        y = [b["accept_fraction"] for b in cal["bins"]]
        ax.plot(x, y, marker="o", color=_color(k), label=f"{label} (Brier {cal['brier']:.3f}, ECE {cal['ece']:.3f})")
        for b, xi, yi in zip(cal["bins"], x, y):
            ax.annotate(str(b["n"]), (xi, yi), textcoords="offset points", xytext=(4, -10), fontsize="x-small",
                        color=_color(k))
        drawn += 1
    if not drawn:
        ax.text(0.5, 0.5, "no model has p(accept)", ha="center", va="center")
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("mean p(accept) in bin")
    ax.set_ylabel("fraction accepted (true)")
    ax.set_title(f"Reliability, {metrics['protocol']['calibration']['bins']} equal-mass bins (papers per bin)",
                 fontsize="medium")
    ax.legend(fontsize="x-small", loc="upper center", bbox_to_anchor=(0.5, -0.12))
    return png_bytes(fig)


def _color(k: int) -> str:
    """The k-th model's colour, the same in every figure whichever models are drawn."""
    return f"C{k % 10}"


def rates_png(metrics: Mapping) -> bytes:
    """Per venue and overall: the true accept rate and each model's predicted one, with Wilson intervals."""
    plt = pyplot()
    bench = metrics["benchmark"]
    models = {label: metrics["models"][label] for label in metrics["model_order"]}
    groups = [*bench["by_venue"], ALL_VENUES]
    series = {"true": [bench["true_accept_rate"] if g == ALL_VENUES else bench["by_venue"][g] for g in groups]}
    for label, m in models.items():
        series[label] = [m["predicted_accept_rate"] if g == ALL_VENUES
                         else (m["by_venue"].get(g) or {}).get("predicted_accept_rate") for g in groups]
    fig, ax = plt.subplots(figsize=(max(6.0, 1.2 + 0.35 * len(groups) * (len(series) + 1)), 4.0))
    width = 0.8 / len(series)
    x = np.arange(len(groups))
    colors = ["0.6", *(_color(k) for k in range(len(models)))]  # the true rate in grey
    for k, (name, rates) in enumerate(series.items()):
        vals = np.array([np.nan if r is None or r["value"] is None else 100 * r["value"] for r in rates])
        err = np.array([[0, 0] if r is None or r["value"] is None
                        else [100 * (r["value"] - r["ci_low"]), 100 * (r["ci_high"] - r["value"])] for r in rates]).T
        ax.bar(x + (k - (len(series) - 1) / 2) * width, vals, width, yerr=err, capsize=2, label=name,
               color=colors[k])
    ax.set_xticks(x, [f"{g}\n(n={bench['papers'] if g == ALL_VENUES else bench['by_venue'][g]['n']})"
                      for g in groups])
    ax.set_ylim(0, 105)
    ax.set_ylabel(f"accept rate (%), {100 * metrics['protocol']['accept_rate_interval']['level']:.0f}% Wilson")
    ax.set_title("Predicted vs true accept rate per venue", fontsize="medium")
    ax.legend(fontsize="small", ncol=min(5, len(series)), loc="upper center", bbox_to_anchor=(0.5, -0.18))
    return png_bytes(fig)


def generations_jsonl(frames: Mapping[str, pl.DataFrame]) -> str:
    """Every model's per-paper output, one JSON line each, models in table order, papers by key."""
    lines = []
    for frame in frames.values():
        lines += [json.dumps(row, ensure_ascii=False) for row in frame.sort("key").iter_rows(named=True)]
    return "".join(line + "\n" for line in lines)
