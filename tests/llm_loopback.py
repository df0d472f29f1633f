"""Loopback chat endpoints for the LLM-layer tests: the generic stand-in behind tests/loopback.py, with faults."""

from __future__ import annotations

import json
import threading
from typing import Callable, Iterable

from tests.loopback import Reply, Request
from workflow_scripts.llm.demo_server import chat_completion
from workflow_scripts.llm.stand_in import GENERIC, model_id

MODEL = model_id(GENERIC)
CHAT = "/v1/chat/completions"


def answer(req: Request, *, think: bool = False, content: str | None = None) -> Reply:
    """What the demo endpoint answers (``content`` replaces the stand-in's text)."""
    completion = chat_completion(GENERIC, json.loads(req.body), think=think)
    if content is not None:
        completion["choices"][0]["message"]["content"] = content
    return Reply(200, json.dumps(completion), content_type="application/json")


def scripted(*faults: Callable[[Request], Reply | None]) -> Callable[[Request], Reply]:
    """A handler giving the n-th request ``faults[n](req)`` (a fault, or None to answer), then plain answers."""
    remaining = list(faults)
    lock = threading.Lock()

    def handle(req: Request) -> Reply:
        with lock:
            fault = remaining.pop(0) if remaining else None
        return (fault and fault(req)) or answer(req)

    return handle


def status(code: int, body: str = '{"error": {"message": "busy"}}', headers: dict | None = None):
    return lambda req: Reply(code, body, headers=headers or {}, content_type="application/json")


def block(base_url: str, **overrides) -> dict:
    """An external endpoint block for a loopback server, with fast retries."""
    limits = {"max_concurrency": 4, "timeout_s": 5, "max_retries": 3, "backoff_base_s": 0.01, "backoff_max_s": 0.05}
    limits.update(overrides.pop("limits", {}))
    return {"kind": "external", "base_url": f"{base_url}/v1", "model": MODEL, "limits": limits, **overrides}


def chat_bodies(requests: Iterable[Request]) -> list[dict]:
    return [json.loads(r.body) for r in requests if r.path == CHAT]
