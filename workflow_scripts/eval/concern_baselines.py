"""Two baselines that read no test paper's text, scored like any model: what a matcher gives concerns that are
generic (paper-blind) or about another paper (nearest training article).

- ``paper_blind``: the K concerns most frequent in the training split (texts counted after lowercasing and collapsing
  whitespace; ties broken by that normalized text), K = the median number of concerns per training article (half
  rounded up), the same list for every article. Each concern keeps the wording, category and severity of its first
  occurrence (training articles in id order).
- ``nearest_training_article``: the concerns of the training article whose title + abstract embedding is nearest
  (cosine; ties to the first in id order) to the test article's, with the embedding model of the matcher.

Training concerns are taken as the ground truth is: figure concerns removed, articles left without a concern not
counted.
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import polars as pl

from workflow_scripts.eval.concern_embeddings import Embedder
from workflow_scripts.eval.concern_tables import ConcernInputError, normalized_text, without_figure_concerns

PAPER_BLIND = "baseline:paper_blind"
NEAREST_ARTICLE = "baseline:nearest_training_article"


def training_concerns(train: pl.DataFrame) -> pl.DataFrame:
    """The training truth with figure concerns removed, articles with no concern left dropped, in id order."""
    return (without_figure_concerns(train).filter(pl.col("concerns").list.len() > 0).sort("article_id"))


def paper_blind(train: pl.DataFrame) -> tuple[list[dict], int]:
    """The baseline's concern list and K."""
    rows = training_concerns(train)
    if rows.height == 0:
        raise ConcernInputError("the training table has no article with a non-figure concern: no paper-blind baseline")
    k = math.floor(float(np.median(rows["concerns"].list.len().to_numpy())) + 0.5)
    counts: Counter[str] = Counter()
    first: dict[str, dict] = {}
    for concerns in rows["concerns"].to_list():
        for concern in concerns:
            key = normalized_text(concern["text"])
            counts[key] += 1
            first.setdefault(key, concern)
    ranked = sorted(counts, key=lambda key: (-counts[key], key))
    return [first[key] for key in ranked[:k]], k


def _paper_texts(articles: pl.DataFrame, ids: list[str], sep: str, what: str) -> list[str]:
    found = articles.filter(pl.col("article_id").is_in(ids)).select("article_id", "title", "abstract")
    missing = sorted(set(ids) - set(found["article_id"].to_list()))
    if missing:
        raise ConcernInputError(f"{len(missing)} {what} article(s) not in the articles table, e.g. {missing[:3]}")
    by_id = {a: f"{t or ''}{sep}{s or ''}" for a, t, s in found.iter_rows()}
    return [by_id[a] for a in ids]


def nearest_training_article(train: pl.DataFrame, test_ids: list[str], articles: pl.DataFrame,
                             embedder: Embedder) -> dict[str, list[dict]]:
    """Test article id -> the nearest training article's concerns. ``articles`` has article_id, family_id, title
    and abstract (the biomedical articles table); a test article whose family is in training is an error: the
    baseline would copy its own reviews."""
    rows = training_concerns(train)
    if rows.height == 0:
        raise ConcernInputError("the training table has no article with a non-figure concern: no nearest-article "
                                "baseline")
    train_ids = rows["article_id"].to_list()
    if "family_id" in articles.columns:
        family = dict(articles.select("article_id", "family_id").iter_rows())
        shared = sorted({family.get(a) for a in test_ids} & {family.get(a) for a in train_ids} - {None})
        if shared:
            raise ConcernInputError(f"{len(shared)} article famil(ies) are in both training and test, e.g. "
                                    f"{shared[:3]}: the splits leak")
    train_vectors = embedder.encode(_paper_texts(articles, train_ids, embedder.sep_token, "training"))
    test_vectors = embedder.encode(_paper_texts(articles, test_ids, embedder.sep_token, "test"))
    nearest = np.argmax(test_vectors.astype(np.float64) @ train_vectors.astype(np.float64).T, axis=1)
    concerns = rows["concerns"].to_list()
    return {a: concerns[j] for a, j in zip(test_ids, nearest.tolist())}
