"""Parsing of model answers, shared by the GRPO reward (training) and the evaluation, so both judge alike.

A SciJudge answer is parseable iff the text holds exactly one ``<answer>X</answer>`` with X in {A, B}, whitespace
around X allowed; anything else (no tag, two answer tags, both letters, other text inside, other tag names, a stray
opening or closing tag) is unparseable, which the reward scores 0 and the evaluation counts as wrong. Both prompt
variants ask for that answer; they differ in the tag of the reasoning before it (:class:`AnswerFormat`), which the
format reward checks and the SFT warm-up writes.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

OPEN, CLOSE = "<answer>", "</answer>"
_ANSWER = re.compile(r"<answer>\s*([AB])\s*</answer>")


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


def is_well_formatted(text: Any, reasoning_tag: str = "reason") -> bool:
    """``<reason>...</reason>`` (non-empty; or another ``reasoning_tag``) followed by one well-formed answer, nothing
    else around them."""
    return _format_pattern(reasoning_tag).fullmatch(completion_text(text)) is not None


@functools.cache
def _format_pattern(tag: str) -> re.Pattern:
    tag = re.escape(tag)
    return re.compile(rf"\s*<{tag}>(?:(?!</?{tag}>|</?answer>).)+</{tag}>\s*<answer>\s*[AB]\s*</answer>\s*", re.DOTALL)


@dataclass(frozen=True)
class AnswerFormat:
    """What a prompt variant asks the model to write: its reasoning inside ``<reasoning_tag>`` tags, then the answer."""

    reasoning_tag: str

    def parse(self, text: Any) -> str | None:
        return parse_answer(text)

    def is_well_formatted(self, text: Any) -> bool:
        return is_well_formatted(text, self.reasoning_tag)

    def completion(self, reasoning: str, answer: str) -> str:
        """A well-formed completion giving ``answer`` after ``reasoning`` (the SFT warm-up's target)."""
        return f"<{self.reasoning_tag}>{reasoning}</{self.reasoning_tag}>\n<answer>{answer}</answer>"
