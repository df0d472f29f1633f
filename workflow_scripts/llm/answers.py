"""What a caller gets back for one request, and how a raw completion becomes one: think-stripping, JSON parsing,
local schema validation, truncation.

Statuses: ``ok``; ``truncated`` (``finish_reason: length``: the answer was cut at ``max_tokens``, kept as it is);
``invalid`` (an unterminated ``<think>``, an empty answer, or, when the request had a schema, text that is not JSON
or not valid against it); ``failed`` (no answer after the retries: timeouts, 5xx, a final 4xx); ``not_asked`` (the
step's budget was reached first). Every status but ``ok`` carries ``problem`` as ``"<kind>: <detail>"``.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

import jsonschema

_FENCE = re.compile(r"```(?:json)?\s*(.*?)\s*```", re.S)
_THINK_END = "</think>"


@dataclass
class Answer:
    key: str
    status: str
    text: str | None = None  # the answer, after the <think> block when stripping is on
    json: Any = None  # the parsed answer, when the request had a schema and the answer is valid
    finish_reason: str | None = None
    usage: dict[str, int] = field(default_factory=dict)
    latency_s: float | None = None
    logprobs: list | None = None
    cached: bool = False
    problem: str | None = None
    raw: str | None = None  # the text as received, kept for answers that are not ok (rejects, debugging)
    attempts: int = 1  # asked this many times with different seeds (the caller's schema retries)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def problem_kind(self) -> str | None:
        return self.problem.split(":", 1)[0] if self.problem else None

    def to_row(self) -> dict[str, Any]:
        return asdict(self)


def strip_think(text: str) -> tuple[str, str | None]:
    """The text after the last ``</think>`` (servers may drop the opening tag), or a problem when thinking never
    ended (the answer was cut inside it)."""
    if _THINK_END in text:
        return text[text.rindex(_THINK_END) + len(_THINK_END):].strip(), None
    if "<think>" in text:
        return "", "think_unterminated: the answer ends inside its <think> block"
    return text.strip(), None


def parse_json(text: str) -> Any:
    """JSON from an answer: the whole text, else a fenced ```json block, else the span from the first { or [ to the
    last } or ] (models wrap JSON in prose); ValueError when none of them parses."""
    candidates = [text]
    fence = _FENCE.search(text)
    if fence:
        candidates.append(fence.group(1))
    starts = [i for i in (text.find("{"), text.find("[")) if i >= 0]
    end = max(text.rfind("}"), text.rfind("]"))
    if starts and end > min(starts):
        candidates.append(text[min(starts): end + 1])
    for candidate in candidates:
        try:
            return json.loads(candidate)
        except ValueError:
            continue
    raise ValueError("the answer is not JSON")


@functools.lru_cache(maxsize=64)
def _validator(schema_json: str) -> jsonschema.protocols.Validator:
    schema = json.loads(schema_json)
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    cls.check_schema(schema)
    return cls(schema)


def schema_problem(value: Any, schema: Mapping[str, Any]) -> str | None:
    error = jsonschema.exceptions.best_match(_validator(json.dumps(schema, sort_keys=True)).iter_errors(value))
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
    return f"schema: at {where}: {error.message[:300]}"


def interpret(key: str, record: Mapping[str, Any], *, schema: Mapping[str, Any] | None, strip: bool,
              cached: bool) -> Answer:
    """The answer a cached or received completion record gives to a request."""
    raw = record.get("content") or ""
    answer = Answer(key, "ok", finish_reason=record.get("finish_reason"), usage=dict(record.get("usage") or {}),
                    latency_s=record.get("latency_s"), logprobs=record.get("logprobs"), cached=cached)
    text, problem = strip_think(raw) if strip else (raw.strip(), None)
    answer.text = text
    if answer.finish_reason == "length":
        answer.status, answer.raw = "truncated", raw
        answer.problem = (f"truncated: finish_reason length after {answer.usage.get('completion_tokens', '?')} "
                          "completion tokens (raise max_tokens)")
        return answer
    if problem is None and not text:
        problem = "empty: the answer has no text"
    if problem is None and schema is not None:
        try:
            answer.json = parse_json(text)
        except ValueError as exc:
            problem = f"not_json: {exc}"
        else:
            problem = schema_problem(answer.json, schema)
            if problem:
                answer.json = None
    if problem:
        answer.status, answer.problem, answer.raw = "invalid", problem, raw
    return answer
