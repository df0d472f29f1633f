"""The demo stand-in of the Refiner task writer: questions, reasoning drafts, rubrics and reference refinements made
from the words of the request.

Registered as ``refiner_writer`` in :data:`workflow_scripts.llm.stand_in.STAND_INS`. It tells the four requests of
:mod:`workflow_scripts.datasets.refiner_writing` apart by their response format (a schema with ``question``, with
``reasoning``, with ``positive_rubrics``; no schema = the policy prompt, answered with a reference refinement), and
reads the last user message: the ``Title:`` and ``Abstract:`` lines (question), the ``Question:`` line and the
``<tool_output>`` block, whose sources it parses with the task builder's own parser (the others). A source's first
line is its paper's title, as :mod:`workflow_scripts.datasets.refiner_search` writes it. The *key terms* of a text
are the demo vocabulary's technical terms (:mod:`workflow_scripts.demo.vocab`) found in it, in order, or, where it
has none, its words of five or more letters. :data:`WRITER`'s ``doc`` says how each answer is formed.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Mapping

from workflow_scripts.datasets.refiner_snippets import Snippet, SnippetError, parse_tool_output
from workflow_scripts.demo.vocab import SUBCATEGORIES

# every technical term of the demo world, longest first (a longer term wins where two overlap)
TERMS = tuple(sorted({t.lower() for s in SUBCATEGORIES for t in (*s.objects, *s.methods, *s.tasks, *s.hot, *s.stale)},
                     key=lambda t: (-len(t), t)))
_TERM = re.compile(r"(?<![a-z0-9-])(" + "|".join(re.escape(t) for t in TERMS) + r")(?![a-z0-9-])")
_WORD = re.compile(r"[A-Za-z][A-Za-z-]{4,}")
_STOP = frozenset("about above after again among based being below between could their there these those through "
                  "towards under using which while where whose would paper study perspective revisited "
                  "understanding".split())
QUESTION_TEMPLATES = (
    "What do recent studies report about {a} for {b}?",
    "How has {a} been used in work on {b}?",
    "Which findings connect {a} and {b}?",
)
SINGLE_TEMPLATE = "What do recent studies report about {a}?"
_LINE = {name: re.compile(rf"^{name}:[ \t]*(.*)$", re.M) for name in ("Title", "Abstract", "Question")}
_TOOL_OUTPUT = re.compile(r"<tool_output>.*?</tool_output>", re.S)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")

# shares of answers, by a hash of the request's messages (so a retry with another seed answers the same way)
EMPTY_RUBRICS_SHARE = 0.04  # no positive rubric: fails the schema's minItems, the task is rejected
BAD_CITATION_SHARE = 0.05  # the reference cites an id not in the tool output: dropped by the format gate
NO_ANSWER_SHARE = 0.03  # the reference has no <answer> block


def key_terms(text: str) -> list[str]:
    """The text's demo-vocabulary terms in order (no repeats), else its long words."""
    low = text.lower()
    found = list(dict.fromkeys(m.group(1) for m in _TERM.finditer(low)))
    if found:
        return found
    return list(dict.fromkeys(w.lower() for w in _WORD.findall(text) if w.lower() not in _STOP))


def _line(text: str, name: str) -> str:
    match = _LINE[name].search(text)
    return match.group(1).strip() if match else ""


def _user_text(body: Mapping[str, Any]) -> str:
    users = [m for m in body.get("messages", ()) if m.get("role") == "user"]
    return str(users[-1].get("content") or "") if users else ""


def _uniform(body: Mapping[str, Any], salt: str) -> float:
    basis = json.dumps(body.get("messages"), sort_keys=True, ensure_ascii=False) + salt
    return (int(hashlib.sha256(basis.encode()).hexdigest()[:12], 16) + 0.5) / 16 ** 12


def _kind(body: Mapping[str, Any]) -> str:
    response_format = body.get("response_format") or {}
    properties = (((response_format.get("json_schema") or {}).get("schema") or {}).get("properties") or {})
    for kind, marker in (("rubrics", "positive_rubrics"), ("question", "question"), ("reasoning", "reasoning")):
        if marker in properties:
            return kind
    return "reference"


def _sources(text: str) -> list[Snippet]:
    match = _TOOL_OUTPUT.search(text)
    try:
        return parse_tool_output(match.group(0)) if match else []
    except SnippetError:
        return []


def _title(snippet: Snippet) -> str:
    return snippet.text.split("\n", 1)[0].strip()


def _passage(snippet: Snippet) -> str:
    parts = snippet.text.split("\n", 1)
    return parts[1].strip() if len(parts) > 1 else parts[0].strip()


def _papers(sources: list[Snippet]) -> list[tuple[str, list[Snippet]]]:
    """(title, its sources) per paper, in order of first appearance (the search's ranking)."""
    papers: dict[str, list[Snippet]] = {}
    for s in sources:
        papers.setdefault(_title(s), []).append(s)
    return list(papers.items())


def question(title: str) -> str:
    terms = key_terms(title)
    if not terms:
        return SINGLE_TEMPLATE.format(a=" ".join(title.split()[:4]).lower() or "this topic")
    if len(terms) == 1:
        return SINGLE_TEMPLATE.format(a=terms[0])
    pick = int(hashlib.sha256(title.encode()).hexdigest()[:8], 16) % len(QUESTION_TEMPLATES)
    return QUESTION_TEMPLATES[pick].format(a=terms[0], b=terms[1])


def reasoning(query: str, sources: list[Snippet]) -> str:
    papers = _papers(sources)
    if not papers:
        return f"The search for '{query}' returned nothing I can use; I cannot answer from these results."
    (top, top_sources), others = papers[0], papers[1:]
    terms = key_terms(top) or ["its topic"]
    text = (f"The search for '{query}' returned {len(sources)} snippet(s) from {len(papers)} paper(s). "
            f"Snippet(s) {', '.join(s.id for s in top_sources)} come from '{top}', which is about "
            f"{' and '.join(terms[:2])} and matches the question best.")
    if others:
        text += (f" Snippet(s) {', '.join(s.id for _, group in others for s in group)} are about other work "
                 f"('{others[0][0]}'{' and more' if len(others) > 1 else ''}) and should not be credited with its "
                 "findings.")
    return text + " I will answer from the best-matching snippets and leave the rest out."


def rubrics(query: str, sources: list[Snippet], empty: bool) -> dict:
    papers = _papers(sources)
    if not papers or empty:
        return {"positive_rubrics": [], "negative_rubrics": []}
    (top, top_sources), others = papers[0], papers[1:]
    terms = list(dict.fromkeys(key_terms(query) + key_terms(top)))[:3]
    positive = [{"title": f"Names {term}", "description": f"States what '{top}' reports about {term}, as its snippets "
                                                           "say."} for term in terms]
    positive.append({"title": "Cites the right source",
                     "description": f"Attributes the findings to '{top}' and cites its snippet id(s) "
                                    f"{', '.join(s.id for s in top_sources)}."})
    negative = []
    padding = []
    if others:
        other, _ = others[0]
        negative.append({"title": "Wrong-entity attribution",
                         "description": f"Attributes the findings of '{top}' to '{other}'."})
        padding = [t for t in key_terms(other) if t not in terms]
    topic = padding[0] if padding else f"background of '{top}' beyond what the snippets say"
    negative.append({"title": "Off-query padding",
                     "description": f"Spends sentences on {topic}, which the question does not ask about."})
    return {"positive_rubrics": positive, "negative_rubrics": negative}


def claim(snippet: Snippet, terms: list[str]) -> str:
    """The passage's first sentence naming a term of the question, else its first sentence."""
    parts = [s for s in _SENTENCE_END.split(_passage(snippet)) if s.strip()]
    named = [s for s in parts if any(t in s.lower() for t in terms)]
    return (named or parts or [_passage(snippet)])[0].strip()


def reference(query: str, sources: list[Snippet], kind: str) -> str:
    papers = _papers(sources)
    if not papers:
        return "<answer>The search results do not answer this question.</answer>"
    _, top_sources = papers[0]
    terms = key_terms(query)
    cited = top_sources[:2]
    claims = [f"<snippet id={s.id}>{claim(s, terms)}</snippet>" for s in cited]
    if kind == "bad_citation":
        claims[0] = claims[0].replace(f"id={cited[0].id}>", f"id={cited[0].id}x>", 1)
    body = " ".join(claims)
    if kind == "no_answer":
        return f"Here is what the sources say: {body}"
    return f"<answer>\n{body}\n</answer>"


class RefinerWriter:
    name = "refiner_writer"
    version = "1"
    doc = ("Refiner task writer stand-in: tells the request kind by its response format and reads the last user "
           "message. Question (schema with 'question'): from the key terms of the 'Title:' line (the demo "
           "vocabulary's technical terms in the title, else its long words), one of "
           f"{len(QUESTION_TEMPLATES)} templates chosen by a hash of the title, e.g. '{QUESTION_TEMPLATES[0]}'; "
           "papers whose titles share their first two terms can get the same question. Reasoning (schema with "
           "'reasoning'): which snippet ids come from the paper of the first (best-ranked) source, named by the "
           "first line of each source, and which from other papers. Rubrics (schema with 'positive_rubrics'): "
           "positive = 'Names <term>' for up to three key terms of the 'Question:' line and of the top paper's "
           "title, plus 'Cites the right source' naming the top paper's snippet ids; negative = 'Wrong-entity "
           "attribution' (crediting the top paper's findings to the second paper, when one was retrieved) and "
           "'Off-query padding' (a key term of the second paper's title, else background of the top paper). "
           "Reference (no schema: the policy "
           "prompt): one <answer> block citing the top paper's first two sources, each claim the source's first "
           "sentence naming a key term of the question (else its first sentence) wrapped as <snippet id=ID>. By a "
           f"hash of the messages (the same on a retry), about {EMPTY_RUBRICS_SHARE:.0%} of rubric answers have no "
           f"positive rubric (invalid against the schema), {BAD_CITATION_SHARE:.0%} of references cite an id not "
           f"in the tool output and {NO_ANSWER_SHARE:.0%} have no <answer> block, so that every validation path "
           "of the task builder runs. It sees the request only.")

    def respond(self, body: Mapping[str, Any]) -> str:
        text = _user_text(body)
        kind = _kind(body)
        if kind == "question":
            return json.dumps({"question": question(_line(text, "Title"))})
        query, sources = _line(text, "Question"), _sources(text)
        if kind == "reasoning":
            return json.dumps({"reasoning": reasoning(query, sources)})
        if kind == "rubrics":
            empty = _uniform(body, "rubrics") < EMPTY_RUBRICS_SHARE
            return json.dumps(rubrics(query, sources, empty))
        u = _uniform(body, "reference")
        fault = ("bad_citation" if u < BAD_CITATION_SHARE else
                 "no_answer" if u < BAD_CITATION_SHARE + NO_ANSWER_SHARE else "plain")
        return reference(query, sources, fault)


WRITER = RefinerWriter()
