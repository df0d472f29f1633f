"""The Refiner's sources: the ``<snippet id=ID>text</snippet>`` blocks of a search tool's raw output, in one parser.

A tool output is text holding source blocks, possibly inside ``<tool_output>...</tool_output>`` (one or several):
``<snippet id=ID>text</snippet>``, or ``<webpage id=ID>text</webpage>`` as the agent's browse tool writes them. An
id may be bare or quoted (``id=S1``, ``id="S1"``, ``id='S1'``) and is normalised by :func:`normalize_id`, which the
reward's citation parser uses too, so that a claim citing ``id="S1"`` cites the source ``<snippet id=S1>``.

:func:`parse_tool_output` returns the sources in order of first appearance. The same id twice with the same text
(white space collapsed) is one source (search tools repeat hits); the same id with different text, an empty or
missing id, an id with a comma or white space in it (a citation ``id=a,b`` could not name it), an empty text, a
source block inside another, or a block never closed raise :class:`SnippetError` naming the problem: a task whose
sources are ambiguous is rejected, never scored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Sequence

SOURCE_TAGS = ("snippet", "webpage")
_OPEN = re.compile(r"<(snippet|webpage)\b([^>]*)>", re.I)
_ID_ATTR = re.compile(r"""\bid\s*=\s*("[^"]*"|'[^']*'|[^\s>]+)""", re.I)
_QUOTES = "\"'"


class SnippetError(ValueError):
    """A tool output whose sources cannot be told apart; ``reason`` is ``<kind>: <detail>``."""

    def __init__(self, kind: str, detail: str):
        super().__init__(f"{kind}: {detail}")
        self.kind, self.detail = kind, detail


@dataclass(frozen=True)
class Snippet:
    id: str
    text: str

    def as_dict(self) -> dict[str, str]:
        return {"id": self.id, "text": self.text}


def normalize_id(raw: str) -> str:
    """An id as written in a tag attribute, without surrounding white space and quotes: ``"S1"`` -> ``S1``."""
    text = raw.strip()
    while len(text) >= 2 and text[0] in _QUOTES and text[-1] == text[0]:
        text = text[1:-1].strip()
    return text.strip(_QUOTES).strip()


def _squash(text: str) -> str:
    return " ".join(text.split())


def parse_tool_output(text: str) -> list[Snippet]:
    """The sources of a raw tool output, in order of first appearance (see the module docstring)."""
    found: dict[str, Snippet] = {}
    position = 0
    while True:
        match = _OPEN.search(text, position)
        if match is None:
            break
        tag, attributes = match.group(1).lower(), match.group(2)
        close = re.compile(rf"</{tag}\s*>", re.I)
        end = close.search(text, match.end())
        if end is None:
            raise SnippetError("unclosed_source", f"<{tag}{attributes}> is never closed")
        body = text[match.end(): end.start()]
        inner = _OPEN.search(body)
        if inner:
            raise SnippetError("nested_source", f"{inner.group(0)} inside <{tag}{attributes}>")
        id_match = _ID_ATTR.search(attributes)
        sid = normalize_id(id_match.group(1)) if id_match else ""
        if not sid:
            raise SnippetError("missing_id", f"<{tag}{attributes}> has no id")
        if "," in sid or any(ch.isspace() for ch in sid):
            raise SnippetError("bad_id", f"id {sid!r} holds a comma or white space (a citation could not name it)")
        body = body.strip()
        if not body:
            raise SnippetError("empty_source", f"source {sid} has no text")
        seen = found.get(sid)
        if seen is None:
            found[sid] = Snippet(sid, body)
        elif _squash(seen.text) != _squash(body):
            raise SnippetError("id_conflict", f"id {sid} repeats with different text "
                                              f"({_excerpt(seen.text)!r} vs {_excerpt(body)!r})")
        position = end.end()
    return list(found.values())


def _excerpt(text: str, limit: int = 60) -> str:
    text = _squash(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def render_tool_output(snippets: Iterable[Snippet]) -> str:
    """Sources as one raw tool output: a ``<tool_output>`` block of ``<snippet id=ID>`` blocks, one per line."""
    body = "\n".join(f"<snippet id={s.id}>{s.text}</snippet>" for s in snippets)
    return f"<tool_output>\n{body}\n</tool_output>"


def snippet_ids(snippets: Sequence[Snippet] | Sequence[dict]) -> list[str]:
    return [s["id"] if isinstance(s, dict) else s.id for s in snippets]
