"""Text hygiene shared by every review source: score values as numbers, paper text without margin line numbers or
venue header lines, and wrapped PDF lines joined back into paragraphs.

PeerRead's parsed PDFs (science-parse) and the text pypdf extracts from OpenReview PDFs go through the same
functions, so one paper reads the same whichever source delivered it.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Any, Iterable, Sequence

from workflow_scripts.sources.errors import RecordError

# "6: Marginally above acceptance threshold" (OpenReview ratings), "4" (ACL/CoNLL in PeerRead), 4 (ICLR in PeerRead)
_SCORE_RE = re.compile(r"^\s*([+-]?\d+(?:\.\d+)?)\s*(?::.*)?$", re.S)
# a review copy's margin line number (000 .. 999), optionally after a page number ("1 000" opens a page)
_MARGIN_RE = re.compile(r"^\s*(?:\d{1,2}\s+)?(\d{3})\s*$")
_PAGE_NUMBER_RE = re.compile(r"^\s*\d{1,3}\s*$")
MIN_MARGIN_RUN = 5  # shorter runs of 3-digit lines are more likely table cells than a margin
_DATE_RE = re.compile(r"\b(\d{1,2} [A-Z][a-z]{2} \d{4})\b")
_SENTENCE_END = (".", "!", "?", ":")


def score(value: Any, name: str) -> float | None:
    """A review score as a number: ints, numeric strings ("4") and OpenReview's "6: Marginally above ..." all work;
    None or "" is no score. Anything else is a RecordError naming the score."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise RecordError(f"bad score: {name}={value!r}")
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise RecordError(f"bad score: {name}={value!r}")
        return float(value)
    if isinstance(value, str):
        m = _SCORE_RE.match(value)
        if m:
            return float(m.group(1))
    raise RecordError(f"bad score: {name}={str(value)[:80]!r}")


def first_date(text: Any) -> dt.date | None:
    """The first "06 Feb 2017" in PeerRead's DATE ("11 Jan 2017 (modified: 12 Jan 2017)"), else None."""
    if not isinstance(text, str):
        return None
    m = _DATE_RE.search(text)
    if not m:
        return None
    try:
        return dt.datetime.strptime(m.group(1), "%d %b %Y").date()
    except ValueError:
        return None


def strip_margin_numbers(lines: Sequence[str]) -> list[str]:
    """``lines`` without the margin line numbers of ACL/CoNLL review copies.

    Those come out of a PDF as runs of lines holding one increasing 3-digit number each ("000", "011", ... "099"),
    often after the page number ("2") or fused with it ("1 000"). A run counts from MIN_MARGIN_RUN lines; the page
    number right before it goes with it. A run cuts a paragraph where a page ends, so the lines on both sides of it
    are joined again (a word hyphenated across it too).
    """
    out: list[str] = []
    i, join_next = 0, False
    while i < len(lines):
        j, last = i, -1
        while j < len(lines):
            m = _MARGIN_RE.match(lines[j])
            if not m or int(m.group(1)) <= last:
                break
            last = int(m.group(1))
            j += 1
        if j - i >= MIN_MARGIN_RUN:
            if out and _PAGE_NUMBER_RE.match(out[-1]):
                out.pop()
            join_next, i = bool(out), j
            continue
        if join_next and lines[i].strip():
            out[-1] = join_broken(out[-1], lines[i])
        else:
            out.append(lines[i])
        join_next = False
        i += 1
    return out


def join_broken(before: str, after: str) -> str:
    """Two pieces of one paragraph: a hyphenated word ("tempo-" + "ral") is joined, other pieces get a space."""
    before, after = before.rstrip(), after.lstrip()
    if before.endswith("-") and len(before) > 1 and before[-2].isalpha() and after[:1].islower():
        return before[:-1] + after
    return f"{before} {after}"


def compile_patterns(patterns: Iterable[str]) -> list[re.Pattern]:
    return [re.compile(p) for p in patterns]


def drop_matching(lines: Iterable[str], patterns: Sequence[re.Pattern]) -> list[str]:
    """Lines matching none of ``patterns`` (venue header lines such as "Under review as a conference paper at ICLR
    2020" or "Published as ...", which would tell a reader the decision)."""
    return [line for line in lines if not any(p.search(line.strip()) for p in patterns)]


def unwrap(lines: Sequence[str]) -> str:
    """Lines of a PDF page joined into paragraphs: a line break inside a paragraph becomes a space (a hyphenated word
    is joined back), and a new paragraph starts after a line that ends a sentence well short of the column width."""
    lines = [line.strip() for line in lines]
    lines = [line for line in lines if line]
    if not lines:
        return ""
    width = sorted(len(line) for line in lines)[len(lines) * 3 // 4]  # a typical full line
    paragraphs, current = [], lines[0]
    for prev, line in zip(lines, lines[1:]):
        if prev.endswith(_SENTENCE_END) and len(prev) < 0.8 * width:
            paragraphs.append(current)
            current = line
        else:
            current = join_broken(current, line)
    paragraphs.append(current)
    return "\n".join(paragraphs)


def clean_text(text: str | None, patterns: Sequence[re.Pattern]) -> str:
    """Already-paragraphed text (PeerRead's parsed PDFs): margin numbers and venue header lines removed."""
    if not text:
        return ""
    lines = drop_matching(strip_margin_numbers(text.split("\n")), patterns)
    return "\n".join(line for line in lines if line.strip()).strip()
