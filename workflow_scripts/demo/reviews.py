"""The Reviewer line's demo world: PeerRead-layout files and OpenReview note pages with real PDFs, for synthetic papers
whose decision follows a latent quality.

    python -m workflow_scripts.demo.reviews --out-dir resources/demo --seed 1234 [--sizes JSON]

Writes, under DIR: ``peerread/`` (PeerRead's layout, ``{venue}/{split}/reviews/<id>.json`` +
``parsed_pdfs/<id>.pdf.json``), ``openreview/`` (``notes/<invitation>/page-NNNNN.json`` as the harvester saves them,
``pdfs/<note id>.pdf`` made with fpdf2), a README.md in each, and ``reviews_truth.parquet``: every paper's latent
quality and true decision. The same arguments give byte-identical files (all randomness from ``--seed``).

The world: each paper has a latent quality q ~ N(0, 1). Its decision is an accept for the top share (the venue's
accept rate) of q + N(0, 0.5) noise; reviewers' ratings are q-driven with noise; the text carries q too (strong
papers report more evidence, weak ones admit gaps). ACL 2017 and CoNLL 2016 files carry no decision, as in PeerRead;
their true decision is in the truth table only. Every quirk of the real files is planted and listed in the READMEs.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import polars as pl
from fpdf import FPDF

from workflow_scripts.common.cli import json_arg, parser, setup_logging
from workflow_scripts.common.config import schema_defaults
from workflow_scripts.common.io import write_bytes_atomic, write_parquet_atomic
from workflow_scripts.demo import vocab
from workflow_scripts.demo.corpus import TextMaker

log = logging.getLogger(__name__)

# the quirks planted at fixed positions need this many papers per venue (see the READMEs below)
MIN_PEERREAD_PAPERS = 5
MIN_OPENREVIEW_SUBMISSIONS = 10
ACCEPT_RATE = {"iclr_2017": 0.40, "acl_2017": 0.85, "conll_2016": 0.85, "iclr_2019": 0.31, "iclr_2020": 0.27,
               "iclr_2021": 0.29}
TOPICS = tuple(s for s in vocab.SUBCATEGORIES if s.name in ("cs.LG", "cs.CL", "cs.CV", "cs.AI"))
NOTE_ID_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
EPOCH_2019 = dt.datetime(2018, 9, 27, tzinfo=dt.timezone.utc)
LINE_CHARS = 95  # Helvetica 10 pt across a letter page's text width
CREATED = dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)  # a fixed PDF creation date: byte-identical files

STRONG = ("We evaluate on {n} benchmarks with ablations of every component and confidence intervals over five seeds.",
          "The gains hold on all {n} datasets, and the released code reproduces every table.")
WEAK = ("Experiments are limited to a single synthetic example without baselines.",
        "A comparison with prior work is left to future work.")
REVIEW_STRENGTHS = ("The evaluation is thorough and the ablations isolate each component.",
                    "The method is clearly motivated and the results are convincing.",
                    "The writing is clear and the experiments are reproducible.")
REVIEW_WEAKNESSES = ("The experiments are too limited to support the claims.",
                     "Baselines are missing, so the gains cannot be judged.",
                     "The novelty over prior work is unclear.")
RATING_2019 = {1: "Trivial or wrong", 2: "Strong rejection", 3: "Clear rejection",
               4: "Ok but not good enough - rejection", 5: "Marginally below acceptance threshold",
               6: "Marginally above acceptance threshold", 7: "Good paper, accept",
               8: "Top 50% of accepted papers, clear accept", 9: "Top 15% of accepted papers, strong accept",
               10: "Top 5% of accepted papers, seminal paper"}
RATING_2020 = {1: "Reject", 3: "Weak Reject", 6: "Weak Accept", 8: "Accept"}
CONFIDENCE = {1: "The reviewer's evaluation is an educated guess",
              2: "The reviewer is willing to defend the evaluation, but it is quite likely that the reviewer did not "
                 "understand central parts of the paper",
              3: "The reviewer is fairly confident that the evaluation is correct",
              4: "The reviewer is confident but not absolutely certain that the evaluation is correct",
              5: "The reviewer is absolutely certain that the evaluation is correct and very familiar with the "
                 "relevant literature"}
ACCEPT_KINDS = {2019: ("Accept (Poster)", "Accept (Oral)"), 2020: ("Accept (Poster)", "Accept (Spotlight)", "Accept (Talk)"),
                2021: ("Accept (Poster)", "Accept (Spotlight)", "Accept (Oral)")}
OWNED_GLOBS = ("peerread/*/*/*/*.json", "openreview/notes/*/page-*.json", "openreview/pdfs/*.pdf")
TRUTH_SCHEMA = {"source": pl.String, "venue": pl.String, "year": pl.Int32, "split": pl.String, "paper_id": pl.String,
                "title": pl.String, "quality": pl.Float64, "accepted": pl.Boolean, "decision_in_files": pl.String,
                "status": pl.String}


@dataclass
class Paper:
    venue: str
    year: int
    paper_id: str
    title: str
    abstract: str
    authors: list[str]
    quality: float
    accepted: bool = False
    split: str | None = None
    number: int = 0
    sections: list[tuple[str, str]] = field(default_factory=list)  # (heading, text)
    status: str = "ok"


class World(TextMaker):
    """Draws of the demo world, from one generator per concern (so one concern's draws never shift another's)."""

    def __init__(self, seed: int, concern: str):
        super().__init__(np.random.default_rng([seed, int(hashlib.sha256(concern.encode()).hexdigest()[:8], 16)]))

    def normal(self) -> float:
        u1, u2 = max(self.u(), 1e-12), self.u()
        return float(np.sqrt(-2 * np.log(u1)) * np.cos(2 * np.pi * u2))

    def paragraph(self, sub, n: int) -> str:
        return " ".join(self.fill(self.pick(vocab.BODY), sub) for _ in range(n))

    def name(self) -> str:
        return f"{self.pick(vocab.FORENAMES)} {self.pick(vocab.KEYNAMES)}"

    def paper(self, venue: str, year: int, paper_id: str) -> Paper:
        sub = self.pick(TOPICS)
        quality = self.normal()
        terms = [self.pick(sub.hot if quality > 0 else sub.stale)]
        p = Paper(venue, year, paper_id, self.title(sub, terms), self.abstract(sub, terms),
                  [self.name() for _ in range(1 + self.index(4))], round(quality, 6))
        evidence = [STRONG, STRONG] if quality > 0.5 else [WEAK, WEAK] if quality < -0.5 else [STRONG, WEAK]
        experiments = " ".join(self.pick(e).format(n=3 + self.index(9)) for e in evidence)
        p.sections = [
            ("1 INTRODUCTION", self.paragraph(sub, 4) + "\n" + self.paragraph(sub, 3)),
            ("2 RELATED WORK", self.paragraph(sub, 4)),
            ("3 METHOD", self.paragraph(sub, 3)),
            ("3.1 Training Objective", self.paragraph(sub, 3)),
            ("4 EXPERIMENTS", self.paragraph(sub, 3) + " " + experiments),
            ("5 CONCLUSION", self.paragraph(sub, 2)),
        ]
        return p

    def decide(self, papers: Sequence[Paper], rate: float) -> None:
        """Accept the top ``rate`` share of quality + noise."""
        noisy = [(p.quality + 0.5 * self.normal(), i) for i, p in enumerate(papers)]
        for _, i in sorted(noisy, reverse=True)[: round(rate * len(papers))]:
            papers[i].accepted = True

    def rating(self, quality: float, lo: int, hi: int) -> int:
        mid = (lo + hi) / 2
        return int(min(hi, max(lo, round(mid + (hi - lo) / 4 * quality + self.normal()))))

    def review_text(self, p: Paper) -> str:
        good, bad = self.pick(REVIEW_STRENGTHS), self.pick(REVIEW_WEAKNESSES)
        lean = "I lean towards acceptance." if p.quality + 0.7 * self.normal() > 0 else "I lean towards rejection."
        return (f"This paper proposes {p.title.lower()}.\n\nStrengths: {good}\n\nWeaknesses: {bad}\n\n{lean}")


# ---------------------------------------------------------------------------------------------------------------------
# PeerRead


def margin_numbered(text: str, page: int) -> str:
    """``text`` as science-parse gives an ACL/CoNLL review copy: the page's margin line numbers in the middle."""
    numbers = [f"{page * 100 + k:03d}" for k in range(100) if not 50 <= k < 61]
    head = f"{page + 1} {numbers[0]}" if page == 0 else str(page + 1)
    half = len(text) // 2
    cut = text.find(" ", half)
    cut = half if cut < 0 else cut
    block = "\n".join([head, *(numbers if page else numbers[1:])])
    return f"{text[:cut]}\n{block}\n{text[cut + 1:]}" if page else f"{block}\n{text}"


def peerread_entries(w: World, p: Paper, iclr: bool) -> list[dict]:
    officials = []
    for k in range(1, 4):
        if iclr:
            officials.append({
                "OTHER_KEYS": f"ICLR 2017 conference AnonReviewer{k}", "TITLE": "Review", "comments": w.review_text(p),
                "IS_META_REVIEW": False, "RECOMMENDATION": w.rating(p.quality, 1, 10),
                "REVIEWER_CONFIDENCE": 2 + w.index(4), "ORIGINALITY": w.rating(p.quality, 1, 5),
                "CLARITY": w.rating(p.quality, 1, 5), "IMPACT": w.rating(p.quality, 1, 5), "IS_ANNOTATED": True,
                "DATE": f"{10 + k} Dec 2016"})
        else:  # ACL/CoNLL: every score a string, ``is_meta_review`` in lower case and null
            officials.append({
                "IMPACT": str(w.rating(p.quality, 1, 5)), "SUBSTANCE": str(w.rating(p.quality, 1, 5)),
                "APPROPRIATENESS": str(4 + w.index(2)), "MEANINGFUL_COMPARISON": str(w.rating(p.quality, 1, 5)),
                "PRESENTATION_FORMAT": w.pick(("Poster", "Oral Presentation")), "comments": w.review_text(p),
                "SOUNDNESS_CORRECTNESS": str(w.rating(p.quality, 1, 5)), "ORIGINALITY": str(w.rating(p.quality, 1, 5)),
                "is_meta_review": None, "RECOMMENDATION": str(w.rating(p.quality, 1, 5)),
                "CLARITY": str(w.rating(p.quality, 1, 5)), "REVIEWER_CONFIDENCE": str(2 + w.index(4))})
    if not iclr:
        return officials
    verdict = "accept" if p.accepted else "reject"
    entries = []
    if w.u() < 0.5:  # PeerRead's IS_META_REVIEW copies of an official review, sometimes twice
        entries.append({"IS_META_REVIEW": True, "comments": officials[2]["comments"]})
    entries.append({"DATE": "06 Feb 2017", "TITLE": "ICLR committee final decision", "IS_META_REVIEW": False,
                    "comments": f"The reviewers discussed the paper; the committee recommends to {verdict}.",
                    "OTHER_KEYS": "ICLR 2017 pcs"})
    question = {"DATE": "12 Jan 2017", "TITLE": "Question about the setup", "IS_META_REVIEW": False,
                "comments": "Could you clarify how the hyperparameters were chosen?", "OTHER_KEYS": "(anonymous)"}
    entries.append(question)
    if w.u() < 0.2:
        entries.append(dict(question))  # a repeated entry
    entries.append({"DATE": "13 Jan 2017", "TITLE": "Reply", "IS_META_REVIEW": False, "OTHER_KEYS": p.authors[0],
                    "comments": "Thank you; we tuned them on the validation split and will say so."})
    entries.extend(reversed(officials))
    entries.append({"OTHER_KEYS": "ICLR 2017 conference AnonReviewer1", "TITLE": "Clarifications", "comments": "",
                    "ORIGINALITY": officials[0]["ORIGINALITY"], "IS_ANNOTATED": True, "IS_META_REVIEW": False,
                    "DATE": "03 Dec 2016", "CLARITY": officials[0]["CLARITY"]})
    if entries[0].get("IS_META_REVIEW") and w.u() < 0.5:
        entries.append(dict(entries[0]))
    return entries


def peerread_files(seed: int, sizes: dict) -> tuple[dict[str, bytes], list[dict]]:
    files, truth = {}, []
    for venue, splits in sizes.items():
        w = World(seed, f"peerread/{venue}")
        iclr, year = venue.startswith("iclr"), int(venue[-4:])
        n = sum(splits.values())
        ids = sorted(w.subset(range(1, 10 * n), n)) if iclr else sorted(w.subset(range(1, 8 * n), n))
        papers = [w.paper(venue, year, str(i)) for i in ids]
        w.decide(papers, ACCEPT_RATE[venue])
        order = w.permutation(n)
        start = 0
        for split, count in splits.items():
            for k in order[start:start + count]:
                papers[k].split = split
            start += count
        for k, p in enumerate(papers):
            base = f"peerread/{venue}/{p.split}"
            review = {"reviews": peerread_entries(w, p, iclr), "abstract": p.abstract, "histories": [],
                      "id": p.paper_id, "title": p.title}
            if iclr:
                review = {"conference": "ICLR 2017 conference submission", **review,
                          "authors": ", ".join(p.authors), "accepted": p.accepted}
                if k % 7 == 3:
                    review["id"] = int(p.paper_id)  # an int id
            if k == 1:
                review["id"] = ""  # an empty id: the file name is the id
            files[f"{base}/reviews/{p.paper_id}.json"] = json.dumps(review).encode()
            parsed = peerread_parsed(p, iclr, k)
            if parsed is not None:
                files[f"{base}/parsed_pdfs/{p.paper_id}.pdf.json"] = parsed
            truth.append(truth_row("peerread", p, "accept" if iclr and p.accepted else "reject" if iclr else None,
                                   "ok" if parsed is not None else "no_parsed_pdf"))
    return files, truth


def peerread_parsed(p: Paper, iclr: bool, k: int) -> bytes | None:
    if iclr and k == 2:
        return None  # a paper whose parsed PDF is missing
    sections = [{"heading": h, "text": t} for h, t in p.sections]
    if iclr:
        # science-parse sometimes keeps the running header inside a section
        sections[1]["text"] = "Under review as a conference paper at ICLR 2017\n" + sections[1]["text"]
    else:
        sections = [{"heading": None, "text": margin_numbered(p.abstract, 0)}] + [
            {"heading": s["heading"], "text": margin_numbered(s["text"], i + 1)} for i, s in enumerate(sections)]
    meta = {"source": "CRF", "title": p.title.upper() if iclr else p.title, "authors": p.authors if iclr else [],
            "emails": [], "sections": None if k == 4 else sections, "references": [], "referenceMentions": [],
            "year": p.year, "abstractText": p.abstract, "creator": "LaTeX with hyperref package"}
    return json.dumps({"name": f"{p.paper_id}.pdf", "metadata": meta}, indent=2, ensure_ascii=False).encode()


# ---------------------------------------------------------------------------------------------------------------------
# OpenReview


class PaperPdf(FPDF):
    def __init__(self, header_line: str):
        super().__init__(format="letter")
        self.header_line = header_line
        self.set_creation_date(CREATED)
        self.set_auto_page_break(True, margin=20)

    def header(self):
        self.set_font("Helvetica", size=8)
        self.cell(0, 6, self.header_line, align="C", new_x="LMARGIN", new_y="NEXT")
        self.ln(2)

    def footer(self):
        self.set_y(-15)
        self.set_font("Helvetica", size=8)
        self.cell(0, 8, str(self.page_no()), align="C")


def _latin1(text: str) -> str:
    return text.encode("latin-1", "replace").decode("latin-1")  # the core PDF fonts are Latin-1


def render_pdf(p: Paper, header_line: str, authors: Sequence[str], password: str | None = None) -> bytes:
    pdf = PaperPdf(header_line)
    pdf.add_page()

    def lines(text: str, size: float, style: str = "", width: int = LINE_CHARS) -> None:
        # wrapped here: fpdf2's own line breaking (multi_cell) measures every character and is ~20x slower
        pdf.set_font("Helvetica", style, size)
        for line in textwrap.wrap(_latin1(text), width):
            pdf.cell(0, size / 2, line, new_x="LMARGIN", new_y="NEXT")

    lines(p.title, 14, "B", 60)
    for author in authors:
        lines(author, 10)
    blocks = [("Abstract", p.abstract), *p.sections, ("REFERENCES", "A. Author. An earlier paper. In ICLR, 2018.")]
    for heading, text in blocks:
        pdf.ln(2)
        lines(heading, 11, "B")
        for paragraph in text.split("\n"):
            lines(paragraph, 10)
            pdf.ln(1)
    if password is not None:  # "" = readable by anyone, locked against editing only
        pdf.set_encryption(owner_password=password + "-owner", user_password=password)
    return bytes(pdf.output())


def note_id(w: World) -> str:
    return w.pick(NOTE_ID_CHARS[:52]) + "".join(w.pick(NOTE_ID_CHARS) for _ in range(9))


def _ms(when: dt.datetime) -> int:
    return int(when.timestamp() * 1000)


def openreview_replies(w: World, p: Paper, venue: str, forum: str, when: dt.datetime, decision: bool) -> list[dict]:
    prefix = f"ICLR.cc/{p.year}/Conference"
    paper = f"{prefix}/-/Paper{p.number}" if p.year == 2019 else f"{prefix}/Paper{p.number}/-"
    replies = []

    def reply(kind: str, content: dict, signature: str, days: int) -> dict:
        t = _ms(when + dt.timedelta(days=days))
        return {"id": note_id(w), "original": None, "number": len(replies) + 1, "cdate": t, "tcdate": t, "tmdate": t,
                "ddate": None, "content": content, "forum": forum, "replyto": forum, "invitation": f"{paper}/{kind}",
                "readers": ["everyone"], "nonreaders": [], "signatures": [signature], "writers": [signature]}

    for k in range(1, 4):
        text = w.review_text(p)
        if p.year == 2020:
            r = w.pick((1, 3, 6, 8)) if abs(p.quality) < 0.3 else (8 if p.quality > 0.8 else 6 if p.quality > 0 else
                                                                   3 if p.quality > -0.8 else 1)
            content = {"title": f"Official Blind Review #{k}", "review": text, "rating": f"{r}: {RATING_2020[r]}",
                       "experience_assessment": "I have read many papers in this area.",
                       "review_assessment:_thoroughness_in_paper_reading": "I read the paper thoroughly."}
        else:
            r, c = w.rating(p.quality, 1, 10), 2 + w.index(4)
            content = {"title": "Review", "review": text, "rating": f"{r}: {RATING_2019[r]}",
                       "confidence": f"{c}: {CONFIDENCE[c]}"}
        replies.append(reply("Official_Review", content, f"{prefix}/Paper{p.number}/AnonReviewer{k}", 20 + k))
    if w.u() < 0.5:
        replies.append(reply("Official_Comment", {"title": "Response", "comment": "We thank the reviewers."},
                             f"{prefix}/Paper{p.number}/Authors", 40))
    if decision:
        verdict = w.pick(ACCEPT_KINDS[p.year]) if p.accepted else "Reject"
        if p.year == 2019:
            content = {"title": "Meta-review", "metareview": "The reviewers converged after the discussion.",
                       "recommendation": verdict, "confidence": "4: The area chair is confident but not absolutely certain"}
            replies.append(reply("Meta_Review", content, f"{prefix}/Paper{p.number}/Area_Chair1", 60))
        else:
            content = {"title": "Paper Decision", "decision": verdict, "comment": "The program chairs agree."}
            replies.append(reply("Decision", content, f"{prefix}/Program_Chairs", 90))
    return sorted(replies, key=lambda r: r["id"])


def openreview_note(w: World, p: Paper, invitation: str, when: dt.datetime, replies: list[dict] | None) -> dict:
    prefix = f"ICLR.cc/{p.year}/Conference"
    sha = hashlib.sha1(f"{p.paper_id}/{p.title}".encode()).hexdigest()
    content = {"title": p.title, "authors": ["Anonymous"], "authorids": [f"{prefix}/Paper{p.number}/Authors"],
               "keywords": [w.pick(TOPICS).tasks[0]], "TL;DR": p.abstract.split(". ")[0] + ".",
               "abstract": p.abstract, "pdf": f"/pdf/{sha}.pdf",
               "_bibtex": f"@inproceedings{{anonymous{p.year}paper{p.number},\ntitle={{{p.title}}},\nyear={{{p.year}}}\n}}"}
    if p.year == 2020:
        content["original_pdf"] = f"/attachment/{sha[::-1]}.pdf"  # the submitted version, kept beside the latest
    t = _ms(when)
    note = {"id": p.paper_id, "original": note_id(w), "cdate": t, "pdate": None, "odate": None, "mdate": None,
            "tcdate": t, "tmdate": t + 86_400_000, "ddate": None, "number": p.number, "content": content,
            "forum": p.paper_id, "referent": None, "invitation": invitation, "replyto": None, "readers": ["everyone"],
            "nonreaders": [], "signatures": [prefix], "writers": [prefix]}
    note["details"] = {"directReplies": replies} if replies is not None else {}
    return note


def openreview_files(seed: int, sizes: dict) -> tuple[dict[str, bytes], list[dict]]:
    files, truth = {}, []
    for venue, n in sizes["openreview"].items():
        w = World(seed, f"openreview/{venue}")
        year = int(venue[-4:])
        prefix = f"ICLR.cc/{year}/Conference"
        when = EPOCH_2019.replace(year=year - 1)
        n_withdrawn, n_desk = sizes["withdrawn"], sizes["desk_rejected"] if year >= 2020 else 0
        papers = [w.paper(venue, year, note_id(w)) for _ in range(n + n_withdrawn + n_desk)]
        for number, p in enumerate(papers, 1):
            p.number = number
        submitted, withdrawn, desk = papers[:n], papers[n:n + n_withdrawn], papers[n + n_withdrawn:]
        w.decide(submitted, ACCEPT_RATE[venue])
        pages: dict[str, list[dict]] = {}
        for k, p in enumerate(submitted):
            no_decision = k == 5
            replies = openreview_replies(w, p, venue, p.paper_id, when, decision=not no_decision)
            pages.setdefault(f"{prefix}/-/Blind_Submission", []).append(
                openreview_note(w, p, f"{prefix}/-/Blind_Submission", when, replies))
            p.status = "no_decision" if no_decision else "ok"
            pdf = openreview_pdf(p, k, year)
            if pdf is None:
                p.status = "no_pdf"
            else:
                files[f"openreview/pdfs/{p.paper_id}.pdf"] = pdf
                p.status = "encrypted_pdf" if year == 2021 and k == 7 else p.status
            truth.append(truth_row("openreview", p, None if no_decision else "accept" if p.accepted else "reject",
                                   p.status))
        for status, group, name in (("withdrawn", withdrawn, "Withdrawn_Submission"),
                                    ("desk_rejected", desk, "Desk_Rejected_Submission")):
            for p in group:
                pages.setdefault(f"{prefix}/-/{name}", []).append(openreview_note(w, p, f"{prefix}/-/{name}", when, None))
                p.status = status
                truth.append(truth_row("openreview", p, None, status))
        for invitation, notes in pages.items():
            notes.sort(key=lambda note: note["id"])  # the harvester pages with sort=id
            size = sizes["page_size"]
            for i in range(0, len(notes), size):
                page = {"invitation": invitation, "count": len(notes), "notes": notes[i:i + size]}
                files[f"openreview/notes/{invitation.replace('/', '+')}/page-{i // size + 1:05d}.json"] = (
                    json.dumps(page, indent=1, ensure_ascii=False).encode())
    return files, truth


def openreview_pdf(p: Paper, k: int, year: int) -> bytes | None:
    """The PDF the harvester saves: the submitted version; where OpenReview kept no ``original_pdf`` (2019, 2021) an
    accepted paper's only PDF is its de-anonymised camera-ready, whose header and author block give it away."""
    if year == 2019 and k == 9:
        return None  # a submission whose PDF was not fetched
    camera_ready = p.accepted and year != 2020
    header = (f"Published as a conference paper at ICLR {year}" if camera_ready
              else f"Under review as a conference paper at ICLR {year}")
    authors = p.authors if camera_ready else ["Anonymous authors", "Paper under double-blind review"]
    return render_pdf(p, header, authors, password="demo-secret" if year == 2021 and k == 7 else None)


# ---------------------------------------------------------------------------------------------------------------------


def truth_row(source: str, p: Paper, in_files: str | None, status: str) -> dict:
    return {"source": source, "venue": p.venue, "year": p.year, "split": p.split, "paper_id": p.paper_id,
            "title": p.title, "quality": p.quality, "accepted": p.accepted, "decision_in_files": in_files,
            "status": status}


PEERREAD_README = """# PeerRead demo snapshot (synthetic)

PeerRead's own layout: `{venue}/{split}/reviews/<id>.json` and `parsed_pdfs/<id>.pdf.json`. Planted quirks of the
real files: ids as strings, as ints (every 7th ICLR file) and empty (the second file of each venue: the file name
is the id); ICLR scores as ints, ACL/CoNLL scores as strings with a lower-case null `is_meta_review`; ICLR `reviews`
mixing the official reviews with the committee's decision entry (`OTHER_KEYS` "ICLR 2017 pcs"), an anonymous
question (sometimes repeated verbatim), an author reply, an empty pre-review question of AnonReviewer1 and, for about
half the papers, an `IS_META_REVIEW` copy of an official review (sometimes twice); `accepted` only in ICLR files;
parsed PDFs with a null heading and margin line numbers (ACL/CoNLL), the running header inside a section (ICLR),
`sections: null` (the fifth paper of each venue) and one missing parsed PDF (the third ICLR paper).
"""
OPENREVIEW_README = """# OpenReview demo snapshot (synthetic)

`notes/<invitation>/page-NNNNN.json`: API v1 notes as the harvester saves them (`{"invitation", "count", "notes"}`,
sorted by id, `details.directReplies` on submissions), and `pdfs/<note id>.pdf` made with fpdf2. Per year: Blind
submissions with three official reviews (ratings "6: Marginally above ...", 2020 without confidence but with
`experience_assessment`), the decision (2019: `Paper<N>/Meta_Review` `recommendation`; 2020/2021:
`Paper<N>/-/Decision` `decision`), sometimes an author comment; withdrawn and (2020, 2021) desk-rejected papers in
their own invitations. Planted: the sixth submission of each year has no decision; 2020 notes carry `original_pdf`
and their PDF is the submitted one, while accepted 2019/2021 papers have only the camera-ready ("Published as a
conference paper at ICLR ...", authors named); the eighth 2021 PDF is encrypted with a password; the tenth 2019
submission has no PDF.
"""


def default_sizes() -> dict:
    """Papers per venue (and split), withdrawn and desk-rejected papers per venue, notes per page: config
    ``reviewer.demo``, whose schema defaults keep PeerRead's real train/dev/test ratios (ICLR 349/40/38, ACL 123/7/7,
    CoNLL 19/1/2) widened so that dev + test, the benchmark, holds every venue."""
    return schema_defaults()["reviewer"]["demo"]


def size_problems(sizes: dict) -> list[str]:
    small = [v for v, splits in sizes["peerread"].items() if sum(splits.values()) < MIN_PEERREAD_PAPERS]
    small += [v for v, n in sizes["openreview"].items() if n < MIN_OPENREVIEW_SUBMISSIONS]
    return [f"too few papers for the planted quirks: {small} (PeerRead >= {MIN_PEERREAD_PAPERS} a venue, "
            f"OpenReview >= {MIN_OPENREVIEW_SUBMISSIONS})"] if small else []


def render(seed: int, sizes: dict) -> tuple[dict[str, bytes], pl.DataFrame]:
    files, truth = peerread_files(seed, sizes["peerread"])
    more, truth_or = openreview_files(seed, sizes)
    files.update(more)
    files["peerread/README.md"] = PEERREAD_README.encode()
    files["openreview/README.md"] = OPENREVIEW_README.encode()
    frame = pl.DataFrame(truth + truth_or, schema=TRUTH_SCHEMA, orient="row").sort("source", "venue", "paper_id")
    return files, frame


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--out-dir", required=True, type=Path)
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--sizes", type=json_arg, default={}, help="JSON over config reviewer.demo's defaults")
    args = p.parse_args(argv)
    sizes = {**default_sizes(), **args.sizes}
    for problem in size_problems(sizes):
        p.error(problem)
    setup_logging(args.verbose)
    files, truth = render(args.seed, sizes)
    for rel in sorted(files):
        write_bytes_atomic(args.out_dir / rel, files[rel])
    # a rerun with other sizes must not leave files the readers would pick up
    for pattern in OWNED_GLOBS:
        for path in sorted(args.out_dir.glob(pattern)):
            if path.relative_to(args.out_dir).as_posix() not in files:
                path.unlink()
    write_parquet_atomic(truth, args.out_dir / "reviews_truth.parquet")
    log.info("%d files and reviews_truth.parquet (%d papers) written to %s", len(files), truth.height, args.out_dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
