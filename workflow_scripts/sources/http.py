"""Polite HTTP for every harvester: a minimum interval between requests, retries with backoff, Retry-After honoured.

All external sources (OAI-PMH, arXiv API, Semantic Scholar, OpenAlex, OpenReview, journals) go through
:class:`PoliteClient`, so rate limits and retry rules live in one place and are configured per source.
"""

from __future__ import annotations

import argparse
import email.utils
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import httpx

from workflow_scripts import __version__
from workflow_scripts.common.redact import excerpt, redact, redact_bytes

log = logging.getLogger(__name__)

RETRY_STATUS = {429, 500, 502, 503, 504}
GONE_STATUS = {404, 410}  # the resource does not exist (any more): final for that one resource, never retried
USER_AGENT = f"scitaste/{__version__} (research corpus builder; polite harvesting)"


class HarvestError(RuntimeError):
    """A request that still failed after all retries, or failed in a way retrying cannot fix.

    The message is redacted here, once for every source: it names URLs and quotes bodies, and a server may echo the
    request's credentials into either. ``status``: the HTTP status of the answer that ended the request, None when
    none came (a network error, or a refusal that is not about one answer).
    """

    def __init__(self, message: str, status: int | None = None):
        super().__init__(redact(message))
        self.status = status

    @property
    def gone(self) -> bool:
        """The server says the resource does not exist (404, 410): a final answer about that one resource."""
        return self.status in GONE_STATUS


@dataclass
class RetryPolicy:
    min_interval_s: float = 3.0  # arXiv asks for at least 3 s between requests
    max_retries: int = 8
    backoff_base_s: float = 2.0
    backoff_max_s: float = 300.0
    timeout_s: float = 120.0


def retry_after_seconds(header: str | None) -> float | None:
    """Retry-After is either delta-seconds or an HTTP-date (RFC 9110 10.2.3)."""
    if header is None:
        return None
    header = header.strip()
    if header.isdigit():
        return float(header)
    try:
        when = email.utils.parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class PoliteClient:
    def __init__(
        self,
        policy: RetryPolicy | None = None,
        headers: dict[str, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
    ):
        self.policy = policy or RetryPolicy()
        self._sleep = sleep
        self._last_request = float("-inf")
        self._client = httpx.Client(
            headers={"User-Agent": USER_AGENT, **(headers or {})},
            timeout=self.policy.timeout_s,
            follow_redirects=True,
            transport=transport,
        )

    def __enter__(self) -> "PoliteClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def _wait_turn(self) -> None:
        # counted from the end of the previous exchange: the server sees at least min_interval_s between requests
        # however long sending or answering took
        wait = self._last_request + self.policy.min_interval_s - time.monotonic()
        if wait > 0:
            self._sleep(wait)

    def request(self, method: str, url: str, **kwargs) -> httpx.Response:
        """Send with retries. Returns the first 2xx response; raises HarvestError otherwise.

        429/5xx and network errors are retried; Retry-After, when sent, replaces the exponential backoff.
        Other 4xx answers are final (a wrong request does not get better by repeating it).
        """
        p = self.policy
        for attempt in range(p.max_retries + 1):
            self._wait_turn()
            try:
                resp = self._client.request(method, url, **kwargs)
            except httpx.TransportError as exc:
                self._last_request = time.monotonic()
                reason, delay, status = f"{type(exc).__name__}: {exc}", None, None
            else:
                self._last_request = time.monotonic()
                if resp.is_success:
                    return _without_secrets(resp)
                status = resp.status_code
                if status not in RETRY_STATUS:
                    raise HarvestError(f"{method} {url} -> HTTP {status}: {excerpt(resp.text)}", status)
                reason = f"HTTP {status}: {excerpt(resp.text)}"
                delay = retry_after_seconds(resp.headers.get("Retry-After"))
            if attempt == p.max_retries:
                raise HarvestError(f"{method} {url} failed after {p.max_retries + 1} attempts, last: {reason}", status)
            if delay is None:
                delay = min(p.backoff_max_s, p.backoff_base_s * 2**attempt)
            log.warning("%s %s: %s; retry %d/%d in %.1f s", method, url, reason, attempt + 1, p.max_retries, delay)
            self._sleep(delay)
        raise AssertionError("unreachable")

    def get(self, url: str, **kwargs) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def download(self, url: str, target, chunk_bytes: int = 1 << 20, **kwargs) -> int:
        """Stream ``url`` into ``target``, resuming a killed download from ``target.part`` with an HTTP Range request.

        The finished file appears under its final name only when complete (rename), so a consumer never reads half of
        it. Returns the number of bytes of the finished file.
        """
        target = Path(target)
        part = target.with_name(target.name + ".part")
        target.parent.mkdir(parents=True, exist_ok=True)
        base_headers = kwargs.pop("headers", {})
        for attempt in range(self.policy.max_retries + 1):
            have = part.stat().st_size if part.exists() else 0
            headers = {**base_headers, **({"Range": f"bytes={have}-"} if have else {})}
            self._wait_turn()
            try:
                with self._client.stream("GET", url, headers=headers, **kwargs) as resp:
                    if resp.status_code == 416:  # asked past the end: the part file already holds everything
                        break
                    if resp.status_code in RETRY_STATUS:
                        raise httpx.HTTPStatusError(f"HTTP {resp.status_code}", request=resp.request, response=resp)
                    if not resp.is_success:
                        raise HarvestError(f"GET {url} -> HTTP {resp.status_code}", resp.status_code)
                    mode = "ab" if resp.status_code == 206 else "wb"  # 200: the server ignored Range, start over
                    if mode == "wb" and have:
                        log.info("%s: server does not resume, downloading from the start", url)
                    with open(part, mode) as fh:
                        for chunk in resp.iter_bytes(chunk_bytes):
                            fh.write(chunk)
                break
            except (httpx.TransportError, httpx.HTTPStatusError) as exc:
                self._last_request = time.monotonic()
                if attempt == self.policy.max_retries:
                    status = exc.response.status_code if isinstance(exc, httpx.HTTPStatusError) else None
                    raise HarvestError(f"GET {url} failed after {attempt + 1} attempts: {exc}", status) from exc
                delay = min(self.policy.backoff_max_s, self.policy.backoff_base_s * 2**attempt)
                log.warning("GET %s: %s; resuming in %.1f s", url, exc, delay)
                self._sleep(delay)
        self._last_request = time.monotonic()
        part.replace(target)
        return target.stat().st_size


def _without_secrets(resp: httpx.Response) -> httpx.Response:
    """The response, with the value of any secret it echoes replaced by ``***``: callers save bodies verbatim."""
    clean = redact_bytes(resp.content)
    if clean is resp.content:
        return resp
    log.warning("%s %s: the response contains a secret's value; it is replaced by *** before use",
                resp.request.method, redact(str(resp.request.url)))
    # the body is already decoded: encoding and length headers of the original would no longer describe it
    stale = {"content-encoding", "content-length", "transfer-encoding"}
    headers = [(k, v) for k, v in resp.headers.multi_items() if k.lower() not in stale]
    return httpx.Response(resp.status_code, headers=headers, content=clean, request=resp.request)


# --------------------------------------------------------------------------------------------------------------------
# the command-line options of a harvester's politeness, shared by every source


def add_policy_args(p: argparse.ArgumentParser, min_interval_s: float, what: str = "requests") -> None:
    p.add_argument("--min-interval-s", type=float, default=min_interval_s, help=f"seconds between {what}")
    p.add_argument("--max-retries", type=int, default=8, help="retries on 429/5xx/network errors")
    p.add_argument("--backoff-base-s", type=float, default=2.0, help="exponential backoff base without Retry-After")
    p.add_argument("--backoff-max-s", type=float, default=300.0, help="backoff cap")
    p.add_argument("--timeout-s", type=float, default=120.0, help="per-request timeout")


def policy_of(args: argparse.Namespace, min_interval_s: float | None = None) -> RetryPolicy:
    interval = args.min_interval_s if min_interval_s is None else min_interval_s
    return RetryPolicy(interval, args.max_retries, args.backoff_base_s, args.backoff_max_s, args.timeout_s)


def quiet_http_logs() -> None:
    for name in ("httpx", "httpcore"):  # one line per request otherwise
        logging.getLogger(name).setLevel(logging.WARNING)
