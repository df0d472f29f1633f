"""Parsing of model answers, shared by the GRPO reward (training) and the evaluation, so both judge alike.

A SciJudge answer is well formed iff the text holds exactly one ``<answer>X</answer>`` with X in {A, B}, whitespace
around X allowed; anything else (no tag, two answer tags, both letters, other text inside, other tag names, a stray
opening or closing tag) is unparseable, which the reward scores 0 and the evaluation counts as wrong.
"""

from __future__ import annotations

import re
from typing import Any

OPEN, CLOSE = "<answer>", "</answer>"
_ANSWER = re.compile(r"<answer>\s*([AB])\s*</answer>")
_FORMAT = re.compile(r"\s*<reason>(?:(?!</?reason>|</?answer>).)+</reason>\s*<answer>\s*[AB]\s*</answer>\s*", re.DOTALL)


def completion_text(completion: Any) -> str:
    """Text of a completion: a string, or a conversational list of messages (assistant turns joined)."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        completion = [completion]
    parts = []
    for message in completion:
        if message.get("role", "assistant") != "assistant":
            continue
        content = message.get("content")
        if isinstance(content, list):  # multimodal-style content parts
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        parts.append(content or "")
    return "\n".join(parts)


def parse_answer(text: Any) -> str | None:
    """'A' or 'B' when ``text`` (string or messages) has exactly one well-formed answer tag, else None."""
    text = completion_text(text)
    if text.count(OPEN) != 1 or text.count(CLOSE) != 1:
        return None
    match = _ANSWER.search(text)
    return match.group(1) if match else None


def is_well_formatted(text: Any) -> bool:
    """``<reason>...</reason>`` (non-empty) followed by one well-formed answer, nothing else around them."""
    return _FORMAT.fullmatch(completion_text(text)) is not None
