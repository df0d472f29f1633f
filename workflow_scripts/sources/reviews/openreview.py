"""OpenReview: a resumable harvester using openreview-py, for API v1 (ICLR up to 2023) and API v2 (ICLR 2024 on),
and the parser of its note pages into the Reviewer line's papers and reviews tables (tables.py).

    python -m workflow_scripts.sources.reviews.openreview harvest --out-dir DIR --venues JSON --done F [--notes-only]
    python -m workflow_scripts.sources.reviews.openreview parse --snapshot DIR --venues JSON --pdf-text T.parquet \
        --out-papers P --out-reviews R --rejects X --summary S

Each configured venue names its invitations, because they drift between years: submissions
(``ICLR.cc/{Y}/Conference/-/Blind_Submission``), withdrawn and desk-rejected papers (their own invitations), the
decision (2019: ``.../-/Paper<N>/Meta_Review``, field ``recommendation``; 2020/2021: ``.../Paper<N>/-/Decision``,
field ``decision``) and the official reviews.

A venue's ``api`` (``v1``, the default, or ``v2``) picks the client: ``openreview.Client`` at ``--base-url`` or
``openreview.api.OpenReviewClient`` at ``--base-url-v2``. API v2 notes name their invitations in a list
(``invitations``) and wrap every content value as ``{"value": ...}`` (:func:`content_values` unwraps both kinds); an
ICLR 2024+ venue has one submission invitation (``ICLR.cc/2024/Conference/-/Submission``, withdrawn and desk-rejected
papers included, told apart by ``content.venueid``) and reviews as ``ICLR.cc/2024/Conference/Submission<N>/-/
Official_Review``.

``harvest`` logs in with the account in the environment variables the config names (anonymous access now answers
403 ChallengeRequiredError), then pages through every invitation with ``get_notes`` (``sort=id``, ``after=<last
id>``, submissions with ``details=directReplies``), saving each page verbatim as ``notes/<invitation>/page-NNNNN.json``
(``{"notes": [...]}``, each note as the API sends it, ``details`` included) and then ``state.json``; then, unless
``--notes-only``, it downloads the submitted PDF of each API v1 submission to ``pdfs/<note id>.pdf``: ``original_pdf``
where the note has it, so an accepted paper's de-anonymised camera-ready does not leak its decision, else ``pdf``.
Killed and rerun, it goes on after the last saved page and skips PDFs already on disk: no duplicate and no lost note.
A 429 answer is waited out until its ``details.resetTime`` (up to ``--max-wait-s``); 5xx answers are retried with
backoff; every call waits ``--min-interval-s`` after the previous one.

A snapshot is such a directory: note pages + ``pdfs/``. The reader takes every ``*.json`` (or ``.json.gz``) file under
it whatever its name (harvests made by other tools): a page ``{"notes": [...]}`` (the API's own answer), a list of
notes, or one note; an empty, truncated or foreign file is a bad file (bad_input.py), a note without id, invitation or
content a rejected record.

``parse`` classifies notes by their ``invitation``: submissions that were withdrawn or desk-rejected (listed in those
invitations, or with a Withdraw / Desk_Reject reply) are counted and excluded; a submission without a decision
reply, or with a decision value that is neither an accept nor a reject, is a rejects row. Direct replies become the
reviews table (official reviews with rating and confidence as numbers, meta-reviews, decisions, comments); the body
sections come from the PDF text table (pdf_text.py).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import logging
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import openreview
import polars as pl
import requests
from requests.adapters import HTTPAdapter
from tqdm import tqdm
from urllib3.util.retry import Retry

from workflow_scripts.common.cli import json_arg, parser, setup_logging
from workflow_scripts.common.io import Rejects, append_jsonl, write_bytes_atomic, write_json_atomic
from workflow_scripts.common.redact import excerpt
from workflow_scripts.sources.bad_input import BadInput, error_answer, load_json_file
from workflow_scripts.sources.errors import BadFileError, RecordError, UnusableFile, run_main
from workflow_scripts.sources.http import HarvestError, RetryPolicy
from workflow_scripts.sources.reader_io import lost_to_bad_pages, remove_stale_temp_files
from workflow_scripts.sources.reviews import tables
from workflow_scripts.sources.reviews.text import score

log = logging.getLogger(__name__)

SOURCE = "openreview"
STATE = "state.json"
FAILED_PDFS = "pdfs/failed.jsonl"
RETRY_5XX = (500, 502, 503, 504)
MAX_RATE_LIMIT_WAITS = 20  # a server that keeps answering 429 after its own reset time must not loop forever
TEXT_FIELDS = ("review", "metareview", "comment")
ANONYMOUS = {"anonymous", "anonymous authors"}


@dataclass(frozen=True)
class Venue:
    """One conference-year's invitations (config ``reviewer.openreview.venues``, ``scijudge.ood.iclr.venues``);
    ``{number}`` is the paper number. Only the Reviewer line reads decisions."""

    venue: str
    year: int
    submission: str
    review: str
    api: str = "v1"
    withdrawn: str | None = None
    desk_rejected: str | None = None
    decision: str | None = None
    decision_field: str | None = None

    @classmethod
    def from_config(cls, block: dict) -> "Venue":
        return cls(**{k: block[k] for k in cls.__dataclass_fields__ if block.get(k) is not None})

    def invitations(self) -> list[str]:
        return [i for i in (self.submission, self.withdrawn, self.desk_rejected) if i]

    def matches(self, template: str, invitation: str) -> bool:
        return re.fullmatch(re.escape(template).replace(r"\{number\}", r"\d+"), invitation or "") is not None


def submitted_pdf_field(content: dict) -> str | None:
    """The note field holding the submitted PDF: ``original_pdf`` where OpenReview kept it (the later ``pdf`` of an
    accepted paper is the de-anonymised camera-ready, which gives the decision away), else ``pdf``."""
    for name in ("original_pdf", "pdf"):
        if content.get(name):
            return name
    return None


def slug(invitation: str) -> str:
    return invitation.replace("/", "+")


def note_invitations(note: dict) -> list[str]:
    """A note's invitations: API v1's ``invitation``, API v2's ``invitations`` list."""
    if isinstance(note.get("invitation"), str):
        return [note["invitation"]]
    found = note.get("invitations")
    return [i for i in found if isinstance(i, str)] if isinstance(found, list) else []


def content_values(content: Any) -> dict:
    """A note's content as plain values: API v2 wraps each one as ``{"value": ...}`` (a field whose value the reader
    may not see has no ``value``: None); API v1 content, which holds no objects, passes unchanged."""
    if not isinstance(content, dict):
        return {}
    return {k: v.get("value") if isinstance(v, dict) else v for k, v in content.items()}


# ---------------------------------------------------------------------------------------------------------------------
# harvest


class AccessRefused(HarvestError):
    """403: anonymous access refused (ChallengeRequiredError), or refused to this account."""


class RateLimited(HarvestError):
    """429 for longer than the harvest may wait."""


class ApiAnswer(HarvestError):
    """Any other error answer of the API (e.g. 404 for a PDF it does not have): about one request, not the harvest."""


def _error_info(exc: Exception) -> tuple[str, int | None, str, dict]:
    """(name, status, message, details) of an OpenReviewException, whose argument is the API's JSON error or text."""
    info = exc.args[0] if exc.args else {}
    if not isinstance(info, dict):
        return type(exc).__name__, None, str(info), {}
    details = info.get("details") if isinstance(info.get("details"), dict) else {}
    status = info.get("status") if isinstance(info.get("status"), int) else None
    return str(info.get("name") or "Error"), status, str(info.get("message") or ""), details


class Api:
    """openreview-py's client of one API version (v1 ``Client``, v2 ``api.OpenReviewClient``) with the politeness of
    this project.

    The client retries 429 answers itself with short backoffs, which only spends more of an hour-long quota: its
    session is given an adapter that retries 5xx and connection errors only (with a timeout, which the client does
    not set), and a 429 is waited out here until the reset time the API sends.
    """

    def __init__(self, base_url: str, username_env: str, password_env: str, policy: RetryPolicy, max_wait_s: float,
                 version: str = "v1"):
        self.policy, self.max_wait_s, self.version = policy, max_wait_s, version
        self.envs = (username_env, password_env)
        self._last = float("-inf")
        self.logged_in = False
        username, password = os.environ.get(username_env) or None, os.environ.get(password_env) or None
        make = openreview.api.OpenReviewClient if version == "v2" else openreview.Client
        try:
            self.client = self._call("login", lambda: make(baseurl=base_url, username=username, password=password))
        except HarvestError as exc:
            raise HarvestError(f"OpenReview login with {username_env} / {password_env} failed: {exc}") from None
        self.logged_in = self.client.token is not None

        class TimeoutAdapter(HTTPAdapter):
            def send(self, request, **kwargs):
                kwargs["timeout"] = kwargs.get("timeout") or policy.timeout_s
                return super().send(request, **kwargs)

        retry = Retry(total=policy.max_retries, backoff_factor=policy.backoff_base_s, backoff_max=policy.backoff_max_s,
                      status_forcelist=RETRY_5XX, raise_on_status=False, respect_retry_after_header=True)
        for prefix in ("https://", "http://"):
            self.client.session.mount(prefix, TimeoutAdapter(max_retries=retry))
        log.info("openreview: API %s at %s, %s", version, base_url, "logged in" if self.logged_in else
                 f"anonymous ({username_env} / {password_env} not set)")

    def call(self, what: str, fn: Callable[..., Any], *args, **kwargs) -> Any:
        return self._call(what, lambda: fn(self.client, *args, **kwargs))

    def _call(self, what: str, thunk: Callable[[], Any]) -> Any:
        for _ in range(MAX_RATE_LIMIT_WAITS):
            wait = self._last + self.policy.min_interval_s - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            try:
                return thunk()
            except openreview.OpenReviewException as exc:
                name, status, message, details = _error_info(exc)
                if name == "RateLimitError" or status == 429:
                    self._wait_for_reset(what, message, details)
                    continue
                if name == "ChallengeRequiredError" or status == 403:
                    hint = (f"anonymous access is refused: set {self.envs[0]} and {self.envs[1]} to an OpenReview "
                            "account" if not self.logged_in else "the request was refused although logged in")
                    raise AccessRefused(f"{what}: OpenReview answered 403 {name} ({excerpt(message)}); {hint}") from None
                code = f"{status} " if status else ""
                raise ApiAnswer(f"{what}: OpenReview answered {code}{name}: {excerpt(message)}") from None
            except requests.RequestException as exc:
                raise HarvestError(f"{what}: {type(exc).__name__}: {excerpt(str(exc))}") from None
            finally:
                self._last = time.monotonic()
        raise RateLimited(f"{what}: still rate limited after {MAX_RATE_LIMIT_WAITS} waits; rerun later to resume")

    def _wait_for_reset(self, what: str, message: str, details: dict) -> None:
        reset = details.get("resetTime")
        try:
            when = dt.datetime.fromisoformat(str(reset))
            when = when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)
            wait = max(0.0, (when - dt.datetime.now(dt.timezone.utc)).total_seconds()) + 1.0
        except ValueError:
            when, wait = None, self.policy.backoff_max_s
        if wait > self.max_wait_s:
            raise RateLimited(f"{what}: rate limited until {reset} ({wait:.0f} s, longer than --max-wait-s "
                               f"{self.max_wait_s:.0f}); rerun then, the harvest resumes where it stopped")
        log.warning("%s: rate limited (%s); waiting %.1f s until %s", what, excerpt(message), wait, when or "later")
        time.sleep(wait)


def _fresh_state(request: dict) -> dict:
    return {"request": request, "invitations": {}}


def _load_state(out_dir: Path, request: dict) -> dict:
    path = out_dir / STATE
    if not path.exists():
        return _fresh_state(request)
    state = json.loads(path.read_text(encoding="utf-8"))
    if state.get("request") != request:
        log.warning("%s: its pages were harvested with %s, not %s: the note pages are fetched again (PDFs kept)",
                    out_dir, state.get("request"), request)
        for page in out_dir.glob("notes/*/page-*.json"):
            page.unlink()
        return _fresh_state(request)
    return state


def harvest_notes(apis: dict[str, Api], out_dir: Path, venues: list[Venue], page_size: int, state: dict) -> None:
    for venue in venues:
        api = apis[venue.api]
        for invitation in venue.invitations():
            st = state["invitations"].setdefault(invitation, {"after": None, "pages": 0, "notes": 0, "complete": False})
            details = "directReplies" if invitation == venue.submission else None
            while not st["complete"]:
                notes, count = api.call(f"notes of {invitation} after {st['after']}", _get_notes, invitation=invitation,
                                        details=details, limit=page_size, after=st["after"], version=venue.api)
                if notes:
                    page = out_dir / "notes" / slug(invitation) / f"page-{st['pages'] + 1:05d}.json"
                    write_json_atomic(page, {"invitation": invitation, "count": count, "notes": notes})
                    st.update(after=notes[-1]["id"], pages=st["pages"] + 1, notes=st["notes"] + len(notes))
                st["complete"] = len(notes) < page_size
                # the state follows the page: a kill in between fetches that page again under the same number
                write_json_atomic(out_dir / STATE, state)
                log.info("%s: %d of %s note(s)%s", invitation, st["notes"], count, " (complete)" if st["complete"] else "")


# what API v2's Note.to_json leaves out of a note the API sent (v1's keeps all but details)
V2_NOTE_EXTRAS = ("number", "tcdate", "tmdate", "domain")


def _get_notes(client, invitation: str, details: str | None, limit: int, after: str | None,
               version: str) -> tuple[list[dict], int]:
    notes, count = client.get_notes(invitation=invitation, details=details, sort="id", limit=limit, after=after,
                                    with_count=True)
    extras = V2_NOTE_EXTRAS if version == "v2" else ()
    # Note.to_json leaves out details, which hold the replies
    return [{**n.to_json(), **{k: getattr(n, k) for k in extras if getattr(n, k) is not None},
             "details": n.details} for n in notes], count


def saved_notes(out_dir: Path, invitation: str) -> list[dict]:
    notes = []
    for page in sorted((out_dir / "notes" / slug(invitation)).glob("page-*.json")):
        notes.extend(json.loads(page.read_text(encoding="utf-8"))["notes"])
    return notes


def pdf_selection(notes: list[dict], excluded: set[str], limit: int | None, seed: int) -> list[tuple[str, str]]:
    """(note id, field) of the PDFs to fetch: every submission with a PDF, or a seeded sample of ``limit`` of them
    (ordered by a hash of seed and id, so a larger limit keeps the smaller one's papers)."""
    found = [(n["id"], submitted_pdf_field(n.get("content") or {})) for n in notes if n["id"] not in excluded]
    found = sorted(((i, f) for i, f in found if f), key=lambda x: hashlib.sha256(f"{seed}:{x[0]}".encode()).hexdigest())
    return found if limit is None else found[:limit]


def harvest_pdfs(api: Api, out_dir: Path, venues: list[Venue], limit: int | None, seed: int) -> dict:
    counts = {"selected": 0, "fetched": 0, "already_present": 0, "failed": 0}
    for venue in venues:
        excluded = {n["id"] for inv in (venue.withdrawn, venue.desk_rejected) if inv for n in saved_notes(out_dir, inv)}
        chosen = pdf_selection(saved_notes(out_dir, venue.submission), excluded, limit, seed)
        counts["selected"] += len(chosen)
        for note_id, field in tqdm(chosen, unit="pdf", desc=f"pdfs {venue.venue}", file=sys.stderr, mininterval=5):
            target = out_dir / "pdfs" / f"{note_id}.pdf"
            if target.exists():
                counts["already_present"] += 1
                continue
            try:
                body = api.call(f"{field} of {note_id}", _get_pdf, note_id, field)
            except ApiAnswer as exc:  # this PDF only: recorded, and requested again by the next run
                body, reason = None, str(exc)
            else:
                reason = None if b"%PDF-" in body[:1024] else f"not a PDF: starts with {body[:40]!r}"
            if reason:
                log.warning("%s: no PDF saved: %s", note_id, reason)
                append_jsonl(out_dir / FAILED_PDFS, {"id": note_id, "field": field, "reason": reason})
                counts["failed"] += 1
                continue
            write_bytes_atomic(target, body)
            counts["fetched"] += 1
    return counts


def _get_pdf(client, note_id: str, field: str) -> bytes:
    return client.get_pdf(note_id) if field == "pdf" else client.get_attachment(note_id, field)


def harvest(out_dir: Path, base_urls: dict[str, str], venues: list[Venue], page_size: int, username_env: str,
            password_env: str, policy: RetryPolicy, max_wait_s: float, max_pdfs: int | None, seed: int,
            notes_only: bool = False) -> dict:
    """``base_urls``: API version -> address; each version the venues use gets one logged-in client."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for folder in (out_dir, out_dir / "pdfs", *out_dir.glob("notes/*")):
        if folder.is_dir():
            remove_stale_temp_files(folder)
    versions = sorted({v.api for v in venues})
    if "v2" in versions and not notes_only:
        raise HarvestError(f"PDFs are fetched from API v1 only; harvest {[v.venue for v in venues if v.api == 'v2']} "
                           "(api: v2) with --notes-only")
    request = {"base_url": base_urls["v1"], "invitations": [i for v in venues for i in v.invitations()],
               "page_size": page_size}
    if "v2" in versions:  # absent for a v1-only harvest, whose earlier state stays valid
        request["base_url_v2"] = base_urls["v2"]
    state = _load_state(out_dir, request)
    apis = {v: Api(base_urls[v], username_env, password_env, policy, max_wait_s, v) for v in versions}
    harvest_notes(apis, out_dir, venues, page_size, state)
    pdfs = None if notes_only else harvest_pdfs(apis["v1"], out_dir, venues, max_pdfs, seed)
    summary = {"source": SOURCE, "base_urls": {v: base_urls[v] for v in versions},
               "logged_in": all(a.logged_in for a in apis.values()),
               "notes": {inv: st["notes"] for inv, st in sorted(state["invitations"].items())}, "pdfs": pdfs}
    log.info("openreview: notes %s; PDFs %s", summary["notes"], "not fetched (--notes-only)" if notes_only else pdfs)
    return summary


# ---------------------------------------------------------------------------------------------------------------------
# parse


def page_notes(obj: Any) -> list:
    """The notes of one page file: ``{"notes": [...]}`` (ours and the API's answer), a list of notes, or one note;
    UnusableFile for an error answer or anything else."""
    if isinstance(obj, dict) and isinstance(obj.get("notes"), list):
        return obj["notes"]
    if isinstance(obj, list):
        return obj
    if isinstance(obj, dict) and "id" in obj and "content" in obj:
        return [obj]
    message = error_answer(obj)
    if message is not None:
        raise UnusableFile("error response", f"the API answered {message!r} instead of notes")
    keys = sorted(obj)[:12] if isinstance(obj, dict) else type(obj).__name__
    raise UnusableFile("unknown schema", f"not a page of notes (no 'notes' list, list of notes or note); found {keys}")


def _check_note(note: Any) -> None:
    if not isinstance(note, dict):
        raise RecordError(f"malformed note: expected an object, got {type(note).__name__}")
    for name, kind in (("id", str), ("content", dict)):
        if not isinstance(note.get(name), kind):
            raise RecordError(f"malformed note: no {name}")
    if not note_invitations(note):
        raise RecordError("malformed note: no invitation")


def page_files(root: Path) -> list[Path]:
    """Every ``*.json`` / ``*.json.gz`` file under ``root`` whatever its name, sorted (the order decides duplicate
    ties); hidden files (atomic writes' temporaries) and the harvester's ``state.json`` are not pages."""
    if not root.is_dir():
        raise BadFileError(f"{root}: not a directory")
    found = (p for p in root.rglob("*") if p.name.endswith((".json", ".json.gz")) and p.is_file())
    return sorted(p for p in found if not p.name.startswith(".") and p != root / STATE)


def read_notes(root: Path, bad: BadInput, counts: dict) -> tuple[dict[str, tuple[dict, str]], int | None]:
    """note id -> (note, page file), by the one duplicate rule (duplicates.py: the most recent ``tmdate`` wins, on a
    tie the copy read later), and the notes lost to bad pages (estimated; None when no page was readable)."""
    pages = page_files(root)
    counts["pages"] = len(pages)
    if not pages:
        raise BadFileError(f"{root}: no note pages (*.json anywhere below it); is this an OpenReview snapshot?")
    notes: dict[str, tuple[dict, str]] = {}
    bad_pages = largest = 0
    for page in pages:
        name = page.relative_to(root).as_posix()
        try:
            items = page_notes(load_json_file(page))
        except UnusableFile as problem:
            bad.add(page, problem, raw=page.read_bytes()[:500])
            bad_pages += 1
            continue
        largest = max(largest, len(items))
        for i, note in enumerate(items):
            try:
                _check_note(note)
            except RecordError as exc:
                bad.rejects.add(page, note.get("id", i) if isinstance(note, dict) else i, str(exc), raw=note)
                continue
            counts["notes"] += 1
            earlier = notes.get(note["id"])
            if earlier is not None:
                counts["duplicates"] += 1
                counts["duplicates_conflicting"] += earlier[0] != note
                if (earlier[0].get("tmdate") or 0) > (note.get("tmdate") or 0):
                    continue
            notes[note["id"]] = (note, name)
    return notes, lost_to_bad_pages(bad_pages, largest)


def replies(note: dict) -> list[dict]:
    """The direct replies the harvest saved with a submission (``details.directReplies``)."""
    found = (note.get("details") or {}).get("directReplies")
    return [r for r in found if isinstance(r, dict)] if isinstance(found, list) else []


def _kind(venue: Venue, invitation: str) -> str:
    last = invitation.rsplit("/", 1)[-1]
    if venue.matches(venue.review, invitation):
        return "official"
    if venue.matches(venue.decision, invitation):
        return "meta_review" if last == "Meta_Review" else "decision"
    return "comment" if "Comment" in last else "other"


def _date(ms: Any) -> dt.date | None:
    return dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc).date() if isinstance(ms, (int, float)) else None


def reply_rows(note: dict, venue: Venue, key: str, page: str, rejects: Rejects) -> list[dict]:
    rows = []
    for reply in replies(note):
        content = reply.get("content") if isinstance(reply.get("content"), dict) else {}
        try:
            rating, confidence = score(content.get("rating"), "rating"), score(content.get("confidence"), "confidence")
            scores = [{"name": k, "value": score(v, k)} for k, v in sorted(content.items())
                      if isinstance(v, str) and re.match(r"^\s*\d+(\.\d+)?\s*:", v)]
        except RecordError as exc:
            rejects.add(page, reply.get("id"), str(exc), raw=reply)
            continue
        text = next((content[f] for f in TEXT_FIELDS if isinstance(content.get(f), str)), "")
        signatures = reply.get("signatures") or [None]
        rows.append({
            "key": key, "source": SOURCE, "venue": venue.venue, "paper_id": note["id"], "review_id": reply.get("id"),
            "kind": _kind(venue, reply.get("invitation") or ""), "reviewer": signatures[0],
            "title": content.get("title"), "text": text, "rating": rating, "confidence": confidence, "scores": scores,
            "date": _date(reply.get("tcdate") or reply.get("cdate")),
        })
    return rows


def decision_of(note: dict, venue: Venue) -> tuple[str, str]:
    """(accept | reject, the raw value) from the decision reply; RecordError when there is none or it is neither."""
    found = [r for r in replies(note) if venue.matches(venue.decision, r.get("invitation") or "")]
    if not found:
        raise RecordError(f"no decision: no reply of invitation {venue.decision}")
    latest = max(found, key=lambda r: r.get("tmdate") or 0)
    raw = (latest.get("content") or {}).get(venue.decision_field)
    if not isinstance(raw, str) or not raw.strip():
        raise RecordError(f"no decision: the {venue.decision_field!r} of {latest.get('id')} is empty")
    if "accept" in raw.lower():
        return "accept", raw
    if "reject" in raw.lower():
        return "reject", raw
    raise RecordError(f"unknown decision value: {raw!r}")


# the last part of the invitation of a reply that withdraws or desk-rejects its paper (API v1 and v2 names)
WITHDRAWAL_REPLIES = {"Withdraw": "withdrawn", "Withdrawn": "withdrawn", "Withdrawal": "withdrawn",
                      "Desk_Reject": "desk_rejected", "Desk_Rejected": "desk_rejected",
                      "Desk_Rejection": "desk_rejected"}


def withdrawn_by_reply(note: dict) -> str | None:
    """withdrawn | desk_rejected when a reply of the note says so, else None."""
    for reply in replies(note):
        for invitation in note_invitations(reply):
            why = WITHDRAWAL_REPLIES.get(invitation.rsplit("/", 1)[-1])
            if why:
                return why
    return None


def invitation_roles(venues: list[Venue]) -> dict[str, tuple[Venue, str]]:
    """invitation -> (venue, submission | withdrawn | desk_rejected)."""
    roles = {}
    for venue in venues:
        for role in ("submission", "withdrawn", "desk_rejected"):
            if getattr(venue, role):
                roles[getattr(venue, role)] = (venue, role)
    return roles


def role_of(note: dict, roles: dict[str, tuple[Venue, str]]) -> tuple[Venue | None, str | None]:
    """The venue and role of the first of a note's invitations that the config names (API v2 notes list several)."""
    return next((roles[i] for i in note_invitations(note) if i in roles), (None, None))


def parse(root: Path, venues: list[Venue], pdf_text: pl.DataFrame, bad: BadInput) -> tuple[pl.DataFrame, pl.DataFrame, dict, int | None]:
    counts = {"pages": 0, "notes": 0, "duplicates": 0, "duplicates_conflicting": 0, "outside_config": 0, "withdrawn": {},
              "desk_rejected": {}, "submissions": {}, "without_pdf_text": 0, "pdf_fields": {}}
    notes, lost = read_notes(root, bad, counts)
    roles = invitation_roles(venues)
    excluded: dict[str, str] = {}
    for note, _ in notes.values():
        venue, role = role_of(note, roles)
        if venue and role != "submission":
            for ident in {note["id"], note.get("forum") or note["id"]}:
                excluded[ident] = role
    sections = {r["paper_id"]: r["sections"] for r in pdf_text.select("paper_id", "sections").iter_rows(named=True)}
    papers, reviews = [], []
    for note_id in sorted(notes):
        note, page = notes[note_id]
        venue, role = role_of(note, roles)
        if venue is None:
            counts["outside_config"] += 1
            continue
        why = excluded.get(note_id) or excluded.get(note.get("forum") or note_id) or withdrawn_by_reply(note)
        if role != "submission" or why:
            why = why or role
            counts[why][venue.venue] = counts[why].get(venue.venue, 0) + 1
            continue
        counts["submissions"][venue.venue] = counts["submissions"].get(venue.venue, 0) + 1
        try:
            decision, decision_raw = decision_of(note, venue)
        except RecordError as exc:
            bad.rejects.add(root / page, note_id, str(exc))
            continue
        content = note["content"]
        key = tables.paper_key(SOURCE, venue.venue, note_id)
        rows = reply_rows(note, venue, key, str(root / page), bad.rejects)
        official = tables.official_reviews(rows)
        field = submitted_pdf_field(content)
        counts["pdf_fields"][str(field)] = counts["pdf_fields"].get(str(field), 0) + 1
        body = sections.get(note_id)
        counts["without_pdf_text"] += body is None
        authors = [a for a in content.get("authors") or [] if isinstance(a, str)]
        papers.append({
            "key": key, "source": SOURCE, "venue": venue.venue, "year": venue.year, "split": None,
            "paper_id": note_id, "title": " ".join(str(content.get("title") or "").split()) or None,
            "abstract": (content.get("abstract") or "").strip() or None,
            "authors": [] if {a.lower() for a in authors} <= ANONYMOUS else authors,
            "sections": body, "text_source": "pypdf" if body is not None else None,
            "decision": decision, "decision_raw": decision_raw, "reviews": official, "n_reviews": len(official),
            "pdf_field": field, "file": page,
        })
        reviews.extend(rows)
    summary = {**counts, "venues": [v.venue for v in venues]}
    return tables.papers_frame(papers), tables.reviews_frame(reviews), summary, lost


def main(argv: list[str] | None = None) -> None:
    p = parser(__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    h = sub.add_parser("harvest", help="notes + submitted PDFs of the configured venues",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    h.add_argument("--out-dir", required=True, type=Path, help="notes/, pdfs/, state.json; kept across kills")
    h.add_argument("--base-url", default="https://api.openreview.net", help="API v1")
    h.add_argument("--base-url-v2", default="https://api2.openreview.net", help="API v2 (venues with api: v2)")
    h.add_argument("--notes-only", action="store_true", help="no PDFs (required when a venue is on API v2)")
    h.add_argument("--venues", required=True, type=json_arg, help="JSON list of venue blocks (config)")
    h.add_argument("--page-size", type=int, default=1000, help="notes per request (the API's maximum is 1000)")
    h.add_argument("--username-env", default="OPENREVIEW_USERNAME", help="variable holding the account's user name")
    h.add_argument("--password-env", default="OPENREVIEW_PASSWORD", help="variable holding the account's password")
    h.add_argument("--max-pdfs-per-venue", type=int, default=None, help="a seeded sample of this many PDFs a venue")
    h.add_argument("--seed", type=int, default=1234)
    h.add_argument("--min-interval-s", type=float, default=1.0)
    h.add_argument("--max-retries", type=int, default=8, help="retries of 5xx answers and connection errors")
    h.add_argument("--backoff-base-s", type=float, default=2.0)
    h.add_argument("--backoff-max-s", type=float, default=300.0)
    h.add_argument("--timeout-s", type=float, default=120.0)
    h.add_argument("--max-wait-s", type=float, default=3900.0, help="longest wait for a rate limit's reset time")
    h.add_argument("--done", type=Path, help="JSON summary written at the end (the file Snakemake tracks)")
    c = sub.add_parser("parse", help="note pages (+ PDF text) -> papers + reviews tables",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    c.add_argument("--snapshot", required=True, type=Path, help="note pages (*.json anywhere below it) + pdfs/")
    c.add_argument("--venues", required=True, type=json_arg, help="JSON list of venue blocks (config)")
    c.add_argument("--pdf-text", required=True, type=Path, help="parquet of pdf_text.py")
    tables.add_output_args(c)
    args = p.parse_args(argv)
    setup_logging(args.verbose)
    venues = [Venue.from_config(v) for v in args.venues]
    if args.command == "harvest":
        if not 1 <= args.page_size <= 1000:
            p.error("--page-size must be in 1..1000")
        policy = RetryPolicy(args.min_interval_s, args.max_retries, args.backoff_base_s, args.backoff_max_s, args.timeout_s)
        summary = harvest(args.out_dir, {"v1": args.base_url, "v2": args.base_url_v2}, venues, args.page_size,
                          args.username_env, args.password_env, policy, args.max_wait_s, args.max_pdfs_per_venue,
                          args.seed, args.notes_only)
        if args.done:
            write_json_atomic(args.done, summary)
        return
    bad = BadInput.from_args(args, Rejects())
    papers, reviews, summary, lost = parse(args.snapshot, venues, pl.read_parquet(args.pdf_text), bad)
    tables.write_tables(SOURCE, papers, reviews, bad, summary, args, lost, summary["notes"] + (lost or 0))


if __name__ == "__main__":
    run_main(main)
