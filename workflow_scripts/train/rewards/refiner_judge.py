"""The Refiner's judge requests and how their answers are read: one rubric score, a claim's support, its citations'
relevance, whether an uncited span needs a citation.

Prompts are config (``refiner.judge``: a system message and one user template per question, ``str.format`` fields
in braces, literal braces doubled); sampling parameters are config (``refiner.reward.judge_params``). Every request
carries a strict JSON schema: sent as ``response_format`` where the endpoint takes it and always checked by the LLM
layer, so an answer outside the scale (a score of 3, a label not offered) is invalid, asked again with the next
seed (the endpoint's ``invalid_retries``) and, if it stays invalid, a counted failure with its reason: never read
as a number. The LLM layer strips a ``<think>`` block before parsing; the production judge also has thinking
disabled in its endpoint block (``extra_body: {chat_template_kwargs: {enable_thinking: false}}``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Protocol, Sequence

from workflow_scripts.llm.answers import Answer
from workflow_scripts.llm.request import ChatRequest

SUPPORT_LABELS = ("fully", "partially", "none")
PROMPT_KEYS = ("system", "rubric", "support", "relevance", "needs_citation")
# the fields each user template may use
FIELDS = {
    "rubric": ("question", "response", "criterion"),
    "support": ("question", "claim", "snippets"),
    "relevance": ("question", "claim", "snippets"),
    "needs_citation": ("question", "claim"),
}


class Judge(Protocol):
    """What scoring needs of a judge: answers in the order of the requests (workflow_scripts.llm.client.LLMClient)."""

    def complete_many(self, requests: Sequence[ChatRequest]) -> list[Answer]: ...


@dataclass(frozen=True)
class Rubric:
    title: str
    description: str
    kind: str  # "positive" (credit s) or "negative" (credit 1 - s)
    static: bool = False  # one of config refiner.static_rubrics, not the task's own

    @property
    def criterion(self) -> str:
        return f"{self.title}: {self.description}" if self.title else self.description


def _object(name: str, schema: Mapping[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": {name: dict(schema)}, "required": [name], "additionalProperties": False}


def rubric_schema(max_score: int) -> dict[str, Any]:
    return _object("score", {"type": "integer", "enum": list(range(max_score + 1))})


SUPPORT_SCHEMA = _object("support", {"type": "string", "enum": list(SUPPORT_LABELS)})
RELEVANCE_SCHEMA = _object("relevant", {"type": "boolean"})
NEEDS_CITATION_SCHEMA = _object("needs_citation", {"type": "boolean"})


@dataclass(frozen=True)
class JudgePrompts:
    system: str
    rubric: str
    support: str
    relevance: str
    needs_citation: str

    @classmethod
    def from_config(cls, block: Mapping[str, str]) -> "JudgePrompts":
        """From config ``refiner.judge``; ValueError naming the key of a template that cannot be rendered."""
        prompts = cls(**{k: block[k] for k in PROMPT_KEYS})
        for key, fields in FIELDS.items():
            try:
                getattr(prompts, key).format(**{f: "" for f in fields})
            except (KeyError, IndexError, ValueError) as exc:
                raise ValueError(f"config key refiner.judge.{key}: the template cannot be rendered with the fields "
                                 f"{list(fields)} ({type(exc).__name__}: {exc}); double literal braces") from None
        return prompts

    def request(self, key: str, params: Mapping[str, Any], schema: Mapping[str, Any], **fields: str) -> ChatRequest:
        messages = [{"role": "system", "content": self.system},
                    {"role": "user", "content": getattr(self, key).format(**fields)}]
        return ChatRequest(messages, dict(params), schema=schema)


def snippets_text(ids: Sequence[str], snippets: Mapping[str, str]) -> str:
    """The cited sources as the support and relevance prompts show them (ids not in the tool output left out)."""
    return "\n\n".join(f"[{i}] {snippets[i]}" for i in ids if i in snippets)


# ---------------------------------------------------------------------------------------------------- reading answers
def failure(answer: Answer) -> str | None:
    """None for a usable answer, else its failure kind (schema, not_json, http_500, timeout, truncated, budget...)."""
    if answer.ok and answer.json is not None:
        return None
    return answer.problem_kind or answer.status


def rubric_value(answer: Answer, max_score: int) -> float:
    """The judge's score normalised to [0, 1] (the schema has already bounded it)."""
    return int(answer.json["score"]) / max_score


def support_value(answer: Answer, scores: Mapping[str, float]) -> float:
    return float(scores[answer.json["support"]])


def relevance_value(answer: Answer) -> float:
    return 1.0 if answer.json["relevant"] else 0.0


def needs_citation_value(answer: Answer) -> bool:
    return bool(answer.json["needs_citation"])
