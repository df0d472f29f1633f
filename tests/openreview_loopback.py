"""A loopback OpenReview API (v1 and v2): the endpoints openreview-py's ``Client`` and ``api.OpenReviewClient`` call
for a harvest, with the answers the real API gives (JSON errors with ``name``/``message``/``status``/``details``).

- ``POST /login`` (the v1 client logs in at its API v2 address, which ``OPENREVIEW_API_V2_URL`` points here)
- ``GET /notes``: ``invitation`` (any of an API v2 note's ``invitations``), ``details=directReplies``, ``sort=id``,
  ``limit``, ``after``, ``with_count`` / ``count``
- ``GET /pdf?id=`` (the latest PDF) and ``GET /attachment?id=&name=`` (e.g. ``original_pdf``)

Anonymous ``/notes`` requests answer 403 ``ChallengeRequiredError``; ``rate_limit_next`` makes the next request to a
path answer 429 ``RateLimitError`` with a ``details.resetTime``; ``on_request`` lets a test act on a request before
it is answered (e.g. kill the harvester mid-run).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Callable

from tests.loopback import LoopbackServer, Reply, Request
from workflow_scripts.sources.reviews import openreview

TOKEN = "loopback-token-0123456789"
USER = "reviewer@example.org"
PASSWORD = "loopback-password"


def _error(status: int, name: str, message: str, **details) -> Reply:
    body = {"name": name, "message": message, "status": status, **({"details": details} if details else {})}
    return Reply(status, json.dumps(body), content_type="application/json; charset=utf-8")


class FakeOpenReview:
    def __init__(self, server: LoopbackServer):
        self.server = server
        self.notes: dict[str, list[dict]] = {}  # invitation -> notes (with details)
        self.pdfs: dict[tuple[str, str], bytes] = {}  # (note id, field) -> bytes
        self.rate_limited: dict[str, float] = {}  # path -> seconds until the reset time of its next 429
        self.on_request: Callable[[Request], None] | None = None
        for path, handler in (("/login", self._login), ("/notes", self._notes), ("/pdf", self._pdf),
                              ("/attachment", self._attachment)):
            server.route(path, self._wrap(path, handler))

    def load_snapshot(self, snapshot: Path) -> None:
        """Serve the notes (API v1 or v2, pages of any name and shape) and PDFs of an OpenReview snapshot (e.g. the
        demo's)."""
        for page in openreview.page_files(snapshot):
            for note in openreview.page_notes(json.loads(page.read_text())):
                for invitation in openreview.note_invitations(note):
                    self.notes.setdefault(invitation, []).append(note)
        for pdf in sorted(snapshot.glob("pdfs/*.pdf")):
            note = next(n for notes in self.notes.values() for n in notes if n["id"] == pdf.stem)
            field = "original_pdf" if note["content"].get("original_pdf") else "pdf"
            self.pdfs[(pdf.stem, field)] = pdf.read_bytes()

    def rate_limit_next(self, path: str, reset_in_s: float) -> None:
        self.rate_limited[path] = reset_in_s

    def requests(self, path: str) -> list[Request]:
        return [r for r in self.server.requests if r.path == path]

    def _wrap(self, path: str, handler: Callable[[Request], Reply]) -> Callable[[Request], Reply]:
        def serve(req: Request) -> Reply:
            if self.on_request:
                self.on_request(req)
            if path in self.rate_limited:
                reset = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=self.rate_limited.pop(path))
                return _error(429, "RateLimitError", "Too many requests: You have made 37 requests, surpassing the "
                              "limit of 36 requests.", limit=36, remaining=0,
                              resetTime=reset.isoformat(timespec="milliseconds").replace("+00:00", "Z"))
            return handler(req)

        return serve

    def _login(self, req: Request) -> Reply:
        body = json.loads(req.body or b"{}")
        if body.get("id") != USER or body.get("password") != PASSWORD:
            return _error(400, "InvalidCredentialsError", "Invalid username or password")
        user = {"id": USER, "profile": {"id": "~Loop_Back1"}}
        return Reply(200, json.dumps({"token": TOKEN, "user": user}), content_type="application/json")

    def _authorized(self, req: Request) -> bool:
        return req.headers.get("authorization") == f"Bearer {TOKEN}"

    def _notes(self, req: Request) -> Reply:
        if not self._authorized(req):
            return _error(403, "ChallengeRequiredError", "Please complete the challenge to continue",
                          challengeUrl="https://openreview.net/challenge")
        notes = sorted(self.notes.get(req.arg("invitation"), []), key=lambda n: n["id"])
        after, limit = req.arg("after"), int(req.arg("limit", "1000"))
        page = [n for n in notes if after is None or n["id"] > after][:limit]
        if req.arg("details") != "directReplies":
            page = [{k: v for k, v in n.items() if k != "details"} for n in page]
        return Reply(200, json.dumps({"notes": page, "count": len(notes)}), content_type="application/json")

    def _file(self, note_id: str | None, field: str) -> Reply:
        data = self.pdfs.get((note_id, field))
        if data is None:
            return _error(404, "NotFoundError", f"The {field} of {note_id} was not found")
        return Reply(200, data, content_type="application/pdf")

    def _pdf(self, req: Request) -> Reply:
        return self._file(req.arg("id"), "pdf")

    def _attachment(self, req: Request) -> Reply:
        return self._file(req.arg("id"), req.arg("name"))
