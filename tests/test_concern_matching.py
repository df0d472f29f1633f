"""The BioReview metric on hand-made vectors: Hungarian matching at the threshold, micro P/R/F1 over every
ground-truth article, breakdowns, bootstrap intervals, and the evaluation's handling of the truth and predictions."""

import math

import numpy as np
import polars as pl
import pytest

from tests.concern_vectors import VectorEmbedder, at_cosine, concern, unit
from workflow_scripts.eval import bioreview
from workflow_scripts.eval.concern_matching import Truth, match_pairs, score_system
from workflow_scripts.eval.concern_tables import (
    PREDICTIONS_SCHEMA, TRUTH_SCHEMA, ConcernInputError, read_predictions, read_truth,
)

X, Y, Z = unit(1, 0, 0), unit(0, 1, 0), unit(0, 0, 1)


def _score(truth_lists, predicted, vectors, sources=None, threshold=0.65, n_boot=0, **kw):
    ids = [f"a{i}" for i in range(len(truth_lists))]
    truth = Truth(ids, sources or ["elife"] * len(ids), truth_lists)
    emb = VectorEmbedder(vectors)
    return score_system(truth, dict(zip(ids, predicted)), emb.of, 3, threshold=threshold, n_boot=n_boot, seed=1,
                        level=0.95, **kw)


def test_a_similarity_equal_to_the_threshold_matches_and_one_just_below_does_not():
    rows, cols = match_pairs(np.array([[0.65]]), 0.65)
    assert (rows.tolist(), cols.tolist()) == ([0], [0])
    rows, _ = match_pairs(np.array([[np.nextafter(0.65, 0)]]), 0.65)
    assert rows.tolist() == []
    # the same through stored vectors: cosine exactly 0.65, then a hair below
    vectors = {"truth": X, "at": at_cosine(0.65), "below": at_cosine(0.6499999)}
    assert _score([[concern("truth")]], [[concern("at")]], vectors)["matched"] == 1
    assert _score([[concern("truth")]], [[concern("below")]], vectors)["matched"] == 0


def test_an_assigned_pair_below_the_threshold_is_not_a_match_and_hungarian_beats_greedy():
    # one prediction, one truth at 0.5: the assignment pairs them, the metric does not count it
    assert match_pairs(np.array([[0.5]]), 0.65)[0].tolist() == []
    # greedy would take p0-t0 (0.9) and leave p1 unmatched (p1-t1 is 0.1); Hungarian finds two matches
    sim = np.array([[0.9, 0.8], [0.7, 0.1]])
    rows, cols = match_pairs(sim, 0.65)
    assert sorted(zip(rows.tolist(), cols.tolist())) == [(0, 1), (1, 0)]


def test_empty_predictions_and_an_unanswered_article_count_against_recall():
    vectors = {"t1": X, "t2": Y, "t3": Z}
    truth = [[concern("t1"), concern("t2")], [concern("t3")]]
    s = _score(truth, [[concern("t1")], []], vectors)
    assert (s["matched"], s["predicted"], s["true"]) == (1, 1, 3)
    assert s["precision"]["value"] == 1.0 and s["recall"]["value"] == pytest.approx(1 / 3)
    assert s["f1"]["value"] == pytest.approx(2 * 1 / (1 + 3))
    # no prediction at all: precision undefined, recall and F1 zero
    s = _score(truth, [[], []], vectors)
    assert s["precision"]["value"] is None and s["recall"]["value"] == 0 and s["f1"]["value"] == 0


def test_duplicate_predictions_match_once_and_extra_predictions_lower_precision():
    vectors = {"t": X, "p": X, "other": Y, "near": at_cosine(0.8)}
    s = _score([[concern("t")]], [[concern("p"), concern("p"), concern("other"), concern("near")]], vectors)
    assert (s["matched"], s["predicted"], s["true"]) == (1, 4, 1)
    assert s["precision"]["value"] == 0.25 and s["recall"]["value"] == 1.0


def test_breakdowns_use_the_true_category_for_recall_and_the_predicted_one_for_precision():
    vectors = {"t_stat": X, "t_design": Y, "p_writing": X, "p_other": Z}
    truth = [[concern("t_stat", "statistical_methodology", "major"), concern("t_design", "design_flaw", "minor")]]
    predicted = [[concern("p_writing", "writing_clarity", "minor"), concern("p_other", "other", "optional")]]
    s = _score(truth, predicted, vectors, categories=("design_flaw", "statistical_methodology"),
               severities=("major", "minor", "optional"))
    cat = s["by_category"]
    assert list(cat)[:2] == ["design_flaw", "statistical_methodology"]  # known order first
    assert cat["statistical_methodology"]["recall"]["value"] == 1.0 and cat["statistical_methodology"]["true"] == 1
    assert cat["design_flaw"]["recall"]["value"] == 0.0
    assert cat["writing_clarity"]["precision"]["value"] == 1.0 and cat["writing_clarity"]["true"] == 0
    assert cat["writing_clarity"]["recall"]["value"] is None
    assert cat["other"]["precision"]["value"] == 0.0
    sev = s["by_severity"]
    assert sev["major"]["recall"]["value"] == 1.0 and sev["minor"]["precision"]["value"] == 1.0


def test_per_source_scores_and_bootstrap_intervals_are_seeded_and_bracket_the_value():
    vectors = {"t1": X, "t2": Y, "t3": Z}
    truth = [[concern("t1")], [concern("t2")], [concern("t3"), concern("t1")], [concern("t2")]]
    predicted = [[concern("t1")], [concern("t3")], [concern("t3")], []]
    sources = ["elife", "plos", "plos", "f1000"]
    a = _score(truth, predicted, vectors, sources=sources, n_boot=500)
    b = _score(truth, predicted, vectors, sources=sources, n_boot=500)
    assert a == b
    assert a["by_source"]["elife"]["f1"]["value"] == 1.0 and a["by_source"]["f1000"]["recall"]["value"] == 0
    assert a["by_source"]["plos"]["articles"] == 2 and a["by_source"]["plos"]["matched"] == 1
    f1 = a["f1"]
    assert f1["ci_low"] <= f1["value"] <= f1["ci_high"] and f1["ci_low"] < f1["ci_high"]
    assert math.isclose(f1["value"], 2 * 2 / (3 + 5))


# ------------------------------------------------------------------------------------------- the evaluation as a whole


def _truth(rows):
    return pl.DataFrame(rows, schema=TRUTH_SCHEMA, orient="row")


def _predictions(rows):
    return pl.DataFrame(rows, schema=PREDICTIONS_SCHEMA, orient="row")


def test_evaluate_drops_figure_concerns_and_counts_unanswered_and_outside_articles():
    emb = VectorEmbedder({"t1": X, "fig": Y, "t2": Z, "p1": X, "p_fig": Y, "stray": Z})
    truth = _truth([
        ("elife:1", "elife", [concern("t1"), concern("fig", "figure_issue")]),
        ("plos:2", "plos", [concern("fig", "figure_issue")]),  # nothing left to find: not evaluated
        ("f1000:3", "f1000", [concern("t2")]),
    ])
    predictions = _predictions([
        ("elife:1", "m", [concern("p1"), concern("p_fig")], True),
        ("plos:2", "m", [concern("p_fig")], True),
        ("peerj:9", "m", [concern("stray")], False),
    ])
    m = bioreview.evaluate(truth, predictions, emb, threshold=bioreview.matching_threshold("hand-made", 0.65, None),
                           postprocessings=("raw",), n_boot=0)
    assert m["truth"] == {"articles": 2, "concerns": 2, "figure_concerns_removed": 2,
                          "articles_without_nonfigure_concern": 1, "by_source": {"elife": 1, "f1000": 1}}
    (s,) = m["systems"]
    assert (s["matched"], s["predicted"], s["true"]) == (1, 2, 2)  # the figure-like prediction stays a prediction
    assert s["articles_without_prediction"] == 1 and s["outside_truth"] == {"articles": 2, "concerns": 2}
    assert s["parse_failures"] == 0 and m["protocol"]["comparable_with_reference"] is False
    report = bioreview.markdown_report(m)
    assert "Not comparable with SPECTER2 figures" in report
    assert "| m [raw] | 1.0 | 50.0 | 50.0 | 50.0 | 1 / 2 / 2 | 1 | 0 |" in report


def test_reading_tables_names_the_file_and_the_problem(tmp_path):
    path = tmp_path / "p.parquet"
    _predictions([("a", "m", [concern("x")], True), ("a", "m", [], True)]).write_parquet(path)
    with pytest.raises(ConcernInputError, match=r"p\.parquet: 1 article_id/model value\(s\) occur more than once"):
        read_predictions(path)
    _predictions([("a", "m", [concern("  ")], True)]).write_parquet(path)
    with pytest.raises(ConcernInputError, match="p.parquet: 1 row.* empty text"):
        read_predictions(path)
    path.write_bytes(b"<html>Too Many Requests</html>")
    with pytest.raises(ConcernInputError, match="p.parquet: the predictions table cannot be read as parquet"):
        read_predictions(path)
    pl.DataFrame({"article_id": ["a"], "concerns": [[]]}).write_parquet(path)
    with pytest.raises(ConcernInputError, match=r"not a truth table, missing column\(s\) \['source'\]"):
        read_truth(path)


def test_threshold_rules():
    assert bioreview.matching_threshold("specter2", None, None)["source"] == "reference"
    assert bioreview.matching_threshold("minilm", 0.5, None) == {"value": 0.5, "source": "given", "calibration": None}
    with pytest.raises(ConcernInputError, match="reference's threshold"):
        bioreview.matching_threshold("specter2", None, {"threshold": 0.4})
    with pytest.raises(ConcernInputError, match="'minilm' needs a threshold or calibration pairs"):
        bioreview.matching_threshold("minilm", None, None)
    assert bioreview.matching_threshold("specter2", 0.7, None)["source"] == "given"
