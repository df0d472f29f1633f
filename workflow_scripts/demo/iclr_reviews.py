"""The demo world of the SciJudge ICLR test: OpenReview note pages of ICLR submissions (notes only, no PDFs) whose
review ratings and confidences follow each paper's latent quality.

    python -m workflow_scripts.demo.iclr_reviews --out-dir resources/demo --seed 1234 --venues JSON [--sizes JSON]

Writes, under DIR: ``openreview_iclr/`` (a README.md and the note pages of the venues in ``--sizes``, with the
invitations of their ``--venues`` block: config ``scijudge.ood.iclr.venues``) and ``iclr_truth.parquet`` (every
paper's latent quality and status). The same arguments give byte-identical files (all randomness from ``--seed``).

The world: each paper has a latent quality q ~ N(0, 1) (the paper draws of demo/reviews.py). It gets 3-5 reviewers,
each with a confidence c in 1..5; a reviewer's rating is the point of the year's scale nearest to 5.5 + 1.8 q plus
noise of standard deviation 2.4 / c: a confident reviewer says more about q, so papers with confident and agreeing
reviews (the ones the quality filters keep) are those whose mean rating follows q most closely.

API v1 venues are written as the harvester saves them (``notes/<invitation>/page-NNNNN.json``); API v2 venues as
another tool would save them: the API's raw answers ``{"notes", "count"}`` named ``api2/<venue>-NNN.json``, every
content value wrapped as ``{"value": ...}``, invitations in a list. Planted in every venue: two withdrawn papers (v1:
in the withdrawn invitation; v2: ``venueid`` .../Withdrawn_Submission and a Withdrawal reply, reviews kept), on v2 a
desk-rejected paper, the first submission with a single review, the second with a review without a confidence, an
author comment on every fifth paper, and on v2 the third paper's ratings as numbers instead of "N: text".
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from pathlib import Path

import polars as pl

from workflow_scripts.common.cli import json_arg, parser, setup_logging
from workflow_scripts.common.config import schema_defaults
from workflow_scripts.common.io import write_bytes_atomic, write_parquet_atomic
from workflow_scripts.demo.reviews import CONFIDENCE, RATING_2019, Paper, World, note_id, openreview_note
from workflow_scripts.sources.reviews.iclr_venues import DEMO_SUBDIR

log = logging.getLogger(__name__)

OUT = DEMO_SUBDIR
MIN_SUBMISSIONS = 20  # the planted quirks sit at fixed positions
N_WITHDRAWN = 2
RATINGS_V2 = {1: "strong reject", 3: "reject, not good enough", 5: "marginally below the acceptance threshold",
              6: "marginally above the acceptance threshold", 8: "accept, good paper",
              10: "strong accept, should be highlighted at the conference"}
CONFIDENCE_V2 = {
    1: "You are unable to assess this paper and have alerted the ACs to seek an opinion from different reviewers.",
    2: "You are willing to defend your assessment, but it is quite likely that you did not understand the central "
       "parts of the submission or that you are unfamiliar with some pieces of related work.",
    3: "You are fairly confident in your assessment. It is possible that you did not understand some parts of the "
       "submission or that you are unfamiliar with some pieces of related work.",
    4: "You are confident in your assessment, but not absolutely certain. It is unlikely, but not impossible, that you "
       "did not understand some parts of the submission.",
    5: "You are absolutely certain about your assessment. You are very familiar with the related work and checked "
       "the math/other details carefully.",
}
REVIEWER_CONFIDENCES = (2, 3, 3, 4, 4, 4, 5, 5, 1)
TRUTH_SCHEMA = {"venue": pl.String, "year": pl.Int32, "paper_id": pl.String, "title": pl.String,
                "quality": pl.Float64, "status": pl.String}
README = """# ICLR demo snapshot for the SciJudge metric-OOD test (synthetic)

Note pages only (no PDFs). API v1 venues: `notes/<invitation>/page-NNNNN.json` as the harvester saves them. API v2
venues: `api2/<venue>-NNN.json`, the API's raw answers as another tool would save them (content values wrapped as
{"value": ...}, `invitations` lists, withdrawn and desk-rejected papers under the submission invitation with their
`venueid`). Ratings and confidences follow each paper's latent quality (workflow_scripts/demo/iclr_reviews.py, whose
docstring lists the planted quirks); `../iclr_truth.parquet` has the qualities.
"""


def _ms(when: dt.datetime) -> int:
    return int(when.timestamp() * 1000)


def reviews_of(w: World, p: Paper, scale: list[int]) -> list[tuple[int, int]]:
    """(rating, confidence) per reviewer: the scale point nearest to 5.5 + 1.8 q + N(0, (2.4 / c)^2)."""
    out = []
    for _ in range(3 + w.index(3)):
        c = w.pick(REVIEWER_CONFIDENCES)
        latent = 5.5 + 1.8 * p.quality + 2.4 / c * w.normal()
        out.append((min(scale, key=lambda r: (abs(r - latent), r)), c))
    return out


def v1_replies(w: World, p: Paper, venue: dict, when: dt.datetime, k: int) -> list[dict]:
    prefix = venue["submission"].split("/-/")[0]
    scores = reviews_of(w, p, list(RATING_2019))[: 1 if k == 0 else None]
    replies = []

    def reply(invitation: str, content: dict, signature: str, days: int) -> dict:
        t = _ms(when + dt.timedelta(days=days))
        return {"id": note_id(w), "original": None, "number": len(replies) + 1, "cdate": t, "tcdate": t, "tmdate": t,
                "ddate": None, "content": content, "forum": p.paper_id, "replyto": p.paper_id,
                "invitation": invitation, "readers": ["everyone"], "nonreaders": [], "signatures": [signature],
                "writers": [signature]}

    for i, (rating, confidence) in enumerate(scores, 1):
        content = {"title": "Review", "review": w.review_text(p), "rating": f"{rating}: {RATING_2019[rating]}",
                   "confidence": f"{confidence}: {CONFIDENCE[confidence]}"}
        if k == 1 and i == 1:
            del content["confidence"]
        replies.append(reply(venue["review"].format(number=p.number), content,
                             f"{prefix}/Paper{p.number}/AnonReviewer{i}", 30 + i))
    if k % 5 == 4:
        replies.append(reply(venue["review"].format(number=p.number).replace("Official_Review", "Official_Comment"),
                             {"title": "Response", "comment": "We thank the reviewers."},
                             f"{prefix}/Paper{p.number}/Authors", 45))
    return sorted(replies, key=lambda r: r["id"])


def _wrapped(content: dict) -> dict:
    return {k: {"value": v} for k, v in content.items()}


def v2_note(w: World, p: Paper, venue: dict, when: dt.datetime, k: int, status: str) -> dict:
    prefix = venue["submission"].split("/-/")[0]
    t = _ms(when)
    venueid = {"ok": f"{prefix}/Submission", "withdrawn": f"{prefix}/Withdrawn_Submission",
               "desk_rejected": f"{prefix}/Desk_Rejected_Submission"}[status]
    sha = hashlib.sha1(f"{p.paper_id}/{p.title}".encode()).hexdigest()
    content = _wrapped({"title": p.title, "abstract": p.abstract, "keywords": [w.pick(("deep learning", "theory"))],
                        "primary_area": "general machine learning", "venue": f"Submitted to ICLR {p.year}",
                        "venueid": venueid, "pdf": f"/pdf/{sha}.pdf"})
    content["authors"] = {"readers": [prefix, f"{prefix}/Submission{p.number}/Authors"]}  # hidden while anonymous
    replies = []

    def reply(kind: str, body: dict, signature: str, days: int) -> dict:
        r = _ms(when + dt.timedelta(days=days))
        return {"id": note_id(w), "number": len(replies) + 1, "cdate": r, "mdate": r, "tcdate": r, "tmdate": r,
                "forum": p.paper_id, "replyto": p.paper_id, "domain": prefix,
                "invitations": [f"{prefix}/Submission{p.number}/-/{kind}", f"{prefix}/-/Edit"],
                "content": _wrapped(body), "readers": ["everyone"], "nonreaders": [], "signatures": [signature],
                "writers": [prefix, signature], "license": "CC BY 4.0"}

    if status != "desk_rejected":
        scores = reviews_of(w, p, list(RATINGS_V2))[: 1 if k == 0 else None]
        for i, (rating, confidence) in enumerate(scores, 1):
            body = {"summary": w.review_text(p), "soundness": "3 good",
                    "rating": rating if k == 2 else f"{rating}: {RATINGS_V2[rating]}",
                    "confidence": confidence if k == 2 else f"{confidence}: {CONFIDENCE_V2[confidence]}",
                    "code_of_conduct": "Yes"}
            if k == 1 and i == 1:
                del body["confidence"]
            replies.append(reply("Official_Review", body, f"{prefix}/Submission{p.number}/Reviewer_{note_id(w)[:4]}",
                                 30 + i))
    if k % 5 == 4:
        replies.append(reply("Official_Comment", {"comment": "We thank the reviewers."},
                             f"{prefix}/Submission{p.number}/Authors", 45))
    if status == "withdrawn":
        replies.append(reply("Withdrawal", {"withdrawal_confirmation": "I have read and agree."},
                             f"{prefix}/Submission{p.number}/Authors", 50))
    if status == "desk_rejected":
        replies.append(reply("Desk_Rejection", {"desk_reject_comments": "Out of the page limit."},
                             f"{prefix}/Program_Chairs", 10))
    return {"id": p.paper_id, "number": p.number, "cdate": t, "mdate": t + 86_400_000, "odate": t, "tcdate": t,
            "tmdate": t + 86_400_000, "domain": prefix, "forum": p.paper_id,
            "invitations": [venue["submission"], f"{prefix}/-/Post_Submission",
                            f"{prefix}/Submission{p.number}/-/Revision"],
            "content": content, "readers": ["everyone"], "nonreaders": [],
            "signatures": [f"{prefix}/Submission{p.number}/Authors"], "writers": [prefix], "license": "CC BY 4.0",
            "details": {"directReplies": sorted(replies, key=lambda r: r["id"])}}


def venue_files(seed: int, venue: dict, n: int, page_size: int) -> tuple[dict[str, bytes], list[dict]]:
    w = World(seed, f"iclr/{venue['venue']}")
    year, v2 = venue["year"], venue["api"] == "v2"
    when = dt.datetime(year - 1, 9, 28, tzinfo=dt.timezone.utc)
    n_desk = 1 if v2 else 0
    papers = [w.paper(venue["venue"], year, note_id(w)) for _ in range(n + N_WITHDRAWN + n_desk)]
    status = ["ok"] * n + ["withdrawn"] * N_WITHDRAWN + ["desk_rejected"] * n_desk
    pages: dict[str, list[dict]] = {}
    for k, p in enumerate(papers):
        p.number = k + 1
        if v2:
            pages.setdefault(venue["submission"], []).append(v2_note(w, p, venue, when, k, status[k]))
        elif status[k] == "ok":
            note = openreview_note(w, p, venue["submission"], when, v1_replies(w, p, venue, when, k))
            pages.setdefault(venue["submission"], []).append(note)
        else:
            pages.setdefault(venue["withdrawn"], []).append(openreview_note(w, p, venue["withdrawn"], when, None))
    files = {}
    for invitation, notes in pages.items():
        notes.sort(key=lambda note: note["id"])  # harvests page with sort=id
        for i in range(0, len(notes), page_size):
            chunk = notes[i:i + page_size]
            if v2:
                name, body = f"api2/{venue['venue']}-{i // page_size:03d}.json", {"notes": chunk, "count": len(notes)}
            else:
                name = f"notes/{invitation.replace('/', '+')}/page-{i // page_size + 1:05d}.json"
                body = {"invitation": invitation, "count": len(notes), "notes": chunk}
            files[f"{OUT}/{name}"] = json.dumps(body, indent=1, ensure_ascii=False).encode()
    truth = [{"venue": p.venue, "year": year, "paper_id": p.paper_id, "title": p.title, "quality": p.quality,
              "status": s} for p, s in zip(papers, status)]
    return files, truth


def render(seed: int, venues: list[dict], sizes: dict) -> tuple[dict[str, bytes], pl.DataFrame]:
    by_name = {v["venue"]: v for v in venues}
    files, truth = {f"{OUT}/README.md": README.encode()}, []
    for name, n in sorted(sizes["submissions"].items()):
        more, rows = venue_files(seed, by_name[name], n, sizes["page_size"])
        files.update(more)
        truth.extend(rows)
    return files, pl.DataFrame(truth, schema=TRUTH_SCHEMA, orient="row").sort("venue", "paper_id")


def size_problems(venues: list[dict], sizes: dict) -> list[str]:
    by_name = {v["venue"]: v for v in venues}
    unknown = sorted(set(sizes["submissions"]) - set(by_name))
    small = sorted(v for v, n in sizes["submissions"].items() if n < MIN_SUBMISSIONS)
    no_withdrawn = sorted(v for v in sizes["submissions"] if v in by_name and by_name[v]["api"] == "v1"
                          and not by_name[v].get("withdrawn"))
    return ([f"no venue block for {unknown} (--venues)"] if unknown else []) + (
        [f"too few submissions for the planted quirks: {small} (>= {MIN_SUBMISSIONS})"] if small else []) + (
        [f"API v1 venues {no_withdrawn} name no withdrawn invitation for the planted withdrawn papers"]
        if no_withdrawn else [])


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--out-dir", required=True, type=Path)
    p.add_argument("--seed", type=int, default=1234)
    defaults = schema_defaults()["scijudge"]["ood"]["iclr"]
    p.add_argument("--venues", type=json_arg, default=defaults["venues"], help="JSON list of venue blocks (config)")
    p.add_argument("--sizes", type=json_arg, default={}, help="JSON over config scijudge.ood.iclr.demo's defaults")
    args = p.parse_args(argv)
    sizes = {**defaults["demo"], **args.sizes}
    for problem in size_problems(args.venues, sizes):
        p.error(problem)
    setup_logging(args.verbose)
    files, truth = render(args.seed, args.venues, sizes)
    for rel in sorted(files):
        write_bytes_atomic(args.out_dir / rel, files[rel])
    for path in sorted((args.out_dir / OUT).rglob("*.json")):  # a rerun with other sizes leaves no stale page
        if path.relative_to(args.out_dir).as_posix() not in files:
            path.unlink()
    write_parquet_atomic(truth, args.out_dir / "iclr_truth.parquet")
    log.info("%d files and iclr_truth.parquet (%d papers) written to %s", len(files), truth.height, args.out_dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
