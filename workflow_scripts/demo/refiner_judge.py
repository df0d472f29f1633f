"""The demo stand-in of the Refiner's judge: rubric scores, claim support and relevance from term overlap.

Registered as ``refiner_judge`` in :data:`workflow_scripts.llm.stand_in.STAND_INS`. It reads the request the reward
sends (workflow_scripts.train.rewards.refiner_judge): the question it is asked comes from the JSON schema of the
request (property ``score``, ``support``, ``relevant`` or ``needs_citation``), the texts from the tagged sections
of the last user message (``<question>``, ``<response>``, ``<criterion>``, ``<claim>``, ``<snippets>``), which the
configured judge prompts (config ``refiner.judge``) keep. :data:`JUDGE`'s ``doc`` says how it answers.
"""

from __future__ import annotations

import json
import re
from typing import Any, Mapping

# shares of overlapping terms (see the doc below)
RUBRIC_FULL, RUBRIC_PART = 0.5, 0.25
SUPPORT_FULL, SUPPORT_PART = 0.6, 0.3
FACTUAL_TERMS = 3

_TAGS = re.compile(r"<[^>]+>")
_TERM = re.compile(r"[a-z0-9]+")
_SECTIONS = ("question", "response", "criterion", "claim", "snippets")
STOPWORDS = frozenset(
    "the and for are but not you all any can had her was one our out has have him his how its may new now old see "
    "two who did get let put say she too use that with this from they will would there their what about which when "
    "make like time just know take into year your some could them than then look only come over think also back "
    "after work first well even want because these give most does were been being such more very much many other "
    "each where while should must shall might upon onto per via whether both either neither nor yet so".split())


def terms(text: str) -> set[str]:
    """Content terms: lower-case words of three or more characters, markup and stop words left out."""
    return {t for t in _TERM.findall(_TAGS.sub(" ", text).lower()) if len(t) >= 3 and t not in STOPWORDS}


def _share(wanted: set[str], found: set[str]) -> float:
    return len(wanted & found) / len(wanted) if wanted else 0.0


def sections(text: str) -> dict[str, str]:
    """The tagged sections of a judge prompt (each its first occurrence, to its last closing tag)."""
    found = {}
    for name in _SECTIONS:
        match = re.search(rf"<{name}>(.*)</{name}>", text, re.S)
        if match:
            found[name] = match.group(1)
    return found


class RefinerJudge:
    name = "refiner_judge"
    version = "1"
    doc = ("Refiner judge stand-in: answers the reward's four judge questions from term overlap (terms: lower-case "
           "words of 3+ characters, markup and stop words left out), telling them apart by the request's JSON schema "
           "and reading the tagged sections of the last user message. Rubric ({\"score\"}): the share of the "
           f"<criterion>'s terms found in the <response>: 2 at {RUBRIC_FULL:g} or more, 1 at {RUBRIC_PART:g} or "
           "more, else 0 (a negative rubric's terms in the response thus score high, and the reward flips it). "
           f"Support ({{\"support\"}}): the share of the <claim>'s terms found in the cited <snippets>: fully at "
           f"{SUPPORT_FULL:g} or more, partially at {SUPPORT_PART:g} or more, else none. Relevance "
           "({\"relevant\"}): true when the snippets share a term with the claim and a term with the <question>. "
           f"Needs citation ({{\"needs_citation\"}}): true when the span has {FACTUAL_TERMS} or more terms or a "
           "digit. It never sees a reference answer or any label; a request without a JSON schema is refused "
           "(HTTP 400).")

    def respond(self, body: Mapping[str, Any]) -> str:
        response_format = body.get("response_format") or {}
        if response_format.get("type") != "json_schema":
            raise ValueError("the refiner_judge stand-in answers JSON-schema requests only (structured_output on)")
        question = set(response_format["json_schema"]["schema"].get("properties", {}))
        users = [m for m in body.get("messages", ()) if m.get("role") == "user"]
        parts = sections(str(users[-1].get("content") or "") if users else "")
        if question == {"score"}:
            return json.dumps({"score": self.rubric(parts.get("criterion", ""), parts.get("response", ""))})
        if question == {"support"}:
            return json.dumps({"support": self.support(parts.get("claim", ""), parts.get("snippets", ""))})
        if question == {"relevant"}:
            return json.dumps({"relevant": self.relevant(parts.get("claim", ""), parts.get("snippets", ""),
                                                         parts.get("question", ""))})
        if question == {"needs_citation"}:
            return json.dumps({"needs_citation": self.needs_citation(parts.get("claim", ""))})
        raise ValueError(f"the refiner_judge stand-in does not answer a schema with properties {sorted(question)}")

    @staticmethod
    def rubric(criterion: str, response: str) -> int:
        share = _share(terms(criterion), terms(response))
        return 2 if share >= RUBRIC_FULL else 1 if share >= RUBRIC_PART else 0

    @staticmethod
    def support(claim: str, snippets: str) -> str:
        share = _share(terms(claim), terms(snippets))
        return "fully" if share >= SUPPORT_FULL else "partially" if share >= SUPPORT_PART else "none"

    @staticmethod
    def relevant(claim: str, snippets: str, question: str) -> bool:
        found = terms(snippets)
        return bool(found & terms(claim)) and bool(found & terms(question))

    @staticmethod
    def needs_citation(span: str) -> bool:
        return len(terms(span)) >= FACTUAL_TERMS or any(ch.isdigit() for ch in span)


JUDGE = RefinerJudge()
