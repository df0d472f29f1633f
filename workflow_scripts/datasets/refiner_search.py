"""The Refiner's local search tool: BM25 (``bm25s``) over passages of the harvested papers' titles and abstracts.

    python -m workflow_scripts.datasets.refiner_search --papers papers.parquet --query "graph neural networks" \\
        --top-k 5 --passage-chars 400

Every paper with a title and an abstract becomes passages: its abstract split into sentences (at ``.``, ``!`` or
``?`` followed by white space) packed in order into passages of at most ``passage_chars`` characters (a longer
sentence is a passage of its own: nothing is cut mid-sentence). A passage's snippet id is ``<arxiv_id>-<n>`` (n from
0 in abstract order): short, stable across runs and corpora, unique because arXiv ids are, and free of commas and
white space so that a citation can name it. Its text is the paper's title, a newline, and the passage. The title is
indexed with every passage, ``title_weight`` times (a field weight by repetition: the demo's short, generic titles
share most words with other papers' abstracts, and a title query should find its paper first).

A search tokenizes the query as the passages were (lower case, words of two or more characters, English stop
words removed; no stemming) and returns the ``top_k`` passages of highest BM25 score (Lucene's variant, ``k1``, ``b``
and ``title_weight`` from config) that share at least one term with it, best first (ties in index order), as
:class:`~workflow_scripts.datasets.refiner_snippets.Snippet` objects; :func:`tool_output` renders them as the raw
``<tool_output>`` text that the Refiner reads.
"""

from __future__ import annotations

import logging
import re
import sys
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import polars as pl

from workflow_scripts.common.cli import parser, setup_logging
from workflow_scripts.datasets.refiner_snippets import Snippet, render_tool_output

log = logging.getLogger(__name__)

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text or "") if s.strip()]


def passages(abstract: str, passage_chars: int) -> list[str]:
    """The abstract's sentences packed in order into passages of at most ``passage_chars`` characters."""
    out: list[str] = []
    current = ""
    for sentence in sentences(abstract):
        joined = f"{current} {sentence}" if current else sentence
        if current and len(joined) > passage_chars:
            out.append(current)
            current = sentence
        else:
            current = joined
    if current:
        out.append(current)
    return out


@dataclass(frozen=True)
class Passage:
    paper_id: str
    title: str
    snippet: Snippet

    def indexed_text(self, title_weight: int) -> str:
        return "\n".join([self.title] * (title_weight - 1) + [self.snippet.text])


def corpus_passages(papers: pl.DataFrame, passage_chars: int) -> list[Passage]:
    """The passages of every paper with a title and an abstract, in arxiv_id order."""
    usable = papers.select("arxiv_id", "title", "abstract").filter(
        pl.col("title").str.strip_chars().str.len_chars().fill_null(0) > 0,
        pl.col("abstract").str.strip_chars().str.len_chars().fill_null(0) > 0).sort("arxiv_id")
    out = []
    for arxiv_id, title, abstract in usable.iter_rows():
        title = " ".join(title.split())
        for n, passage in enumerate(passages(" ".join(abstract.split()), passage_chars)):
            out.append(Passage(arxiv_id, title, Snippet(f"{arxiv_id}-{n}", f"{title}\n{passage}")))
    return out


class SearchIndex:
    """BM25 over passages; build once, search many times."""

    def __init__(self, items: Sequence[Passage], *, k1: float = 1.5, b: float = 0.75, title_weight: int = 3):
        import bm25s
        from bm25s.tokenization import Tokenizer

        if title_weight < 1:
            raise ValueError(f"title_weight must be at least 1, got {title_weight}")
        if not items:
            raise ValueError("the search index needs at least one passage (no paper has a title and an abstract)")
        self.items = list(items)
        # bm25s logs its progress at DEBUG on a logger set to DEBUG: keep it to our level
        logging.getLogger("bm25s").setLevel(log.getEffectiveLevel())
        self._tokenizer = Tokenizer(lower=True, stopwords="en")
        tokens = self._tokenizer.tokenize([p.indexed_text(title_weight) for p in self.items], return_as="ids",
                                          show_progress=False)
        self._bm25 = bm25s.BM25(k1=k1, b=b, method="lucene")
        self._bm25.index(tokens, show_progress=False)
        self._vocab = self._tokenizer.get_vocab_dict()
        log.info("search index: %d passages of %d papers, %d terms", len(self.items),
                 len({p.paper_id for p in self.items}), len(self._vocab))

    @classmethod
    def from_papers(cls, papers: pl.DataFrame, *, passage_chars: int, k1: float = 1.5, b: float = 0.75,
                    title_weight: int = 3) -> "SearchIndex":
        return cls(corpus_passages(papers, passage_chars), k1=k1, b=b, title_weight=title_weight)

    def query_terms(self, query: str) -> list[int]:
        words = self._tokenizer.tokenize([query], update_vocab=False, return_as="string", show_progress=False)[0]
        return [self._vocab[w] for w in words if w in self._vocab]

    def search_passages(self, query: str, top_k: int) -> list[Passage]:
        terms = self.query_terms(query)
        if not terms:
            return []
        scores = self._bm25.get_scores(terms)
        # best first; among equal scores, index order (a stable sort of the negated scores)
        order = np.argsort(-scores, kind="stable")[:top_k]
        return [self.items[i] for i in order if scores[i] > 0]

    def search(self, query: str, top_k: int) -> list[Snippet]:
        return [p.snippet for p in self.search_passages(query, top_k)]


def tool_output(snippets: Sequence[Snippet]) -> str:
    return render_tool_output(snippets)


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--papers", required=True, help="papers.parquet (arxiv_id, title, abstract)")
    p.add_argument("--query", required=True)
    p.add_argument("--top-k", type=int, default=5)
    p.add_argument("--passage-chars", type=int, default=400)
    p.add_argument("--k1", type=float, default=1.5)
    p.add_argument("--b", type=float, default=0.75)
    p.add_argument("--title-weight", type=int, default=3, help="times the title is indexed with each passage")
    args = p.parse_args(argv)
    setup_logging(args.verbose)
    index = SearchIndex.from_papers(pl.read_parquet(args.papers, columns=["arxiv_id", "title", "abstract"]),
                                    passage_chars=args.passage_chars, k1=args.k1, b=args.b,
                                    title_weight=args.title_weight)
    print(tool_output(index.search(args.query, args.top_k)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
