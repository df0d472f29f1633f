"""SciJudge evaluation: predictions in both A/B orders, then pairwise accuracy per field and split with bootstrap CIs.

Protocol (SciJudge paper): each test pair is asked twice, as built and with the papers swapped (the correct letter
flips); a pair counts as correct only when both answers are right. An unparseable answer counts as wrong and is also
reported on its own. Accuracy is given overall and per field (CS, Math, Physics, Others), separately for the in-domain
(test_id) and temporal out-of-distribution (test_ood) splits, for every model side by side.

Decoding noise: with ``samples`` k > 1 every pair and order is sampled k times (draws), each request from its own seed
(:func:`workflow_scripts.eval.generation.request_seed` of seed, pair, order, draw). A model's accuracy is then the mean
over its draws; the bootstrap resamples pairs with all their draws, and the accuracies of the k draws are reported
beside it (mean, std, min-max), so the noise of sampling answers stands apart from the noise of sampling pairs.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import polars as pl

from workflow_scripts.common.cli import json_arg, parser, setup_logging
from workflow_scripts.common.io import write_bytes_atomic, write_json_atomic, write_parquet_atomic, write_text_atomic
from workflow_scripts.common.sampling import hash_sample
from workflow_scripts.datasets.scijudge_pairs import FIELDS
from workflow_scripts.datasets.scijudge_prompt import (
    TEXT_KEYS, answer_format, prompt_settings, render_messages, swapped_answer,
)
from workflow_scripts.eval.generation import GenConfig, load_generator, request_seed, require_backend
from workflow_scripts.eval.plots import png_bytes, pyplot
from workflow_scripts.eval.stats import bootstrap_indices, interval_cell, pct, percentile_interval, seeded_rng

log = logging.getLogger(__name__)

ORDERS = ("orig", "swap")  # as built / papers swapped
SPLIT_TITLES = {
    "test_id": "in-domain (test_id)", "test_ood": "temporal OOD (test_ood)", "test_iclr": "ICLR metric OOD (test_iclr)",
    "test_biorxiv": "bioRxiv biology OOD (test_biorxiv)", "train": "train",
}
PAIR_COLUMNS = [
    "pair_id", "split", "correct_answer",
    *(f"paper_{s}_{c}" for s in "ab" for c in ("title", "abstract", "date", "category", "subcategory")),
]
# One row per pair and draw (one draw, 0, unless the evaluation samples several); the *_orig / *_swap columns hold
# one A/B order each.
PREDICTION_SCHEMA: dict[str, pl.DataType] = {
    "pair_id": pl.String,
    "split": pl.String,
    "field": pl.String,
    "subcategory": pl.String,
    "model": pl.String,
    "draw": pl.Int32,
    **{
        f"{col}_{o}": dtype
        for o in ORDERS
        for col, dtype in (
            ("expected", pl.String),  # the right letter in this order
            ("raw", pl.String),  # the model's full output (baseline: its probability)
            ("answer", pl.String),  # parsed "A" | "B", null when unparseable
            ("num_tokens", pl.Int32),  # generated tokens; null for non-generative models
            ("finished", pl.Boolean),  # False when max_new_tokens cut the output; null for non-generative models
            ("correct", pl.Boolean),
        )
    },
    "correct": pl.Boolean,  # both orders right
}


# ----------------------------------------------------------------------------------------------------------- inputs


def load_pairs(paths: Sequence[str | Path], max_pairs: int | None = None) -> pl.DataFrame:
    """Pairs from one or more parquet files; ``max_pairs`` keeps N pairs of each split, the same N on every run."""
    frames = []
    for path in paths:
        df = pl.read_parquet(path)
        missing = [c for c in PAIR_COLUMNS if c not in df.columns]
        if missing:
            raise ValueError(f"{path}: not a SciJudge pairs file, missing column(s) {missing}")
        bad = df.filter(~pl.col("correct_answer").is_in(["A", "B"]))
        if bad.height:
            raise ValueError(f"{path}: pair {bad['pair_id'][0]!r} has correct_answer {bad['correct_answer'][0]!r}")
        # the stored prompt (as built) is kept only to warn when it differs from the configured one
        frames.append(df.select(PAIR_COLUMNS + (["messages"] if "messages" in df.columns else [])))
    pairs = pl.concat(frames, how="diagonal_relaxed")
    dup = pairs.filter(pl.col("pair_id").is_duplicated())["pair_id"].unique().sort()
    if dup.len():
        raise ValueError(f"pair_id(s) occur more than once across {list(map(str, paths))}: {dup.head(5).to_list()}")
    pairs = hash_sample(pairs, max_pairs, over="split")  # not the first N: those would all be one field
    log.info("%d pairs: %s", pairs.height, dict(pairs.group_by("split").len().sort("split").iter_rows()))
    return pairs


def conversations(pairs: pl.DataFrame, prompt: Mapping[str, str]) -> dict[str, list]:
    """The two conversations of every pair, rendered from the configured prompt so they differ only in order."""
    rows = pairs.to_dicts()
    texts = {k: prompt[k] for k in (*TEXT_KEYS, "today")}
    return {o: [render_messages(r, swap=(o == "swap"), **texts) for r in rows] for o in ORDERS}


# ------------------------------------------------------------------------------------------------------ predictions


def build_predictions(pairs: pl.DataFrame, model: str, outputs: Mapping[str, Mapping[str, Sequence]],
                      draw: int = 0) -> pl.DataFrame:
    """The predictions table of one draw; ``outputs[order]`` has lists ``raw`` and ``answer`` (and optionally
    ``num_tokens``, ``finished``) aligned with ``pairs``. Used by every model kind, LLM or baseline, so ``metrics``
    reads one format."""
    cols: dict[str, Any] = {
        "pair_id": pairs["pair_id"],
        "split": pairs["split"],
        "field": pairs["paper_a_category"],  # both papers of a pair share the subcategory, hence the field
        "subcategory": pairs["paper_a_subcategory"],
        "model": [model] * pairs.height,
        "draw": [draw] * pairs.height,
    }
    for o in ORDERS:
        out = outputs[o]
        cols[f"expected_{o}"] = pairs["correct_answer"] if o == "orig" else pairs["correct_answer"].map_elements(
            swapped_answer, return_dtype=pl.String
        )
        for col in ("raw", "answer", "num_tokens", "finished"):
            cols[f"{col}_{o}"] = pl.Series(out.get(col, [None] * pairs.height), dtype=PREDICTION_SCHEMA[f"{col}_{o}"])
    df = pl.DataFrame(cols)
    if df["field"].null_count():
        raise ValueError(f"pair {df.filter(pl.col('field').is_null())['pair_id'][0]!r} has no field (paper_a_category)")
    bad = df.filter(pl.any_horizontal(~pl.col(f"answer_{o}").is_in(["A", "B"]) for o in ORDERS))
    if bad.height:
        raise ValueError(f"answers must be 'A', 'B' or null; pair {bad['pair_id'][0]!r} has another value")
    return score(df)


def score(df: pl.DataFrame) -> pl.DataFrame:
    """(Re)derive per-order and pair correctness from answers: the single definition of a correct pair."""
    df = df.with_columns(
        (pl.col(f"answer_{o}") == pl.col(f"expected_{o}")).fill_null(False).alias(f"correct_{o}") for o in ORDERS
    )
    df = df.with_columns(pl.all_horizontal(f"correct_{o}" for o in ORDERS).alias("correct"))
    return df.select([pl.col(c).cast(t) for c, t in PREDICTION_SCHEMA.items()])


def predict(
    model: str, pair_paths: Sequence[str], gen: Mapping[str, Any], prompt: Mapping[str, str]
) -> pl.DataFrame:
    """Predictions of ``model``: ``gen`` holds the GenConfig settings plus ``max_pairs`` (per split) and ``samples``
    (draws per pair and order); ``prompt`` the config's PROMPT_KEYS (its variant sets the answer format parsed)."""
    return predict_sets(model, [(pair_paths, prompt)], gen)[0]


def predict_sets(
    model: str, sets: Sequence[tuple[Sequence[str], Mapping[str, str]]], gen: Mapping[str, Any]
) -> list[pl.DataFrame]:
    """:func:`predict` on several test sets, each (pair files, prompt settings), with the model loaded once: loading
    is most of an evaluation job on a small test set, and minutes for a large model."""
    gen = dict(gen)
    max_pairs = gen.pop("max_pairs", None)
    samples = gen.pop("samples", 1)
    cfg = GenConfig.from_dict(gen)
    if samples < 1 or (samples > 1 and cfg.greedy):
        raise ValueError(f"generation samples {samples}: give 1, or more than 1 with a sampling temperature > 0 "
                         f"(temperature {cfg.temperature} draws the same answer every time)")
    require_backend(cfg.backend)  # a missing backend fails before anything is read or loaded
    # every set read (and checked) before the model is loaded
    prepared = [(answer_format(prompt["prompt"]), *_asked(load_pairs(paths, max_pairs), prompt))
                for paths, prompt in sets]
    generator = load_generator(model, cfg)
    frames = []
    for answers, pairs, convs in prepared:
        log.info("generating both orders of %d pairs, %d draw(s) each", pairs.height, samples)
        # one call for every draw and order: the backend batches all prompts together
        requests = [(d, o, i) for d in range(samples) for o in ORDERS for i in range(pairs.height)]
        ids = pairs["pair_id"].to_list()
        gens = generator.generate([convs[o][i] for _, o, i in requests],
                                  seeds=[request_seed(cfg.seed, ids[i], o, d) for d, o, i in requests])
        draws = []
        for d in range(samples):
            outputs = {}
            for k, o in enumerate(ORDERS):
                start = (d * len(ORDERS) + k) * pairs.height
                part = gens[start : start + pairs.height]
                outputs[o] = {
                    "raw": [g.text for g in part],
                    "answer": [answers.parse(g.text) for g in part],
                    "num_tokens": [g.num_tokens for g in part],
                    "finished": [g.finished for g in part],
                }
            draws.append(build_predictions(pairs, model, outputs, draw=d))
        frames.append(pl.concat(draws))
    return frames


def _asked(pairs: pl.DataFrame, prompt: Mapping[str, str]) -> tuple[pl.DataFrame, dict[str, list]]:
    """The pairs and their conversations under the configured prompt, warning when pairs were built with another."""
    convs = conversations(pairs, prompt)
    stored = pairs["messages"].to_list() if "messages" in pairs.columns else [None] * pairs.height
    stale = sum(m is not None and m != c for m, c in zip(stored, convs["orig"]))
    if stale:
        log.warning("%d pair(s) were built with another prompt than the configured one; asking the configured one",
                    stale)
    return pairs, convs


# ---------------------------------------------------------------------------------------------------------- metrics


def read_predictions(path: str | Path) -> pl.DataFrame:
    df = pl.read_parquet(path)
    if "draw" not in df.columns:  # written before evaluations drew several samples: one draw per pair
        df = df.with_columns(pl.lit(0, pl.Int32).alias("draw"))
    missing = [c for c in PREDICTION_SCHEMA if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: not a SciJudge predictions file, missing column(s) {missing}")
    count_draws(df, str(path))
    return score(df).sort("pair_id", "draw")


def count_draws(df: pl.DataFrame, source: str) -> int:
    """The number of draws k of a predictions table, checked: every pair has each draw 0..k-1 exactly once, so that
    each draw's accuracy is over the same pairs."""
    dup = df.filter(pl.struct("pair_id", "draw").is_duplicated())
    if dup.height:
        raise ValueError(f"{source}: pair {dup['pair_id'][0]!r} (draw {dup['draw'][0]}) occurs more than once")
    k = max(df["draw"].n_unique(), 1)
    if set(df["draw"].unique()) - set(range(k)):
        raise ValueError(f"{source}: draws {sorted(df['draw'].unique())} are not numbered 0..{k - 1}")
    short = df.group_by("pair_id").len().filter(pl.col("len") < k).sort("pair_id")
    if short.height:
        raise ValueError(f"{source}: pair {short['pair_id'][0]!r} has {short['len'][0]} of the {k} draws")
    return k


def _pair_scores(df: pl.DataFrame) -> pl.DataFrame:
    """One row per pair, sorted (models with the same pairs share bootstrap resamples): its share of right draws."""
    return df.group_by("pair_id").agg(pl.col("correct").cast(pl.Float64).mean().alias("score")).sort("pair_id")


def _per_draw(df: pl.DataFrame, k: int) -> dict:
    """Each draw's accuracy on the pairs of ``df`` and their spread (sample std; none for a single draw)."""
    if df.height == 0:
        return {"values": [], "mean": None, "std": None, "min": None, "max": None}
    acc = df.group_by("draw").agg(pl.col("correct").cast(pl.Float64).mean()).sort("draw")["correct"].to_numpy()
    return {"values": acc.tolist(), "mean": float(acc.mean()), "std": float(acc.std(ddof=1)) if k > 1 else None,
            "min": float(acc.min()), "max": float(acc.max())}


def _bootstrap_means(values: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Bootstrap means of each row of ``values`` (models x pairs), all rows resampled with the same pair indices."""
    return np.concatenate([values[:, idx].mean(axis=2) for idx in bootstrap_indices(values.shape[1], n_boot, rng)],
                          axis=1)


def _group_stats(frames: Mapping[str, pl.DataFrame], draws: Mapping[str, int], ref: str, keys: tuple[str, str],
                 n_boot: int, seed: int, level):
    """Accuracy with CI per model on one group of pairs (mean over its ``draws``, the bootstrap resampling pairs with
    all their draws) and the spread of its draws' accuracies, and each model's paired difference to ``ref``."""
    scores = {label: _pair_scores(df) for label, df in frames.items()}
    stats: dict[str, dict] = {}
    by_pairs: dict[tuple, list[str]] = {}  # models that answered exactly the same pairs share resamples
    for label, df in scores.items():
        by_pairs.setdefault(tuple(df["pair_id"].to_list()), []).append(label)
    boots: dict[str, np.ndarray] = {}
    for pair_ids, labels in by_pairs.items():
        values = np.array([scores[lab]["score"].to_numpy() for lab in labels], dtype=float)
        if n_boot and len(pair_ids):
            for lab, b in zip(labels, _bootstrap_means(values, n_boot, seeded_rng(seed, *keys))):
                boots[lab] = b
    for label, df in frames.items():
        n = scores[label].height
        acc = float(scores[label]["score"].mean()) if n else None
        # correct: right pairs, counted once per draw (value = correct / (n x draws))
        stats[label] = {"n": n, "draws": draws[label], "correct": int(df["correct"].sum()),
                        **percentile_interval(acc, boots.get(label), level), "per_draw": _per_draw(df, draws[label])}
    deltas: dict[str, dict | None] = {}
    for label, df in scores.items():
        if label == ref:
            continue
        if df.height == 0 or not df["pair_id"].equals(scores[ref]["pair_id"]):
            deltas[label] = None  # a difference is only meaningful on the same pairs
            continue
        diff = boots[label] - boots[ref] if label in boots else None  # paired: same resampled pairs
        deltas[label] = percentile_interval(stats[label]["value"] - stats[ref]["value"], diff, level)
    return stats, deltas


def compute_metrics(
    frames: Mapping[str, pl.DataFrame],
    *,
    n_boot: int = 1000,
    seed: int = 1234,
    level: float = 0.95,
    fields: Sequence[str] = FIELDS,
) -> dict:
    """Metrics of every model (``frames``: label -> predictions, first label = reference for differences)."""
    labels = list(frames)
    if not labels:
        raise ValueError("no predictions given")
    ref = labels[0]
    draws = {label: count_draws(df, label) for label, df in frames.items()}
    all_splits = sorted(set().union(*(set(df["split"].unique()) for df in frames.values())))
    splits = [s for s in SPLIT_TITLES if s in all_splits] + [s for s in all_splits if s not in SPLIT_TITLES]
    present = set().union(*(set(df["field"].unique()) for df in frames.values()))
    extra = sorted(f for f in present if f not in fields)
    if extra:
        log.warning("field(s) %s are not among the configured fields %s; reported after them", extra, list(fields))
    groups = [*fields, *extra]
    result: dict[str, Any] = {
        "protocol": {
            "pair_correct_when": "both A/B orders answered correctly",
            "unparseable": "counted as wrong, and reported separately",
            "bootstrap": {"resamples": n_boot, "seed": seed, "level": level, "unit": "pair", "method": "percentile"},
            # k samples per pair and order: accuracy is the mean over draws, the bootstrap takes a pair with its draws
            "draws": draws,
            "fields": groups,
            "splits": splits,
            "reference": ref,
        },
        "models": {lab: {"predictions": None, "splits": {}} for lab in labels},
    }
    for split in splits:
        sub = {lab: df.filter(pl.col("split") == split) for lab, df in frames.items()}
        overall, overall_delta = _group_stats(sub, draws, ref, (split, "overall"), n_boot, seed, level)
        per_field = {
            g: _group_stats({lab: df.filter(pl.col("field") == g) for lab, df in sub.items()}, draws, ref, (split, g),
                            n_boot, seed, level)
            for g in groups
        }
        for lab, df in sub.items():
            n = df.height  # answered pairs, counted once per draw
            n_unparse = [int(df[f"answer_{o}"].is_null().sum()) for o in ORDERS]
            entry = {
                "overall": overall[lab],
                "by_field": {g: per_field[g][0][lab] for g in groups},
                "unparseable": {
                    "answers": sum(n_unparse),
                    "answers_total": 2 * n,
                    "by_order": dict(zip(ORDERS, n_unparse)),
                    # pairs (per draw) with an unparseable answer in either order
                    "pairs": int(df.filter(pl.any_horizontal(pl.col(f"answer_{o}").is_null() for o in ORDERS)).height),
                    "rate": sum(n_unparse) / (2 * n) if n else None,
                },
                # diagnostics: accuracy of single answers, and how often both orders got the same letter (position bias)
                "single_order_accuracy": float(np.mean([df[f"correct_{o}"].mean() for o in ORDERS])) if n else None,
                "truncated_answers": sum(df.filter(~pl.col(f"finished_{o}")).height for o in ORDERS),
                "same_letter_rate": (
                    float((df["answer_orig"] == df["answer_swap"]).fill_null(False).mean()) if n else None
                ),
            }
            if lab != ref:
                entry["delta_vs_reference"] = {
                    "overall": overall_delta[lab],
                    "by_field": {g: per_field[g][1][lab] for g in groups},
                }
            result["models"][lab]["splits"][split] = entry
    return result


def _ns(entries: Sequence[Mapping]) -> str:
    ns = [e["n"] for e in entries]
    return str(ns[0]) if len(set(ns)) == 1 else "/".join(map(str, ns))


def _draws_cell(s: Mapping) -> str:
    """``52.1 ± 2.3 [49.0, 54.0] (3 draws)``: the spread of a model's draws; one draw has none."""
    d = s["per_draw"]
    if d["mean"] is None:
        return "–"
    if s["draws"] == 1:
        return f"{pct(d['mean'])} (1 draw)"
    return f"{pct(d['mean'])} ± {100 * d['std']:.1f} [{pct(d['min'])}, {pct(d['max'])}] ({s['draws']} draws)"


def markdown_table(metrics: Mapping) -> str:
    proto = metrics["protocol"]
    labels = list(metrics["models"])
    ref = proto["reference"]
    boot = proto["bootstrap"]
    lines = [
        "# SciJudge pairwise accuracy",
        "",
        f"Accuracy in % (a pair counts only when both A/B orders are right); [{100 * boot['level']:.0f}% bootstrap CI, "
        f"{boot['resamples']} resamples of pairs, seed {boot['seed']}]. Unparseable answers count as wrong. "
        "n: pairs (per model, in column order, where the models saw different pairs).",
    ]
    if any(k > 1 for k in proto["draws"].values()):
        lines[-1] += (" Draws: each pair and order sampled k times; the accuracy is the mean over the k draws (the "
                      "bootstrap resamples pairs with all their draws), and the row per draw gives the k draws' "
                      "accuracies: mean ± std [min, max].")
    for split in proto["splits"]:
        entries = {lab: metrics["models"][lab]["splits"][split] for lab in labels}
        lines += ["", f"## {SPLIT_TITLES.get(split, split)}", ""]
        lines.append("| field | n | " + " | ".join(labels) + " |")
        lines.append("|---|---:|" + "---:|" * len(labels))
        for g in proto["fields"]:
            stats = [entries[lab]["by_field"][g] for lab in labels]
            lines.append(f"| {g} | {_ns(stats)} | " + " | ".join(interval_cell(s) for s in stats) + " |")
        stats = [entries[lab]["overall"] for lab in labels]
        lines.append(f"| **overall** | {_ns(stats)} | " + " | ".join(f"**{interval_cell(s)}**" for s in stats) + " |")
        if any(s["draws"] > 1 for s in stats):
            lines.append("| overall per draw | | " + " | ".join(_draws_cell(s) for s in stats) + " |")
        lines.append(
            "| unparseable answers (pairs) | | "
            + " | ".join(f"{e['unparseable']['answers']}/{e['unparseable']['answers_total']} "
                         f"({e['unparseable']['pairs']})" for e in entries.values())
            + " |"
        )
        if len(labels) > 1:
            lines.append(
                f"| Δ overall vs {ref} | | "
                + " | ".join("" if lab == ref
                             else interval_cell(entries[lab]["delta_vs_reference"]["overall"], signed=True)
                             for lab in labels)
                + " |"
            )
    return "\n".join(lines) + "\n"


def bar_chart(metrics: Mapping) -> bytes:
    """Grouped bars (fields + overall) per split, one bar per model, CI error bars; PNG bytes."""
    plt = pyplot()
    proto = metrics["protocol"]
    labels = list(metrics["models"])
    groups = [*proto["fields"], "overall"]
    splits = proto["splits"]
    # one row per split keeps the figure readable at any number of models
    fig, axes = plt.subplots(len(splits), 1, figsize=(max(6.0, 1.5 + 0.3 * len(groups) * (len(labels) + 1)),
                                                     0.5 + 3.0 * len(splits)), squeeze=False, sharey=True)
    width = 0.8 / len(labels)
    x = np.arange(len(groups))
    for ax, split in zip(axes[:, 0], splits):
        for k, lab in enumerate(labels):
            e = metrics["models"][lab]["splits"][split]
            stats = [e["by_field"][g] if g != "overall" else e["overall"] for g in groups]
            vals = np.array([np.nan if s["value"] is None else 100 * s["value"] for s in stats])
            err = np.array([
                [0, 0] if s["ci_low"] is None else [100 * (s["value"] - s["ci_low"]), 100 * (s["ci_high"] - s["value"])]
                for s in stats
            ]).T
            ax.bar(x + (k - (len(labels) - 1) / 2) * width, vals, width, yerr=err, capsize=2, label=lab)
        # a random guesser gets both orders right one time in four
        ax.axhline(25, color="grey", linestyle=":", linewidth=1, label="random guess")
        ax.set_xticks(x, groups)
        ax.set_ylim(0, 100)
        ax.set_ylabel(f"accuracy (%), {100 * proto['bootstrap']['level']:.0f}% CI")
        ax.set_title(f"{SPLIT_TITLES.get(split, split)}: a pair is right only if both A/B orders are",
                     fontsize="medium")
    axes[-1, 0].legend(fontsize="small", ncol=min(5, len(labels) + 1), loc="upper center", bbox_to_anchor=(0.5, -0.12))
    fig.tight_layout()
    return png_bytes(fig)


# -------------------------------------------------------------------------------------------------------------- cli


def main(argv: Sequence[str] | None = None) -> None:
    p = parser(__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    pr = sub.add_parser("predict", formatter_class=p.formatter_class,
                        help="generate answers for both A/B orders of every pair")
    pr.add_argument("--model", required=True, help="save_pretrained directory of the model to evaluate")
    pr.add_argument("--pairs", required=True, action="append", help="pairs parquet (repeat for several)")
    pr.add_argument("--out", required=True, help="predictions parquet")
    pr.add_argument("--gen-json", type=json_arg, default={},
                    help="generation settings (workflow_scripts.eval.generation.GenConfig) plus max_pairs per split "
                         "and samples (draws per pair and order)")
    pr.add_argument("--batch-size", type=int, default=None,
                    help="prompts per generate() call (overrides --gen-json): speed and memory, apart from the "
                         "settings that define the predictions")
    pr.add_argument("--prompt-json", type=json_arg, required=True,
                    help='{"prompt": "card" | "paper", "system_prompt": ..., "user_template": ..., "today": ...} as in '
                         "config scijudge (the variant sets the answer format parsed)")
    pr.add_argument("--also-json", type=json_arg, action="append", default=[],
                    help='another test set asked of the same loaded model: {"pairs": [parquet, ...], "out": parquet, '
                         '"prompt": {as --prompt-json}} (repeat for several)')
    me = sub.add_parser("metrics", formatter_class=p.formatter_class,
                        help="accuracy tables and chart from one or more predictions files")
    me.add_argument("--predictions", required=True, action="append", help="predictions parquet (repeat per model)")
    me.add_argument("--labels", required=True, help="comma-separated model labels, one per --predictions; "
                                                    "the first is the reference for differences")
    me.add_argument("--out-json", required=True)
    me.add_argument("--out-md", required=True)
    me.add_argument("--out-png", required=True)
    me.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples (0: no CI)")
    me.add_argument("--ci-level", type=float, default=0.95)
    me.add_argument("--seed", type=int, default=1234)
    me.add_argument("--fields", default=",".join(FIELDS), help="fields in table order")
    args = p.parse_args(argv)
    setup_logging(args.verbose)
    if args.command == "predict":
        outs, sets = _prediction_sets(args)
        gen = args.gen_json if args.batch_size is None else {**args.gen_json, "batch_size": args.batch_size}
        for out, df in zip(outs, predict_sets(args.model, sets, gen)):
            write_parquet_atomic(df, out)
            log.info("wrote %d predictions to %s; pair accuracy %.3f, unparseable answers %d",
                     df.height, out, df["correct"].mean() or 0.0,
                     sum(int(df[f"answer_{o}"].is_null().sum()) for o in ORDERS))
        return
    labels = [s.strip() for s in args.labels.split(",")]
    if len(labels) != len(args.predictions) or len(set(labels)) != len(labels):
        raise SystemExit(f"--labels {labels} must name each of the {len(args.predictions)} --predictions once")
    frames = {lab: read_predictions(path) for lab, path in zip(labels, args.predictions)}
    metrics = compute_metrics(frames, n_boot=args.bootstrap, seed=args.seed, level=args.ci_level,
                              fields=[f.strip() for f in args.fields.split(",") if f.strip()])
    for lab, path in zip(labels, args.predictions):
        metrics["models"][lab]["predictions"] = str(path)
    write_json_atomic(args.out_json, metrics)
    write_text_atomic(args.out_md, markdown_table(metrics))
    write_bytes_atomic(args.out_png, bar_chart(metrics))
    log.info("metrics of %s written to %s, %s, %s", labels, args.out_json, args.out_md, args.out_png)


def _prediction_sets(args) -> tuple[list[str], list[tuple[list[str], dict]]]:
    """The output paths and (pair files, prompt) sets of a predict call: the main set, then each --also-json."""
    given = [{"pairs": args.pairs, "out": args.out, "prompt": args.prompt_json}, *args.also_json]
    outs, sets = [], []
    for n, item in enumerate(given):
        flag = "--prompt-json" if n == 0 else f"--also-json #{n}"
        missing = [k for k in ("pairs", "out", "prompt") if not isinstance(item, dict) or k not in item]
        if missing:
            raise SystemExit(f"{flag}: missing key(s) {missing}")
        if not isinstance(item["pairs"], list) or not item["pairs"]:
            raise SystemExit(f"{flag}: pairs must be a list of parquet paths, not {item['pairs']!r}")
        try:
            prompt = prompt_settings(item["prompt"], flag)
        except ValueError as exc:
            raise SystemExit(str(exc)) from None
        outs.append(item["out"])
        sets.append((list(item["pairs"]), prompt))
    if len(set(outs)) != len(outs):
        raise SystemExit(f"predict: output paths repeat: {outs}")
    return outs, sets


if __name__ == "__main__":
    main()
