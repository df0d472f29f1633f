"""Stand-in policies of the demo endpoint: deterministic simulations of the large models the lines call.

A stand-in answers in place of a teacher, extractor, rubric writer or judge when the pipeline runs offline. It is a
documented function of the request (never of evaluation labels), served behind the real OpenAI protocol by
:mod:`workflow_scripts.llm.demo_server`, so the whole client path runs. Its model name, ``demo/<name>@<version>``,
is part of every cache key and of every artifact's provenance, so an answer of a stand-in is never mistaken for a
model's, and changing a stand-in's behaviour (a new ``version``) invalidates its cached answers.

A line adds its stand-in by writing a module in ``workflow_scripts/demo/`` with an object that has ``name``,
``version``, ``doc`` and ``respond(body) -> str``, and one entry in :data:`STAND_INS`. ``respond`` returns the full
answer text; the server adds what every policy shares: the optional ``<think>`` block, truncation at
``max_tokens`` (``finish_reason: length``), usage counts and log-probabilities.
"""

from __future__ import annotations

import hashlib
import importlib
import json
from typing import Any, Mapping, Protocol

# name -> "module:attribute"; each line registers its own stand-in here
STAND_INS: dict[str, str] = {
    "generic": "workflow_scripts.llm.stand_in:GENERIC",
    "reviewer_teacher": "workflow_scripts.demo.reviewer_teacher:TEACHER",
    "bioreview_extractor": "workflow_scripts.demo.bioreview_extractor:EXTRACTOR",
    "refiner_judge": "workflow_scripts.demo.refiner_judge:JUDGE",
    "refiner_writer": "workflow_scripts.demo.refiner_writer:WRITER",
}


class StandIn(Protocol):
    name: str
    version: str
    doc: str  # what it answers and from what: shown in the README and in the provenance of what it made

    def respond(self, body: Mapping[str, Any]) -> str: ...


def load(name: str) -> StandIn:
    """A registered stand-in by name, or any object given as ``module:attribute``."""
    target = STAND_INS.get(name, name if ":" in name else None)
    if target is None:
        raise ValueError(f"unknown demo stand-in {name!r}; registered: {sorted(STAND_INS)} (or give module:attribute)")
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)


def model_id(policy: StandIn) -> str:
    return f"demo/{policy.name}@{policy.version}"


def digest(body: Mapping[str, Any]) -> str:
    """What a stand-in's answer may depend on: the messages, the seed and the requested response format."""
    basis = {k: body.get(k) for k in ("messages", "seed", "response_format")}
    return hashlib.sha256(json.dumps(basis, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


class GenericStandIn:
    """The generic stand-in (used by the tests and the benchmark; no line's data comes from it)."""

    name = "generic"
    version = "1"
    doc = ("Generic demo stand-in: a deterministic function of the messages, the seed and the response format. "
           "Asked for a JSON schema, it returns the schema's simplest instance (every property, first enum values, "
           "minimum numbers, strings 'demo-<hash>'); otherwise 'Demo answer <hash>:' followed by the first 64 words of "
           "the last user message. <hash> is the start of the SHA-256 of those three inputs.")

    def respond(self, body: Mapping[str, Any]) -> str:
        tag = digest(body)[:8]
        response_format = body.get("response_format") or {}
        if response_format.get("type") == "json_schema":
            return json.dumps(schema_instance(response_format["json_schema"]["schema"], tag))
        users = [m for m in body.get("messages", ()) if m.get("role") == "user"]
        words = str(users[-1].get("content") or "").split()[:64] if users else []
        return " ".join([f"Demo answer {tag}:", *words])


GENERIC = GenericStandIn()


def schema_instance(schema: Mapping[str, Any], tag: str) -> Any:
    """The simplest value satisfying a (plain) JSON schema: enough for the demo to answer any caller's format."""
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    for combinator in ("anyOf", "oneOf", "allOf"):
        if combinator in schema:
            return schema_instance({**schema[combinator][0], **{k: v for k, v in schema.items() if k != combinator}},
                                   tag)
    kind = schema.get("type", "object")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        return {name: schema_instance(sub, tag) for name, sub in schema.get("properties", {}).items()}
    if kind == "array":
        return [schema_instance(schema.get("items", {}), tag) for _ in range(max(1, schema.get("minItems", 1)))]
    if kind == "string":
        text = f"demo-{tag}"
        return text + "x" * max(0, schema.get("minLength", 0) - len(text))
    if kind in ("integer", "number"):
        low = schema.get("minimum", schema.get("exclusiveMinimum", 0) + (1 if "exclusiveMinimum" in schema else 0))
        return int(low) if kind == "integer" else float(low)
    if kind == "boolean":
        return int(tag[0], 16) % 2 == 0
    if kind == "null":
        return None
    raise ValueError(f"the generic stand-in cannot build an instance of schema type {kind!r}")
