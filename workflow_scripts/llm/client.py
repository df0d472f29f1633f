"""The one client of OpenAI-compatible chat endpoints: cache first, then bounded concurrent requests with rate
limits, retries and a budget.

    with open_client("judge", config["llm"]["endpoints"]["judge"], config["llm"]["cache_dir"]) as client:
        answers = client.complete_many([ChatRequest(messages, {"temperature": 0, "max_tokens": 64}, schema=SCORE)])

(:func:`workflow_scripts.llm.endpoints.open_client` starts and stops the endpoint's server where it has one.)

- Every request is first looked up in the cache by its key (:mod:`.request`); identical requests of one batch are
  asked once. A rerun of a finished step sends nothing.
- At most ``limits.max_concurrency`` requests are in flight; ``requests_per_minute`` / ``tokens_per_minute`` pace
  them (:class:`.limits.Pacer`).
- 429, 408, 409, 5xx, timeouts (``limits.timeout_s`` per request), connection errors and malformed bodies are
  retried ``limits.max_retries`` times with exponential backoff and jitter; a ``Retry-After`` (or
  ``retry-after-ms``) is honoured and holds back every request to the endpoint, not only the one refused. Other 4xx
  are final for their request. 401/403/404 (wrong key, model or URL) and connection errors that outlast the retries
  stop the batch with :class:`EndpointError`: every answer received until then is in the cache.
- An answer failing the caller's schema is asked again with seed + 1, + 2, ... (``invalid_retries``); each
  failing answer is a rejects row (request key, kind, excerpt), as is each truncated one.
- Responses are saved with any secret value replaced by ``***``; the key goes only into the Authorization header.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from dataclasses import dataclass
from typing import Any, Mapping, Sequence
from urllib.parse import urlsplit

import aiohttp

from workflow_scripts import __version__
from workflow_scripts.common.io import Rejects
from workflow_scripts.common.redact import excerpt, redact, redact_bytes
from workflow_scripts.llm.answers import Answer, interpret
from workflow_scripts.llm.cache import ResponseCache
from workflow_scripts.llm.config import Endpoint
from workflow_scripts.llm.limits import Budget, Pacer
from workflow_scripts.llm.request import ChatRequest, estimated_tokens, request_body, request_key
from workflow_scripts.llm.summary import RunStats
from workflow_scripts.sources.http import retry_after_seconds

log = logging.getLogger(__name__)

RETRY_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})
FATAL_STATUS = frozenset({401, 403, 404})  # every other request would get the same
PROGRESS_EVERY_S = 60.0
_jitter = random.Random()


class EndpointError(RuntimeError):
    """The endpoint cannot answer at all (down, wrong key, model or URL); redacted like every message."""

    def __init__(self, message: str):
        super().__init__(redact(message))


@dataclass
class _Failure:
    kind: str
    detail: str


class _Malformed(ValueError):
    pass


class LLMClient:
    def __init__(self, endpoint: Endpoint, base_url: str, cache: ResponseCache):
        self.endpoint = endpoint
        self.base_url = base_url.rstrip("/")
        self.cache = cache
        self.stats = RunStats()
        self.rejects = Rejects(max_raw_chars=500)
        limits = endpoint.limits
        self._requests_pace = Pacer(limits["requests_per_minute"]) if limits["requests_per_minute"] else None
        self._tokens_pace = Pacer(limits["tokens_per_minute"]) if limits["tokens_per_minute"] else None
        self._budget = Budget(endpoint.budget["max_requests"], endpoint.budget["max_tokens"])
        self._resume_at = 0.0  # a Retry-After holds every request back until then (monotonic clock)

    # ------------------------------------------------------------------------------------------------ public
    def complete(self, request: ChatRequest) -> Answer:
        return self.complete_many([request])[0]

    def complete_many(self, requests: Sequence[ChatRequest]) -> list[Answer]:
        """Answers in the order of ``requests``; see the module docstring for what each status means."""
        return asyncio.run(self.acomplete_many(requests))

    async def acomplete_many(self, requests: Sequence[ChatRequest]) -> list[Answer]:
        started = time.monotonic()
        answers: list[Answer | None] = [None] * len(requests)
        pending = list(range(len(requests)))
        for attempt in range(self.endpoint.invalid_retries + 1):
            asked = [requests[i] if attempt == 0 else _reseeded(requests[i], attempt) for i in pending]
            retry = []
            for i, answer in zip(pending, await self._answer_all(asked)):
                answer.attempts = attempt + 1
                answers[i] = answer
                if answer.status in ("invalid", "truncated"):  # truncation is counted by its finish_reason
                    self.rejects.add(f"llm:{self.endpoint.use}", answer.key, answer.problem, answer.raw)
                if answer.status == "invalid":
                    self.stats.invalid[answer.problem_kind] += 1
                    retry.append(i)
            pending = retry
            if not pending:
                break
        self.stats.wall_s += time.monotonic() - started
        return answers  # type: ignore[return-value]

    def summary(self) -> dict[str, Any]:
        return self.stats.to_dict(self.provenance(), self.endpoint.prices)

    def provenance(self) -> dict[str, Any]:
        """What made the answers: for dataset cards, metrics and the report (a demo stand-in says so)."""
        e = self.endpoint
        stand_in = e.stand_in
        return {"use": e.use, "kind": e.kind, "model": e.model,
                "base_url": e.base_url if e.kind == "external" else None,
                "stand_in": {"name": stand_in.name, "version": stand_in.version, "doc": stand_in.doc}
                if stand_in else None}

    def close(self) -> None:
        self.cache.close()

    # ------------------------------------------------------------------------------------------------ batch
    async def _answer_all(self, requests: Sequence[ChatRequest]) -> list[Answer]:
        e = self.endpoint
        model, extra_body, structured, strip = e.model, e.extra_body, e.structured_output, e.strip_think  # once
        bodies = [request_body(r, model, extra_body=extra_body, structured_output=structured) for r in requests]
        keys = [request_key(b) for b in bodies]
        cached: dict[str, dict] = {}
        missing: dict[str, int] = {}  # key -> the first request asking it: identical requests are asked once
        for i, key in enumerate(keys):
            if key not in cached and key not in missing:
                record = self.cache.get(key)
                if record is None:
                    missing[key] = i
                else:
                    cached[key] = record
        fetched = await self._fetch_all([(key, bodies[i]) for key, i in missing.items()]) if missing else {}
        answers = []
        for i, (request, key) in enumerate(zip(requests, keys)):
            record = cached.get(key) or fetched[key]
            if isinstance(record, _Failure):
                status = "not_asked" if record.kind == "budget" else "failed"
                answers.append(Answer(key, status, problem=f"{record.kind}: {record.detail}"))
                continue
            from_cache = key in cached or missing[key] != i
            self.stats.answered(record, from_cache)
            answers.append(interpret(key, record, schema=request.schema, strip=strip, cached=from_cache))
        return answers

    async def _fetch_all(self, items: list[tuple[str, dict]]) -> dict[str, dict | _Failure]:
        e = self.endpoint
        results: dict[str, dict | _Failure] = {}
        queue = iter(items)
        fatal: list[EndpointError] = []
        key = e.api_key()
        headers = {"User-Agent": f"scitaste/{__version__}", "Content-Type": "application/json",
                   **({"Authorization": f"Bearer {key}"} if key else {})}
        workers = min(e.limits["max_concurrency"], len(items))
        log.info("%s: %d request(s) to ask", e.label, len(items))
        progress = {"at": time.monotonic(), "start": time.monotonic()}

        def report_progress() -> None:  # a long batch says how far it is, once a minute
            now = time.monotonic()
            if now - progress["at"] >= PROGRESS_EVERY_S:
                progress["at"] = now
                log.info("%s: %d of %d asked, %.1f/s", e.label, len(results), len(items),
                         len(results) / (now - progress["start"]))

        async def worker(http: aiohttp.ClientSession) -> None:
            for key, body in queue:  # shared by the workers: each item is taken once
                if fatal:
                    return
                estimate = estimated_tokens(body)
                refusal = self._budget.refusal(estimate)
                if refusal:
                    if not self.stats.budget_stop:
                        self.stats.budget_stop = refusal
                        log.warning("%s: %s; the requests left are not asked", e.label, refusal)
                    self.stats.not_asked += 1
                    results[key] = _Failure("budget", refusal.split(": ", 1)[1])
                    continue
                self._budget.start(estimate)
                used = 0
                try:
                    outcome = await self._fetch(http, key, body, estimate)
                    if isinstance(outcome, dict):
                        used = outcome["usage"]["prompt_tokens"] + outcome["usage"]["completion_tokens"]
                    results[key] = outcome
                    report_progress()
                except EndpointError as exc:
                    fatal.append(exc)
                    return
                finally:
                    self._budget.finish(estimate, used)

        loopback = urlsplit(self.base_url).hostname in ("127.0.0.1", "localhost", "::1")
        async with aiohttp.ClientSession(
            headers=headers, timeout=aiohttp.ClientTimeout(total=e.limits["timeout_s"]),
            connector=aiohttp.TCPConnector(limit=workers),
            trust_env=not loopback,  # a cluster's HTTP proxy is for the internet, not for a server on this node
        ) as http:
            await asyncio.gather(*(worker(http) for _ in range(workers)))
        if fatal:
            answered = sum(isinstance(r, dict) for r in results.values())
            raise EndpointError(f"{fatal[0]}; this batch: {answered} answered and cached, "
                                f"{len(items) - len(results)} not done; answers so far are kept in {self.cache.dir}")
        return results

    # ------------------------------------------------------------------------------------------------ one request
    async def _fetch(self, http: aiohttp.ClientSession, key: str, body: dict, estimate: int) -> dict | _Failure:
        e, limits = self.endpoint, self.endpoint.limits
        payload = json.dumps(body, ensure_ascii=False).encode("utf-8")
        url = f"{self.base_url}/chat/completions"
        for attempt in range(limits["max_retries"] + 1):
            await self._wait_turn(estimate)
            self.stats.http_attempts += 1
            sent = time.monotonic()
            retry_after = None
            try:
                async with http.post(url, data=payload) as response:
                    status, data, response_headers = response.status, await response.read(), response.headers
            except TimeoutError:  # aiohttp's timeouts are TimeoutErrors
                kind, detail = "timeout", f"no answer within {limits['timeout_s']:g} s"
            except aiohttp.ClientConnectorError as exc:
                kind, detail = "connection", f"cannot connect: {exc}"
            except aiohttp.ClientError as exc:
                kind, detail = "transport", f"{type(exc).__name__}: {exc}"
            else:
                if status == 200:
                    try:
                        record = completion_record(redact_bytes(data))
                    except _Malformed as exc:
                        kind, detail = "malformed_response", str(exc)
                    else:
                        record.update(model=body["model"], latency_s=round(time.monotonic() - sent, 4),
                                      at=round(time.time(), 3))
                        self.cache.put(key, record)
                        self._settle_tokens(estimate, record["usage"])
                        return record
                elif status in FATAL_STATUS:
                    refused = (f"refused the API key (from ${e.api_key_env})" if e.api_key()
                               else f"wants an API key (${e.api_key_env} is not set)")
                    what = {401: refused, 403: "denied access", 404: "has no such model or route"}[status]
                    raise EndpointError(f"{e.label} at {url}: HTTP {status}, the server {what}: "
                                        f"{excerpt(data.decode('utf-8', 'replace'))}")
                else:
                    kind, detail = f"http_{status}", excerpt(data.decode("utf-8", "replace"))
                    if status not in RETRY_STATUS:
                        self.stats.failures[kind] += 1
                        return _Failure(kind, detail)
                    retry_after = _retry_after(response_headers)
            if attempt == limits["max_retries"]:
                if kind == "connection":
                    raise EndpointError(f"{e.label} at {url} is unreachable: {detail} "
                                        f"({attempt + 1} attempts over backoff up to {limits['backoff_max_s']:g} s)")
                self.stats.failures[kind] += 1
                log.warning("%s: request %s failed after %d attempts: %s: %s", e.label, key[:12], attempt + 1,
                            kind, detail)
                return _Failure(kind, f"{detail} (after {attempt + 1} attempts)")
            self.stats.retries[kind] += 1
            delay = self._backoff(attempt, retry_after)
            log.warning("%s: request %s: %s: %s; retry %d/%d in %.1f s", e.label, key[:12], kind, detail,
                        attempt + 1, limits["max_retries"], delay)
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def _wait_turn(self, estimate: int) -> None:
        now = time.monotonic()
        wait = max(0.0, self._resume_at - now)
        if self._requests_pace:
            wait = max(wait, self._requests_pace.reserve(1, now))
        if self._tokens_pace:
            wait = max(wait, self._tokens_pace.reserve(estimate, now))
        if wait > 0:
            await asyncio.sleep(wait)

    def _settle_tokens(self, estimate: int, usage: Mapping[str, int]) -> None:
        if self._tokens_pace and usage:
            self._tokens_pace.adjust(usage.get("prompt_tokens", 0) + usage.get("completion_tokens", 0) - estimate)

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        limits = self.endpoint.limits
        if retry_after is not None:  # honoured, for every request to this endpoint, plus a little jitter
            self._resume_at = max(self._resume_at, time.monotonic() + retry_after)
            return retry_after + _jitter.uniform(0, min(1.0, 0.1 * retry_after + 0.05))
        ceiling = min(limits["backoff_max_s"], limits["backoff_base_s"] * 2 ** attempt)
        return ceiling / 2 + _jitter.uniform(0, ceiling / 2)


def _reseeded(request: ChatRequest, attempt: int) -> ChatRequest:
    """The request asked again after an invalid answer: the same, with the next seed."""
    return request.with_seed((request.params.get("seed") or 0) + attempt)


def _retry_after(headers: Mapping[str, str]) -> float | None:
    if "retry-after-ms" in headers:  # OpenAI's, more precise than Retry-After
        try:
            return float(headers["retry-after-ms"]) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return retry_after_seconds(value)


def completion_record(data: bytes) -> dict[str, Any]:
    """The fields of a chat.completion body the cache keeps; _Malformed when it is not one."""
    try:
        obj = json.loads(data)
        choice = obj["choices"][0]
        message = choice["message"]
        content = message.get("content")
        if content is not None and not isinstance(content, str):
            raise TypeError("message content is not text")
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
        raise _Malformed(f"not a chat completion ({type(exc).__name__}: {exc}): "
                         f"{excerpt(data.decode('utf-8', 'replace'))}") from None
    usage = obj.get("usage") or {}
    record = {"content": content or "", "finish_reason": choice.get("finish_reason"),
              "usage": {"prompt_tokens": int(usage.get("prompt_tokens") or 0),
                        "completion_tokens": int(usage.get("completion_tokens") or 0)},
              "served_model": obj.get("model")}
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    if reasoning:
        record["reasoning"] = reasoning
    if choice.get("logprobs"):
        record["logprobs"] = choice["logprobs"].get("content")
    return record
