"""The demo stand-in of the Reviewer teacher: a deterministic reviewer that reads the demo world's evidence.

Registered as ``reviewer_teacher`` in :data:`workflow_scripts.llm.stand_in.STAND_INS`; :data:`TEACHER`'s ``doc``
says what it does (shown in the README, the LLM run summary and the SFT set's card).
"""

from __future__ import annotations

import re
import statistics
from typing import Any, Mapping

from workflow_scripts.demo.corpus import count_terms
from workflow_scripts.demo.reviews import STRONG, TOPICS, WEAK
from workflow_scripts.llm.stand_in import digest

HOT = tuple(t for sub in TOPICS for t in sub.hot)
STALE = tuple(t for sub in TOPICS for t in sub.stale)
# score = strong - weak evidence sentences + TERM_WEIGHT * (hot - stale terms) + N(0, NOISE_SD); accept above
# THRESHOLD. On the demo pool (papers' quality ~ N(0, 1)) this accepts ~73%, the reference teacher's rate.
TERM_WEIGHT = 0.5
NOISE_SD = 0.6
THRESHOLD = -1.6
BOTH_LINES_SHARE = 0.03
BOLD_SHARE = 0.02
DECISION = {True: "I recommend this paper for ACCEPTANCE.", False: "I recommend this paper for REJECTION."}


def _sentence_pattern(template: str) -> re.Pattern:
    """A demo evidence sentence with any number for {n} and any spacing (PDF text wraps lines)."""
    words = [re.escape(w).replace(re.escape("{n}"), r"(\d+)") for w in template.split()]
    return re.compile(r"\s+".join(words))


STRONG_PATTERNS = tuple(_sentence_pattern(s) for s in STRONG)
WEAK_PATTERNS = tuple(_sentence_pattern(s) for s in WEAK)
_FIELD = {name: re.compile(rf"^{name}:[ \t]*(.*)$", re.M) for name in ("Title", "Abstract")}


def _field(text: str, name: str) -> str:
    match = _FIELD[name].search(text)
    return match.group(1).strip() if match else ""


def _uniform(hex_digits: str) -> float:
    return (int(hex_digits, 16) + 0.5) / 16 ** len(hex_digits)


def _found_terms(text: str, terms: tuple[str, ...]) -> list[str]:
    return [t for t in terms if count_terms(text, [t])]


class ReviewerTeacher:
    name = "reviewer_teacher"
    version = "1"
    doc = ("Reviewer teacher stand-in: reads the paper in the last user message (the text after 'Title:' and "
           "'Abstract:' on their lines, the whole message for evidence) and scores it from what the demo world's text "
           "says: +1 per STRONG evidence sentence and -1 per WEAK one (workflow_scripts.demo.reviews, the EXPERIMENTS "
           f"section; a body cut before it shows none), +{TERM_WEIGHT:g} per hot and -{TERM_WEIGHT:g} per stale term "
           f"of the title and abstract (workflow_scripts.demo.vocab), plus N(0, {NOISE_SD:g}) noise drawn from the "
           f"request's hash (messages and seed). It accepts when the score is above {THRESHOLD:g}: about 73% of the "
           "demo pool, the reference teacher's rate. The "
           "answer is a short review (about 140 words) in the reference prompt's format, ## Summary to ## Final "
           "Recommendation, whose bullets cite the evidence found, ending in one decision line. By the request's "
           f"hash, about {BOTH_LINES_SHARE:.0%} of answers echo both template decision lines (no usable decision) and "
           f"about {BOLD_SHARE:.0%} put the decision line in bold, so the teacher filter has work. It never sees a "
           "paper's latent quality or "
           "decision, only the prompt's text; it answers the benchmark prompts the same way.")

    def respond(self, body: Mapping[str, Any]) -> str:
        users = [m for m in body.get("messages", ()) if m.get("role") == "user"]
        text = str(users[-1].get("content") or "") if users else ""
        title, abstract = _field(text, "Title"), _field(text, "Abstract")
        strong = [m for p in STRONG_PATTERNS for m in p.finditer(text)]
        weak = [m for p in WEAK_PATTERNS for m in p.finditer(text)]
        hot, stale = _found_terms(f"{title} {abstract}", HOT), _found_terms(f"{title} {abstract}", STALE)
        h = digest(body)
        noise = statistics.NormalDist(0.0, NOISE_SD).inv_cdf(_uniform(h[:12]))
        score = len(strong) - len(weak) + TERM_WEIGHT * (len(hot) - len(stale)) + noise
        accept = score > THRESHOLD
        review = _review(title, abstract, strong, weak, hot, stale, accept, int(h[24:32], 16))
        style = _uniform(h[12:24])
        if style < BOTH_LINES_SHARE:
            ending = f"End with EXACTLY ONE line:\n    {DECISION[True]}\n    {DECISION[False]}"
        elif style < BOTH_LINES_SHARE + BOLD_SHARE:
            ending = f"**{DECISION[accept]}**"
        else:
            ending = DECISION[accept]
        return f"{review}\n{ending}\n"


def _pick(options: tuple[str, ...], salt: int) -> str:
    return options[salt % len(options)]


def _review(title: str, abstract: str, strong, weak, hot, stale, accept: bool, salt: int) -> str:
    first = abstract.split(". ")[0].rstrip(".") + "." if abstract else "The abstract is missing."
    strengths, weaknesses = [], []
    if strong:
        numbers = [m.group(1) for m in strong if m.groups()]
        strengths.append(f"The evaluation spans {numbers[0]} benchmarks with ablations and confidence intervals."
                         if numbers else "The gains hold on every dataset and the released code reproduces the tables.")
    if hot:
        strengths.append(f"It builds on {hot[0]}, a timely direction.")
    strengths.append(_pick(("The problem is relevant and the method is described in enough detail to follow.",
                            "The method is simple to state and to implement.",
                            "The paper positions itself clearly against related work."), salt))
    if weak:
        weaknesses.append("The experiments are too limited to support the claims (a single synthetic example, or "
                          "no comparison with prior work).")
    if stale:
        weaknesses.append(f"It relies on {stale[0]}, which the field has largely moved past.")
    weaknesses.append(_pick(("Some design choices are not ablated.", "The limitations deserve a fuller discussion.",
                             "A few notational choices make Section 3 harder to follow."), salt // 3))
    soundness = ("The experimental evidence is thorough and supports the main claims." if len(strong) > len(weak)
                 else "The evidence does not support the main claims." if len(weak) > len(strong)
                 else "The evidence is mixed: some claims are supported, others are left open.")
    clarity = _pick(("The paper is clearly written and well organized.",
                     "The writing is mostly clear, with a few dense passages.",
                     "The presentation is adequate but could be tightened."), salt // 9)
    significance = (f"Work on {hot[0]} is of broad current interest." if hot else
                    f"Interest in {stale[0]} has waned, which limits the impact." if stale else
                    "The contribution is of moderate interest to the community.")
    verdict = ("Overall the strengths outweigh the weaknesses." if accept
               else "Overall the weaknesses outweigh the strengths.")
    return "\n".join([
        "## Summary", f'The paper "{title}" is summarized by its abstract: {first}', "",
        "## Strengths", *[f"- {s}" for s in strengths], "",
        "## Weaknesses", *[f"- {w}" for w in weaknesses], "",
        "## Technical Soundness", soundness, "",
        "## Clarity and Writing", clarity, "",
        "## Significance", significance, "",
        "## Final Recommendation", verdict,
    ])


TEACHER = ReviewerTeacher()
