"""The one JATS reader of the biomedical sources: an article's metadata, its top-level body sections, its figure
captions and its sub-articles (the published peer reviews, decision letters and author responses).

Namespace-agnostic: elements and attributes are matched by local name, so NLM 2.x, JATS 1.x (with or without a default
namespace) and the ``xlink:`` / ``ali:`` prefixes read alike.

What is read, and from where:

- ``doi``: ``front//article-id[@pub-id-type='doi']``, the one without ``@specific-use`` first (eLife's reviewed
  preprints carry the concept DOI and a ``specific-use="version"`` DOI), lowercased.
- ``version``: a numeric ``article-version``, else the ``.N`` suffix of a ``specific-use="version"`` DOI, else None.
- ``abstract``: ``front//abstract[not(@abstract-type)]`` (eLife's digest and other typed abstracts are left out).
- ``published``: the article's ``pub-date`` by this preference: the electronic publication date (``pub-type`` epub,
  or ``publication-format`` electronic with ``date-type`` pub/publication or none), then any ``date-type``
  pub/publication, then ``ppub`` / ``epub-ppub``, then any other; a date without year, month and day does not count
  (a ``collection`` year is not a day of publication). ``@iso-8601-date`` is used where present.
- ``license``: ``license/@xlink:href``, else ``ali:license_ref``, else the ``license-p`` text.
- ``sections``: the top-level ``body/sec`` in order, ``kind`` from the title text (:func:`section_kind`, never
  ``@sec-type``); paragraphs outside any section (short reports) become one untitled ``other`` section before the
  first section. Text: paragraphs, list items, table captions and rows (a line per row, cells joined by `` | ``)
  and sub-section titles, blocks separated by a blank line; figures are left out of the text and listed in
  ``figure_captions``. A paragraph that only states a DOI is left out everywhere (old eLife files end every part,
  figure and letter with "DOI: http://dx.doi.org/10.7554/eLife.00288.003").
- ``sub_articles``: every ``sub-article`` inside the article (nested ones too: F1000 nests the authors' response in
  the report) or next to it under a wrapper, in document order. Its text is its own ``body`` (never a nested
  sub-article's); a ``boxed-text`` directly in that body is the publisher's framing note (eLife: "In the interests
  of transparency, eLife publishes ..."), not the review, and is left out, as is a paragraph that only holds the
  letter's date (PLOS: ``<named-content content-type="letter-date">``, "author-response-date"), so that an answer
  whose only content is an attached file has no text.
- reviewer number, in order of trust: the contributors' ``role`` ("Reviewer #2", "Referee 2"; None when roles name
  different numbers), the sub-article's title ("Reviewer #1 (Public review):"), its ``@id`` (``sa2``); None when
  nothing says it. ``round``: "Round 2" / "Revision 1" in the title, else None.
"""

from __future__ import annotations

import copy
import datetime as dt
import html.entities
import re
from dataclasses import dataclass, field

from lxml import etree

PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True, remove_comments=True,
                         remove_pis=True)
FIGURES = ("fig", "fig-group")
# blocks that may sit inside a paragraph (JATS allows lists, tables and figures in <p>)
NESTED_BLOCKS = ("list", "def-list", "table-wrap", "table-wrap-group", "fig", "fig-group", "disp-quote",
                 "boxed-text", "supplementary-material")
BLOCKS = ("p", "sec", "title", "list", "list-item", "def-list", "def-item", "term", "def", "table-wrap",
          "table-wrap-group", "fig", "fig-group", "disp-quote", "boxed-text", "fn", "statement", "speech")
SPACED = ("p", "title", "label", "caption", "list-item", "break", "td", "th")
# no prose in them (a supplementary file's description is not the article's text)
SKIPPED = ("label", "object-id", "alternatives", "graphic", "media", "supplementary-material")

_KIND_BY_TITLE = {  # every value one of tables.SECTION_KINDS
    "introduction": "introduction", "intro": "introduction", "background": "introduction",
    "methods": "methods", "method": "methods", "materials and methods": "methods", "material and methods": "methods",
    "methods and materials": "methods", "experimental procedures": "methods",
    "results": "results", "result": "results", "results and discussion": "results",
    "discussion": "discussion", "conclusion": "discussion", "conclusions": "discussion",
    "discussion and conclusion": "discussion", "discussion and conclusions": "discussion",
}
_NUMBERING = re.compile(r"^\s*(?:\d+(?:\.\d+)*|[ivxlc]+|[a-z])[.)]?\s+", re.I)
_REVIEWER = re.compile(r"\b(?:reviewer|referee)\s*(?:#|no\.?|number)?\s*(\d+)\b", re.I)
_SA_ID = re.compile(r"^sa(\d+)$", re.I)
_ROUND = re.compile(r"\b(?:round|revision)\s*#?\s*(\d+)\b", re.I)
_DOI_LINE = re.compile(r"^DOI:\s*\S+$", re.I)
_PUB_TYPE = {"epub": 0, "ppub": 2, "epub-ppub": 2}


class JatsError(ValueError):
    """The bytes are not a JATS article: malformed XML, or no ``article`` element. ``reason`` says why (for a rejects
    row, which names the file itself); the message names the file too."""

    def __init__(self, reason: str, file: str | None = None):
        super().__init__(f"{file}: {reason}" if file else reason)
        self.reason = reason
        self.file = file


@dataclass
class SubArticle:
    article_type: str
    id: str | None
    title: str | None
    text: str
    reviewer: int | None
    round: int | None
    recommendation: str | None
    date: dt.date | None
    contrib_names: list[str] = field(default_factory=list)


@dataclass
class JatsArticle:
    doi: str | None
    title: str | None
    abstract: str | None
    journal: str | None
    published: dt.date | None
    license: str | None
    version: int | None
    sections: list[dict]
    figure_captions: list[dict]
    has_body: bool
    sub_articles: list[SubArticle]
    article_type: str | None = None  # the root's @article-type ("research-article", "correction", ...)


def read_jats(data: bytes, *, file: str) -> JatsArticle:
    """The article in ``data`` (the bytes of ``file``, named in errors); JatsError when it is not one."""
    try:
        root = etree.fromstring(data, PARSER)
    except etree.XMLSyntaxError as exc:
        raise JatsError(f"not well-formed XML (truncated?): {exc}", file) from None
    _strip_namespaces(root)
    article = root if root.tag == "article" else next(root.iter("article"), None)
    if article is None:
        raise JatsError(f"no <article> element (root is <{root.tag}>)", file)
    front = _child(article, "front")
    meta = front.find(".//article-meta") if front is not None else None
    body = _child(article, "body")
    sections, captions = body_sections(body) if body is not None else ([], [])
    floats = _child(article, "floats-group")
    if floats is not None:
        captions += [_caption(fig) for fig in floats.iter("fig")]
    return JatsArticle(
        doi=_doi(meta),
        title=_text_of(meta, "title-group/article-title"),
        abstract=_abstract(meta),
        journal=_text_of(front, ".//journal-meta//journal-title"),
        published=_pub_date(meta),
        license=_license(meta),
        version=_version(meta),
        sections=sections,
        figure_captions=captions,
        has_body=bool(sections),
        sub_articles=[_sub_article(sub) for sub in _sub_article_elements(article)],
        article_type=article.get("article-type"),
    )


def section_kind(title: str | None) -> str:
    """The SECTION_KINDS entry of a section title: 'Materials & Methods' -> 'methods', '2. Results' -> 'results',
    'Results and discussion' -> 'results', anything not listed -> 'other'."""
    if not title:
        return "other"
    text = _NUMBERING.sub("", title.lower().replace("&", " and "))
    text = " ".join(re.sub(r"[^a-z ]+", " ", text.split(":")[0]).split())
    return _KIND_BY_TITLE.get(text, "other")


def body_sections(element) -> tuple[list[dict], list[dict]]:
    """(sections ``[{kind, title, text}]``, figure captions ``[{label, text}]``) of a ``<body>`` element of any
    JATS-like XML, namespaced or not (the element is not changed)."""
    body = copy.deepcopy(element)
    _strip_namespaces(body)
    captions = [_caption(fig) for fig in body.iter("fig")]
    sections, loose = [], []
    for child in body:
        if child.tag == "sec":
            title = _clean(_inline(_child(child, "title")))
            sections.append({"kind": section_kind(title), "title": title, "text": _join(_blocks(child))})
        else:
            loose.extend(_blocks_of(child))
    if loose:
        sections.insert(0, {"kind": "other", "title": None, "text": _join(loose)})
    return [s for s in sections if s["text"] or s["title"]], captions


# --------------------------------------------------------------------------------------------------------------------
# text


def _strip_namespaces(root) -> None:
    """Local names only, in place; comments and processing instructions (another tool's tree may hold them) go, and
    a named entity the unread DTD would define (``&ndash;``) becomes its character (HTML's names, JATS uses them)."""
    for entity in root.iter(etree.Entity):
        entity.tail = html.entities.html5.get(f"{entity.name};", entity.text) + (entity.tail or "")
    etree.strip_elements(root, etree.Comment, etree.ProcessingInstruction, etree.Entity, with_tail=False)
    for el in root.iter():
        el.tag = etree.QName(el).localname
        for name in [n for n in el.attrib if n.startswith("{")]:
            el.attrib[etree.QName(name).localname] = el.attrib.pop(name)


def _child(el, name: str):
    return None if el is None else el.find(name)


def _clean(text: str | None) -> str | None:
    if text is None:
        return None
    return " ".join(text.split()) or None


def _join(blocks: list[str]) -> str:
    return "\n\n".join(blocks)


def _inline(el, skip: tuple[str, ...] = NESTED_BLOCKS) -> str:
    """The running text of ``el`` without the blocks nested in it (they are blocks of their own)."""
    if el is None:
        return ""
    parts = [el.text or ""]
    for child in el:
        if child.tag not in skip:
            # a paragraph or title inside a caption or cell must not run into its neighbour's words
            pad = " " if child.tag in SPACED else ""
            parts.append(pad + _inline(child, skip) + pad)
        parts.append(child.tail or "")
    return "".join(parts)


def _blocks(sec) -> list[str]:
    """The text blocks of a section, its own title excluded."""
    out: list[str] = []
    for child in sec:
        if child.tag != "title":
            out.extend(_blocks_of(child))
    return out


def _blocks_of(el) -> list[str]:
    tag = el.tag
    if tag in FIGURES or tag in SKIPPED or tag == "sub-article":
        return []
    if tag == "sec":
        title = _clean(_inline(_child(el, "title")))
        return ([title] if title else []) + _blocks(el)
    if tag in ("table-wrap", "table-wrap-group"):
        return _table_blocks(el)
    if tag != "p" and any(child.tag in BLOCKS for child in el):  # a container: a list, a box, a quote, a footnote
        lead = _clean(el.text)
        return ([lead] if lead else []) + [b for child in el for b in _blocks_of(child)]
    # a paragraph: its running text, then the blocks nested in it
    text = _clean(_inline(el))
    if text and _DOI_LINE.match(text):  # a component's identifier (old eLife ends each part so), not prose
        text = None
    return ([text] if text else []) + [b for child in el if child.tag in NESTED_BLOCKS for b in _blocks_of(child)]


def _table_blocks(wrap) -> list[str]:
    out = []
    caption = _clean(" ".join(filter(None, [_inline(_child(wrap, "label")), _inline(_child(wrap, "caption"))])))
    if caption:
        out.append(caption)
    rows = [[_clean(_inline(cell, skip=())) or "" for cell in row if cell.tag in ("td", "th")]
            for row in wrap.iter("tr")]
    if any(any(cells) for cells in rows):  # one block per table, a line per row
        out.append("\n".join(" | ".join(cells) for cells in rows if any(cells)))
    for foot in wrap.iter("table-wrap-foot"):
        out.extend(b for child in foot for b in _blocks_of(child))
    return out


def _caption(fig) -> dict:
    caption = _child(fig, "caption")
    blocks = [] if caption is None else [_clean(_inline(c, skip=())) for c in caption if c.tag not in SKIPPED]
    text = _join([b for b in blocks if b and not _DOI_LINE.match(b)])
    return {"label": _clean(_inline(_child(fig, "label"))), "text": text}


def _text_of(el, path: str) -> str | None:
    found = None if el is None else el.find(path)
    return None if found is None else _clean(_inline(found, skip=()))


# --------------------------------------------------------------------------------------------------------------------
# metadata


def _doi(meta) -> str | None:
    if meta is None:
        return None
    ids = [el for el in meta.findall("article-id") if el.get("pub-id-type") == "doi" and _clean(el.text)]
    ids.sort(key=lambda el: el.get("specific-use") is not None)
    return _clean(ids[0].text).lower() if ids else None


def _version(meta) -> int | None:
    if meta is None:
        return None
    for el in meta.iter("article-version"):
        text = _clean(el.text) or ""
        if text.isdigit():
            return int(text)
    for el in meta.findall("article-id"):
        if el.get("pub-id-type") == "doi" and el.get("specific-use") == "version":
            m = re.search(r"\.(\d+)$", _clean(el.text) or "")
            if m:
                return int(m.group(1))
    return None


def _abstract(meta) -> str | None:
    if meta is None:
        return None
    for el in meta.iter("abstract"):
        if el.get("abstract-type") is None:
            return _join(_blocks(el)) or None
    return None


def _date(el) -> dt.date | None:
    iso = el.get("iso-8601-date")
    if iso:
        try:
            return dt.date.fromisoformat(iso.strip()[:10])
        except ValueError:
            pass
    parts = [_clean(_inline(_child(el, name))) for name in ("year", "month", "day")]
    if not all(p and p.isdigit() for p in parts):
        return None
    try:
        return dt.date(*(int(p) for p in parts))
    except ValueError:
        return None


def _date_rank(el) -> int:
    pub_type, form, date_type = el.get("pub-type"), el.get("publication-format"), el.get("date-type")
    is_pub = date_type in (None, "pub", "publication")
    if pub_type == "epub" or (form == "electronic" and is_pub):
        return 0
    if date_type in ("pub", "publication"):
        return 1
    return _PUB_TYPE.get(pub_type, 3)


def _pub_date(holder) -> dt.date | None:
    if holder is None:
        return None
    dated = [(rank, date) for el in holder.findall("pub-date") for rank, date in [(_date_rank(el), _date(el))] if date]
    return min(dated, key=lambda pair: pair[0])[1] if dated else None


def _license(meta) -> str | None:
    lic = meta.find("permissions/license") if meta is not None else None
    if lic is None:
        return None
    ref = _clean(lic.get("href")) or _text_of(lic, "license_ref")
    return ref or _clean(" ".join(_inline(p, skip=()) for p in lic.findall("license-p")))


# --------------------------------------------------------------------------------------------------------------------
# sub-articles


def _sub_article_elements(article) -> list:
    found = list(article.iter("sub-article"))
    for sibling in article.itersiblings():
        if sibling.tag == "sub-article":
            found.extend(sibling.iter("sub-article"))
    return found


def _number(pattern: re.Pattern, texts) -> int | None:
    numbers = {int(m.group(1)) for text in texts if text for m in [pattern.search(text)] if m}
    return numbers.pop() if len(numbers) == 1 else None


def _sub_article(sub) -> SubArticle:
    stub = _child(sub, "front-stub")
    if stub is None:
        stub = _child(sub, "front")
    title = _text_of(stub, ".//title-group/article-title")
    contribs = [] if stub is None else list(stub.iter("contrib"))
    roles = [_clean(_inline(role, skip=())) for c in contribs for role in c.findall("role")]
    sa = _SA_ID.match(sub.get("id") or "")
    reviewer = _number(_REVIEWER, roles) or _number(_REVIEWER, [title]) or (int(sa.group(1)) if sa else None)
    body = _child(sub, "body")
    blocks = [] if body is None else [b for child in body if child.tag != "boxed-text" and not _is_date_line(child)
                                      for b in _blocks_of(child)]
    return SubArticle(
        article_type=sub.get("article-type") or "",
        id=sub.get("id"),
        title=title,
        text=_join(blocks),
        reviewer=reviewer,
        round=_number(_ROUND, [title]),
        recommendation=_recommendation(stub),
        date=_pub_date(stub),
        contrib_names=[name for c in contribs for name in [_contrib_name(c)] if name],
    )


def _is_date_line(el) -> bool:
    """A paragraph holding only the letter's date, ``<p><named-content content-type="letter-date">9 Nov 2023
    </named-content></p>`` (PLOS; "author-response-date" on the authors' answer): metadata, not the letter's text."""
    if el.tag != "p" or (el.text or "").strip() or len(el) != 1:
        return False
    only = el[0]
    return (only.tag == "named-content" and (only.get("content-type") or "").endswith("-date")
            and not (only.tail or "").strip())


def _recommendation(stub) -> str | None:
    if stub is None:
        return None
    for meta in stub.iter("custom-meta"):
        if (_clean(_inline(_child(meta, "meta-name"), skip=())) or "").lower() == "recommendation":
            return _clean(_inline(_child(meta, "meta-value"), skip=()))
    return None


def _contrib_name(contrib) -> str | None:
    name = contrib.find("name")
    if name is not None:
        return _clean(" ".join(filter(None, (_text_of(name, "given-names"), _text_of(name, "surname")))))
    for tag in ("string-name", "collab"):
        found = contrib.find(tag)
        if found is not None:
            return _clean(_inline(found, skip=()))
    return None
