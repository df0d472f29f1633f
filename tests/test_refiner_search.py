"""The Refiner's sources: the one snippet parser (quoted ids, repeats, conflicts, malformed blocks) and the local BM25
search tool over titles and abstracts."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from workflow_scripts.datasets.refiner_search import SearchIndex, corpus_passages, passages, sentences, tool_output
from workflow_scripts.datasets.refiner_snippets import (Snippet, SnippetError, normalize_id, parse_tool_output,
                                                        render_tool_output)
from workflow_scripts.demo import corpus as demo_corpus


def demo_papers(n: int, seed: int = 7) -> pl.DataFrame:
    """``n`` papers of the demo world (titles and abstracts in its technical vocabulary)."""
    world = demo_corpus.build(n, seed, dt.date(2022, 1, 1), dt.date(2024, 12, 31),
                              dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc), dt.date(2024, 12, 31))
    return pl.DataFrame([{"arxiv_id": p.arxiv_id, "title": p.title, "abstract": p.abstract} for p in world.papers])


# ---------------------------------------------------------------------------------------------------- the parser


def test_ids_bare_double_and_single_quoted_are_one_form():
    text = ('<tool_output>\n<snippet id=S1>First source.</snippet>\n<snippet id="S2">Second.</snippet>\n'
            "<snippet id='S3'> Third, padded. </snippet>\n<webpage id=W1>A browsed page.</webpage></tool_output>")
    assert parse_tool_output(text) == [Snippet("S1", "First source."), Snippet("S2", "Second."),
                                       Snippet("S3", "Third, padded."), Snippet("W1", "A browsed page.")]
    assert [normalize_id(x) for x in ('"S1"', "'S1'", " S1 ", '" S1 "', "S1")] == ["S1"] * 5


def test_a_repeated_id_with_the_same_text_is_one_source():
    text = ("<snippet id=a1>Same  text.</snippet> and again <snippet id=\"a1\">Same text.</snippet>"
            "<snippet id=b>B</snippet>")
    assert parse_tool_output(text) == [Snippet("a1", "Same  text."), Snippet("b", "B")]


@pytest.mark.parametrize("text, kind", [
    ("<snippet id=a1>One text.</snippet><snippet id=a1>Another text.</snippet>", "id_conflict"),
    ("<snippet id=a1>Never closed.", "unclosed_source"),
    ("<snippet id=a1>Outer <snippet id=a2>inner</snippet></snippet>", "nested_source"),
    ("<snippet>No id.</snippet>", "missing_id"),
    ('<snippet id="">Empty id.</snippet>', "missing_id"),
    ('<snippet id="a,b">Comma.</snippet>', "bad_id"),
    ("<snippet id=a1>   </snippet>", "empty_source"),
])
def test_ambiguous_or_malformed_sources_raise_with_their_kind(text, kind):
    with pytest.raises(SnippetError) as caught:
        parse_tool_output(text)
    assert caught.value.kind == kind and str(caught.value).startswith(f"{kind}: ")


def test_rendered_tool_output_parses_back():
    snippets = [Snippet("2101.00001-0", "Title\nA passage."), Snippet("2101.00002-1", "Other\nText {with} braces.")]
    text = render_tool_output(snippets)
    assert text.startswith("<tool_output>\n") and text.endswith("\n</tool_output>")
    assert parse_tool_output(text) == snippets


# ---------------------------------------------------------------------------------------------------- the search


def test_passages_pack_whole_sentences():
    abstract = "One short sentence. " * 3 + "A much longer sentence " + "x" * 80 + ". Last one."
    parts = passages(abstract, 45)
    assert " ".join(parts) == " ".join(abstract.split())  # nothing lost, nothing cut mid-sentence
    assert all(p.endswith(".") for p in parts)
    assert all(len(p) <= 45 or len(sentences(p)) == 1 for p in parts)


def test_snippet_ids_are_stable_and_unique():
    papers = demo_papers(120)
    first = corpus_passages(papers, 300)
    again = corpus_passages(papers.reverse(), 300)
    assert [p.snippet for p in first] == [p.snippet for p in again]
    ids = [p.snippet.id for p in first]
    assert len(ids) == len(set(ids)) and all("," not in i and " " not in i for i in ids)
    assert all(p.snippet.id.startswith(p.paper_id + "-") for p in first)
    assert all(p.snippet.text.split("\n", 1)[0] in set(papers["title"]) for p in first)


def test_a_title_query_finds_its_paper_first():
    papers = demo_papers(300)
    index = SearchIndex.from_papers(papers, passage_chars=400)
    titles = papers.filter(pl.col("title").is_unique())
    for arxiv_id, title in titles.head(25).select("arxiv_id", "title").iter_rows():
        hits = index.search_passages(title, 5)
        assert hits[0].paper_id == arxiv_id, (title, [h.snippet.text.split("\n")[0] for h in hits])
    # a query sharing no term with the corpus finds nothing (rather than arbitrary passages)
    assert index.search("zzzqqq xyzzy", 5) == []


def test_search_results_render_as_a_tool_output_the_parser_reads():
    papers = demo_papers(80)
    index = SearchIndex.from_papers(papers, passage_chars=400)
    query = papers["title"][3]
    hits = index.search(query, 4)
    assert 1 <= len(hits) <= 4
    assert parse_tool_output(tool_output(hits)) == hits
