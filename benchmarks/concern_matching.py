"""Benchmark: BioReview concern matching at the reference's test scale (default 1,000 articles x 20 predicted x 14
true concerns), each stage in a fresh process.

- ``vectors``: embeddings excluded: random unit vectors (384-d; half of the predictions near a true concern, so
  the assignment has matches to find). Times the Hungarian matching alone, one system's full score (breakdowns per
  source, category and severity, 1,000 bootstrap resamples of articles) and the embedding dedup + cap 20.
- ``minilm``: embeddings included: the same shape with synthetic concern texts, encoded on CPU by all-MiniLM-L6-v2
  (the demo's model, from its wheel), then scored.

Peak memory is the process's peak RSS, with the RSS after imports beside it (the step's own share is the difference).

    python benchmarks/concern_matching.py [--articles 1000 --predicted 20 --true 14 --dim 384] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from workflow_scripts.eval.concern_matching import FlatConcerns, Truth, match_articles, score_system  # noqa: E402
from workflow_scripts.eval.concern_postprocess import embedding_dedup_cap  # noqa: E402
from workflow_scripts.eval.concern_tables import CATEGORIES, SEVERITIES  # noqa: E402

SOURCES = ("elife", "plos", "f1000", "peerj", "nature")
WORDS = ("sample size control blinding statistics replication antibody mouse cohort variance power analysis "
         "baseline dose western blot knockout randomization confounder imaging sequencing library batch effect "
         "normalization outlier threshold p-value correction model assumption validation cell line").split()


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _concern_texts(rng: np.random.Generator, n: int, tag: str) -> list[str]:
    return [f"The {' '.join(rng.choice(WORDS, 6))} is not adequately addressed ({tag} {i})." for i in range(n)]


def _problem(args, rng):
    """Per article: predicted and true concern dicts; the text indexes the vector table."""
    n_pred, n_true = args.articles * args.predicted, args.articles * args.true
    true_texts = _concern_texts(rng, n_true, "t")
    pred_texts = _concern_texts(rng, n_pred, "p")
    cats, sevs = np.array(CATEGORIES), np.array(SEVERITIES)

    def concerns(texts, count, k):
        return [{"text": texts[k * count + i], "category": str(rng.choice(cats)), "severity": str(rng.choice(sevs))}
                for i in range(count)]

    truth = Truth([f"a{k:05d}" for k in range(args.articles)],
                  [SOURCES[k % len(SOURCES)] for k in range(args.articles)],
                  [concerns(true_texts, args.true, k) for k in range(args.articles)])
    predicted = {a: concerns(pred_texts, args.predicted, k) for k, a in enumerate(truth.article_ids)}
    return truth, predicted, true_texts, pred_texts


def _random_vectors(args, rng, true_texts, pred_texts) -> dict[str, np.ndarray]:
    true = rng.normal(size=(len(true_texts), args.dim)).astype(np.float32)
    true /= np.linalg.norm(true, axis=1, keepdims=True)
    pred = rng.normal(size=(len(pred_texts), args.dim)).astype(np.float32)
    pred /= np.linalg.norm(pred, axis=1, keepdims=True)
    # half of each article's predictions lie near one of its true concerns
    for k in range(args.articles):
        for i in range(args.predicted // 2):
            t = true[k * args.true + i % args.true]
            p = t + 0.6 * rng.normal(size=args.dim).astype(np.float32) / np.sqrt(args.dim)
            pred[k * args.predicted + i] = p / np.linalg.norm(p)
    return {"true": true, "pred": pred}


def _time(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, round(time.perf_counter() - t0, 3)


def stage(args) -> dict:
    rng = np.random.default_rng(0)
    truth, predicted, true_texts, pred_texts = _problem(args, rng)
    result = {"stage": args.stage, "rss_after_imports_mb": None}
    if args.stage == "minilm":
        from workflow_scripts.eval.concern_embeddings import EmbeddingSpec, TextEmbeddings, load_embedder

        embedder, result["load_s"] = _time(lambda: load_embedder(EmbeddingSpec("minilm", batch_size=args.batch_size)))
        result["rss_after_imports_mb"] = round(_rss_mb(), 1)
        texts = true_texts + pred_texts
        embeddings, result["encode_s"] = _time(lambda: TextEmbeddings(embedder, texts))
        result["texts"] = len(texts)
        result["texts_per_s"] = round(len(texts) / result["encode_s"], 1)
        vectors = embeddings.vectors
        index = embeddings.index
    else:
        result["rss_after_imports_mb"] = round(_rss_mb(), 1)
        parts = _random_vectors(args, rng, true_texts, pred_texts)
        vectors = np.concatenate([parts["true"], parts["pred"]])
        index = {t: i for i, t in enumerate(true_texts + pred_texts)}

    def vectors_of(texts):
        return vectors[[index[t] for t in texts]]

    dim = vectors.shape[1]
    pred_flat = FlatConcerns.of([vectors_of([c["text"] for c in predicted[a]]) for a in truth.article_ids], dim)
    true_flat = FlatConcerns.of([vectors_of([c["text"] for c in cs]) for cs in truth.concerns], dim)
    (pm, _), result["match_s"] = _time(lambda: match_articles(pred_flat, true_flat, args.threshold))
    scored, result["score_with_bootstrap_s"] = _time(lambda: score_system(
        truth, predicted, vectors_of, dim, threshold=args.threshold, n_boot=args.bootstrap, seed=1, level=0.95,
        categories=CATEGORIES, severities=SEVERITIES))
    _, result["embedding_dedup_cap20_s"] = _time(
        lambda: [embedding_dedup_cap(predicted[a], vectors_of, 0.95, 20) for a in truth.article_ids])
    result["matches"] = int(pm.sum())
    result["f1"] = round(scored["f1"]["value"], 4)
    result["peak_rss_mb"] = round(_rss_mb(), 1)
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--articles", type=int, default=1000)
    p.add_argument("--predicted", type=int, default=20)
    p.add_argument("--true", type=int, default=14)
    p.add_argument("--dim", type=int, default=384, help="dimension of the random vectors (vectors stage)")
    p.add_argument("--threshold", type=float, default=0.65)
    p.add_argument("--bootstrap", type=int, default=1000)
    p.add_argument("--batch-size", type=int, default=64, help="MiniLM encoding batch")
    p.add_argument("--stage", choices=("vectors", "minilm"), default=None, help="run one stage in this process")
    p.add_argument("--skip-minilm", action="store_true")
    p.add_argument("--json", default=None)
    args = p.parse_args()
    if args.stage:
        print(json.dumps(stage(args)))
        return
    results = []
    for name in ("vectors",) if args.skip_minilm else ("vectors", "minilm"):
        cmd = [sys.executable, __file__, "--stage", name, *sys.argv[1:]]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1"})
        if proc.returncode:
            raise SystemExit(f"stage {name} failed:\n{proc.stderr[-3000:]}")
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(json.dumps(results[-1]))
    out = {"articles": args.articles, "predicted": args.predicted, "true": args.true, "cpus": os.cpu_count(),
           "load_average": os.getloadavg(), "stages": results}
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
