"""The review scores of conference submissions on OpenReview (API v1 and v2 note pages): one row per submission with
the rating and confidence of each official review, for the SciJudge ICLR test (datasets/iclr_pairs.py).

    python -m workflow_scripts.sources.reviews.openreview_scores --input DIR VENUES_JSON [--input DIR VENUES_JSON]
        --review-fields JSON --out scores.parquet --rejects R.jsonl --summary S.json

Each ``--input`` is a snapshot (openreview.py reads its pages, whatever their names) and the venues read from it: the
ICLR set's own harvest and the Reviewer line's OpenReview notes. A venue's review form says which content field holds
the rating and the confidence (``--review-fields``: venue -> ``{rating, confidence, confidence_values}``, the rest
``rating`` / ``confidence``): "8: accept, good paper" and 8 read as 8; a confidence given as text (ICLR 2020's
``experience_assessment``) reads through ``confidence_values``. Submissions that were withdrawn or desk-rejected (their
invitation, a withdrawal reply, or ``venueid``) are counted and left out. Rejected, with the reason: a note without id,
invitation or content; a submission without title, abstract or date; an official review whose rating is missing or
unreadable, or whose confidence is unreadable. A review without a confidence keeps a null one (counted).
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from workflow_scripts.common.cli import json_arg, parser, setup_logging
from workflow_scripts.common.io import Rejects, write_json_atomic, write_parquet_atomic
from workflow_scripts.sources.bad_input import BadInput, add_bad_input_args
from workflow_scripts.sources.errors import RecordError, run_main
from workflow_scripts.sources.reviews import openreview, tables
from workflow_scripts.sources.reviews.openreview import Venue, content_values, note_invitations
from workflow_scripts.sources.reviews.text import score

log = logging.getLogger(__name__)

STEP = "openreview_scores"
SCORES_SCHEMA: dict[str, pl.DataType] = {
    "key": pl.String,  # tables.paper_key: openreview:{venue}:{note id}
    "venue": pl.String,
    "year": pl.Int32,
    "api": pl.String,
    "paper_id": pl.String,
    "title": pl.String,
    "abstract": pl.String,
    "date": pl.Date,  # the submission's creation date (cdate, else tcdate): when it was submitted
    "ratings": pl.List(pl.Float64),  # one per official review, in the order the API lists them
    "confidences": pl.List(pl.Float64),  # aligned with ratings; null where the review gives none
    "file": pl.String,  # the page the note was read from, relative to its snapshot
}
EXCLUDED_VENUEIDS = {"Withdrawn_Submission": "withdrawn", "Desk_Rejected_Submission": "desk_rejected"}


@dataclass(frozen=True)
class ReviewForm:
    """Where a venue's official review keeps its rating and confidence (config ``scijudge.ood.iclr.review_fields``)."""

    rating: str = "rating"
    confidence: str = "confidence"
    confidence_values: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_config(cls, block: dict | None) -> "ReviewForm":
        block = block or {}
        values = {_text_key(k): float(v) for k, v in (block.get("confidence_values") or {}).items()}
        return cls(block.get("rating", "rating"), block.get("confidence", "confidence"), values)

    def read(self, content: dict) -> tuple[float, float | None]:
        """(rating, confidence) of one review's plain content; RecordError naming the field when unusable."""
        rating = score(content.get(self.rating), self.rating)
        if rating is None:
            raise RecordError(f"no rating: no {self.rating!r} in the official review")
        raw = content.get(self.confidence)
        if isinstance(raw, str) and _text_key(raw) in self.confidence_values:
            return rating, self.confidence_values[_text_key(raw)]
        return rating, score(raw, self.confidence)


def _text_key(text: str) -> str:
    return " ".join(text.split()).rstrip(".").lower()


def _date(note: dict) -> dt.date | None:
    ms = note.get("cdate") or note.get("tcdate")
    return dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc).date() if isinstance(ms, (int, float)) else None


def _text(value: Any) -> str | None:
    return (" ".join(value.split()) or None) if isinstance(value, str) else None


def excluded_by_venueid(content: dict) -> str | None:
    """withdrawn | desk_rejected from ``venueid`` (API v2 keeps such papers under the submission invitation)."""
    venueid = content.get("venueid")
    return EXCLUDED_VENUEIDS.get(venueid.rsplit("/", 1)[-1]) if isinstance(venueid, str) else None


def official_scores(note: dict, venue: Venue, form: ReviewForm, page: str, rejects: Rejects,
                    counts: dict) -> tuple[list[float], list[float | None]]:
    ratings, confidences = [], []
    for reply in openreview.replies(note):
        if not any(venue.matches(venue.review, i) for i in note_invitations(reply)):
            continue
        try:
            rating, confidence = form.read(content_values(reply.get("content")))
        except RecordError as exc:
            rejects.add(page, reply.get("id"), str(exc), raw=reply)
            continue
        ratings.append(rating)
        confidences.append(confidence)
        counts["reviews"] += 1
        counts["reviews_without_confidence"] += confidence is None
    return ratings, confidences


def _bump(counts: dict, name: str, venue: str) -> None:
    counts[name][venue] = counts[name].get(venue, 0) + 1


def read_snapshot(root: Path, venues: list[Venue], forms: dict[str, ReviewForm], bad: BadInput,
                  counts: dict) -> tuple[list[dict], int | None]:
    """Rows of the submissions of ``venues`` in one snapshot, and the notes lost to its bad pages (None: unknown)."""
    notes, lost = openreview.read_notes(root, bad, counts)
    roles = openreview.invitation_roles(venues)
    # the forums of papers listed in a withdrawn / desk-rejected invitation: each is counted once, through that copy
    listed_out = {n.get("forum") or n["id"] for n, _ in notes.values()
                  if openreview.role_of(n, roles)[1] not in (None, "submission")}
    rows = []
    for note_id in sorted(notes):
        note, page = notes[note_id]
        venue, role = openreview.role_of(note, roles)
        if venue is None:
            counts["outside_config"] += 1
            continue
        if role != "submission":
            _bump(counts, role, venue.venue)
            continue
        if (note.get("forum") or note_id) in listed_out:
            continue
        content = content_values(note["content"])
        why = openreview.withdrawn_by_reply(note) or excluded_by_venueid(content)
        if why:
            _bump(counts, why, venue.venue)
            continue
        _bump(counts, "submissions", venue.venue)
        title, abstract, date = _text(content.get("title")), _text(content.get("abstract")), _date(note)
        missing = [name for name, value in (("title", title), ("abstract", abstract), ("date", date)) if value is None]
        if missing:
            bad.rejects.add(root / page, note_id, f"incomplete submission: no {', '.join(missing)}", raw=note)
            continue
        ratings, confidences = official_scores(note, venue, forms.get(venue.venue, ReviewForm()), str(root / page),
                                               bad.rejects, counts)
        rows.append({"key": tables.paper_key(openreview.SOURCE, venue.venue, note_id), "venue": venue.venue,
                     "year": venue.year, "api": venue.api, "paper_id": note_id, "title": title, "abstract": abstract,
                     "date": date, "ratings": ratings, "confidences": confidences, "file": page})
    return rows, lost


def collect(inputs: list[tuple[Path, list[Venue]]], forms: dict[str, ReviewForm],
            bad: BadInput) -> tuple[pl.DataFrame, dict, int | None]:
    counts = {"pages": 0, "notes": 0, "duplicates": 0, "duplicates_conflicting": 0, "outside_config": 0,
              "submissions": {}, "withdrawn": {}, "desk_rejected": {}, "reviews": 0, "reviews_without_confidence": 0}
    rows, lost_total = [], 0
    for root, venues in inputs:
        found, lost = read_snapshot(root, venues, forms, bad, counts)
        rows.extend(found)
        lost_total = None if lost is None or lost_total is None else lost_total + lost
    scores = pl.DataFrame(rows, schema=SCORES_SCHEMA, orient="row").sort("key")
    venues = [v for _, vs in inputs for v in vs]
    for venue in venues:
        if not counts["submissions"].get(venue.venue):
            log.warning("%s: no submissions in the snapshot (invitation %s)", venue.venue, venue.submission)
    confidences = scores.group_by("venue").agg(
        pl.col("confidences").list.drop_nulls().list.len().sum().alias("with"),
        pl.col("confidences").list.len().sum().alias("all"))
    for venue, with_conf, n in confidences.sort("venue").iter_rows():
        if n and not with_conf:
            field_name = forms.get(venue, ReviewForm()).confidence
            log.warning("%s: none of its %d reviews has a confidence (field %r): configure "
                        "scijudge.ood.iclr.review_fields.%s", venue, n, field_name, venue)
    summary = {**counts, "venues": [v.venue for v in venues], "papers": scores.height}
    return scores, summary, lost_total


def main(argv: list[str] | None = None) -> None:
    p = parser(__doc__.split("\n\n")[0])
    p.add_argument("--input", required=True, nargs=2, action="append", metavar=("DIR", "VENUES_JSON"),
                   help="a snapshot of note pages and the JSON list of venue blocks read from it (repeatable)")
    p.add_argument("--review-fields", type=json_arg, default={},
                   help="JSON: venue -> {rating, confidence, confidence_values} where not rating / confidence")
    p.add_argument("--out", required=True, type=Path, help="scores parquet (SCORES_SCHEMA)")
    p.add_argument("--rejects", required=True, type=Path, help="rejected files and records, JSON lines")
    p.add_argument("--summary", required=True, type=Path, help="JSON summary (counts)")
    add_bad_input_args(p)
    args = p.parse_args(argv)
    setup_logging(args.verbose)
    try:
        inputs = [(Path(d), [Venue.from_config(v) for v in json_arg(vs)]) for d, vs in args.input]
    except argparse.ArgumentTypeError as exc:
        p.error(f"--input: {exc}")
    forms = {venue: ReviewForm.from_config(block) for venue, block in args.review_fields.items()}
    bad = BadInput.from_args(args, Rejects())
    scores, summary, lost = collect(inputs, forms, bad)
    summary = {"source": STEP, **summary, "rejected": len(bad.rejects), "rejects": bad.rejects.counts(),
               **bad.summary(lost, summary["notes"] + (lost or 0), estimated=True)}

    def write_outputs() -> None:
        write_parquet_atomic(scores, args.out)
        bad.rejects.write(args.rejects)
        write_json_atomic(args.summary, summary)
        log.info("%s: %d submission(s) with their review scores -> %s", STEP, scores.height, args.out)

    bad.conclude(STEP, summary, write_outputs)


if __name__ == "__main__":
    run_main(main)
