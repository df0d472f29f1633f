"""Nature portfolio journals with transparent peer review: a resumable harvester (Crossref discovery, the article
landing page, its "Peer Review File" PDF, the body from Europe PMC) and the parser of the PDFs and full texts into the
articles / reports / responses tables (tables.py).

``harvest``, per journal (``--journal``, a Crossref container-title; default Nature Communications):

1. crossref.list_articles with the container-title and the publication window, journal articles only, into
   OUT/crossref/<journal>/; news and comment DOIs (``10.1038/d41586...``) are skipped, counted.
2. the landing page ``{article-url}/{DOI suffix}`` kept as OUT/landing/<DOI suffix>.html; its link labelled "Peer
   Review File" (``--link-text``) whose URL matches ``--link-pattern`` (the Springer ESM store,
   ``static-content.springer.com/esm/..._MOESM{N}_ESM.pdf``) is the review file, saved verbatim as
   OUT/peer_review/<DOI suffix>.pdf. An article without that link did not publish its reviews (counted).
3. europepmc.harvest of the DOIs with a review file into OUT/europepmc/ (search answers, fulltext/<PMCID>.xml).

Every file on disk is never asked for again, and a request that still fails after its retries is recorded in
``failures.jsonl`` and asked again by the next run, so a killed harvest resumes where it stopped. A 404 / 410
answer for a landing page, a review file or a full text is a final rejects row (file, DOI, status) in
OUT/rejects.jsonl (OUT/europepmc/rejects.jsonl for the full texts), never asked again.

``parse`` reads every *.pdf under ``--peer-review-files`` (named by the DOI suffix: ``s41467-021-20001-1.pdf`` is
10.1038/s41467-021-20001-1) and every JATS full text under ``--full-texts`` (any name; matched by the DOI inside).
The text of a PDF comes from pypdf: pure Python and already the project's PDF reader (reviews/pdf_text.py), and the
file's structure is in its text lines, so pdfplumber's layout detail (the reference's choice) adds nothing here. The
lines are read in order (:func:`split_peer_review`):

- a reviewer's report starts at a line "Reviewer #N (Remarks to the Author):" (or "Reviewer #N:" alone, with a
  "Remarks to the Author:" line after it); "Reviewer #N (Remarks on code availability):" and other remarks of the
  same reviewer continue that reviewer's report.
- rounds: round 1 until the "REVIEWERS' COMMENTS" banner ("REVIEWER COMMENTS") appears again after reports, or a
  reviewer's heading appears a second time in a round ("Reviewer #1 (Remarks to the Author)" seen again): then
  round 2, and so on.
- the authors' point-by-point response, where the file includes it, starts at a heading line such as "Response to
  Reviewers", "Point-by-point response", "Rebuttal letter" and is a response of the round it answers. Authors quote
  the reviewers' headings in it, so a heading there is a quote, unless it starts the next round, which a file does
  not always mark with a banner: a reviewer's heading that the response has already quoted once (the reviewers
  start over), or a template heading "Reviewer #N (Remarks to the Author)" under which no line answers (none
  starts with "Response", "Reply", "Answer" or "We ..." before the next heading). The next banner ends it too.
- the text before the first heading (the file's title page and licence note) is neither.

A PDF that cannot be read (not a PDF, encrypted, broken, no text layer) is a bad file; one without a reviewer heading,
or whose article has no Europe PMC full text or no body, is a rejects row naming the file. The licence recorded is the
article's (from the full text): only an open-access article with its transparent review may be redistributed.
``article_id`` = ``family_id`` = ``nature:<doi>``.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin

import lxml.html

from workflow_scripts.sources.bad_input import BadInput
from workflow_scripts.sources.biomed import crossref, europepmc, tables
from workflow_scripts.sources.biomed.source_io import (Counts, Fetches, Parsed, add_output_args, clean_block,
                                                       jats_article_row, jats_files, log_failures, native_files,
                                                       read_bytes, run_source_cli, source_cli, write_tables)
from workflow_scripts.sources.errors import UnusableFile, run_main
from workflow_scripts.sources.reviews.pdf_text import check_pdf, pdf_pages
from workflow_scripts.sources.http import PoliteClient, policy_of

log = logging.getLogger(__name__)

SOURCE = "nature"
REVIEW_STYLE = "nature-peer-review-file"
PREFIX = "10.1038/"
NEWS_PREFIX = "10.1038/d41586"
KIND = "peer-review-file"
RESPONSE_KIND = "point-by-point-response"
DEFAULT_LINK_PATTERN = r"static-content\.springer\.com/esm/[^?#]+_MOESM\d+_ESM\.pdf$"
MIN_PDF_CHARS = 200
REVIEW_FILE_OUTCOMES = ("with_peer_review_file", "without_peer_review_file", "failed", "gone")

# --------------------------------------------------------------------------------------------------------------------
# harvest


def journal_dir(journal: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", journal.lower()).strip("-")


def doi_suffix(doi: str) -> str:
    return doi[len(PREFIX):]


def peer_review_link(html: bytes, page_url: str, link_text: str, pattern: re.Pattern) -> str | None:
    """The absolute URL of the landing page's review-file link: a link whose text (or data-track-label) contains
    ``link_text`` and whose URL matches ``pattern``; None when the page has none."""
    try:
        doc = lxml.html.fromstring(html)
    except (lxml.etree.ParserError, ValueError):
        return None
    wanted = link_text.lower()
    for a in doc.iter("a"):
        href = a.get("href")
        if not href:
            continue
        url = urljoin(page_url, href.strip())
        labels = (" ".join(a.text_content().split()).lower(), (a.get("data-track-label") or "").lower())
        if pattern.search(url) and any(wanted in label for label in labels):
            return url
    return None


def landing_check(doi: str):
    """The check of one article's landing page: a page that does not name the DOI (an error or consent page served
    with status 200) is refused, so that it is never taken for an article without a review file."""
    def check(data: bytes) -> None:
        if doi_suffix(doi).encode() not in data.lower():
            raise UnusableFile("wrong page", f"the page does not name {doi} (an error or consent page?)")
    return check


@dataclass
class Harvest:
    crossref_url: str
    article_url: str  # {article_url}/{DOI suffix} is the landing page
    europepmc_url: str
    out_dir: Path
    from_date: dt.date
    until_date: dt.date
    link_text: str = "Peer Review File"
    link_pattern: str = DEFAULT_LINK_PATTERN
    rows: int = crossref.MAX_ROWS
    mailto: str | None = None

    def dois(self, crossref_client: PoliteClient, journal: str) -> tuple[list[str], int]:
        """(the journal's article DOIs in the window; how many news DOIs were skipped)."""
        works = crossref.list_articles(crossref_client, self.crossref_url,
                                       self.out_dir / "crossref" / journal_dir(journal), {"container-title": journal},
                                       from_date=self.from_date, until_date=self.until_date, mailto=self.mailto,
                                       rows=self.rows)
        dois = [d for d in works["doi"].to_list() if d.startswith(PREFIX)]
        kept = [d for d in dois if not d.startswith(NEWS_PREFIX)]
        return kept, len(dois) - len(kept)

    def review_file(self, client: PoliteClient, doi: str, fetches: Fetches) -> str:
        """Fetch the landing page and its review file: ``with_peer_review_file`` when the PDF is on disk,
        ``without_peer_review_file`` when the article has none, ``gone`` when the site answered 404 / 410 for the
        page or the file (final: a rejects row, never asked again), ``failed`` when a request failed otherwise
        (asked again next run)."""
        page_url = f"{self.article_url.rstrip('/')}/{doi_suffix(doi)}"
        landing = self.out_dir / "landing" / f"{doi_suffix(doi)}.html"
        html = fetches.get(client, page_url, landing, landing_check(doi), record=doi)
        if html is None:
            return "gone" if fetches.is_gone(landing) else "failed"
        link = peer_review_link(html, page_url, self.link_text, re.compile(self.link_pattern))
        if link is None:
            return "without_peer_review_file"
        pdf = self.out_dir / "peer_review" / f"{doi_suffix(doi)}.pdf"
        if fetches.get(client, link, pdf, check_pdf, record=doi) is not None:
            return "with_peer_review_file"
        return "gone" if fetches.is_gone(pdf) else "failed"

    def run(self, journals: list[str], crossref_client: PoliteClient, site: PoliteClient,
            epmc: PoliteClient) -> dict:
        fetches = Fetches(self.out_dir / "failures.jsonl")
        per_journal, with_file = {}, []
        for journal in journals:
            dois, news = self.dois(crossref_client, journal)
            found = [self.review_file(site, doi, fetches) for doi in dois]
            with_file += [doi for doi, what in zip(dois, found) if what == "with_peer_review_file"]
            per_journal[journal] = {"articles": len(dois), "news_skipped": news,
                                    **{what: found.count(what) for what in REVIEW_FILE_OUTCOMES}}
            log.info("%s: %s", journal, per_journal[journal])
        log_failures(SOURCE, fetches)
        full_texts = europepmc.harvest(with_file, epmc, self.europepmc_url, self.out_dir / "europepmc")
        return {"source": SOURCE, "journals": per_journal, **fetches.summary(), "europepmc": full_texts}


# --------------------------------------------------------------------------------------------------------------------
# parse: the text of one Peer Review File into reports and responses

# "REVIEWERS' COMMENTS:", "REVIEWER COMMENTS" (some files keep a stray "</B>" from their source)
_BANNER = re.compile(r"^\s*REVIEWERS?['’`]?\s+COMMENTS\s*:?\s*(?:</?\w+>\s*)*$", re.I)
_REVIEWER = re.compile(r"^\s*Reviewer\s*#\s*(\d+)\s*(?:\((?P<what>[^)]*)\))?\s*(?::\s*(?P<rest>.*?))?\s*$", re.I)
_TO_AUTHOR = re.compile(r"^\s*remarks\s+to\s+the\s+authors?\s*:?\s*$", re.I)
_RESPONSE = re.compile(
    r"^\s*(?:authors?['’]?\s+|our\s+)?(?:point[- ]by[- ]point\s+)?(?:response|reply|rebuttal)s?"
    r"(?:\s+letter|\s+to\s+(?:the\s+)?(?:reviewers?|referees?)(?:['’]|['’]s)?(?:\s+comments)?)?\s*:?\s*$", re.I)


def is_response_heading(line: str) -> bool:
    """"Response to Reviewers", "Point-by-point response", "Rebuttal letter"; a bare "Response:" (authors' answers
    to each point, or a reviewer's word) is not a heading."""
    return bool(_RESPONSE.match(line)) and (len(line.split()) >= 2 or "rebuttal" in line.lower())


@dataclass
class PeerReviewFile:
    reports: dict[tuple[int, int], list[str]] = field(default_factory=dict)  # (round, reviewer) -> lines
    responses: list[tuple[int, list[str]]] = field(default_factory=list)  # (round, lines)
    preamble: list[str] = field(default_factory=list)


def split_peer_review(lines: list[str]) -> PeerReviewFile:
    """The reports and responses of a Peer Review File's text lines, by the rules of the module docstring."""
    out = PeerReviewFile()
    round_, seen, current = 1, set(), out.preamble
    in_response, quoted = False, set()
    for i, line in enumerate(lines):
        if _BANNER.match(line):
            if seen or in_response:  # a banner after this round's reports opens the next round
                round_, seen = round_ + 1, set()
            in_response, current = False, []
            continue
        head = _REVIEWER.match(line)
        if in_response:
            if head is None or not _opens_next_round(lines, i, head, quoted):
                if head is not None:
                    quoted.add(int(head.group(1)))
                current.append(line)
                continue
            round_, seen, in_response = round_ + 1, set(), False  # the next round, without its banner
        if head:
            n, what = int(head.group(1)), head.group("what")
            if what is not None and not _TO_AUTHOR.match(what) and n in seen:
                current = out.reports[(round_, n)]  # more remarks of the same reviewer
                current.append(line.strip())
                continue
            if n in seen:  # a reviewer's heading again: the next round
                round_, seen = round_ + 1, set()
            seen.add(n)
            current = out.reports.setdefault((round_, n), [])
            if head.group("rest"):
                current.append(head.group("rest"))
            continue
        if is_response_heading(line):
            in_response, current, quoted = True, [], set()
            out.responses.append((round_, current))
            continue
        if _TO_AUTHOR.match(line) and current is not out.preamble and not current:
            continue  # the label under a bare "Reviewer #N:" heading
        current.append(line)
    return out


# a line of the authors' answers in a response: "Response:", "Reply 1.", "Our response:", "We added ..."
_ANSWER = re.compile(r"^\s*(?:(?:(?:our|authors?['’]?)\s+)?(?:response|reply|answer)s?\b|we\s+\w)", re.I)


def _opens_next_round(lines: list[str], i: int, head: re.Match, quoted: set[int]) -> bool:
    """Whether the reviewer heading ``lines[i]``, met inside an authors' response, starts the next round rather than
    quoting the reviewer (module docstring)."""
    if int(head.group(1)) in quoted:
        return True
    what = head.group("what")
    template = _TO_AUTHOR.match(what) if what is not None else i + 1 < len(lines) and _TO_AUTHOR.match(lines[i + 1])
    if not template:
        return False
    for line in lines[i + 1:]:
        if _REVIEWER.match(line) or _BANNER.match(line):
            break
        if _ANSWER.match(line):
            return False
    return True


def pdf_lines(data: bytes) -> list[str]:
    """The text lines of a PDF; UnusableFile (not a pdf, encrypted, malformed, no text) when it cannot be read."""
    pages = pdf_pages(data)
    chars = sum(len(p.strip()) for p in pages)
    if chars < MIN_PDF_CHARS:
        raise UnusableFile("no text", f"{chars} characters of text in {len(pages)} page(s): a scan without a text "
                                      "layer?")
    return [line for page in pages for line in page.splitlines()]


@dataclass
class NatureCounts(Counts):
    full_texts: int = 0
    full_texts_without_peer_review_file: int = 0
    open_licence: int = 0


def read_full_texts(dirs: list[Path], bad: BadInput, counts: NatureCounts) -> dict[str, tuple]:
    """{doi: (JatsArticle, file name relative to its snapshot, path)} of the JATS files under ``dirs``."""
    found = {}
    for article, path, file in jats_files(dirs, bad, counts):
        if not article.doi:
            bad.rejects.add(path, "*", "full text without a DOI")
            continue
        counts.full_texts += 1
        counts.duplicates += article.doi in found
        found[article.doi] = (article, file, path)
    return found


def review_rows(article_id: str, review: PeerReviewFile) -> tuple[list[dict], list[dict]]:
    reports = [{"report_id": tables.report_id(article_id, r, n), "article_id": article_id, "source": SOURCE,
                "reviewer": n, "round": r, "kind": KIND, "text": clean_block("\n".join(lines)), "recommendation": None}
               for (r, n), lines in review.reports.items()]
    responses = [{"response_id": f"{article_id}#a{r}-{i}", "article_id": article_id, "source": SOURCE, "round": r,
                  "kind": RESPONSE_KIND, "text": clean_block("\n".join(lines))}
                 for i, (r, lines) in enumerate(review.responses, 1)]
    return [r for r in reports if r["text"]], [r for r in responses if r["text"]]


def parse(pdf_dirs: list[Path], text_dirs: list[Path], bad: BadInput) -> Parsed:
    counts = NatureCounts()
    full_texts = read_full_texts(text_dirs, bad, counts)
    articles, reports, responses, used = {}, [], [], set()
    for path, _ in native_files(pdf_dirs, (".pdf",)):
        counts.files += 1
        doi = (PREFIX + path.stem).lower()
        try:
            review = split_peer_review(pdf_lines(read_bytes(path)))
        except UnusableFile as problem:
            bad.add(path, problem)
            continue
        if not review.reports:
            bad.rejects.add(path, doi, "no 'Reviewer #N (Remarks to the Author)' heading in the text")
            continue
        if doi not in full_texts:
            bad.rejects.add(path, doi, f"no Europe PMC full text for {doi} (a review file is named by its DOI "
                                       "suffix after 10.1038/)")
            continue
        article, name, text_path = full_texts[doi]
        used.add(doi)
        if not article.has_body:
            bad.rejects.add(text_path, doi, "article without body")
            continue
        article_id = f"{SOURCE}:{doi}"
        if article_id in articles:
            counts.duplicates += 1
            reports = [r for r in reports if r["article_id"] != article_id]
            responses = [r for r in responses if r["article_id"] != article_id]
        articles[article_id] = jats_article_row(article, source=SOURCE, article_id=article_id, family_id=article_id,
                                                review_style=REVIEW_STYLE, file=name)
        new_reports, new_responses = review_rows(article_id, review)
        reports += new_reports
        responses += new_responses
    counts.full_texts_without_peer_review_file = len(set(full_texts) - used)
    counts.open_licence = sum("creativecommons.org" in (a["license"] or "") for a in articles.values())
    return Parsed(list(articles.values()), reports, responses, counts)


# --------------------------------------------------------------------------------------------------------------------
# command line


def main(argv: list[str] | None = None) -> None:
    p, h, s = source_cli(__doc__, harvest_help="Crossref listing, landing pages, review PDFs, Europe PMC full texts "
                                               "(resumable)",
                         parse_help="review PDFs + Europe PMC full texts -> articles / reports / responses",
                         out_dir_help="crossref/, landing/, peer_review/, europepmc/, failures.jsonl, rejects.jsonl",
                         min_interval_s=2.0,
                         interval_what="requests to the journal site")
    h.add_argument("--journal", action="append", dest="journals", default=[],
                   help="Crossref container-title (repeat for several; default Nature Communications)")
    crossref.add_listing_args(h, until_required=True, own_interval=False)  # --api-min-interval-s
    h.add_argument("--article-url", default="https://www.nature.com/articles", help="landing pages: URL/{suffix}")
    h.add_argument("--link-text", default="Peer Review File", help="label of the review file's link")
    h.add_argument("--link-pattern", default=DEFAULT_LINK_PATTERN, help="regular expression the link's URL matches")
    h.add_argument("--europepmc-url", default=europepmc.BASE_URL)
    h.add_argument("--api-min-interval-s", type=float, default=1.0, help="seconds between Crossref / Europe PMC "
                                                                        "requests")
    s.add_argument("--peer-review-files", required=True, nargs="+", type=Path,
                   help="directories searched recursively for <DOI suffix>.pdf review files")
    s.add_argument("--full-texts", required=True, nargs="+", type=Path,
                   help="directories searched recursively for *.xml / *.xml.gz JATS full texts, any name")
    add_output_args(s)

    def harvest(args) -> dict:
        mailto = crossref.mailto_of(args.mailto_env)
        harvest = Harvest(args.crossref_url, args.article_url, args.europepmc_url, args.out_dir, args.from_date,
                          args.until_date, args.link_text, args.link_pattern, args.rows, mailto)
        api = policy_of(args, args.api_min_interval_s)
        with crossref.polite_client(api, mailto) as cr, PoliteClient(policy_of(args)) as site, \
                PoliteClient(api) as epmc:
            return harvest.run(args.journals or ["Nature Communications"], cr, site, epmc)

    run_source_cli(p, argv, harvest, lambda args, bad: write_tables(
        SOURCE, parse(args.peer_review_files, args.full_texts, bad), bad, args))


if __name__ == "__main__":
    run_main(main)
