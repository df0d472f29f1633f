"""The Refiner's answer parser and format gate: one test per known bug of the public reference parser (multi-id
citations, quoted ids, ids=, nested tags, empty claims) and the answer-block rules."""

from __future__ import annotations

import pytest

from workflow_scripts.train.rewards.refiner_claims import Claim, check_format, extract_answer, parse_claims, parse_ids

KNOWN = {"S1", "S2", "S3", "a1b2"}


def cited(text: str) -> list[tuple[str, tuple[str, ...]]]:
    return [(c.text, c.ids) for c in parse_claims(text).claims if c.cited]


def test_multi_id_citation_keeps_every_id():
    # the reference kept only the last id of id="a,b"
    assert cited("<snippet id=S1,S2>Both say so.</snippet>") == [("Both say so.", ("S1", "S2"))]
    assert cited('<snippet id="S1,S2,S3">All three.</snippet>') == [("All three.", ("S1", "S2", "S3"))]
    assert cited("<snippet id=S1, S2>Spaces after the comma.</snippet>") == [("Spaces after the comma.", ("S1", "S2"))]
    assert cited("<snippet id=S1,S1,S2>Repeats once.</snippet>") == [("Repeats once.", ("S1", "S2"))]


def test_quoted_ids():
    assert cited('<snippet id="S1">Double.</snippet>') == [("Double.", ("S1",))]
    assert cited("<snippet id='S1'>Single.</snippet>") == [("Single.", ("S1",))]
    assert cited('<snippet id="S1, S2">Quoted list.</snippet>') == [("Quoted list.", ("S1", "S2"))]
    assert cited("<snippet id = 'a1b2' >Spaced attribute.</snippet>") == [("Spaced attribute.", ("a1b2",))]
    assert parse_ids(''' id="'S1'" ''') == ("S1",)  # quotes inside quotes, normalised as the tool output's ids


def test_ids_attribute():
    # the reference's regex only knew id=, while the prompt's own example writes ids=
    assert cited("<snippet ids=S1,S2>Plural attribute.</snippet>") == [("Plural attribute.", ("S1", "S2"))]
    assert cited('<snippet ids="S3">Quoted plural.</snippet>') == [("Quoted plural.", ("S3",))]


def test_nested_tags_flatten_into_the_outer_claim():
    # the reference's [^<]+ body dropped any claim holding a tag
    parsed = parse_claims("<snippet id=S1>Outer start <snippet id=S2>inner part</snippet> outer end.</snippet>")
    assert parsed.claims == [Claim("Outer start inner part outer end.", ("S1", "S2"), nested=True)]
    assert parsed.cited_ids == ("S1", "S2") and not parsed.markup_problems
    # other markup inside a claim stays in its text
    assert cited("<snippet id=S1>A <b>bold</b> claim.</snippet>") == [("A <b>bold</b> claim.", ("S1",))]


def test_empty_claims_are_counted_not_judged():
    parsed = parse_claims("Intro text here. <snippet id=S1></snippet><snippet id=S2>   </snippet>"
                          "<snippet id=S3>Real claim.</snippet>")
    assert parsed.empty_claims == 2
    assert [(c.text, c.ids) for c in parsed.claims] == [("Intro text here.", ()), ("Real claim.", ("S3",))]
    assert parsed.cited_ids == ("S1", "S2", "S3")  # an empty claim's ids still count for the gate


def test_uncited_spans_are_claims_in_order():
    parsed = parse_claims("First uncited sentence. <snippet id=S1>Cited one.</snippet> and then "
                          "<snippet id=S2>cited two.</snippet> Trailing uncited words.")
    assert [(c.text, c.ids) for c in parsed.claims] == [
        ("First uncited sentence.", ()), ("Cited one.", ("S1",)), ("and then", ()), ("cited two.", ("S2",)),
        ("Trailing uncited words.", ())]
    assert [c.words for c in parsed.claims] == [3, 2, 2, 2, 3]


def test_malformed_markup_is_kept_and_listed():
    parsed = parse_claims("<snippet>No id.</snippet> Stray close.</snippet> <snippet id=S1>Never closed")
    assert [(c.text, c.ids) for c in parsed.claims] == [("No id.", ()), ("Stray close.", ()),
                                                        ("Never closed", ("S1",))]
    kinds = [p.split(":")[0] for p in parsed.markup_problems]
    assert kinds == ["no_ids", "stray_close", "unclosed"]


@pytest.mark.parametrize("completion, problem", [
    ("no block at all", "no_answer"),
    ("<answer>one</answer> <answer>two</answer>", "several_answers"),
    ("<answer>opened twice <answer> closed once</answer>", "several_answers"),
    ("<answer>never closed", "unbalanced_answer"),
    ("</answer>closed before <answer>", "unbalanced_answer"),
])
def test_answer_block_rules(completion, problem):
    body, found = extract_answer(completion)
    assert body is None and found.startswith(problem + ":")


def test_answer_block_extracted_with_text_around():
    body, problem = extract_answer("<think>plan</think>\n<ANSWER>\nThe answer.\n</answer>\n")
    assert problem is None and body.strip() == "The answer."
    # an answer tag mentioned while thinking is not a second block
    body, problem = extract_answer("<think>I will write <answer> once.</think><answer>Done.</answer>")
    assert problem is None and body == "Done."


def test_format_gate():
    ok = check_format("<answer><snippet id=S1>Fine.</snippet></answer>", KNOWN)
    assert ok.ok and ok.answer.claims == [Claim("Fine.", ("S1",))]
    invented = check_format("<answer><snippet id=S1,S9>Half invented.</snippet> <snippet id=X>x</snippet></answer>",
                            KNOWN)
    assert not invented.ok and invented.invalid_ids == ("S9", "X")
    assert invented.problem == "invalid_ids: cited id(s) not in the tool output: S9, X"
    assert invented.answer is not None  # still parsed: the gate may be off
    missing = check_format("no answer", KNOWN)
    assert missing.answer is None and missing.problem.startswith("no_answer")
    # an id invented only inside an empty claim fails the gate too
    assert not check_format("<answer><snippet id=S7></snippet>Text.</answer>", KNOWN).ok
