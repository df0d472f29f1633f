"""The demo world's articles and reviews (biomed_world.py) in each biomedical source's native format, laid out as each
source's harvester saves a snapshot (so ``parse`` reads them as it reads downloads):

- eLife: ``elife/elife-<id>-v<version>.xml``, JATS with the reviews as sub-articles in one of eLife's three styles.
- PLOS: ``plos/articles/<journal key>/<doi with / as _>.xml``, JATS with ``aggregated-review-documents`` letters.
- F1000Research / Wellcome Open Research: ``f1000/articles/<platform>/<versioned doi with / as _>.xml``, one file
  per version, each carrying the reviews of every version up to its own (as the platforms serve them).
- PeerJ: ``peerj/pages/peerj-<N>-reviews.html`` and ``peerj-<N>-article.html``.
- Nature: ``nature/landing/<suffix>.html``, ``nature/peer_review/<suffix>.pdf`` (fpdf2),
  ``nature/europepmc/search/<doi with / as _>/page-00001.json`` and ``nature/europepmc/fulltext/<PMCID>.xml``.

Each function returns ``{relative path: bytes}``; nothing reads a clock, so the bytes depend on the world only.
"""

from __future__ import annotations

import datetime as dt
import json
import textwrap
from xml.sax.saxutils import escape, quoteattr

from fpdf import FPDF

from workflow_scripts.demo.biomed_world import Article

CC_BY = "https://creativecommons.org/licenses/by/4.0/"
CC0 = "https://creativecommons.org/publicdomain/zero/1.0/"
# open access (Europe PMC's full text is served for the open access subset only) but not redistributable: NC, ND
CC_BY_NC_ND = "https://creativecommons.org/licenses/by-nc-nd/4.0/"
JATS_HEAD = ('<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE article PUBLIC "-//NLM//DTD JATS (Z39.96) Journal '
             'Archiving and Interchange DTD v1.3 20210610//EN" "JATS-archivearticle1-3.dtd">\n')
NS = 'xmlns:xlink="http://www.w3.org/1999/xlink" xmlns:ali="http://www.niso.org/schemas/ali/1.0/"'
EPUB = 'pub-type="epub"'
PDF_CREATED = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)


def doi_key(doi: str) -> str:
    return doi.replace("/", "_")


def in_year(day: dt.date, year: int) -> dt.date:
    """The same day of ``year`` (29 February becomes the 28th where the year has none)."""
    return day.replace(year=year, day=min(day.day, 28)) if (day.month, day.day) == (2, 29) else day.replace(year=year)


# --------------------------------------------------------------------------------------------------------------------
# JATS


def _date(tag: str, day: dt.date, attrs: str) -> str:
    return (f'<{tag} {attrs} iso-8601-date="{day.isoformat()}"><day>{day.day:02d}</day><month>{day.month:02d}</month>'
            f"<year>{day.year}</year></{tag}>")


def _paragraphs(text: str) -> str:
    return "".join(f"<p>{escape(p)}</p>" for p in text.split("\n") if p)


def jats_license(license_: str) -> str:
    if license_.startswith("http"):
        return (f"<license xlink:href={quoteattr(license_)}><ali:license_ref>{escape(license_)}</ali:license_ref>"
                "<license-p>This article is distributed under the terms of the Creative Commons licence named "
                "above.</license-p></license>")
    return f"<license><license-p>{escape(license_)}</license-p></license>"


def jats_body(a: Article, revised: bool) -> str:
    figures = "".join(f'<fig id="fig{n}"><label>{label}</label><caption><p>{escape(caption)}</p></caption></fig>'
                      for n, (label, caption) in enumerate(a.figures(revised), 1))
    secs = []
    for n, (title, text) in enumerate(a.sections(revised), 1):
        extra = figures if title == a.section_titles["results"] else ""
        secs.append(f'<sec id="s{n}"><title>{escape(title)}</title>{_paragraphs(text)}{extra}</sec>')
    return "<body>" + "".join(secs) + "</body>"


def jats_article(a: Article, *, journal: str, ids: str, license_: str, published: dt.date, body: bool = True,
                 revised: bool = False, subs: str = "", version: int | None = None) -> bytes:
    """One JATS article; ``ids`` the article-id elements, ``subs`` the review sub-articles."""
    version_xml = f"<article-version>{version}</article-version>" if version else ""
    xml = (f'{JATS_HEAD}<article {NS} article-type="research-article" dtd-version="1.3">\n<front>'
           f"<journal-meta><journal-title-group><journal-title>{escape(journal)}</journal-title></journal-title-group>"
           f"</journal-meta>\n<article-meta>{ids}{version_xml}"
           f"<title-group><article-title>{escape(a.title)}</article-title></title-group>"
           f"{_date('pub-date', published, EPUB)}"
           f"<permissions>{jats_license(license_)}</permissions>"
           f"<abstract>{_paragraphs(a.abstract)}</abstract></article-meta></front>\n"
           f"{jats_body(a, revised) if body else ''}\n{subs}</article>\n")
    return xml.encode("utf-8")


def sub_article(kind: str, sid: str, title: str, text: str, *, role: str | None = None, extra: str = "",
                nested: str = "", date: dt.date | None = None, name: tuple[str, str] | None = None,
                attrs: str = "", body: str | None = None, contribs: str | None = None) -> str:
    """One sub-article; ``body`` (XML) replaces the paragraphs of ``text``, ``contribs`` (XML) the one contributor
    of ``role``."""
    who = f"<name><surname>{name[1]}</surname><given-names>{name[0]}</given-names></name>" if name else "<anonymous/>"
    contrib = (f'<contrib-group><contrib contrib-type="author">{who}<role>{escape(role)}</role></contrib>'
               "</contrib-group>") if role else ""
    if contribs is not None:
        contrib = f"<contrib-group>{contribs}</contrib-group>"
    dated = _date("pub-date", date, EPUB) if date else ""
    return (f'<sub-article article-type="{kind}" id="{sid}"{attrs}><front-stub><title-group><article-title>'
            f"{escape(title)}</article-title></title-group>{contrib}{dated}{extra}</front-stub>"
            f"<body>{_paragraphs(text) if body is None else body}</body>{nested}</sub-article>\n")


def _dated(kind: str, day: dt.date, text: str) -> str:
    """A letter's body as PLOS gives it: its date alone in the first paragraph, then the text."""
    return (f'<p><named-content content-type="{kind}">{day.day} {day.strftime("%b")} {day.year}</named-content></p>'
            + _paragraphs(text))


# --------------------------------------------------------------------------------------------------------------------
# eLife

ELIFE_STYLES = ("elife-commentary", "elife-decision-letter", "elife-reviewed-preprint")


def elife_id(a: Article, style: str) -> tuple[str, int]:
    base = {"elife-commentary": 2000, "elife-decision-letter": 40000, "elife-reviewed-preprint": 86000}[style]
    version = {"elife-commentary": 1, "elife-decision-letter": 1 + a.variant % 2,
               "elife-reviewed-preprint": 2 + a.variant % 2}[style]
    return f"{base + 7 * a.index:05d}", version


def elife_published(a: Article, style: str) -> dt.date:
    year = {"elife-commentary": 2014, "elife-decision-letter": 2021, "elife-reviewed-preprint": 2024}[style]
    return in_year(a.published, year + a.published.year % 2)


def elife_license(a: Article) -> str:
    return CC0 if a.variant % 5 == 0 else CC_BY  # eLife published some articles under CC0


def _letter(a: Article) -> str:
    """A decision letter: the editor's paragraph, then each reviewer's points as the editor pasted them."""
    parts = ["Thank you for submitting your article to eLife. It has been reviewed by "
             f"{len(a.round_reviews(1))} peer reviewers, and the evaluation has been overseen by a Reviewing Editor."]
    for r in a.round_reviews(1):
        parts += [f"Reviewer #{r.reviewer} (Recommendations for the authors):", r.text]
    return "\n".join(parts)


def elife_file(a: Article, style: str) -> tuple[str, bytes]:
    eid, version = elife_id(a, style)
    published = elife_published(a, style)
    ids = (f'<article-id pub-id-type="publisher-id">{eid}</article-id>'
           f'<article-id pub-id-type="doi">10.7554/eLife.{eid}</article-id>')
    if style == "elife-reviewed-preprint":
        ids += f'<article-id pub-id-type="doi" specific-use="version">10.7554/eLife.{eid}.{version}</article-id>'
    subs = []
    if style == "elife-commentary":
        subs.append(sub_article("article-commentary", "SA1", "Decision letter", _letter(a)))
        subs.append(sub_article("reply", "SA2", "Author response", a.response))
    elif style == "elife-decision-letter":
        subs.append(sub_article("editor-report", "sa0", "Editor's evaluation",
                                a.topic.fill("This study of {gene} in {phenotype} will interest the field.")))
        subs.append(sub_article("decision-letter", "sa1", "Decision letter", _letter(a)))
        subs.append(sub_article("reply", "sa2", "Author response", a.response))
    else:  # the published version: assessment sa0, public reviews, the recommendations, the author response last
        subs.append(sub_article("editor-report", "sa0", "eLife Assessment",
                                a.topic.fill("This useful study provides incomplete evidence on {gene}.")))
        reviews = a.round_reviews(1)
        for r in reviews:
            subs.append(sub_article("referee-report", f"sa{r.reviewer}", f"Reviewer #{r.reviewer} (Public review):",
                                    r.text, role="Reviewer"))
        editor = ('<contrib contrib-type="author"><name><surname>Editor</surname><given-names>Rita</given-names>'
                  '</name><role specific-use="editor">Reviewing Editor</role></contrib>')
        referees = "".join('<contrib contrib-type="author"><anonymous/><role specific-use="referee">Reviewer</role>'
                           "</contrib>" for _ in reviews)
        subs.append(sub_article("referee-report", f"sa{len(reviews) + 1}", "Recommendations for authors",
                                "Reviewer #1 (Recommendations for the authors):\n"
                                "Please deposit the raw data in a public repository.", contribs=editor + referees))
        subs.append(sub_article("author-comment", f"sa{len(reviews) + 2}", "Author response:",
                                "The following is the authors' response to the original reviews.\n" + a.response))
    data = jats_article(a, journal="eLife", ids=ids, license_=elife_license(a), published=published, subs="".join(subs),
                        version=version if style == "elife-reviewed-preprint" else None)
    return f"elife/elife-{eid}-v{version}.xml", data


# --------------------------------------------------------------------------------------------------------------------
# PLOS

PLOS_JOURNALS = {"PLoSBiology": ("PLOS Biology", "pbio.3{:06d}"), "PLoSONE": ("PLOS ONE", "pone.0{:06d}")}
PLOS_ONE_QUESTIONS = ("1. Is the manuscript technically sound, and do the data support the conclusions?",
                      "2. Has the statistical analysis been performed appropriately and rigorously?",
                      "3. Review Comments to the Author")
PLOS_IDENTITY = ("4. PLOS authors have the option to publish the peer review history of their article (what does "
                 "this mean?). If published, this will include your full peer review and any attached files.",
                 "Do you want your identity to be public for this peer review? For information about this choice, "
                 "including consent withdrawal, please see our Privacy Policy.")
PLOS_INSTRUCTIONS = ("[NOTE: If reviewer comments were submitted as an attachment file, they will be attached to this "
                     "email and accessible via the submission site.]",
                     "While revising your submission, please upload your figure files to the Preflight Analysis and "
                     "Conversion Engine (PACE) digital diagnostic tool.")


def plos_doi(a: Article, key: str) -> str:
    return "10.1371/journal." + PLOS_JOURNALS[key][1].format(4000 + a.index)


def _plos_biology_letter(a: Article, round_: int) -> str:
    editor = (["Dear Dr Author,", "Thank you for submitting your manuscript to PLOS Biology. It has now been seen by "
               f"{len(a.round_reviews(round_))} reviewers, whose comments are below. We invite a major revision."]
              if round_ == 1 else ["Dear Dr Author,", "Thank you for your revised manuscript, which the original "
                                   "reviewers have seen."])
    lines = list(editor)
    for r in a.round_reviews(round_):
        lines += [f"Reviewer #{r.reviewer}:", r.text]
    return "\n".join(lines)


def _plos_one_letter(a: Article) -> str:
    """PLOS ONE's questionnaire letter: each question, every reviewer's answer, a line of asterisks; last the
    identity question (reviewer 1 signs) and the journal's instructions, with no asterisks between them."""
    reviews = a.round_reviews(1)
    lines = ["Dear Dr Author,", "Please revise the manuscript to address the reviewers' comments below.",
             "1. Please ensure that your manuscript meets PLOS ONE's style requirements.",
             "Reviewer's Responses to Questions", "Comments to the Author"]
    for q, question in enumerate(PLOS_ONE_QUESTIONS):
        lines.append(question)
        for r in reviews:
            answer = r.text if q == 2 else ("Partly" if r.concerns else "Yes")
            lines += [f"Reviewer #{r.reviewer}: {answer}"]
        lines.append("**********")
    lines += [*PLOS_IDENTITY, *(f"Reviewer #{r.reviewer}: " + (f"Yes: {' '.join(REFEREES[0])}" if r.reviewer == 1
                                                                  else "No") for r in reviews), *PLOS_INSTRUCTIONS]
    return "\n".join(lines)


def _attachment_only(a: Article, day: dt.date) -> str:
    """The authors' answer as most PLOS histories give it: its date and an attached file, no text."""
    return (f'<p><named-content content-type="author-response-date">{day.day} {day.strftime("%b")} {day.year}'
            '</named-content></p><supplementary-material id="s1" content-type="local-data"><label>Attachment</label>'
            '<caption><p>Submitted filename: <named-content content-type="submitted-filename">Response to '
            'Reviewers.docx</named-content></p></caption></supplementary-material>')


def plos_file(a: Article, key: str, body: bool = True, reviews: bool = True) -> tuple[str, bytes]:
    doi = plos_doi(a, key)
    subs = []
    letter, accept = ' specific-use="decision-letter"', ' specific-use="acceptance-letter"'
    day = a.published - dt.timedelta(days=90)
    if reviews and key == "PLoSBiology":
        subs.append(sub_article("aggregated-review-documents", "r001", "Decision Letter 0", "", attrs=letter,
                                body=_dated("letter-date", day, _plos_biology_letter(a, 1))))
        subs.append(sub_article("author-comment", "r002", "Author response to Decision Letter 0", a.response))
        subs.append(sub_article("aggregated-review-documents", "r003", "Decision Letter 1", "", attrs=letter,
                                body=_dated("letter-date", day + dt.timedelta(days=60), _plos_biology_letter(a, 2))))
        subs.append(sub_article("editor-report", "r004", "Acceptance letter", "We are pleased to accept your "
                                "manuscript.", attrs=accept))
    elif reviews:  # the authors' answer is an attached file, as in most PLOS ONE histories: no text in the XML
        subs.append(sub_article("aggregated-review-documents", "r001", "Decision Letter 0", "", attrs=letter,
                                body=_dated("letter-date", day, _plos_one_letter(a))))
        subs.append(sub_article("author-comment", "r002", "Author response to Decision Letter 0", "",
                                body=_attachment_only(a, day + dt.timedelta(days=30))))
        subs.append(sub_article("editor-report", "r003", "Acceptance letter", "We are pleased to accept your "
                                "manuscript.", attrs=accept))
    ids = f'<article-id pub-id-type="doi">{doi}</article-id>'
    data = jats_article(a, journal=PLOS_JOURNALS[key][0], ids=ids, license_=CC_BY, published=a.published, body=body,
                        subs="".join(subs))
    return f"plos/articles/{key}/{doi_key(doi)}.xml", data


# --------------------------------------------------------------------------------------------------------------------
# F1000Research and Wellcome Open Research

F1000_PLATFORMS = {"f1000research": ("F1000Research", 20000), "wellcomeopenres": ("Wellcome Open Research", 16000)}
RECOMMENDATION_ROUND_1 = ("approve-with-reservations", "reject", "approve-with-reservations")
REFEREES = (("Jane", "Smith"), ("Lee", "Wong"), ("Ana", "Costa"), ("Omar", "Haddad"))  # F1000 reports are signed


def f1000_doi(a: Article, platform: str, version: int) -> str:
    return f"10.12688/{platform}.{F1000_PLATFORMS[platform][1] + a.index}.{version}"


def f1000_files(a: Article, platform: str, versions: int, old_style: bool,
                empty_last_report: bool = False) -> dict[str, bytes]:
    """One file per version; version k carries the reports on versions 1..k. ``old_style``: ``ref-report`` and
    "Referee response" (files of 2018 and before); ``empty_last_report``: a report without text on the last version
    (planted bad input)."""
    kind, word = ("ref-report", "Referee") if old_style else ("reviewer-report", "Reviewer")
    published = in_year(a.published, 2017) if old_style else a.published
    dates = {v: published + dt.timedelta(days=60 * (v - 1)) for v in range(1, versions + 1)}
    reports: dict[int, list[str]] = {}
    for v in range(1, versions + 1):
        reviews = a.round_reviews(1) if v == 1 else a.round_reviews(2)
        reports[v] = []
        for r in reviews:
            verdict = RECOMMENDATION_ROUND_1[r.reviewer - 1] if v == 1 else "approve"
            meta = ("<custom-meta-group><custom-meta><meta-name>recommendation</meta-name>"
                    f"<meta-value>{verdict}</meta-value></custom-meta></custom-meta-group>")
            nested = (sub_article("response", f"comment{a.index}-{r.reviewer}", "Author Response", a.response,
                                  role="Author Response", date=dates[v] + dt.timedelta(days=40))
                      if v == 1 and r.reviewer == 1 else "")
            reports[v].append(sub_article(kind, f"report{a.index}{v}{r.reviewer}", f"{word} response for version {v}",
                                          r.text, role="Referee", extra=meta, nested=nested,
                                          date=dates[v] + dt.timedelta(days=20 + r.reviewer),
                                          name=REFEREES[r.reviewer - 1]))
        if empty_last_report and v == versions:
            reports[v].append(sub_article(kind, f"report{a.index}{v}9", f"{word} response for version {v}", "",
                                          role="Referee", date=dates[v] + dt.timedelta(days=30),
                                          name=REFEREES[-1]))
    files = {}
    for v in range(1, versions + 1):
        doi = f1000_doi(a, platform, v)
        subs = "".join(s for w in range(1, v + 1) for s in reports[w])
        data = jats_article(a, journal=F1000_PLATFORMS[platform][0], ids=f'<article-id pub-id-type="doi">{doi}'
                            "</article-id>", license_=CC_BY, published=dates[v], revised=v > 1, subs=subs)
        files[f"f1000/articles/{platform}/{doi_key(doi)}.xml"] = data
    return files


# --------------------------------------------------------------------------------------------------------------------
# PeerJ

PEERJ_HEADINGS = ("Basic reporting", "Experimental design", "Validity of the findings", "Additional comments")


def peerj_number(a: Article) -> int:
    return 10000 + 3 * a.index


def _review_body(r) -> str:
    """A PeerJ review: its sentences under PeerJ's four headings (summary and praise first, concerns in the
    middle, the closing last)."""
    s = r.sentences
    groups = [s[:2], s[2:-1] or ["No comment."], ["No comment."], s[-1:]] if len(s) > 2 else [s, [], [], []]
    return "".join(f"<h4>{h}</h4>" + "".join(f"<p>{escape(x)}</p>" for x in g) for h, g in zip(PEERJ_HEADINGS, groups)
                   if g)


def peerj_files(a: Article) -> dict[str, bytes]:
    n = peerj_number(a)
    doi = f"10.7717/peerj.{n}"
    day = a.published
    round1 = "".join(
        f'<div class="publication-review well" id="version-0-1-review-{r.reviewer}" itemscope '
        f'itemtype="http://schema.org/Review"><div class="publication-review-meta">Reviewer {r.reviewer} · '
        f'<time datetime="{(day - dt.timedelta(days=60)).isoformat()}">{day - dt.timedelta(days=60)}</time></div>'
        f'<div itemprop="reviewBody">{_review_body(r)}</div><div class="publication-review-cite">Cite this review as '
        f'Reviewer {r.reviewer} ({day.year}) Peer Review #{r.reviewer} of "{escape(a.title)} (v0.1)". PeerJ '
        f'https://doi.org/10.7287/peerj.{n}v0.1/reviews/{r.reviewer}</div></div>\n' for r in a.round_reviews(1))
    round2 = "".join(
        f'<div class="publication-review well" id="version-0-2-review-{r.reviewer}" itemscope '
        f'itemtype="http://schema.org/Review"><div itemprop="reviewBody"><h4>Basic reporting</h4>'
        f"<p>{escape(r.text)}</p></div></div>\n" for r in a.round_reviews(2)[:1])
    reviews = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Peer Review History: {escape(a.title)} [PeerJ]</title>
<meta name="citation_title" content={quoteattr(a.title)}>
<meta name="citation_doi" content="{doi}">
<link rel="canonical" href="https://peerj.com/articles/{n}/reviews/">
</head><body>
<nav class="navbar"><a href="/">PeerJ</a> <a href="/articles/{n}/">Article</a></nav>
<div class="container"><h1>Peer Review History</h1>
<div class="publication-version" id="version-0-2"><h2>Version 0.2 (accepted)</h2>
<div class="publication-review well publication-decision article-recommendation-accept" id="version-0-2-decision">
<h3>Accept</h3><div itemprop="reviewBody"><p>Thank you for the revision.</p></div></div>
{round2}<div class="publication-review-files"><a href="/articles/{n}v0.2/rebuttal">Download author's rebuttal letter</a>
- submitted {day - dt.timedelta(days=30)}</div></div>
<div class="publication-version" id="version-0-1"><h2>Version 0.1 (original submission)</h2>
<div class="publication-review well publication-decision article-recommendation-major" id="version-0-1-decision">
<h3>Major Revisions</h3><div itemprop="reviewBody"><p>Please address the reviewers' comments.</p></div></div>
{round1}</div></div></body></html>
"""
    sections = "".join(
        f'<section class="sec" id="sec{i}"><h2 class="heading">{escape(title)}</h2><p>{escape(text)}</p>'
        + ("".join(f'<figure class="fig" id="fig-{k}"><figcaption><span class="caption-label">{label}:</span> '
                   f"{escape(caption)}</figcaption></figure>" for k, (label, caption) in enumerate(a.figures(), 1))
           if title == a.section_titles["results"] else "") + "</section>\n"
        for i, (title, text) in enumerate(a.sections(), 1))
    article = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{escape(a.title)} [PeerJ]</title>
<meta name="citation_title" content={quoteattr(a.title)}>
<meta name="citation_doi" content="{doi}">
<meta name="citation_journal_title" content="PeerJ">
<meta name="citation_publication_date" content="{day.strftime('%Y/%m/%d')}">
<link rel="canonical" href="https://peerj.com/articles/{n}/">
</head><body>
<article class="article-item"><header class="article-meta"><h1 class="article-title">{escape(a.title)}</h1>
<div class="article-license">Licence: <a rel="license" href="{CC_BY}">CC BY 4.0</a></div></header>
<div class="abstract" itemprop="description"><h2>Abstract</h2><p>{escape(a.abstract)}</p></div>
<main><div class="body" lang="en">
{sections}</div></main></article></body></html>
"""
    return {f"peerj/pages/peerj-{n}-reviews.html": reviews.encode(), f"peerj/pages/peerj-{n}-article.html":
            article.encode()}


# --------------------------------------------------------------------------------------------------------------------
# Nature (Peer Review File, landing page, Europe PMC)


def nature_suffix(a: Article) -> str:
    return f"s41467-0{a.published.year % 100 + 1:02d}-{30000 + a.index:05d}-{a.index % 9 + 1}"


def pmcid(a: Article) -> str:
    return f"PMC{9000000 + a.index}"


class ReviewFilePdf(FPDF):
    WIDTH = 8  # font size: a concern sentence fits one line of landscape A4, so the text keeps it whole

    def __init__(self):
        super().__init__(orientation="landscape", format="A4")
        self.set_creation_date(PDF_CREATED)
        self.set_auto_page_break(True, margin=15)
        self.add_page()
        self.set_font("Helvetica", size=self.WIDTH)

    def line(self, text: str) -> None:
        text = text.encode("latin-1", "replace").decode("latin-1")  # the core fonts are Latin-1
        width = self.w - self.l_margin - self.r_margin
        wrapped = [text] if self.get_string_width(text) <= width else textwrap.wrap(text, 150)
        for part in wrapped:
            self.cell(0, 4, part, new_x="LMARGIN", new_y="NEXT")


def review_file_pdf(a: Article, redistributable: bool, round_2_banner: bool = True) -> bytes:
    """The file as Nature assembles it: the reviewers' comments of each round under a banner, the authors' response
    (which quotes a reviewer's heading) after the first; ``round_2_banner`` False: the second round starts with no
    banner, as in some files."""
    pdf = ReviewFilePdf()
    pdf.line("Peer Review File")
    pdf.line(a.title)
    pdf.line("Open Access This file is licensed under a Creative Commons Attribution 4.0 International License."
             if redistributable else "Open Access This file is licensed under a Creative Commons "
             "Attribution-NonCommercial-NoDerivatives 4.0 International License.")
    for round_ in (1, 2):
        if round_ == 1 or round_2_banner:
            pdf.line("REVIEWERS' COMMENTS")
        for r in a.round_reviews(round_):
            pdf.line(f"Reviewer #{r.reviewer} (Remarks to the Author):")
            for sentence in r.sentences:
                pdf.line(sentence)
        if round_ == 1:
            pdf.line("Response to Reviewers")
            pdf.line(a.response)
            pdf.line(f"Reviewer #1 (Remarks to the Author): {a.round_reviews(1)[0].sentences[0]}")
            pdf.line("We have clarified this in the introduction.")
    return bytes(pdf.output())


def nature_files(a: Article, redistributable: bool, round_2_banner: bool = True) -> dict[str, bytes]:
    """The landing page, the Peer Review File, Europe PMC's search answer and full text (an open access one: the
    only kind its fullTextXML serves; ``redistributable`` False: CC BY-NC-ND)."""
    suffix, doi, pmc = nature_suffix(a), f"10.1038/{nature_suffix(a)}", pmcid(a)
    esm = (f"https://static-content.springer.com/esm/art%3A10.1038%2F{suffix}/MediaObjects/"
           f"41467_{a.published.year}_{30000 + a.index}_MOESM2_ESM.pdf")
    landing = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{escape(a.title)} | Nature Communications</title>
<meta name="citation_doi" content="{doi}">
</head><body><article lang="en"><h1 class="c-article-title">{escape(a.title)}</h1>
<section data-title="Supplementary information"><div class="c-article-supplementary__item" id="MOESM2">
<a data-track-label="peer review file" href="{esm}">Peer Review File</a></div></section>
</article></body></html>
"""
    ids = (f'<article-id pub-id-type="pmc">{pmc}</article-id>'
           f'<article-id pub-id-type="doi">{doi}</article-id>')
    full_text = jats_article(a, journal="Nature Communications", ids=ids,
                             license_=CC_BY if redistributable else CC_BY_NC_ND, published=a.published)
    search = {"version": "6.9", "hitCount": 1, "nextCursorMark": f"AoE{pmc}",
              "request": {"queryString": f'DOI:"{doi}"', "resultType": "lite", "cursorMark": "*", "pageSize": 25},
              "resultList": {"result": [{"id": str(34000000 + a.index), "source": "MED",
                                         "pmid": str(34000000 + a.index), "pmcid": pmc, "doi": doi,
                                         "title": a.title + ".", "journalTitle": "Nat Commun",
                                         "isOpenAccess": "Y", "inEPMC": "Y"}]}}
    return {
        f"nature/landing/{suffix}.html": landing.encode(),
        f"nature/peer_review/{suffix}.pdf": review_file_pdf(a, redistributable, round_2_banner),
        f"nature/europepmc/search/{doi_key(doi)}/page-00001.json": json.dumps(search, indent=1).encode(),
        f"nature/europepmc/fulltext/{pmc}.xml": full_text,
    }
