"""The one duplicate rule (workflow_scripts/sources/duplicates.py) and the merge of the reader tables that uses it."""

from __future__ import annotations

import datetime as dt

import polars as pl

from workflow_scripts.sources import arxiv_papers
from workflow_scripts.sources.duplicates import keep_latest
from workflow_scripts.sources.records import PAPER_SCHEMA

D = dt.date


def test_most_recent_wins_ties_go_to_the_later_row_and_conflicts_are_counted():
    df = pl.DataFrame({
        "id": ["a", "a", "a", "b", "b", "c", "c"],
        "t": [D(2024, 1, 2), D(2024, 1, 1), None, D(2024, 5, 1), D(2024, 5, 1), D(2024, 1, 1), D(2024, 1, 1)],
        "v": [1, 2, 3, 10, 11, 7, 7],
    })
    out, found = keep_latest(df, "id", "t", ["v"])
    assert out.rows() == [("a", D(2024, 1, 2), 1), ("b", D(2024, 5, 1), 11), ("c", D(2024, 1, 1), 7)]
    # a: two older copies with other values (a null date counts as the oldest); b: a tie, the later row wins; c: repeat
    assert (found.dropped, found.conflicting, found.examples) == (4, 3, ["a", "b"])


def paper(arxiv_id: str, title: str, updated: dt.date, source: str) -> dict:
    return {"arxiv_id": arxiv_id, "title": title, "abstract": "A.", "authors": ["X"], "primary_category": "cs.LG",
            "categories": ["cs.LG"], "field": "CS", "published": D(2024, 1, 1), "updated": updated, "doi": None,
            "journal_ref": None, "source": source}


def test_merge_latest_update_wins_and_on_a_tie_the_reader_listed_first(tmp_path):
    tables = {
        "oai_pmh": [paper("1", "tie, listed first", D(2024, 2, 1), "oai_pmh"), paper("2", "old", D(2024, 1, 1), "oai_pmh")],
        "dump": [paper("1", "tie, listed second", D(2024, 2, 1), "dump"), paper("2", "new", D(2024, 3, 1), "dump")],
        "api": [paper("3", "same", D(2024, 1, 1), "api")],
    }
    paths = []
    for name, rows in tables.items():
        paths.append(str(tmp_path / f"{name}.parquet"))
        pl.DataFrame(rows, schema=PAPER_SCHEMA).write_parquet(paths[-1])
    out, summary = arxiv_papers.merge(paths)
    assert out.select("arxiv_id", "title", "source").rows() == [
        ("1", "tie, listed first", "oai_pmh"), ("2", "new", "dump"), ("3", "same", "api"),
    ]
    assert (summary["duplicates_across_readers"], summary["duplicates_conflicting"]) == (2, 2)
