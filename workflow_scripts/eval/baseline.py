"""SciJudge non-LLM baseline: logistic regression on text and date differences of the two papers of a pair.

Features of a pair are TF-IDF(title + abstract of A) - TF-IDF(B) and the publication-date difference in years (older
papers have had longer to collect citations). Every feature is antisymmetric in A/B and the model has no intercept,
so swapping the papers exactly flips the probability: the baseline is order-symmetric by construction, and training
also sees each pair in both orders. Predictions use the SciJudge predictions format, so ``scijudge metrics`` scores
the baseline as one more model.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import polars as pl

from workflow_scripts.common.cli import json_arg, parser, setup_logging
from workflow_scripts.common.io import atomic_path, write_parquet_atomic
from workflow_scripts.common.sampling import hash_sample
from workflow_scripts.eval.scijudge import ORDERS, build_predictions, load_pairs

log = logging.getLogger(__name__)

FORMAT = "scitaste-scijudge-baseline-1"
DEFAULT_PARAMS: dict[str, Any] = {
    "max_features": 50000,  # TF-IDF vocabulary size
    "ngram_max": 2,  # word n-grams 1..ngram_max
    "min_df": 2,  # ignore terms in fewer documents
    "C": 1.0,  # inverse L2 regularization strength
    "max_iter": 1000,
    "max_pairs": None,  # train on N pairs only, a hash sample of pair ids as the evaluation's (null: all)
}


def _docs(pairs: pl.DataFrame, side: str) -> list[str]:
    return (pairs[f"paper_{side}_title"].fill_null("") + "\n" + pairs[f"paper_{side}_abstract"].fill_null("")).to_list()


def _years_apart(pairs: pl.DataFrame) -> np.ndarray:
    """date(A) - date(B) in years; dates may be stored as dates or ISO strings."""
    dates = [pairs[f"paper_{s}_date"] for s in "ab"]
    dates = [d.str.to_date() if d.dtype == pl.String else d.cast(pl.Date) for d in dates]
    days = (dates[0] - dates[1]).dt.total_days().fill_null(0).to_numpy()
    return days.astype(float) / 365.25


def features(vectorizer, pairs: pl.DataFrame, swap: bool = False):
    """Pair features in the given order; the swapped order is exactly the negation."""
    from scipy import sparse

    diff = vectorizer.transform(_docs(pairs, "a")) - vectorizer.transform(_docs(pairs, "b"))
    x = sparse.hstack([diff, sparse.csr_matrix(_years_apart(pairs)[:, None])], format="csr")
    return -x if swap else x


def train(pairs: pl.DataFrame, params: Mapping[str, Any] | None = None) -> dict:
    from scipy import sparse
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    unknown = sorted(set(params or {}) - set(DEFAULT_PARAMS))
    if unknown:
        raise ValueError(f"unknown baseline parameter(s) {unknown}; known: {sorted(DEFAULT_PARAMS)}")
    p = {**DEFAULT_PARAMS, **(params or {})}
    pairs = hash_sample(pairs, p["max_pairs"])  # not the first N: the pairs file is sorted by subcategory
    if pairs.height == 0:
        raise ValueError("baseline: no training pairs")
    vectorizer = TfidfVectorizer(
        max_features=p["max_features"], ngram_range=(1, p["ngram_max"]), min_df=p["min_df"], sublinear_tf=True,
        dtype=np.float64,
    )
    vectorizer.fit(_docs(pairs, "a") + _docs(pairs, "b"))
    x = features(vectorizer, pairs)
    y = (pairs["correct_answer"] == "A").to_numpy().astype(int)
    # both orders: (x, y) and (-x, 1 - y); this also guarantees both classes are present
    clf = LogisticRegression(C=p["C"], fit_intercept=False, max_iter=p["max_iter"], solver="lbfgs")
    clf.fit(sparse.vstack([x, -x], format="csr"), np.concatenate([y, 1 - y]))
    log.info("baseline trained on %d pairs (x2 orders), %d text features", pairs.height, len(vectorizer.vocabulary_))
    return {"format": FORMAT, "params": p, "vectorizer": vectorizer, "classifier": clf, "n_train_pairs": pairs.height}


def predict(bundle: Mapping[str, Any], pairs: pl.DataFrame, model_name: str) -> pl.DataFrame:
    outputs = {}
    for o in ORDERS:
        p_first = bundle["classifier"].predict_proba(features(bundle["vectorizer"], pairs, swap=o == "swap"))[:, 1]
        outputs[o] = {
            "raw": [f"P(A)={p:.6f}" for p in p_first],  # the probability that the paper shown as A is cited more
            "answer": ["A" if p >= 0.5 else "B" for p in p_first],
        }
    return build_predictions(pairs, model_name, outputs)


def save(bundle: Mapping[str, Any], path: str | Path) -> None:
    import joblib

    with atomic_path(path) as tmp:
        joblib.dump(dict(bundle), tmp)


def load(path: str | Path) -> dict:
    import joblib

    bundle = joblib.load(path)
    if not isinstance(bundle, dict) or bundle.get("format") != FORMAT:
        raise ValueError(f"{path}: not a SciJudge baseline model (expected format {FORMAT})")
    return bundle


def main(argv: Sequence[str] | None = None) -> None:
    p = parser(__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    tr = sub.add_parser("train", formatter_class=p.formatter_class, help="fit the baseline on training pairs")
    tr.add_argument("--pairs", required=True, action="append", help="training pairs parquet (repeat for several)")
    tr.add_argument("--out", required=True, help="model file (joblib)")
    tr.add_argument("--params-json", type=json_arg, default={}, help=f"baseline parameters; defaults {DEFAULT_PARAMS}")
    pr = sub.add_parser("predict", formatter_class=p.formatter_class,
                        help="answer both A/B orders of every test pair")
    pr.add_argument("--model", required=True, help="model file written by train")
    pr.add_argument("--pairs", required=True, action="append", help="pairs parquet (repeat for several)")
    pr.add_argument("--out", required=True, help="predictions parquet (SciJudge predictions format)")
    pr.add_argument("--max-pairs", type=int, default=None, help="N pairs of each split only (a fixed hash sample)")
    args = p.parse_args(argv)
    setup_logging(args.verbose)
    if args.command == "train":
        save(train(load_pairs(args.pairs), args.params_json), args.out)
        log.info("baseline written to %s", args.out)
        return
    df = predict(load(args.model), load_pairs(args.pairs, args.max_pairs), model_name=str(args.model))
    write_parquet_atomic(df, args.out)
    log.info("wrote %d baseline predictions to %s; pair accuracy %.3f", df.height, args.out, df["correct"].mean() or 0)


if __name__ == "__main__":
    main()
