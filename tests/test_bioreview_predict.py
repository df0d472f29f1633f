"""Reading a BioReview model's output into the predictions table: the whole output as JSON, the fallback, failures."""

import json

import polars as pl
import pytest

from workflow_scripts.eval.bioreview_predict import concern_of, parse_generations, read_answer
from workflow_scripts.eval.concern_tables import PREDICTIONS_SCHEMA

CONCERN = {"text": "Three mice per group cannot show the effect.", "category": "statistical_methodology",
           "severity": "major"}


@pytest.mark.parametrize("text, status, n", [
    (json.dumps([CONCERN], indent=2), "json", 1),
    ("[]", "json", 0),
    ("```json\n" + json.dumps([CONCERN]) + "\n```", "fallback", 1),
    ("The concerns are " + json.dumps([CONCERN, CONCERN]) + " as listed.", "fallback", 2),
    ('{"concerns": []}', "failed", 0),
    ('[{"text": "cut off', "failed", 0),
    ("no array here", "failed", 0),
])
def test_read_answer(text, status, n):
    items, found = read_answer(text)
    assert (found, len(items)) == (status, n)


def test_items_keep_their_text_and_known_labels_only():
    assert concern_of(CONCERN) == CONCERN
    assert concern_of({"text": "  A control is missing.  ", "category": "made_up", "severity": 3}) == {
        "text": "A control is missing.", "category": None, "severity": None}
    for bad in ("a string", {"category": "other"}, {"text": "   "}, {"text": 7}):
        assert concern_of(bad) is None


def test_parse_generations_counts_every_case_and_fits_the_predictions_table():
    texts = [json.dumps([CONCERN, {"text": ""}]), "```json\n[]\n```", "I cannot answer."]
    rows, counts = parse_generations(["a:1", "b:1", "c:1"], texts, "tuned")
    assert counts == {"json": 1, "fallback": 1, "failed": 1, "items": 2, "items_dropped": 1, "concerns": 1}
    frame = pl.DataFrame(rows, schema=PREDICTIONS_SCHEMA)
    assert frame["parse_ok"].to_list() == [True, False, False]
    assert frame["concerns"].list.len().to_list() == [1, 0, 0]
    assert set(frame["model"]) == {"tuned"}
