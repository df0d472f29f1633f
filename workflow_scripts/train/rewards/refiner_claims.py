"""The Refiner's answer format: the one ``<answer>`` block of a completion, the claims in it, and the format gate.

A refinement is one ``<answer>...</answer>`` in which every factual claim is wrapped as
``<snippet id=ID1,ID2>claim</snippet>``, citing ids of the tool output's sources. The parser is written against the
known failures of the public reference parser, each a unit test (tests/test_refiner_claims.py):

- several ids in one tag (``id=a,b``, ``id="a, b"``, ``id='a'``, ``ids=a,b``) are all kept, not only the last;
- a claim containing tags (a nested citation) is kept: nested tags are flattened into the outermost claim, whose
  text is all the text inside and whose ids are those of every tag in it, in order;
- an empty claim (``<snippet id=a></snippet>``) is counted, not judged; its ids still count for the gate;
- the text between citations becomes uncited claims, so an answer cannot dodge the citation judge by not citing.

Ids are normalised as the tool output's are (:func:`workflow_scripts.datasets.refiner_snippets.normalize_id`), so
``id="S1"`` cites the source ``<snippet id=S1>``. Malformed citation markup (a tag without ids, an unclosed tag, a
stray closing tag) is kept as well as it can be and listed in ``markup_problems``; it does not fail the gate.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Collection

from workflow_scripts.datasets.refiner_snippets import normalize_id

ANSWER_OPEN = re.compile(r"<answer\s*>", re.I)
ANSWER_CLOSE = re.compile(r"</answer\s*>", re.I)
THINK_END = "</think>"
# an opening citation tag (its attributes in group 1) or a closing one
_TAG = re.compile(r"<snippet\b([^>]*)>|</snippet\s*>", re.I)
# id= / ids= with a double-quoted, single-quoted or bare comma-separated value (spaces allowed around the commas)
_IDS = re.compile(r"""\bids?\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>"',=]+(?:\s*,\s*[^\s>"',=]+)*))""", re.I)
_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Claim:
    text: str  # without citation tags, white space collapsed
    ids: tuple[str, ...]  # cited ids, normalised, in order, without repeats; () for an uncited span
    nested: bool = False  # held citation tags inside it (flattened into this claim)

    @property
    def cited(self) -> bool:
        return bool(self.ids)

    @property
    def words(self) -> int:
        return len(_WORD.findall(self.text))


@dataclass
class ParsedAnswer:
    text: str  # the answer block's content, citation tags kept (what the rubric judge reads)
    claims: list[Claim] = field(default_factory=list)  # cited and uncited, in answer order; empty claims left out
    empty_claims: int = 0  # citation tags around no text
    cited_ids: tuple[str, ...] = ()  # every id cited anywhere in the answer (empty claims included), in order
    markup_problems: list[str] = field(default_factory=list)

    def invalid_ids(self, known: Collection[str]) -> list[str]:
        return [i for i in self.cited_ids if i not in known]


def extract_answer(completion: str) -> tuple[str | None, str | None]:
    """(the content of the one ``<answer>`` block, None) or (None, the format problem). A thinking policy's
    reasoning, up to the last ``</think>``, is not searched: an ``<answer>`` it mentions is not a second block."""
    end = completion.rfind(THINK_END)
    if end >= 0:
        completion = completion[end + len(THINK_END):]
    opens, closes = list(ANSWER_OPEN.finditer(completion)), list(ANSWER_CLOSE.finditer(completion))
    if not opens and not closes:
        return None, "no_answer: the completion has no <answer> block"
    if len(opens) > 1 or len(closes) > 1:
        return None, f"several_answers: {len(opens)} <answer> and {len(closes)} </answer> tags (exactly one block)"
    if len(opens) != 1 or len(closes) != 1 or closes[0].start() < opens[0].end():
        return None, "unbalanced_answer: the <answer> block is not opened and then closed once"
    return completion[opens[0].end(): closes[0].start()], None


def parse_ids(attributes: str) -> tuple[str, ...]:
    """The ids an opening tag's attributes cite (``id``/``ids``, quoted or bare, comma-separated), normalised."""
    ids: list[str] = []
    for match in _IDS.finditer(attributes):
        value = next(g for g in match.groups() if g is not None)
        for part in value.split(","):
            cid = normalize_id(part)
            if cid and cid not in ids:
                ids.append(cid)
    return tuple(ids)


def parse_claims(answer: str) -> ParsedAnswer:
    """The claims of an answer block's content (see the module docstring)."""
    parsed = ParsedAnswer(text=answer)
    cited: list[str] = []
    depth = 0
    buffer: list[str] = []  # text of the current span (uncited at depth 0, the open claim's otherwise)
    claim_ids: list[str] = []
    nested = False
    position = 0

    def flush_uncited() -> None:
        text = _squash("".join(buffer))
        if text:
            parsed.claims.append(Claim(text, ()))
        buffer.clear()

    for match in _TAG.finditer(answer):
        buffer.append(answer[position: match.start()])
        position = match.end()
        if match.group(0).startswith("</"):
            if depth == 0:
                parsed.markup_problems.append("stray_close: a </snippet> without an opening tag")
                continue
            depth -= 1
            if depth == 0:
                _close_claim(parsed, buffer, claim_ids, nested)
                claim_ids, nested = [], False
            continue
        ids = parse_ids(match.group(1))
        if not ids:
            parsed.markup_problems.append(f"no_ids: {excerpt_tag(match.group(0))} names no id")
        cited.extend(i for i in ids if i not in cited)
        if depth == 0:
            flush_uncited()
        else:
            nested = True
        claim_ids.extend(i for i in ids if i not in claim_ids)
        depth += 1
    buffer.append(answer[position:])
    if depth:
        parsed.markup_problems.append(f"unclosed: {depth} <snippet> tag(s) never closed; the text to the end of "
                                      "the answer is their claim")
        _close_claim(parsed, buffer, claim_ids, nested)
    else:
        flush_uncited()
    parsed.cited_ids = tuple(cited)
    return parsed


def _close_claim(parsed: ParsedAnswer, buffer: list[str], ids: list[str], nested: bool) -> None:
    text = _squash("".join(buffer))
    buffer.clear()
    if not text:
        parsed.empty_claims += 1
    else:
        parsed.claims.append(Claim(text, tuple(ids), nested))


def _squash(text: str) -> str:
    return " ".join(text.split())


def excerpt_tag(tag: str, limit: int = 60) -> str:
    return tag if len(tag) <= limit else tag[: limit - 3] + "..."


@dataclass(frozen=True)
class FormatCheck:
    answer: ParsedAnswer | None  # None when there is no single answer block
    problem: str | None  # the first gate failure, "<kind>: <detail>"; None when the gate passes
    invalid_ids: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.problem is None


def check_format(completion: str, known_ids: Collection[str]) -> FormatCheck:
    """The format gate: exactly one ``<answer>`` block, and every id it cites present in the tool output."""
    body, problem = extract_answer(completion)
    if body is None:
        return FormatCheck(None, problem)
    parsed = parse_claims(body)
    invalid = tuple(parsed.invalid_ids(known_ids))
    if invalid:
        shown = ", ".join(invalid[:5]) + (", ..." if len(invalid) > 5 else "")
        return FormatCheck(parsed, f"invalid_ids: cited id(s) not in the tool output: {shown}", invalid)
    return FormatCheck(parsed, None)
