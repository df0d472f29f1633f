"""The demo stand-in of the BioReview concern extractor: reads the concern sentences a demo review marks.

Registered as ``bioreview_extractor`` in :data:`workflow_scripts.llm.stand_in.STAND_INS`. A demo review (the
synthetic reports of the demo's biomedical sources) writes each concern as one sentence made by
:func:`concern_sentence`: ``<Cue> (<severity>): <text>`` with a cue word of :data:`CUES` naming the category, e.g.
``Statistics (major): Twelve mice per group cannot detect the claimed effect.`` A sentence ends at the first ``.``,
``!`` or ``?`` followed by white space or the end of the text, so a concern text has no such mark inside it. Every
other sentence (summary, praise) is ignored. :data:`EXTRACTOR`'s ``doc`` says how the answer is formed.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Mapping

from workflow_scripts.datasets.bioreview_prompts import REPORT_PREFIX, SEVERITIES

CUES = {
    "Design": "design_flaw",
    "Statistics": "statistical_methodology",
    "Missing": "missing_experiment",
    "Novelty": "prior_art_novelty",
    "Clarity": "writing_clarity",
    "Reagents": "reagent_method_specificity",
    "Interpretation": "interpretation",
    "Figure": "figure_issue",
    "Other": "other",
}
CUE_OF = {category: cue for cue, category in CUES.items()}
# a concern sentence starts a line or follows the end of another sentence
_SENTENCE = re.compile(rf"(?:^|(?<=[.!?])\s+)({'|'.join(CUES)}) \(({'|'.join(SEVERITIES)})\): (.+?[.!?])(?=\s|$)",
                       re.S | re.M)

# shares of answers by the report's hash (cumulative order: not an array, an object, one bad item, fenced, prose)
NOT_ARRAY_SHARE = 0.04
OBJECT_SHARE = 0.04
BAD_ITEM_SHARE = 0.08
FENCED_SHARE = 0.20
PROSE_SHARE = 0.10
# the bad item of a "one bad item" answer, chosen by the hash: each makes one ITEM_PROBLEMS kind of the build step
BAD_ITEMS = (
    {"text": "The controls of the main experiment are not described.", "category": "methods", "severity": "major"},
    {"text": "The controls of the main experiment are not described.", "category": "design_flaw", "severity": "high"},
    {"text": "The controls of the main experiment are not described.", "category": "design_flaw"},
    {"text": "The controls of the main experiment are not described.", "category": "design_flaw",
     "severity": "major", "confidence": 0.9},
    {"text": 42, "category": "design_flaw", "severity": "major"},
)


def concern_sentence(category: str, severity: str, text: str) -> str:
    """A concern as a demo review writes it (and this stand-in reads it back)."""
    if re.search(r"[.!?]\s", text) or not re.search(r"[.!?]$", text):
        raise ValueError(f"a demo concern text must be one sentence ending in . ! or ?: {text!r}")
    return f"{CUE_OF[category]} ({severity}): {text}"


def marked_concerns(report: str) -> list[dict]:
    """The concerns a demo review marks, in order, as {text, category, severity}."""
    return [{"text": text.strip(), "category": CUES[cue], "severity": severity}
            for cue, severity, text in _SENTENCE.findall(report)]


def report_text(body: Mapping[str, Any]) -> str:
    users = [m for m in body.get("messages", ()) if m.get("role") == "user"]
    text = str(users[-1].get("content") or "") if users else ""
    return text[len(REPORT_PREFIX):] if text.startswith(REPORT_PREFIX) else text


def report_hash(report: str) -> tuple[float, int]:
    """(a uniform number in [0, 1) choosing the answer kind, an integer choosing the bad item and its place)."""
    h = hashlib.sha256(report.encode("utf-8")).hexdigest()
    return (int(h[:12], 16) + 0.5) / 16 ** 12, int(h[12:16], 16)


def answer_kind(report: str) -> str:
    """``not_array``, ``object``, ``bad_item``, ``fenced``, ``prose`` or ``plain``, by the report's hash."""
    u, _ = report_hash(report)
    edge = 0.0
    for kind, share in (("not_array", NOT_ARRAY_SHARE), ("object", OBJECT_SHARE), ("bad_item", BAD_ITEM_SHARE),
                        ("fenced", FENCED_SHARE), ("prose", PROSE_SHARE)):
        edge += share
        if u < edge:
            return kind
    return "plain"


class BioReviewExtractor:
    name = "bioreview_extractor"
    version = "1"
    doc = ("BioReview concern extractor stand-in: reads the reviewer report in the last user message (after "
           "'Reviewer report:') and answers, as a JSON array of {text, category, severity}, every sentence of the "
           "form '<Cue> (<severity>): <text>' that the demo's synthetic reviews use to mark a concern (cue words: "
           + ", ".join(f"{cue} = {category}" for cue, category in CUES.items()) + "), in report order; other "
           "sentences are ignored. By a hash of the report text, about "
           f"{NOT_ARRAY_SHARE:.0%} of answers are prose without a JSON array, {OBJECT_SHARE:.0%} a JSON object "
           f"instead of an array, {BAD_ITEM_SHARE:.0%} carry one extra invalid item (an unknown category or "
           f"severity, a missing or extra key, or a non-string text), {FENCED_SHARE:.0%} come in a ```json fence "
           f"and {PROSE_SHARE:.0%} inside a sentence of prose, so that every path of the extraction's validation "
           "runs. It sees the report's text only.")

    def respond(self, body: Mapping[str, Any]) -> str:
        report = report_text(body)
        concerns = marked_concerns(report)
        kind = answer_kind(report)
        _, pick = report_hash(report)
        if kind == "not_array":
            return f"The reviewer raises {len(concerns)} concern(s); see the report for details."
        if kind == "object":
            return json.dumps({"concerns": concerns}, ensure_ascii=False)
        if kind == "bad_item":
            position = pick % (len(concerns) + 1)
            concerns = concerns[:position] + [BAD_ITEMS[pick % len(BAD_ITEMS)]] + concerns[position:]
        array = json.dumps(concerns, ensure_ascii=False, indent=2)
        if kind == "fenced":
            return f"```json\n{array}\n```"
        if kind == "prose":
            return f"Here are the concerns I extracted:\n{array}\nLet me know if you need more detail."
        return array


EXTRACTOR = BioReviewExtractor()
