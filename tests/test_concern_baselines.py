"""The paper-blind and nearest-training-article baselines on a toy training set, and the threshold calibration rule."""

import numpy as np
import polars as pl
import pytest

from tests.concern_vectors import VectorEmbedder, at_cosine, concern, unit
from workflow_scripts.eval import bioreview
from workflow_scripts.eval.concern_baselines import (
    NEAREST_ARTICLE, PAPER_BLIND, nearest_training_article, paper_blind,
)
from workflow_scripts.eval.concern_tables import PREDICTIONS_SCHEMA, TRUTH_SCHEMA, ConcernInputError
from workflow_scripts.eval.concern_threshold import best_threshold, calibrate

X, Y, Z = unit(1, 0, 0), unit(0, 1, 0), unit(0, 0, 1)


def _train():
    return pl.DataFrame([
        ("elife:1", "elife", [concern("Sample size too small."), concern("No controls."), concern("Figure 2 unclear",
                                                                                                    "figure_issue")]),
        ("elife:2", "elife", [concern("sample size  too small."), concern("Statistics unclear."),
                              concern("No controls.")]),
        ("plos:3", "plos", [concern("No controls."), concern("Blinding missing.")]),
        ("plos:4", "plos", [concern("Only a figure problem", "figure_issue")]),  # no concern left: not counted
    ], schema=TRUTH_SCHEMA, orient="row")


def test_paper_blind_takes_the_median_count_of_the_most_frequent_normalized_concerns():
    concerns, k = paper_blind(_train())
    assert k == 2  # concerns per counted article: 2, 3, 2
    assert [c["text"] for c in concerns] == ["No controls.", "Sample size too small."]  # 3 times, then 2 times


def _articles():
    return pl.DataFrame({
        "article_id": ["elife:1", "elife:2", "plos:3", "plos:4", "f1000:7", "f1000:8"],
        "family_id": ["e1", "e2", "p3", "p4", "f7", "f8"],
        "title": ["T1", "T2", "T3", "T4", "Q7", "Q8"], "abstract": ["A1", "A2", "A3", "A4", "B7", "B8"],
    })


PAPER_VECTORS = {"T1 | A1": X, "T2 | A2": Y, "T3 | A3": Z, "Q7 | B7": unit(0.2, 0.9, 0.1), "Q8 | B8": unit(0.1, 0, 1)}


def test_nearest_training_article_copies_the_concerns_of_the_closest_paper():
    emb = VectorEmbedder(PAPER_VECTORS)
    out = nearest_training_article(_train(), ["f1000:7", "f1000:8"], _articles(), emb)
    assert [c["text"] for c in out["f1000:7"]] == ["sample size  too small.", "Statistics unclear.", "No controls."]
    assert [c["text"] for c in out["f1000:8"]] == ["No controls.", "Blinding missing."]


def test_a_family_in_training_and_test_stops_the_nearest_article_baseline():
    articles = _articles().with_columns(pl.when(pl.col("article_id") == "f1000:8").then(pl.lit("p3"))
                                        .otherwise(pl.col("family_id")).alias("family_id"))
    with pytest.raises(ConcernInputError, match=r"in both training and test, e\.g\. \['p3'\]"):
        nearest_training_article(_train(), ["f1000:8"], articles, VectorEmbedder(PAPER_VECTORS))


def test_the_evaluation_scores_both_baselines_as_systems():
    texts = ["Sample size too small.", "sample size  too small.", "No controls.", "Statistics unclear.",
             "Blinding missing.", "Figure 2 unclear", "Only a figure problem", "n is small", "blinding"]
    rng = np.random.default_rng(3)
    vectors = {t: unit(*rng.normal(size=8)) for t in texts}
    vectors["n is small"] = vectors["sample size  too small."] = vectors["Sample size too small."]
    vectors["blinding"] = vectors["Blinding missing."]
    vectors.update({k: np.r_[v, np.zeros(5)] for k, v in PAPER_VECTORS.items()})
    truth = pl.DataFrame([("f1000:7", "f1000", [concern("n is small")]), ("f1000:8", "f1000", [concern("blinding")])],
                         schema=TRUTH_SCHEMA, orient="row")
    predictions = pl.DataFrame([("f1000:7", "m", [], False)], schema=PREDICTIONS_SCHEMA, orient="row")
    m = bioreview.evaluate(truth, predictions, VectorEmbedder(vectors), threshold={"value": 0.65},
                           postprocessings=("raw",), train=_train(), articles=_articles(), n_boot=0)
    by_label = {s["label"]: s for s in m["systems"]}
    blind, nearest = by_label[PAPER_BLIND], by_label[NEAREST_ARTICLE]
    assert blind["k"] == 2 and (blind["matched"], blind["predicted"]) == (1, 4)  # "n is small" found in f1000:7
    assert (nearest["matched"], nearest["predicted"]) == (2, 5)
    assert by_label["m [raw]"]["parse_failures"] == 1


def test_calibrated_threshold_maximizes_f1_and_prefers_the_highest_on_ties():
    sims = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    labels = np.array([True, True, False, True, False, False])
    got = best_threshold(sims, labels)
    # t=0.8: P 1, R 2/3, F1 0.8; t=0.6: P 3/4, R 1, F1 6/7 (best)
    assert got["threshold"] == 0.6 and got["f1"] == pytest.approx(6 / 7) and got["precision"] == 0.75
    # a tie: F1 2/3 at 0.9 (P 1, R 1/2) and at 0.6 (P 1/2, R 1); the higher threshold is chosen
    got = best_threshold(np.array([0.9, 0.8, 0.7, 0.6]), np.array([True, False, False, True]))
    assert got["threshold"] == 0.9 and got["f1"] == pytest.approx(2 / 3) and got["recall"] == 0.5
    # pairs with equal similarity are admitted together
    got = best_threshold(np.array([0.7, 0.7, 0.2]), np.array([True, False, False]))
    assert got["threshold"] == 0.7 and got["precision"] == 0.5
    with pytest.raises(ConcernInputError, match="needs paraphrase and non-paraphrase pairs"):
        best_threshold(np.array([0.5]), np.array([True]))


def test_calibration_reads_the_demo_pairs_label_column_and_refuses_other_labels(tmp_path):
    emb = VectorEmbedder({"a": X, "a'": at_cosine(0.7), "b": Y, "c": at_cosine(0.2)})
    path = tmp_path / "pairs.parquet"
    pl.DataFrame({"text_a": ["a", "a", "a"], "text_b": ["a'", "b", "c"], "label": [1, 0, 0]}).write_parquet(path)
    got = calibrate(path, emb)
    assert got["threshold"] == pytest.approx(0.7) and got["f1"] == 1.0 and got["file"] == str(path)
    pl.DataFrame({"text_a": ["a"], "text_b": ["b"], "label": [2]}).write_parquet(path)
    with pytest.raises(ConcernInputError, match="label must be 1 .paraphrase. or 0"):
        calibrate(path, emb)
    pl.DataFrame({"text_a": ["a"], "text_b": ["b"]}).write_parquet(path)
    with pytest.raises(ConcernInputError, match=r"missing \['paraphrase'\]"):
        calibrate(path, emb)
