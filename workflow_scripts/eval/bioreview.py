"""BioReview evaluation: the concerns of models, an ensemble and baselines matched against the reviewers' concerns.

Each model raw and under both postprocessings, the union ensemble of two models and two baselines; micro precision,
recall and F1 overall, per source, category and severity, with bootstrap intervals.

    python -m workflow_scripts.eval.bioreview --predictions P.parquet [--predictions P2.parquet ...] \\
        --truth test_truth.parquet --embedding-model specter2 --embedding-revision COMMIT [--embedding-path DIR] \\
        [--threshold 0.65 | --calibration-pairs pairs.parquet] [--ensemble MODEL_A MODEL_B] \\
        [--train-truth train_truth.parquet --articles articles.parquet] --out-json metrics.json --out-md metrics.md

Tables: eval.concern_tables (predictions, truth). Matching and the metric: eval.concern_matching. Postprocessing
and the ensemble: eval.concern_postprocess. Baselines: eval.concern_baselines (with ``--train-truth`` and
``--articles``, the biomedical articles table, for titles and abstracts). The embedding model: eval.concern_embeddings
(no fallback: a model that cannot be loaded stops the step and says how to provide it). A model other than SPECTER2
takes its threshold from labelled pairs (eval.concern_threshold) or ``--threshold``, and its figures are labelled as
not comparable with the reference's.

Ground truth: figure concerns removed; an article left without a concern is not evaluated (counted), as the
reference's evaluation corpus keeps only articles with at least one non-figure concern. Predictions are scored as
given (a figure concern a model writes is one more prediction). Predictions for articles outside the ground truth
are counted and left out; a ground-truth article a model did not answer counts as answered with no concern.
Baselines and ensembles are scored like models; the baselines' lists are not postprocessed.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Mapping, Protocol, Sequence

import numpy as np
import polars as pl

from workflow_scripts.common.cli import parser, setup_logging
from workflow_scripts.common.io import write_json_atomic, write_text_atomic
from workflow_scripts.eval import concern_baselines, concern_postprocess
from workflow_scripts.eval.concern_embeddings import (
    MODELS, REFERENCE_MODEL, EmbeddingModelUnavailable, EmbeddingSpec, TextEmbeddings, load_embedder,
)
from workflow_scripts.eval.concern_matching import Truth, score_system
from workflow_scripts.eval.concern_tables import (
    CATEGORIES, FIGURE_CATEGORY, SEVERITIES, ConcernInputError, read_predictions, read_table, read_truth,
    require_columns, without_figure_concerns,
)
from workflow_scripts.eval.concern_threshold import calibrate
from workflow_scripts.eval.stats import interval_cell, pct

log = logging.getLogger(__name__)

REFERENCE_THRESHOLD = 0.65


class EmbedderLike(Protocol):
    provenance: dict
    sep_token: str

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


# ------------------------------------------------------------------------------------------------------------ inputs


def prepare_truth(truth: pl.DataFrame) -> tuple[Truth, dict]:
    """Figure concerns out; articles left with none out; the counts of both."""
    kept = without_figure_concerns(truth)
    n_before = truth["concerns"].list.len().sum()
    empty = kept.filter(pl.col("concerns").list.len() == 0)
    kept = kept.filter(pl.col("concerns").list.len() > 0).sort("article_id")
    stats = {
        "articles": kept.height, "concerns": int(kept["concerns"].list.len().sum()),
        "figure_concerns_removed": int(n_before - kept["concerns"].list.len().sum()),
        "articles_without_nonfigure_concern": empty.height,
        "by_source": dict(kept.group_by("source").agg(pl.len()).sort("source").iter_rows()),
    }
    return Truth(kept["article_id"].to_list(), kept["source"].to_list(), kept["concerns"].to_list()), stats


def split_models(predictions: pl.DataFrame, truth: Truth) -> tuple[dict[str, dict[str, list[dict]]], dict[str, dict]]:
    """model -> article -> concerns (ground-truth articles only), and per model what was left out or failed."""
    in_truth = set(truth.article_ids)
    models: dict[str, dict[str, list[dict]]] = {}
    counts: dict[str, dict] = {}
    for model in predictions["model"].unique(maintain_order=True).to_list():
        rows = predictions.filter(pl.col("model") == model)
        inside = rows.filter(pl.col("article_id").is_in(list(in_truth)))
        outside = rows.filter(~pl.col("article_id").is_in(list(in_truth)))
        models[model] = dict(zip(inside["article_id"].to_list(), inside["concerns"].to_list()))
        counts[model] = {
            "articles_answered": inside.height,
            "articles_without_prediction": len(in_truth) - inside.height,
            "parse_failures": int((~inside["parse_ok"]).sum()),
            "outside_truth": {"articles": outside.height, "concerns": int(outside["concerns"].list.len().sum())},
        }
        if outside.height:
            log.warning("%s: %d prediction row(s) for articles outside the ground truth left out, e.g. %s", model,
                        outside.height, outside["article_id"][0])
    return models, counts


def matching_threshold(model_name: str, threshold: float | None, calibration: dict | None) -> dict:
    if calibration is not None:
        if model_name == REFERENCE_MODEL:
            raise ConcernInputError(f"{REFERENCE_MODEL} matches at the reference's threshold; calibration pairs are "
                                    "for other embedding models")
        if threshold is not None:
            raise ConcernInputError("give a threshold or calibration pairs, not both")
        return {"value": calibration["threshold"], "source": "calibrated", "calibration": calibration}
    if threshold is None and model_name != REFERENCE_MODEL:
        raise ConcernInputError(f"embedding model {model_name!r} needs a threshold or calibration pairs: "
                                f"{REFERENCE_THRESHOLD} is a point on {REFERENCE_MODEL}'s cosine scale")
    value = REFERENCE_THRESHOLD if threshold is None else threshold
    return {"value": value, "source": "reference" if value == REFERENCE_THRESHOLD else "given", "calibration": None}


# -------------------------------------------------------------------------------------------------------- evaluation


def _texts(lists) -> list[str]:
    return [c["text"] for concerns in lists for c in concerns]


def evaluate(truth_frame: pl.DataFrame, predictions: pl.DataFrame, embedder: EmbedderLike, *,
             threshold: dict, postprocessings: Sequence[str] = concern_postprocess.POSTPROCESSINGS,
             dedup_threshold: float = 0.95, cap: int = 20, ensemble: Sequence[str] | None = None,
             ensemble_threshold: float = 0.98, train: pl.DataFrame | None = None,
             articles: pl.DataFrame | None = None, n_boot: int = 1000, seed: int = 1234,
             level: float = 0.95) -> dict:
    truth, truth_stats = prepare_truth(truth_frame)
    if not truth.article_ids:
        raise ConcernInputError("the ground truth has no article with a non-figure concern")
    models, model_counts = split_models(predictions, truth)
    if ensemble is not None:
        unknown = [m for m in ensemble if m not in models]
        if len(ensemble) != 2 or unknown:
            raise ConcernInputError(f"the ensemble needs two models of the predictions {list(models)}; got "
                                    f"{list(ensemble)}")

    baselines: dict[str, dict[str, list[dict]]] = {}
    baseline_notes: dict[str, dict] = {}
    if train is not None:
        blind, k = concern_baselines.paper_blind(train)
        baselines[concern_baselines.PAPER_BLIND] = {a: blind for a in truth.article_ids}
        baseline_notes[concern_baselines.PAPER_BLIND] = {"k": k}
        if articles is not None:
            baselines[concern_baselines.NEAREST_ARTICLE] = concern_baselines.nearest_training_article(
                train, truth.article_ids, articles, embedder)
            baseline_notes[concern_baselines.NEAREST_ARTICLE] = {}

    texts = _texts(truth.concerns)
    for per_article in [*models.values(), *baselines.values()]:
        texts += _texts(per_article.values())
    embeddings = TextEmbeddings(embedder, texts)
    dimension = embeddings.vectors.shape[1]

    def score(predicted: Mapping[str, list[dict]]) -> dict:
        return score_system(truth, predicted, embeddings.of, dimension, threshold=threshold["value"], n_boot=n_boot,
                            seed=seed, level=level, categories=(*CATEGORIES, FIGURE_CATEGORY), severities=SEVERITIES)

    cache: dict[tuple[str, str], dict[str, list[dict]]] = {}

    def processed(model: str, name: str) -> dict[str, list[dict]]:
        if (model, name) not in cache:
            cache[model, name] = {
                a: concern_postprocess.postprocess(name, cs, embeddings.of, dedup_threshold=dedup_threshold, cap=cap)
                for a, cs in models[model].items()}
        return cache[model, name]

    systems = []
    for model in models:
        for name in postprocessings:
            predicted = processed(model, name)
            systems.append({"label": f"{model} [{_pp_label(name, cap)}]", "kind": "model", "model": model,
                            "postprocessing": name, **model_counts[model], **_size(predicted, truth),
                            **score(predicted)})
    if ensemble is not None:
        a, b = ensemble
        for name in postprocessings:
            if name == "raw":
                continue
            pa, pb = processed(a, name), processed(b, name)
            predicted = {art: concern_postprocess.union_ensemble(pa.get(art, []), pb.get(art, []), embeddings.of,
                                                                 ensemble_threshold)
                         for art in set(pa) | set(pb)}
            systems.append({"label": f"union({a} + {b}) [{_pp_label(name, cap)}]", "kind": "ensemble",
                            "model": f"{a}+{b}", "postprocessing": name, **_size(predicted, truth),
                            **score(predicted)})
    for label, predicted in baselines.items():
        systems.append({"label": label, "kind": "baseline", "model": label, "postprocessing": "raw",
                        **baseline_notes[label], **_size(predicted, truth), **score(predicted)})

    same_matcher = embedder.provenance["name"] == REFERENCE_MODEL and threshold["value"] == REFERENCE_THRESHOLD
    return {
        "protocol": {
            "embedding": embedder.provenance,
            "threshold": threshold,
            "comparable_with_reference": same_matcher,
            "matching": "Hungarian on 1 - cosine, pairs below the threshold cost 1e6 and never match; "
                        "micro P/R/F1 over every ground-truth article",
            "postprocessing": {"names": list(postprocessings), "cap": cap,
                               "embedding_dedup_threshold": dedup_threshold},
            "ensemble": None if ensemble is None else {
                "models": list(ensemble), "threshold": ensemble_threshold,
                "kept_text": "the longest text of the first model's group members (the second's where it has none)"},
            "bootstrap": {"resamples": n_boot, "seed": seed, "level": level, "unit": "article",
                          "method": "percentile"},
            "breakdowns": "category and severity: recall of the true concern's, precision of the predicted one's",
        },
        "truth": truth_stats,
        "systems": systems,
    }


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|")


def _pp_label(name: str, cap: int) -> str:
    return name.replace("_cap", f"_cap{cap}")


def _size(predicted: Mapping[str, list[dict]], truth: Truth) -> dict:
    n = sum(len(predicted.get(a, [])) for a in truth.article_ids)
    return {"concerns_per_article": n / len(truth.article_ids)}


# ------------------------------------------------------------------------------------------------------------ report


def markdown_report(metrics: Mapping) -> str:
    proto, truth, systems = metrics["protocol"], metrics["truth"], metrics["systems"]
    emb, thr, boot = proto["embedding"], proto["threshold"], proto["bootstrap"]
    level = f"{100 * boot['level']:.0f}%"
    cal = thr["calibration"]
    reference = ("the reference's" if proto["comparable_with_reference"]
                 else "the reference's SPECTER2 value, not calibrated for this model")
    threshold_how = ({"reference": reference, "given": "given"}.get(thr["source"])
                     or f"calibrated on {cal['pairs']} labelled pairs: {cal['rule']}")
    lines = ["# BioReview: concerns found", ""]
    if not proto["comparable_with_reference"]:
        why = (f"matched at cosine {thr['value']:.4g}, not the reference's {REFERENCE_THRESHOLD}"
               if emb["name"] == REFERENCE_MODEL else
               f"matched with {emb['name']} ({emb['hub_id']}), not the reference's allenai/specter2_base; the dedup "
               "and ensemble thresholds are on SPECTER2's scale")
        lines += [f"**Not comparable with SPECTER2 figures**: {why}.", ""]
    lines += [
        f"Ground truth: {truth['articles']} articles ("
        + ", ".join(f"{s} {n}" for s, n in truth["by_source"].items())
        + f"), {truth['concerns']} concerns; {truth['figure_concerns_removed']} figure concern(s) removed, "
          f"{truth['articles_without_nonfigure_concern']} article(s) left without a concern not evaluated.",
        f"Matching: {emb['name']} ({emb['hub_id']}, revision {emb['revision']}, {emb['pooling']} pooling, "
        f"{emb['dimension']} dimensions, {emb['max_seq_length']} tokens), Hungarian assignment, a match at cosine >= "
        f"{thr['value']:.4g} ({threshold_how}).",
        f"Precision, recall and F1 are micro-averaged over every ground-truth article (an unanswered article counts "
        f"as empty), in % [{level} bootstrap CI, {boot['resamples']} resamples of articles, seed {boot['seed']}]. "
        f"Postprocessing: exact_dedup = lowercased whitespace-normalized duplicates out (the reference's reported "
        f"figures), embedding_dedup = cosine >= {proto['postprocessing']['embedding_dedup_threshold']} to an earlier "
        f"concern out (the card's snippet), then the first {proto['postprocessing']['cap']}.",
        "",
        "| system | concerns / article | precision | recall | F1 | matched / predicted / true | unanswered | "
        "parse failures |",
        "|---|---:|---:|---:|---:|---|---:|---:|",
    ]
    for s in systems:
        lines.append(f"| {_cell(s['label'])} | {s['concerns_per_article']:.1f} | {interval_cell(s['precision'])} | "
                     f"{interval_cell(s['recall'])} | {interval_cell(s['f1'])} | {s['matched']} / {s['predicted']} / "
                     f"{s['true']} | {s.get('articles_without_prediction', '–')} | "
                     f"{s.get('parse_failures', '–')} |")
    sources = list(truth["by_source"])
    lines += ["", f"## F1 per source (%) [{level} CI]", "",
              "| system | " + " | ".join(f"{src} (n={truth['by_source'][src]})" for src in sources) + " |",
              "|---|" + "---:|" * len(sources)]
    for s in systems:
        cells = [interval_cell(s["by_source"][src]["f1"]) for src in sources]
        lines.append(f"| {_cell(s['label'])} | " + " | ".join(cells) + " |")
    for field in ("category", "severity"):
        labels = list(dict.fromkeys(lab for s in systems for lab in s[f"by_{field}"]))
        for score, side, what in (("recall", "true", "the reviewers' concerns of that " + field),
                                  ("precision", "predicted", "the system's concerns of that " + field)):
            lines += ["", f"## {score.capitalize()} per {field} (%, over {what}; n in parentheses)", "",
                      f"| system | " + " | ".join(labels) + " |", "|---|" + "---:|" * len(labels)]
            for s in systems:
                cells = []
                for lab in labels:
                    c = s[f"by_{field}"].get(lab)
                    cells.append("–" if c is None or not c[side] else f"{pct(c[score]['value'])} ({c[side]})")
                lines.append(f"| {_cell(s['label'])} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------------------------- CLI


def main(argv: Sequence[str] | None = None) -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--predictions", required=True, action="append",
                   help="predictions parquet (article_id, model, concerns, parse_ok), repeated; tables keep the order")
    p.add_argument("--truth", required=True, help="ground-truth parquet (article_id, source, concerns)")
    p.add_argument("--embedding-model", required=True, choices=sorted(MODELS))
    p.add_argument("--embedding-path", default=None, help="a local copy of the embedding model")
    p.add_argument("--embedding-revision", default=None, help="the hub commit (required for specter2 from the hub)")
    p.add_argument("--embedding-cache-dir", default=None, help="the hub cache to load from")
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch-size", type=int, default=64, help="texts per encoding batch")
    p.add_argument("--threshold", type=float, default=None, help=f"matching threshold (default {REFERENCE_THRESHOLD})")
    p.add_argument("--calibration-pairs", default=None,
                   help="labelled pairs (text_a, text_b, paraphrase; parquet or JSON lines) to calibrate the "
                        "threshold of a model other than specter2")
    p.add_argument("--dedup-threshold", type=float, default=0.95)
    p.add_argument("--cap", type=int, default=20)
    p.add_argument("--ensemble", nargs=2, default=None, metavar=("MODEL_A", "MODEL_B"),
                   help="union ensemble of two models; MODEL_A's wording is preferred")
    p.add_argument("--ensemble-threshold", type=float, default=0.98)
    p.add_argument("--train-truth", default=None, help="training split in the truth's shape (baselines)")
    p.add_argument("--articles", default=None,
                   help="articles parquet (article_id, family_id, title, abstract) for the nearest-article baseline")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples of articles (0: no CI)")
    p.add_argument("--ci-level", type=float, default=0.95)
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--out-json", required=True)
    p.add_argument("--out-md", required=True)
    args = p.parse_args(argv)
    setup_logging(args.verbose)
    try:
        _run(args)
    except (ConcernInputError, EmbeddingModelUnavailable) as exc:
        log.error("%s", exc)
        sys.exit(1)


def _run(args) -> None:
    if args.articles and not args.train_truth:
        raise ConcernInputError("--articles serves the nearest-article baseline, which needs --train-truth")
    truth = read_truth(args.truth)
    predictions = pl.concat([read_predictions(path) for path in args.predictions])
    duplicated = predictions.filter(pl.struct("article_id", "model").is_duplicated())
    if duplicated.height:
        raise ConcernInputError(f"model {duplicated['model'][0]!r} answers article {duplicated['article_id'][0]!r} "
                                f"in more than one of {args.predictions}")
    train = read_truth(args.train_truth) if args.train_truth else None
    articles = read_table(args.articles, "articles") if args.articles else None
    if articles is not None:
        require_columns(articles, ["article_id", "title", "abstract"], args.articles, "articles")
    embedder = load_embedder(EmbeddingSpec(args.embedding_model, args.embedding_path, args.embedding_revision,
                                           args.embedding_cache_dir, args.device, args.batch_size))
    calibration = calibrate(args.calibration_pairs, embedder) if args.calibration_pairs else None
    metrics = evaluate(truth, predictions, embedder,
                       threshold=matching_threshold(args.embedding_model, args.threshold, calibration),
                       dedup_threshold=args.dedup_threshold, cap=args.cap, ensemble=args.ensemble,
                       ensemble_threshold=args.ensemble_threshold, train=train, articles=articles,
                       n_boot=args.bootstrap, seed=args.seed, level=args.ci_level)
    metrics["inputs"] = {"predictions": [str(Path(p)) for p in args.predictions], "truth": str(args.truth),
                         "train_truth": args.train_truth, "articles": args.articles}
    write_json_atomic(args.out_json, metrics)
    write_text_atomic(args.out_md, markdown_report(metrics))
    log.info("metrics of %d system(s) written to %s and %s", len(metrics["systems"]), args.out_json, args.out_md)


if __name__ == "__main__":
    main()
