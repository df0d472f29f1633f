"""PLOS journals with their published peer review history: a resumable harvester (the Solr search API, then each
article's JATS XML) and the parser of those XML files into the articles / reports / responses tables (tables.py).

Search (``GET {base}/search``): ``q=*:*``, one ``fq`` each for ``journal_key``, ``doc_type:full`` (the article
itself, not its figures' and tables' partial documents) and ``publication_date:[FROM TO UNTIL]``, ``fl`` the fields
kept, ``wt=json``, ``start`` / ``rows`` paging. The answer is ``{"response": {"numFound", "start", "docs": [...]}}``.
PLOS publishes a limit of 10 requests a minute and 300 an hour for this API: the search client keeps
``--min-interval-s`` (6 s) between requests, which honours the minute limit; the hourly one is met as long as a
harvest asks for fewer than 300 search pages an hour (300 x ``--rows`` 1000 articles), and a 429 is waited out
(Retry-After). The article XML comes from the journal site, ``{site}/{slug}/article/file?id={doi}&type=manuscript``
(slug per journal key, ``--slugs``), a different server with no published limit, at ``--article-min-interval-s``.

``harvest`` saves every search answer verbatim as OUT/search/<journal key>/page-NNNNN.json, then the journal's state
OUT/state/<journal key>.json (next start, numFound): killed and rerun it goes on from the state, a page saved before
its state is asked again under the same number. Then every listed article's XML is kept as
OUT/articles/<journal key>/<doi with / as _>.xml; a file on disk is never asked for again, a failed one is asked
again by the next run (OUT/failures.jsonl lists this run's), and a 404 / 410 answer is a final rejects row (file,
DOI, status) in OUT/rejects.jsonl, never asked again. Every article is kept whatever its journal, PLOS ONE
included: its Peer Review History is opt-in, so any journal's article may carry one.

``parse`` reads every *.xml / *.xml.gz under the given directories (ours or another tool's, any name) with
jats.read_jats. PLOS's review history is a run of sub-articles, which this module relies on:

- ``aggregated-review-documents`` (``specific-use="decision-letter"``) titled "Decision Letter K" (K = 0, 1, ...):
  the editor's letter of round K + 1 with every reviewer's comments pasted in. It is cut into one report per
  reviewer at lines that start with "Reviewer #N:" (also "Reviewer #N (name):"); the letter before the first such
  line is the editor's and is left out. Since about 2019 the letters (PLOS ONE's, and the other journals' too) end
  with the reviewers' answers to a questionnaire, its sections separated by a line of asterisks: "Reviewer's
  Responses to Questions", then per question its text ("1. Is the manuscript technically sound, and do the data
  support the conclusions?"; PLOS Computational Biology's are unnumbered: "Have the authors made all data ...
  fully available?") and one "Reviewer #N: <answer>" line or more per reviewer, one section holding the review
  comments themselves. One reviewer's answers are joined, in order, into that reviewer's one report, each answer
  after its question (the section's last line that ends with "?", else its last numbered line), since "Yes" or
  "No" alone says nothing; the question is looked for after "Reviewer's Responses to Questions" / "Comments to the
  Author(s)" where the letter has that line, never in the editor's letter. The last section asks whether the
  reviewer wants their identity made public ("Reviewer #3: Yes: <name>"): a consent answer, not a review, left
  out, and it is followed, with no separator, by the journal's instructions ("[NOTE: ...", "Figure Files:", "While
  revising your submission, please upload your figure files ..."), which end a reviewer's part wherever they come.
  A letter without any "Reviewer #N:" line is kept whole as reviewer 1's report (counted:
  ``letters_without_reviewer_headings``). The round is K + 1 from the title; without a title that says it, the
  letter's place among the letters of the article. Report ids are ``tables.report_id``; a round with several
  letters (a letter re-issued, a history that repeats "Decision Letter 0") numbers its letters in document order,
  the k-th (k > 1) adding ``.k`` to its ids, so that ids stay unique and the same file always gives the same ids.
- ``author-comment`` titled "Author response to Decision Letter K": the authors' answer to round K + 1, a response;
  without such a title, the round of the letter before it. Most hold only an attached file ("Submitted filename:
  rebuttal.pdf") and the answer's date, both of which jats.py leaves out: such an answer has no text and is counted
  (``responses_without_text``), not kept.
- ``editor-report`` (the acceptance letter): neither a report nor a response, counted.

An article without review sub-articles is left out (counted: ``without_review_history``), as is one whose review
history holds no reviewer text; an article without a body, and a review sub-article without text, are rejects rows
naming the file and the DOI. A DOI in two files keeps the one read later (counted as a duplicate).
``article_id`` = ``family_id`` = ``plos:<doi>`` (PLOS does not version its articles).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from workflow_scripts.common.cli import json_arg
from workflow_scripts.common.io import Rejects, write_bytes_atomic, write_json_atomic
from workflow_scripts.sources.bad_input import BadInput, error_answer
from workflow_scripts.sources.biomed import tables
from workflow_scripts.sources.biomed.source_io import (Counts, Fetches, Parsed, add_output_args, add_window_args,
                                                       check_jats, file_key, jats_article_row, jats_files, log_failures,
                                                       read_answer, run_source_cli, source_cli, write_tables)
from workflow_scripts.sources.errors import UnusableFile, run_main
from workflow_scripts.sources.http import HarvestError, PoliteClient, policy_of
from workflow_scripts.sources.reader_io import remove_stale_temp_files

log = logging.getLogger(__name__)

SOURCE = "plos"
REVIEW_STYLE = "plos-review-history"
FIELDS = "id,title,publication_date,journal_key,article_type"
DEFAULT_SLUGS = {
    "PLoSBiology": "plosbiology", "PLoSONE": "plosone", "PLoSMedicine": "plosmedicine",
    "PLoSGenetics": "plosgenetics", "PLoSCompBiol": "ploscompbiol", "PLoSPathogens": "plospathogens",
    "PLoSNTD": "plosntds",
}
LETTER, RESPONSE, EDITOR = "aggregated-review-documents", "author-comment", "editor-report"

# --------------------------------------------------------------------------------------------------------------------
# harvest


def search_params(journal_key: str, from_date: dt.date, until_date: dt.date, start: int, rows: int) -> list:
    window = f"publication_date:[{from_date.isoformat()}T00:00:00Z TO {until_date.isoformat()}T23:59:59Z]"
    return [("q", "*:*"), ("fq", f"journal_key:{journal_key}"), ("fq", "doc_type:full"), ("fq", window),
            ("fl", FIELDS), ("wt", "json"), ("start", str(start)), ("rows", str(rows))]


def read_search_answer(obj) -> tuple[int, int, list[dict]]:
    """(numFound, start, docs) of a Solr answer; UnusableFile when ``obj`` is not one."""
    response = obj.get("response") if isinstance(obj, dict) else None
    if not isinstance(response, dict):
        message = error_answer(obj)
        raise UnusableFile("error response" if message else "wrong source",
                           f"the API answered {message!r}" if message else "no 'response' object: not a Solr answer")
    found, start, docs = response.get("numFound"), response.get("start"), response.get("docs")
    if not (isinstance(found, int) and isinstance(start, int) and isinstance(docs, list)):
        raise UnusableFile("malformed", "response without numFound / start / docs")
    return found, start, docs


@dataclass
class Harvest:
    api_url: str  # the Solr root: {api_url}/search
    site_url: str  # the journals site: {site_url}/{slug}/article/file
    slugs: dict[str, str]
    from_date: dt.date
    until_date: dt.date
    out_dir: Path
    rows: int = 1000
    article_types: list[str] = field(default_factory=list)  # empty: every type

    def list_journal(self, client: PoliteClient, journal_key: str) -> dict:
        pages_dir = self.out_dir / "search" / journal_key
        state_path = self.out_dir / "state" / f"{journal_key}.json"
        for d in (pages_dir, state_path.parent):
            d.mkdir(parents=True, exist_ok=True)
            remove_stale_temp_files(d)
        state = (json.loads(state_path.read_text(encoding="utf-8")) if state_path.exists()
                 else {"start": 0, "pages": 0, "found": None, "complete": False})
        while not state["complete"]:
            url = f"{self.api_url.rstrip('/')}/search"
            params = search_params(journal_key, self.from_date, self.until_date, state["start"], self.rows)
            resp = client.get(url, params=params)
            found, start, docs = read_answer(resp, read_search_answer, str(resp.request.url))
            if start != state["start"]:
                raise HarvestError(f"{resp.request.url}: the answer starts at {start}, not {state['start']}")
            n = state["pages"] + 1
            write_bytes_atomic(pages_dir / f"page-{n:05d}.json", resp.content)  # page first, then state
            state.update(pages=n, start=start + len(docs), found=found,
                         complete=not docs or start + len(docs) >= found)
            write_json_atomic(state_path, state)
        log.info("%s: %d page(s), %s article(s) found", journal_key, state["pages"], state["found"])
        return state

    def listed_dois(self, journal_key: str) -> tuple[list[str], int]:
        """(DOIs of the saved search pages, in page order, once each; how many were of other article types)."""
        dois, other_types = [], 0
        for page in sorted((self.out_dir / "search" / journal_key).glob("page-*.json")):
            for doc in read_search_answer(json.loads(page.read_bytes()))[2]:
                if self.article_types and doc.get("article_type") not in self.article_types:
                    other_types += 1
                elif doc.get("id") not in dois:
                    dois.append(doc["id"])
        return dois, other_types

    def article_url(self, journal_key: str, doi: str) -> str:
        return (f"{self.site_url.rstrip('/')}/{self.slugs[journal_key]}/article/file?id={quote(doi, safe='/')}"
                "&type=manuscript")

    def run(self, journal_keys: list[str], search: PoliteClient, site: PoliteClient) -> dict:
        unknown = [key for key in journal_keys if key not in self.slugs]
        if unknown:  # before any request
            raise HarvestError(f"no journal slug for {unknown}: add them to --slugs (known: {sorted(self.slugs)})")
        fetches = Fetches(self.out_dir / "failures.jsonl")
        per_journal = {}
        for key in journal_keys:
            state = self.list_journal(search, key)
            dois, other_types = self.listed_dois(key)
            for doi in dois:
                target = self.out_dir / "articles" / key / f"{file_key(doi)}.xml"
                fetches.get(site, self.article_url(key, doi), target, check_jats, record=doi)
            per_journal[key] = {"found": state["found"], "pages": state["pages"], "articles": len(dois),
                                "other_article_types": other_types}
        log_failures(SOURCE, fetches)
        return {"source": SOURCE, "journals": per_journal, **fetches.summary()}


# --------------------------------------------------------------------------------------------------------------------
# parse: one review letter into reviewers' reports

# "Reviewer #2:", "Reviewer #2 (Jane Doe):", "Reviewer #2, Jane Doe:" at the start of a line
_REVIEWER = re.compile(r"^[ \t]*Reviewer[ \t]*#[ \t]*(\d+)(?:[ \t]*\([^)\n]{0,80}\)|,[^:\n]{0,60})?[ \t]*:",
                       re.M | re.I)
_SEPARATOR = re.compile(r"^[ \t]*\*{3,}[ \t]*$", re.M)
_NUMBERED = re.compile(r"^[ \t]*\d{1,2}\.[ \t]+\S.*$", re.M)
_ASKED = re.compile(r"^.*\S.*\?[ \t]*$", re.M)
# where the questionnaire starts in the first section (the editor's letter before it is never a question)
_QUESTIONNAIRE = re.compile(r"^[ \t]*(?:Reviewer'?s'?\s+Responses\s+to\s+Questions|Comments\s+to\s+the\s+Authors?)"
                            r"\b.*$", re.M | re.I)
_IDENTITY = re.compile(r"identity\s+to\s+be\s+public|option\s+to\s+publish\s+the\s+peer\s+review\s+history", re.I)
# the journal's instructions after the questionnaire: they end a reviewer's part
_INSTRUCTIONS = re.compile(r"^[ \t]*(?:\[NOTE:|(?:Figure\s+Files|Data\s+Requirements|Reproducibility)\s*:|"
                           r"While\s+revising\s+your\s+submission,\s+please\s+upload)", re.M | re.I)
_LETTER_TITLE = re.compile(r"decision\s+letter\s+(\d+)", re.I)


def split_reviewers(text: str) -> tuple[str, dict[int, str]]:
    """(the editor's text before the first reviewer line, {reviewer: their text}) of one decision letter; the
    reviewers' parts are joined per reviewer in letter order, each answer of a questionnaire after its question,
    the identity question's answers and the journal's instructions left out (see the module docstring)."""
    heads = list(_REVIEWER.finditer(text))
    editor = text[: heads[0].start()].strip() if heads else text.strip()
    questionnaire = bool(_SEPARATOR.search(text))
    parts: dict[int, list[str]] = {}
    for number, section in enumerate(_SEPARATOR.split(text) if questionnaire else [text]):
        in_section = list(_REVIEWER.finditer(section))
        if not in_section:
            continue
        template = _template(section[: in_section[0].start()], first=number == 0) if questionnaire else ""
        if _IDENTITY.search(template):
            continue  # whether the reviewer's name may be published: not part of the review
        question = _question(template)
        for head, after in zip(in_section, in_section[1:] + [None]):
            chunk = section[head.end(): after.start() if after else len(section)]
            answer = _INSTRUCTIONS.split(chunk, maxsplit=1)[0].strip()
            if answer:
                parts.setdefault(int(head.group(1)), []).append(f"{question}\n{answer}" if question else answer)
    return editor, {n: "\n\n".join(chunks) for n, chunks in sorted(parts.items())}


def _template(text: str, first: bool) -> str:
    """The questionnaire's text before a section's first answer; in the letter's first section only what follows the
    line that opens the questionnaire, if it has one (before it is the editor's letter)."""
    if first:
        opening = list(_QUESTIONNAIRE.finditer(text))
        return text[opening[-1].end():] if opening else text
    return text


def _question(template: str) -> str | None:
    """The question a questionnaire section asks: its last line ending with "?", else its last numbered line."""
    found = _ASKED.findall(template) or _NUMBERED.findall(template)
    return " ".join(found[-1].split()) if found else None


def letter_round(title: str | None, order: int) -> int:
    """Round of a decision letter: K + 1 for "Decision Letter K", else its 1-based place among the letters."""
    m = _LETTER_TITLE.search(title or "")
    return int(m.group(1)) + 1 if m else order


@dataclass
class PlosCounts(Counts):
    without_review_history: int = 0
    review_history_without_reports: int = 0
    letters: int = 0
    letters_without_reviewer_headings: int = 0
    editor_reports: int = 0
    responses_without_text: int = 0
    other_sub_articles: int = 0
    per_journal: dict = field(default_factory=dict)


def review_history(article, path: Path, counts: PlosCounts, rejects: Rejects) -> tuple[list[dict], list[dict]]:
    """(reports, responses) of one article's review sub-articles, with its article_id; empty sub-articles become
    rejects rows."""
    article_id = f"{SOURCE}:{article.doi}"
    reports, responses, letters = [], [], 0
    letters_in_round: Counter = Counter()  # a round's k-th letter adds ".k" to its report ids
    for sub in article.sub_articles:
        kind = sub.article_type
        if kind == EDITOR:
            counts.editor_reports += 1
            continue
        if kind not in (LETTER, RESPONSE):
            counts.other_sub_articles += 1
            continue
        letters += kind == LETTER
        if kind == RESPONSE and not (sub.text or "").strip():
            counts.responses_without_text += 1  # the authors' answer is an attached file (not in the XML)
            continue
        if not (sub.text or "").strip():
            rejects.add(path, f"{article.doi} {sub.id or kind}", f"review sub-article without text ({kind})")
            continue
        if kind == RESPONSE:
            round_ = letter_round(sub.title, max(letters, 1))
            responses.append({"response_id": f"{article_id}#a{round_}-{len(responses) + 1}",
                              "article_id": article_id, "source": SOURCE, "round": round_, "kind": kind,
                              "text": sub.text.strip()})
            continue
        counts.letters += 1
        round_ = letter_round(sub.title, letters)
        letters_in_round[round_] += 1
        _, by_reviewer = split_reviewers(sub.text)
        if not by_reviewer:
            counts.letters_without_reviewer_headings += 1
            by_reviewer = {1: sub.text.strip()}
        reports.extend({"report_id": tables.report_id(article_id, round_, n, letters_in_round[round_]),
                        "article_id": article_id, "source": SOURCE, "reviewer": n, "round": round_, "kind": kind,
                        "text": text, "recommendation": None} for n, text in by_reviewer.items())
    return reports, responses


def parse(dirs: list[Path], bad: BadInput) -> Parsed:
    """The rows of every usable file under ``dirs``, and the counts."""
    counts, kept = PlosCounts(), {}
    for article, path, file in jats_files(dirs, bad, counts):
        if not article.doi:
            bad.rejects.add(path, "*", "article without a DOI")
            continue
        if not article.has_body:
            bad.rejects.add(path, article.doi, "article without body")
            continue
        kinds = {sub.article_type for sub in article.sub_articles}
        if not kinds & {LETTER, RESPONSE, EDITOR}:
            counts.without_review_history += 1
            continue
        reports, responses = review_history(article, path, counts, bad.rejects)
        if not reports:
            counts.review_history_without_reports += 1
            continue
        article_id = f"{SOURCE}:{article.doi}"
        row = jats_article_row(article, source=SOURCE, article_id=article_id, family_id=article_id,
                               review_style=REVIEW_STYLE, file=file)
        counts.duplicates += article_id in kept
        kept[article_id] = (row, reports, responses)  # a DOI read again: the later file wins
    bundles = list(kept.values())
    for row, _, _ in bundles:
        counts.per_journal[row["journal"]] = counts.per_journal.get(row["journal"], 0) + 1
    return Parsed([b[0] for b in bundles], [r for b in bundles for r in b[1]], [r for b in bundles for r in b[2]],
                  counts)


# --------------------------------------------------------------------------------------------------------------------
# command line


def main(argv: list[str] | None = None) -> None:
    p, h, s = source_cli(__doc__, harvest_help="search pages + article XML into OUT (resumable)",
                         parse_help="article XML files -> articles / reports / responses tables",
                         out_dir_help="search/, state/, articles/, failures.jsonl, rejects.jsonl", min_interval_s=6.0,
                         interval_what="search requests (the API allows 10 a minute)")
    h.add_argument("--api-url", default="https://api.plos.org", help="the Solr search API root")
    h.add_argument("--site-url", default="https://journals.plos.org", help="the journals site (article XML)")
    h.add_argument("--journal-key", required=True, action="append", dest="journal_keys",
                   help="Solr journal_key, e.g. PLoSBiology, PLoSONE (repeat for several)")
    h.add_argument("--slugs", type=json_arg, default=DEFAULT_SLUGS, help="JSON: journal_key -> site slug")
    add_window_args(h, until_required=True)
    h.add_argument("--rows", type=int, default=1000, help="search results a page")
    h.add_argument("--article-type", action="append", dest="article_types", default=[],
                   help="keep only this Solr article_type (repeat; none: every type)")
    h.add_argument("--article-min-interval-s", type=float, default=1.0, help="seconds between article requests")
    s.add_argument("--xml", required=True, nargs="+", type=Path,
                   help="directories searched recursively for *.xml / *.xml.gz article files, any name")
    add_output_args(s)

    def harvest(args) -> dict:
        harvest = Harvest(args.api_url, args.site_url, args.slugs, args.from_date, args.until_date, args.out_dir,
                          args.rows, args.article_types)
        with PoliteClient(policy_of(args)) as search, \
                PoliteClient(policy_of(args, args.article_min_interval_s)) as site:
            return harvest.run(args.journal_keys, search, site)

    run_source_cli(p, argv, harvest, lambda args, bad: write_tables(SOURCE, parse(args.xml, bad), bad, args))


if __name__ == "__main__":
    run_main(main)
