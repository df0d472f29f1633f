"""Both postprocessings of a concern list and the union ensemble, on hand-made lists and vectors."""

import numpy as np
import polars as pl

from tests.concern_vectors import VectorEmbedder, at_cosine, concern, unit
from workflow_scripts.eval import bioreview
from workflow_scripts.eval.concern_postprocess import embedding_dedup_cap, exact_dedup_cap, union_ensemble
from workflow_scripts.eval.concern_tables import PREDICTIONS_SCHEMA, TRUTH_SCHEMA

X, Y, Z = unit(1, 0, 0), unit(0, 1, 0), unit(0, 0, 1)


def texts(concerns):
    return [c["text"] for c in concerns]


def test_exact_dedup_ignores_case_and_whitespace_keeps_the_first_and_caps():
    concerns = [concern("Sample size is small."), concern("sample  size is\tSMALL."), concern("No controls."),
                concern("Blinding unclear."), concern("no controls.")]
    assert texts(exact_dedup_cap(concerns, cap=20)) == ["Sample size is small.", "No controls.", "Blinding unclear."]
    assert texts(exact_dedup_cap(concerns, cap=2)) == ["Sample size is small.", "No controls."]
    many = [concern(f"concern {i}") for i in range(30)]
    assert texts(exact_dedup_cap(many, cap=20)) == [f"concern {i}" for i in range(20)]


def test_embedding_dedup_drops_from_095_up_against_kept_concerns_only():
    emb = VectorEmbedder({"a": X, "a_095": at_cosine(0.95), "a_0949": at_cosine(0.9499), "b": Y,
                          "b_again": Y, "c": Z})
    concerns = [concern(t) for t in ("a", "a_095", "a_0949", "b", "b_again", "c")]
    assert texts(embedding_dedup_cap(concerns, emb.of, 0.95, cap=20)) == ["a", "a_0949", "b", "c"]
    assert texts(embedding_dedup_cap(concerns, emb.of, 0.95, cap=2)) == ["a", "a_0949"]
    # exact dedup keeps what the embeddings call duplicates: the two postprocessings differ
    assert texts(exact_dedup_cap(concerns, cap=20)) == ["a", "a_095", "a_0949", "b", "b_again", "c"]


def test_union_ensemble_groups_transitively_keeps_model_a_longest_text_and_does_not_cap():
    # X ~ chain_1 ~ chain_2 at cosine 0.99 each, X and chain_2 at 0.9602: one group only through chain_1
    chain_1 = at_cosine(0.99)
    chain_2 = at_cosine(2 * 0.99**2 - 1)
    emb = VectorEmbedder({"A short": X, "A much longer wording": chain_1, "B longest wording of all": chain_2,
                          "B only": Y, "B only, longer": Y, "A alone": Z})
    a = [concern("A short"), concern("A much longer wording"), concern("A alone")]
    b = [concern("B longest wording of all"), concern("B only"), concern("B only, longer")]
    merged = union_ensemble(a, b, emb.of, threshold=0.98)
    assert texts(merged) == ["A much longer wording", "A alone", "B only, longer"]
    many_a = [concern(f"a{i}") for i in range(15)]
    many_b = [concern(f"b{i}") for i in range(15)]
    rng = np.random.default_rng(0)
    emb = VectorEmbedder({c["text"]: unit(*rng.normal(size=30)) for c in many_a + many_b})
    assert len(union_ensemble(many_a, many_b, emb.of, threshold=0.98)) == 30  # no cap of 20
    assert union_ensemble([], [], emb.of, threshold=0.98) == []


def test_the_evaluation_reports_raw_both_postprocessings_and_the_ensemble():
    emb = VectorEmbedder({"t": X, "dup": X, "a copy": X, "other": Y, "b": X})
    truth = pl.DataFrame([("elife:1", "elife", [concern("t")])], schema=TRUTH_SCHEMA, orient="row")
    predictions = pl.DataFrame([("elife:1", "A", [concern("dup"), concern("a copy"), concern("other")], True),
                                ("elife:1", "B", [concern("b")], True)], schema=PREDICTIONS_SCHEMA, orient="row")
    m = bioreview.evaluate(truth, predictions, emb, threshold=bioreview.matching_threshold("x", 0.65, None),
                           ensemble=("A", "B"), n_boot=0)
    by_label = {s["label"]: s for s in m["systems"]}
    assert {k: v["predicted"] for k, v in by_label.items()} == {
        "A [raw]": 3, "A [exact_dedup_cap20]": 3, "A [embedding_dedup_cap20]": 2,
        "B [raw]": 1, "B [exact_dedup_cap20]": 1, "B [embedding_dedup_cap20]": 1,
        "union(A + B) [exact_dedup_cap20]": 2, "union(A + B) [embedding_dedup_cap20]": 2,
    }
    assert by_label["union(A + B) [exact_dedup_cap20]"]["precision"]["value"] == 0.5

