"""One chat request as the endpoint receives it, and the content address of its answer in the cache.

The key is the SHA-256 of the canonical JSON of the request body: model, messages, sampling parameters, response
format, logprobs options and the endpoint's extra fields. Anything that can change the answer is in it; nothing
else is (not the endpoint's address, not the API key), so the same request asked again, by a rerun or by another
step, is answered from the cache.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

# the client sets these itself; a caller passing them in params would silently be overridden
RESERVED = frozenset({"model", "messages", "response_format", "logprobs", "top_logprobs", "stream", "n"})


@dataclass(frozen=True)
class ChatRequest:
    """What a caller asks: ``params`` are sampling parameters (temperature, top_p, max_tokens, seed, stop, ...);
    ``schema`` a JSON schema the answer must satisfy (sent as response_format where enabled, always checked
    locally); ``top_logprobs`` asks for log-probabilities of that many alternatives per token (0 = the chosen
    token's only)."""

    messages: Sequence[Mapping[str, Any]]
    params: Mapping[str, Any] = field(default_factory=dict)
    schema: Mapping[str, Any] | None = None
    top_logprobs: int | None = None

    def __post_init__(self):
        clash = sorted(RESERVED & set(self.params))
        if clash:
            raise ValueError(f"request params {clash} are set by the client (use schema= / top_logprobs=)")
        if not self.messages:
            raise ValueError("a chat request needs at least one message")

    def with_seed(self, seed: int) -> "ChatRequest":
        return ChatRequest(self.messages, {**self.params, "seed": seed}, self.schema, self.top_logprobs)


def request_body(request: ChatRequest, model: str, *, extra_body: Mapping[str, Any] | None = None,
                 structured_output: bool = True) -> dict[str, Any]:
    """The JSON body POSTed to /chat/completions."""
    body: dict[str, Any] = {**(extra_body or {}), **request.params, "model": model, "messages": list(request.messages)}
    if request.schema is not None and structured_output:
        body["response_format"] = {"type": "json_schema",
                                   "json_schema": {"name": "answer", "schema": request.schema, "strict": True}}
    if request.top_logprobs is not None:
        body["logprobs"] = True
        body["top_logprobs"] = request.top_logprobs
    return body


def canonical(value: Any) -> Any:
    """Integral floats as integers (temperature 1 and 1.0 are one request); containers recursively."""
    kind = type(value)  # exact types first: this runs for every message of every request, cache hits included
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if kind is float:
        return int(value) if value.is_integer() else value
    if kind is dict or isinstance(value, Mapping):
        return {str(k): canonical(v) for k, v in value.items()}
    if kind is list or kind is tuple:
        return [canonical(v) for v in value]
    return value


_CANONICAL_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)  # built once: hot path


def request_key(body: Mapping[str, Any]) -> str:
    # messages are text: only the other fields can hold a float written two ways (and walking the messages would
    # double the cost of a cache hit)
    text = _CANONICAL_JSON.encode({**canonical({k: v for k, v in body.items() if k != "messages"}),
                                   "messages": body["messages"]})
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def estimated_tokens(body: Mapping[str, Any], default_max_tokens: int = 1024) -> int:
    """Tokens a request may cost before its usage is known: prompt characters / 4 plus the completion cap."""
    chars = sum(len(str(m.get("content") or "")) for m in body.get("messages", ()))
    cap = body.get("max_completion_tokens") or body.get("max_tokens") or default_max_tokens
    return chars // 4 + 1 + int(cap)
