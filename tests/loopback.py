"""A real HTTP server on 127.0.0.1 for testing the harvesters against their native protocols.

Tests register a handler ``fn(request) -> Reply`` per path; the server records every request it saw, so a test can
assert on paging, headers and the interval between requests. Nothing is mocked: the clients speak real HTTP.
"""

from __future__ import annotations

import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic() when received

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default


@dataclass
class Reply:
    status: int = 200
    body: bytes | str = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/octet-stream"


Handler = Callable[[Request], Reply]


class LoopbackServer:
    def __init__(self):
        self.routes: dict[str, Handler] = {}
        self.requests: list[Request] = []
        server = self

        class _H(BaseHTTPRequestHandler):
            def _serve(self):
                url = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                req = Request(
                    method=self.command,
                    path=url.path,
                    query=parse_qs(url.query, keep_blank_values=True),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=self.rfile.read(length) if length else b"",
                    at=time.monotonic(),
                )
                server.requests.append(req)
                handler = server.routes.get(url.path)
                reply = handler(req) if handler else Reply(404, b"no route")
                body = reply.body.encode("utf-8") if isinstance(reply.body, str) else reply.body
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(body)))
                for k, v in reply.headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _serve

            def log_message(self, *args):  # keep test output quiet
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _H)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def route(self, path: str, handler: Handler) -> None:
        self.routes[path] = handler

    def __enter__(self) -> "LoopbackServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


REPO = Path(__file__).resolve().parents[1]


def kill_when(argv: list[str], ready: Callable[[], bool], waiting_for: str, release: Callable[[], None],
              env: dict | None = None) -> None:
    """Run the harvester command ``argv`` (from the repository root) until ``ready()`` holds, while the server holds
    its next answer, and kill it with SIGKILL: no clean-up runs, as when a node dies. ``release`` then lets the held
    answer go."""
    proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while not ready():
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, f"the harvester never asked for {waiting_for}"
            time.sleep(0.05)
        proc.kill()
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stderr.close()
        release()
