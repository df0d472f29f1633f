"""Write the BioReview demo world: synthetic biomedical articles and their published peer reviews in every source's
native format, laid out as each source's harvester saves a snapshot, so that each ``parse`` reads them as downloads.

    python -m workflow_scripts.demo.biomed --out-dir DIR --n-articles 50 --seed 1234

The world (biomed_world.py): every article has an abstract, four body sections with varied titles, two figure
captions, a licence, 1-4 planted flaws from a fixed vocabulary, and 2-3 reviewers whose first-round reports raise
each flaw in a concern sentence ``<Cue> (<severity>): <text>`` (the format ``demo/bioreview_extractor.py``, the
demo's extractor stand-in, reads back), worded differently per reviewer, among praise and neutral sentences without
a cue. The formats (biomed_formats.py): eLife in its three review styles, PLOS Biology and PLOS ONE, F1000Research
and Wellcome Open Research families of 2-3 versions, PeerJ review-history and article pages, Nature Peer Review File
PDFs with landing pages and Europe PMC full texts. Planted bad input, one each: a malformed XML file (eLife), an
article without a body (PLOS), a review sub-article without text (F1000), an unreadable PDF (Nature); and a PLOS
ONE article without review history (left out and counted, not a reject).

Besides the snapshots: ``expected_counts.json`` (what each source's parse must give, rejects included),
``truth_articles.parquet`` and ``truth_concerns.parquet`` (the planted flaws and the concerns each report raises,
for inspection and tests: never an input to anything evaluated), ``paraphrase_pairs.parquet`` (labelled pairs of
concern texts for choosing the embedding-match threshold, see biomed_world.paraphrase_pairs) and ``README.md``.
No clock is read and all randomness comes from ``--seed``: the same arguments give byte-identical files.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from workflow_scripts.common.cli import parser, setup_logging
from workflow_scripts.common.io import write_bytes_atomic, write_parquet_atomic
from workflow_scripts.demo import biomed_formats as fmt
from workflow_scripts.demo import biomed_world as world
from workflow_scripts.demo.biomed_world import Article
from workflow_scripts.sources.biomed import tables

log = logging.getLogger(__name__)

SHARES = {"elife": 0.24, "plos": 0.24, "f1000": 0.20, "peerj": 0.16, "nature": 0.16}
MIN_ARTICLES = 15  # every source then has each of its variants (eLife's three styles, PLOS ONE, Wellcome)
SOURCE_DIRS = {  # the directories each parse is given
    "elife": {"--xml": ["elife"]},
    "plos": {"--xml": ["plos/articles"]},
    "f1000": {"--xml": ["f1000/articles"]},
    "peerj": {"--html": ["peerj/pages"]},
    "nature": {"--peer-review-files": ["nature/peer_review"], "--full-texts": ["nature/europepmc/fulltext"]},
}
OWNED_DIRS = ("elife", "plos", "f1000", "peerj", "nature")

TRUTH_ARTICLE_SCHEMA = {
    "article_id": pl.String,  # as the source's parse names it (F1000: the first version)
    "family_id": pl.String,
    "source": pl.String,
    "journal": pl.String,
    "review_style": pl.String,
    "title": pl.String,
    "flaws": pl.List(pl.String),  # biomed_world.FLAWS keys
    "license": pl.String,
    "redistributable": pl.Boolean,
}
TRUTH_CONCERN_SCHEMA = {
    "report_id": pl.String,  # tables.report_id as the source's parse gives it
    "article_id": pl.String,
    "source": pl.String,
    "flaw": pl.String,
    "category": pl.String,
    "severity": pl.String,
    "text": pl.String,
}
PAIR_SCHEMA = {"text_a": pl.String, "text_b": pl.String, "label": pl.Int8, "flaw_a": pl.String,
               "flaw_b": pl.String, "category_a": pl.String, "category_b": pl.String}


def allocation(n: int) -> dict[str, int]:
    """Articles per source: floor of the share, the rest by largest remainder (ties in SHARES order)."""
    counts = {s: int(share * n) for s, share in SHARES.items()}
    rest = sorted(SHARES, key=lambda s: -(SHARES[s] * n - counts[s]))
    for s in rest[: n - sum(counts.values())]:
        counts[s] += 1
    return counts


@dataclass
class Expected:
    """What one source's parse gives on the world: counts and the planted rejects (file relative to DIR, reason)."""
    articles: int = 0
    reports: int = 0
    responses: int = 0
    rejects: list[dict] = field(default_factory=list)
    other: dict = field(default_factory=dict)  # source-specific summary counts


@dataclass
class Rendered:
    files: dict[str, bytes] = field(default_factory=dict)
    expected: dict[str, Expected] = field(default_factory=lambda: {s: Expected() for s in SHARES})
    truth: list[dict] = field(default_factory=list)
    concerns: list[dict] = field(default_factory=list)

    def add_truth(self, a: Article, *, article_id: str, family_id: str, journal: str, style: str, license_: str,
                  redistributable: bool, reviewer_of=lambda r: r.reviewer) -> None:
        self.truth.append({"article_id": article_id, "family_id": family_id, "source": a.source, "journal": journal,
                           "review_style": style, "title": a.title, "flaws": [f.key for f in a.flaws],
                           "license": license_, "redistributable": redistributable})
        for r in a.round_reviews(1):
            for c in r.concerns:
                self.concerns.append({"report_id": tables.report_id(article_id, 1, reviewer_of(r)),
                                      "article_id": article_id, "source": a.source, "flaw": c.flaw,
                                      "category": c.category, "severity": c.severity, "text": c.text})


def _elife(out: Rendered, a: Article, j: int, malformed: bool = False) -> None:
    style = fmt.ELIFE_STYLES[j % 3]
    name, data = fmt.elife_file(a, style)
    e = out.expected["elife"]
    if malformed:  # a download cut off mid-file
        out.files[name] = data[: len(data) // 2]
        e.rejects.append({"file": name, "reason": "bad file (malformed)"})
        return
    out.files[name] = data
    eid, version = fmt.elife_id(a, style)
    letter = style != "elife-reviewed-preprint"
    n_reviewers = len(a.round_reviews(1))
    e.articles += 1
    e.reports += 1 if letter else n_reviewers
    e.responses += 1
    e.other["assessments"] = e.other.get("assessments", 0) + (style != "elife-commentary")
    e.other["reports_merged"] = e.other.get("reports_merged", 0) + (not letter)
    out.add_truth(a, article_id=f"elife:{eid}.{version}", family_id=f"elife:{eid}", journal="eLife", style=style,
                  license_=fmt.elife_license(a), redistributable=True,
                  reviewer_of=(lambda r: 0) if letter else (lambda r: r.reviewer))


def _plos(out: Rendered, a: Article, key: str, body: bool = True, reviews: bool = True) -> None:
    name, data = fmt.plos_file(a, key, body=body, reviews=reviews)
    out.files[name] = data
    e = out.expected["plos"]
    doi = fmt.plos_doi(a, key)
    if not body:
        e.rejects.append({"file": name, "reason": "article without body"})
        return
    if not reviews:
        e.other["without_review_history"] = e.other.get("without_review_history", 0) + 1
        return
    n = len(a.round_reviews(1))
    e.articles += 1
    if key == "PLoSBiology":
        e.reports += n + len(a.round_reviews(2))
        e.responses += 1
    else:
        e.reports += n
        e.other["responses_without_text"] = e.other.get("responses_without_text", 0) + 1
    out.add_truth(a, article_id=f"plos:{doi}", family_id=f"plos:{doi}", journal=fmt.PLOS_JOURNALS[key][0],
                  style="plos-review-history", license_=fmt.CC_BY, redistributable=True)


def _f1000(out: Rendered, a: Article, platform: str, versions: int, old_style: bool, empty_report: bool) -> None:
    files = fmt.f1000_files(a, platform, versions, old_style, empty_report)
    out.files.update(files)
    e = out.expected["f1000"]
    e.articles += versions
    e.reports += len(a.round_reviews(1)) + (versions - 1) * len(a.round_reviews(2))
    e.responses += 1
    # version k repeats the reports (and the response) on versions before it
    e.other["repeated_sub_articles"] = e.other.get("repeated_sub_articles", 0) + sum(
        len(a.round_reviews(1)) + 1 + (k - 2) * len(a.round_reviews(2)) for k in range(2, versions + 1))
    if empty_report:
        last = fmt.f1000_doi(a, platform, versions)
        kind = "ref-report" if old_style else "reviewer-report"
        e.rejects.append({"file": f"f1000/articles/{platform}/{fmt.doi_key(last)}.xml",
                          "reason": f"review sub-article without text ({kind})"})
    first = fmt.f1000_doi(a, platform, 1)
    out.add_truth(a, article_id=f"f1000:{first}", family_id=f"f1000:{first.rsplit('.', 1)[0]}",
                  journal=fmt.F1000_PLATFORMS[platform][0], style="f1000-open-review", license_=fmt.CC_BY,
                  redistributable=True)


def _peerj(out: Rendered, a: Article) -> None:
    out.files.update(fmt.peerj_files(a))
    e = out.expected["peerj"]
    e.articles += 1
    e.reports += len(a.round_reviews(1))
    e.other["later_round_reviews"] = e.other.get("later_round_reviews", 0) + 1
    doi = f"10.7717/peerj.{fmt.peerj_number(a)}"
    out.add_truth(a, article_id=f"peerj:{doi}", family_id=f"peerj:{fmt.peerj_number(a)}", journal="PeerJ",
                  style="peerj-review-history", license_=fmt.CC_BY, redistributable=True)


def _nature(out: Rendered, a: Article, redistributable: bool, unreadable: bool = False) -> None:
    files = fmt.nature_files(a, redistributable, round_2_banner=a.variant % 2 == 0)
    e = out.expected["nature"]
    pdf = f"nature/peer_review/{fmt.nature_suffix(a)}.pdf"
    if unreadable:  # the download stopped after the header: the harvester's %PDF- check passes, pypdf cannot read it
        files[pdf] = files[pdf][:300]
        e.rejects.append({"file": pdf, "reason": "bad file"})
        e.other["full_texts_without_peer_review_file"] = 1
        out.files.update(files)
        return
    out.files.update(files)
    e.articles += 1
    e.reports += len(a.round_reviews(1)) + len(a.round_reviews(2))
    e.responses += 1
    e.other["open_licence"] = e.other.get("open_licence", 0) + 1  # CC BY or CC BY-NC-ND: both Creative Commons
    doi = f"10.1038/{fmt.nature_suffix(a)}"
    out.add_truth(a, article_id=f"nature:{doi}", family_id=f"nature:{doi}", journal="Nature Communications",
                  style="nature-peer-review-file", license_=fmt.CC_BY if redistributable else fmt.CC_BY_NC_ND,
                  redistributable=redistributable)


# the extra articles that carry the planted bad input (and the PLOS ONE article without reviews)
PLANTED = ("elife", "plos", "plos", "nature")


def render(n_articles: int, seed: int) -> Rendered:
    counts = allocation(n_articles)
    sources = [s for s in SHARES for _ in range(counts[s])]
    articles = world.build(n_articles + len(PLANTED), seed, sources + list(PLANTED))
    out = Rendered()
    position: Counter = Counter()
    for a in articles[:n_articles]:
        j = position[a.source]
        position[a.source] += 1
        if a.source == "elife":
            _elife(out, a, j)
        elif a.source == "plos":
            _plos(out, a, "PLoSONE" if j % 3 == 2 else "PLoSBiology")
        elif a.source == "f1000":
            wellcome = j == counts["f1000"] - 1
            _f1000(out, a, "wellcomeopenres" if wellcome else "f1000research", 2 + a.variant % 2,
                   old_style=j % 2 == 1, empty_report=j == 0)
        elif a.source == "peerj":
            _peerj(out, a)
        else:
            _nature(out, a, redistributable=j % 3 != 1)
    malformed, no_body, no_reviews, bad_pdf = articles[n_articles:]
    _elife(out, malformed, 1, malformed=True)
    _plos(out, no_body, "PLoSBiology", body=False)
    _plos(out, no_reviews, "PLoSONE", reviews=False)
    _nature(out, bad_pdf, redistributable=True, unreadable=True)
    return out


def frames(out: Rendered, seed: int) -> dict[str, pl.DataFrame]:
    return {
        "truth_articles.parquet": pl.DataFrame(out.truth, schema=TRUTH_ARTICLE_SCHEMA, orient="row")
        .sort("article_id"),
        "truth_concerns.parquet": pl.DataFrame(out.concerns, schema=TRUTH_CONCERN_SCHEMA, orient="row")
        .sort("report_id", "flaw"),
        "paraphrase_pairs.parquet": pl.DataFrame(world.paraphrase_pairs(seed), schema=PAIR_SCHEMA, orient="row"),
    }


def lost_fraction(out: Rendered, source: str) -> float:
    """The share of the source's files that are bad: what its parse reports as lost, and the smallest
    ``--max-lost-fraction`` (config ``bad_input.max_lost_fraction``) under which it goes on."""
    files = [f for f in out.files if f.startswith(f"{source}/") and f.endswith((".xml", ".html", ".pdf"))
             and "/landing/" not in f]
    bad = sum(r["reason"].startswith("bad file") for r in out.expected[source].rejects)
    return round(bad / len(files), 6)


def expected_json(out: Rendered) -> dict:
    return {s: {"articles": e.articles, "reports": e.reports, "responses": e.responses, "rejects": e.rejects,
                "lost_fraction": lost_fraction(out, s), **dict(sorted(e.other.items())), "parse_dirs": SOURCE_DIRS[s]}
            for s, e in out.expected.items()}


def _rejects_cell(expected: dict) -> str:
    return "; ".join(f"`{r['file']}`: {r['reason']}" for r in expected["rejects"]) or "-"


def readme(n_articles: int, seed: int, out: Rendered, tables_: dict[str, pl.DataFrame]) -> str:
    expected = expected_json(out)
    rows = "\n".join(f"| {s} | {e['articles']} | {e['reports']} | {e['responses']} | {_rejects_cell(e)} |"
                     for s, e in expected.items())
    truth, concerns, pairs = (tables_[k] for k in ("truth_articles.parquet", "truth_concerns.parquet",
                                                   "paraphrase_pairs.parquet"))
    per_category = concerns.group_by("category").len().sort("category")
    flaws = "\n".join(f"| `{f.key}` | {f.category} | {f.severity} | {f.place} | {f.planted} | {f.concerns[0]} |"
                      for f in world.FLAWS)
    n_flaws = truth["flaws"].list.len()
    not_free = truth.filter(~pl.col("redistributable"))["article_id"].to_list()
    return f"""# BioReview demo world (synthetic)

Generated by `python -m workflow_scripts.demo.biomed --out-dir DIR --n-articles {n_articles} --seed {seed}`. Same
arguments, byte-identical files. Nothing here is real: every article, review, DOI and name is drawn from the small
vocabularies of `workflow_scripts/demo/biomed_world.py`.

## Articles
{n_articles} articles ({', '.join(f'{s} {n}' for s, n in allocation(n_articles).items())}), each on one gene in one
tissue of one model organism, with an abstract, Introduction / Methods / Results / Discussion sections under varied
titles ("Background", "Materials & Methods", "Experimental procedures", "Results and discussion", "Conclusions",
...; some with an "Ethics statement"), two figure captions and a licence: CC BY 4.0 (eLife partly CC0). Not
redistributable: {len(not_free)} Nature article(s) under CC BY-NC-ND ({', '.join(not_free)}).

Each article has 1-4 planted flaws (mean {n_flaws.mean():.2f}): a sentence at a fixed place of its text. An article
without a flaw carries the flaw's clean counterpart there, so the text predicts the concerns. Versions 2 and 3 of
an F1000 family are revised: their text carries the clean sentences.

| flaw | category | severity | where | planted sentence | one of its concern wordings |
|---|---|---|---|---|---|
{flaws}

## Reviews
2-3 reviewers per article (PeerJ 2). In the first round each planted flaw is raised by one reviewer, and by a second
one half of the time, each in a different wording of the flaw, as a concern sentence
`<Cue> (<severity>): <text>` (`bioreview_extractor.concern_sentence`; cues: Design, Statistics, Missing, Novelty,
Clarity, Reagents, Interpretation, Figure). The other sentences (summary, praise, "my comments are below", the
closing) carry no cue. Later rounds only say the concerns were addressed. The extractor stand-in
(`demo/bioreview_extractor.py`) reads a report's text only and answers its concern sentences; it never sees the
truth tables. {concerns.height} first-round concerns in all; per category:
{', '.join(f'{c} {n}' for c, n in per_category.iter_rows())}.

## Files and what each parse gives
| source | articles | reports | responses | planted rejects |
|---|---|---|---|---|
{rows}

- `elife/elife-<id>-v<version>.xml`: styles in turn: `article-commentary` + `reply` (2014-2015), `decision-letter`
  + `reply` + an Editor's evaluation (2021-2022; the letter is one report, reviewer 0), reviewed preprints
  (2024-2025: `editor-report` "eLife Assessment", a `referee-report` "Reviewer #N (Public review):" per reviewer,
  the `referee-report` "Recommendations for authors" whose "Reviewer #1 (Recommendations for the authors):" part
  is merged into reviewer 1's report, `author-comment`; version DOI `.2` or `.3`). Planted: one file cut in half
  (malformed XML).
- `plos/articles/<journal key>/<doi>.xml`: PLOS Biology with two `aggregated-review-documents` rounds
  (the letter's date, the editor's letter, then "Reviewer #N:" parts), the authors' answer and an acceptance
  letter; every third article PLOS ONE with its opt-in questionnaire letter (each question's answers, the identity
  question, which reviewer 1 answers with their name, and the journal's instructions: neither is kept in a report)
  and the answer as an attached file with its date (no response text). Planted:
  a PLOS Biology article without a body (a rejects row) and a PLOS ONE article without review history (counted).
- `f1000/articles/<platform>/<versioned doi>.xml`: families of 2-3 versions (the last one Wellcome Open Research),
  every version's file carrying the reports on it and on earlier versions; every second family in the older style
  (`ref-report`, "Referee response for version N"); recommendations, the authors' response nested in reviewer 1's
  first report. Planted: a report without text on the first family's last version.
- `peerj/pages/peerj-<N>-reviews.html` (version 0.2 first with the editor's decision, one reviewer and the link to
  the authors' rebuttal letter, then version 0.1 with the editor's decision and two reviewers, each followed by its
  "Cite this review as" line; parse keeps the first round) and `peerj-<N>-article.html`.
- `nature/landing/<suffix>.html` (the "Peer Review File" link), `nature/peer_review/<suffix>.pdf` (fpdf2: title
  page, "REVIEWERS' COMMENTS", "Reviewer #N (Remarks to the Author):", "Response to Reviewers" quoting reviewer 1's
  heading, a second round, every second file with no banner before it), CC BY or, every third, CC BY-NC-ND,
  `nature/europepmc/search/<doi>/page-00001.json` and `nature/europepmc/fulltext/<PMCID>.xml` (the body). Planted:
  a review PDF cut after 300 bytes (its full text is there, counted as a full text without review file). No
  Crossref listings: no parse reads them.
- `expected_counts.json`: the table above per source, with the summary counts each parse adds and the directories
  to give it. eLife and Nature hold one bad file each: their parse goes on only with `--quarantine-bad-files` and
  a `--max-lost-fraction` of at least their `lost_fraction` (here eLife {expected['elife']['lost_fraction']:.3f},
  Nature {expected['nature']['lost_fraction']:.3f}; config `bad_input`).
- `truth_articles.parquet` ({truth.height} rows: article, planted flaws, licence) and `truth_concerns.parquet`
  ({concerns.height} rows: the concerns each first-round report raises, by the report_id the parse gives it). For
  inspection and tests only.
- `paraphrase_pairs.parquet`: {pairs.height} labelled pairs of concern texts from the same vocabulary, each pair
  filled with one topic: two wordings of one flaw (label 1, {int(pairs['label'].sum())}) and wordings of two
  different flaws (label 0, {int((pairs['label'] == 0).sum())}; every same-category pair of flaws among them). The
  embedding-match threshold of the demo's MiniLM model is chosen on these, never on the evaluation's labels.
"""


def write(out_dir: Path, n_articles: int, seed: int) -> Rendered:
    out = render(n_articles, seed)
    tables_ = frames(out, seed)
    files = dict(out.files)
    files["expected_counts.json"] = (json.dumps(expected_json(out), indent=1, ensure_ascii=False) + "\n").encode()
    files["README.md"] = readme(n_articles, seed, out, tables_).encode()
    for rel in sorted(files):
        write_bytes_atomic(out_dir / rel, files[rel])
    for name, frame in tables_.items():
        write_parquet_atomic(frame, out_dir / name)
    # a rerun with fewer articles must not leave files the parsers would pick up
    for top in OWNED_DIRS:
        for path in sorted((out_dir / top).rglob("*")):
            if path.is_file() and path.relative_to(out_dir).as_posix() not in files:
                log.info("removing stale %s from an earlier run", path)
                path.unlink()
    return out


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--out-dir", required=True, type=Path)
    p.add_argument("--n-articles", type=int, default=50, help=f"articles with reviews (at least {MIN_ARTICLES})")
    p.add_argument("--seed", type=int, default=1234)
    args = p.parse_args(argv)
    if args.n_articles < MIN_ARTICLES:
        p.error(f"--n-articles must be at least {MIN_ARTICLES} (each source's variants need their articles)")
    setup_logging(args.verbose)
    out = write(args.out_dir, args.n_articles, args.seed)
    log.info("%d articles, %d snapshot files written to %s; article rows per source %s", args.n_articles,
             len(out.files), args.out_dir, {s: e.articles for s, e in out.expected.items()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
