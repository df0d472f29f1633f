"""The JATS reader of the biomedical sources on a hand-written article (sections named every way, a figure inside a
paragraph, a table, a floating figure, nested and sibling sub-articles) and on namespaced and malformed input."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from lxml import etree

from workflow_scripts.sources.biomed import jats

FIXTURE = Path(__file__).parent / "fixtures" / "biomed" / "jats" / "sections.xml"


def read(xml: str | bytes, file: str = "inline.xml") -> jats.JatsArticle:
    return jats.read_jats(xml.encode() if isinstance(xml, str) else xml, file=file)


def test_metadata_sections_and_figures_of_a_full_article():
    article = read(FIXTURE.read_bytes(), file=str(FIXTURE))
    # the concept DOI (not the specific-use="version" one), lowercased; the numeric article-version
    assert (article.doi, article.version) == ("10.1234/jtb.2020.001", 2)
    assert (article.title, article.journal) == ("Kinase X controls cell size", "Journal of Test Biology")
    assert article.abstract == "Cells know their size.\n\nKinase X reads it."  # not the typed digest
    assert article.published == dt.date(2020, 3, 14)  # the epub date, not ppub or the collection year
    assert article.license == "https://creativecommons.org/licenses/by/4.0/"
    assert article.has_body
    assert [(s["kind"], s["title"]) for s in article.sections] == [
        ("other", None),  # the paragraph outside any section
        ("introduction", "1. Introduction"), ("introduction", "Background"),
        ("methods", "Materials & Methods"), ("methods", "Experimental procedures"),
        ("results", "Results"),  # titled Results although its sec-type says intro: the title decides
        ("results", "Results and Discussion"), ("discussion", "Discussion"), ("discussion", "Conclusions"),
        ("other", "Acknowledgements"),
    ]
    methods, results = article.sections[3]["text"], article.sections[5]["text"]
    assert methods == "Strains\n\nWe used strain A:\n\nwild type\n\nmutant x1"
    assert results == ("Mutants are small (Figure 1).\n\nTable 1. Cell sizes.\n\n"
                       "Strain | Area\nwild type | 12.1\nx1 | 8.4\n\nMean of three repeats.")
    assert "300 cells" not in "".join(s["text"] for s in article.sections)  # captions stay out of the text
    assert article.figure_captions == [
        {"label": "Figure 1.", "text": "Mutants are small.\n\nCell area of 300 cells."},
        {"label": "Figure 2.", "text": "A floating figure."},
    ]


def test_sub_articles_in_document_order_with_the_reviewer_number_by_trust():
    subs = read(FIXTURE.read_bytes()).sub_articles
    assert [(s.article_type, s.id, s.reviewer) for s in subs] == [
        ("reviewer-report", "rep1", 2),  # role "Referee 2"
        ("response", "resp1", None),  # nested in the report (F1000 style)
        ("referee-report", "sa3", 1),  # the title "Reviewer #1 (Public review)" before the id sa3
        ("referee-report", "sa2", 2),  # roles name reviewers 1 and 3: only the id is left
        ("referee-report", "rev-x", None),  # nothing says it
    ]
    report, response = subs[0], subs[1]
    assert report.text == "The sample size is small.\n\nShow the statistics."  # the boxed publisher note left out
    assert (report.recommendation, report.date, report.contrib_names) == (
        "approve-with-reservations", dt.date(2020, 4, 20), ["Rita Roe"])
    assert "added more cells" not in report.text and response.text == "We added more cells."
    assert (subs[2].round, report.round) == (2, None)


NAMESPACED = """<records xmlns="http://jats.nlm.nih.gov" xmlns:x="http://www.w3.org/1999/xlink">
  <article><front><article-meta>
      <article-id pub-id-type="doi">10.5555/NS.1</article-id>
      <title-group><article-title>Namespaced</article-title></title-group>
      <pub-date pub-type="collection"><year>2019</year></pub-date>
      <pub-date publication-format="print" date-type="pub"><day>9</day><month>9</month><year>2019</year></pub-date>
      <pub-date publication-format="electronic" date-type="pub" iso-8601-date="2019-08-30"><year>2019</year></pub-date>
      <permissions><license x:href="http://creativecommons.org/licenses/by/4.0/"><license-p>CC BY</license-p></license>
      </permissions>
    </article-meta></front>
    <body><sec><title>Methods summary</title><p>One <bold>bold</bold><!-- an editor's note --> claim.</p></sec></body>
  </article>
  <sub-article article-type="decision-letter" id="SA1"><front-stub>
      <title-group><article-title>Decision letter</article-title></title-group>
      <contrib-group><contrib><name><surname>Eddy</surname></name><role>Reviewing Editor</role></contrib>
      </contrib-group>
    </front-stub><body><p>Please revise.</p></body></sub-article>
</records>"""


def test_namespaces_do_not_matter_and_sibling_sub_articles_are_read():
    article = read(NAMESPACED)
    assert (article.doi, article.title, article.published) == ("10.5555/ns.1", "Namespaced", dt.date(2019, 8, 30))
    assert article.license == "http://creativecommons.org/licenses/by/4.0/"
    assert article.sections == [{"kind": "other", "title": "Methods summary", "text": "One bold claim."}]
    [letter] = article.sub_articles
    assert (letter.article_type, letter.reviewer, letter.text, letter.contrib_names) == (
        "decision-letter", 1, "Please revise.", ["Eddy"])  # SA1: the id is the only number there is

    # body_sections on another tool's namespaced element (comments kept) leaves that element as it was
    body = etree.fromstring(NAMESPACED.encode()).find(".//{http://jats.nlm.nih.gov}body")
    sections, captions = jats.body_sections(body)
    assert sections == article.sections and captions == []
    assert body[0].tag == "{http://jats.nlm.nih.gov}sec"


def test_a_date_needs_year_month_and_day_and_license_falls_back_to_its_text():
    article = read("""<article><front><article-meta><pub-date pub-type="collection"><year>2018</year></pub-date>
        <permissions><license><license-p>Free to read, <ext-link>see terms</ext-link>.</license-p></license>
        </permissions></article-meta></front></article>""")
    assert (article.published, article.doi, article.version) == (None, None, None)
    assert article.license == "Free to read, see terms."
    assert (article.has_body, article.sections, article.sub_articles) == (False, [], [])


@pytest.mark.parametrize("title, kind", [
    ("Introduction", "introduction"), ("INTRO", "introduction"), ("2. Background", "introduction"),
    ("Methods", "methods"), ("Materials and Methods", "methods"), ("Materials & methods", "methods"),
    ("Experimental Procedures", "methods"), ("III. Results", "results"), ("Results and discussion", "results"),
    ("Results & Discussion", "results"), ("Discussion", "discussion"), ("Conclusion", "discussion"),
    ("Conclusions:", "discussion"), ("Data availability", "other"), ("Methods summary", "other"), ("", "other"),
    (None, "other"),
])
def test_section_kind_by_title(title, kind):
    assert jats.section_kind(title) == kind


@pytest.mark.parametrize("data, reason", [
    (b"<article><front>", "not well-formed XML"),
    (b"", "not well-formed XML"),
    (b"<OAI-PMH><error code='idDoesNotExist'/></OAI-PMH>", "no <article> element (root is <OAI-PMH>)"),
])
def test_not_an_article_raises_naming_the_file(data, reason):
    with pytest.raises(jats.JatsError) as err:
        read(data, file="snap/x.xml")
    assert err.value.reason.startswith(reason) and str(err.value) == f"snap/x.xml: {err.value.reason}"


def test_named_entities_of_an_unread_dtd_become_their_characters():
    article = read(b'<!DOCTYPE article SYSTEM "JATS-archivearticle1.dtd"><article><body><p>1990&ndash;2000,'
                   b'&nbsp;see &unknown; <supplementary-material><caption><p>File S1</p></caption>'
                   b'</supplementary-material></p></body></article>')
    assert article.sections[0]["text"] == "1990\u20132000, see &unknown;"  # a supplementary file is not prose
