"""The demo endpoint: an OpenAI-compatible chat server on loopback that answers from a stand-in policy.

    python -m workflow_scripts.llm.demo_server --policy generic [--port 8000] [--latency-ms 300] [--think]

Serves ``GET /health``, ``GET /v1/models`` and ``POST /v1/chat/completions`` (HTTP/1.1, keep-alive, one asyncio
loop). The policy (:mod:`workflow_scripts.llm.stand_in`) writes the answer text; this module adds what every
policy shares, so that the client meets what a real server sends:

- ``--think`` wraps the answer in a ``<think>`` block, as reasoning models do;
- tokens are whitespace-separated words; an answer longer than ``max_tokens`` (or ``max_completion_tokens``) is cut
  there with ``finish_reason: length``; ``usage`` counts the words of the messages and of the answer;
- ``logprobs: true`` returns one entry per token with a log-probability derived from the token's hash (and
  ``top_logprobs`` alternatives below it): deterministic numbers, not probabilities of any model;
- ``--latency-ms`` holds every answer that long (the benchmark's stand-in for generation time).

A request naming another model is answered 404, a body that is not a chat request 400, as an OpenAI server does.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
from http import HTTPStatus
from typing import Any, Mapping

from workflow_scripts.common.cli import parser, setup_logging
from workflow_scripts.llm.stand_in import StandIn, digest, load, model_id

log = logging.getLogger(__name__)

_TOKEN = re.compile(r"\s*\S+")
CHAT_PATH = "/v1/chat/completions"


def chat_completion(policy: StandIn, body: Mapping[str, Any], *, think: bool = False) -> dict[str, Any]:
    """The OpenAI chat.completion object the demo endpoint answers ``body`` with."""
    text = policy.respond(body)
    if think:
        text = f"<think>\nThe demo stand-in {policy.name} thinks before it answers.\n</think>\n\n{text}"
    tokens = _TOKEN.findall(text)
    cap = body.get("max_completion_tokens") or body.get("max_tokens")
    finish = "stop"
    if cap is not None and len(tokens) > int(cap):
        tokens, finish = tokens[: int(cap)], "length"
    choice: dict[str, Any] = {"index": 0, "message": {"role": "assistant", "content": "".join(tokens)},
                              "finish_reason": finish, "logprobs": None}
    if body.get("logprobs"):
        choice["logprobs"] = {"content": [_logprob(t, i, int(body.get("top_logprobs") or 0))
                                          for i, t in enumerate(tokens)]}
    prompt_words = sum(len(str(m.get("content") or "").split()) for m in body.get("messages", ()))
    return {
        "id": f"chatcmpl-demo-{digest(body)[:16]}",
        "object": "chat.completion",
        "created": 0,
        "model": body.get("model"),
        "system_fingerprint": model_id(policy),
        "choices": [choice],
        "usage": {"prompt_tokens": prompt_words, "completion_tokens": len(tokens),
                  "total_tokens": prompt_words + len(tokens)},
    }


def _logprob(token: str, position: int, alternatives: int) -> dict[str, Any]:
    h = int(hashlib.sha256(f"{position}:{token}".encode()).hexdigest()[:8], 16)
    chosen = -((h % 2000) + 1) / 1000  # in [-2.0, -0.001]
    top = [{"token": token, "logprob": chosen, "bytes": list(token.encode())}]
    top += [{"token": f"<alt{j}>", "logprob": chosen - j, "bytes": list(f"<alt{j}>".encode())}
            for j in range(1, alternatives)]
    return {"token": token, "logprob": chosen, "bytes": list(token.encode()), "top_logprobs": top[:alternatives]}


def _error(status: int, message: str, kind: str) -> tuple[int, dict]:
    return status, {"error": {"message": message, "type": kind, "code": status}}


class DemoServer:
    """The endpoint's routes, served by :meth:`serve` on one asyncio loop: no thread per connection, so a hundred
    requests in flight cost what a hundred answers cost and no more."""

    def __init__(self, policy: StandIn, *, model: str | None = None, latency_s: float = 0.0, think: bool = False):
        self.policy, self.model = policy, model or model_id(policy)
        self.latency_s, self.think = latency_s, think

    def answer(self, method: str, path: str, raw: bytes) -> tuple[int, dict]:
        if method == "GET" and path == "/health":
            return 200, {"status": "ok"}
        if method == "GET" and path == "/v1/models":
            return 200, {"object": "list", "data": [{"id": self.model, "object": "model", "owned_by": "scitaste-demo"}]}
        if method != "POST" or path != CHAT_PATH:
            return _error(404, f"no route {method} {path}", "not_found_error")
        try:
            body = json.loads(raw)
            messages = body["messages"]
            if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
                raise TypeError("messages must be a list of objects")
        except (ValueError, KeyError, TypeError) as exc:
            return _error(400, f"not a chat completion request: {exc}", "invalid_request_error")
        if body.get("model") != self.model:
            return _error(404, f"The model `{body.get('model')}` does not exist; this server serves {self.model}",
                          "not_found_error")
        try:
            return 200, chat_completion(self.policy, body, think=self.think)
        except ValueError as exc:  # the policy cannot answer this request (e.g. a schema it does not handle)
            return _error(400, str(exc), "invalid_request_error")

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """HTTP/1.1 with keep-alive: requests with a Content-Length body (what OpenAI clients send), one at a time."""
        try:
            while True:
                lines = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
                method, target, version = lines[0].split(" ", 2)
                headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
                if "chunked" in headers.get("transfer-encoding", "").lower():
                    status, payload = _error(411, "send the body with a Content-Length", "invalid_request_error")
                    keep_alive = False
                else:
                    raw = await reader.readexactly(int(headers.get("content-length") or 0))
                    path = target.split("?", 1)[0]
                    if self.latency_s and path == CHAT_PATH:
                        await asyncio.sleep(self.latency_s)
                    status, payload = self.answer(method, path, raw)
                    keep_alive = version == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
                log.debug("%s %s %d", method, target, status)
                data = json.dumps(payload).encode()
                connection = "" if keep_alive else "Connection: close\r\n"
                head = (f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\nContent-Type: application/json\r\n"
                            f"Content-Length: {len(data)}\r\n{connection}\r\n")
                writer.write(head.encode() + data)  # one write: a loopback send costs as much as an answer
                await writer.drain()
                if not keep_alive:
                    break
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ValueError):
            pass  # the client closed the connection, or sent something that is not HTTP: drop it
        finally:
            writer.close()

    async def serve(self, host: str, port: int) -> None:
        server = await asyncio.start_server(self._connection, host, port, backlog=1024)
        log.info("demo endpoint %s serving %s on http://%s:%d/v1", self.policy.name, self.model, host, port)
        async with server:
            await server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--policy", default="generic", help="a registered stand-in (workflow_scripts.llm.stand_in) "
                                                        "or module:attribute")
    p.add_argument("--model", default=None, help="the model name served (default: demo/<policy>@<version>)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--latency-ms", type=float, default=0.0, help="added to every answer")
    p.add_argument("--think", action="store_true", help="wrap every answer in a <think> block")
    args = p.parse_args(argv)
    setup_logging(args.verbose)
    server = DemoServer(load(args.policy), model=args.model, latency_s=args.latency_ms / 1000, think=args.think)
    asyncio.run(server.serve(args.host, args.port))


if __name__ == "__main__":
    main()
