"""The all_nonfig corpus: one row per article with its reviewers' concerns, as the reference trained on.

    python -m workflow_scripts.datasets.bioreview_corpus --articles elife.parquet ... --reports elife.parquet ... \\
        --concerns concerns.parquet --out corpus.parquet --counts counts.json

Steps, each counted (the card's numbers), as the reference's ``all_nonfig`` build (min concerns 1, title-only
articles dropped, figure concerns removed, exact duplicates removed):

1. ``figure_issue`` concerns are removed (the model is trained to skip what needs the figure);
2. exact duplicates within an article are removed, keeping the first: the same text after case folding and
   whitespace collapsing (:func:`normalized_text`), whichever reviewer wrote it;
3. title-only articles (no abstract and no section text) are dropped, concerns and all;
4. articles with no concern left are dropped (those without any report counted apart).

Only the concerns table enters, and every concern must come from a row of the reports tables (reviewer reports:
the authors' responses are another table and never reach it); a concern naming an unknown report or article is an
error naming them. Rows keep the articles' columns plus ``concerns`` (text, category, severity, report_id,
reviewer, round: report order, then answer order) and ``n_concerns``, sorted by article_id.
"""

from __future__ import annotations

import logging
import sys

import polars as pl

from workflow_scripts.common.cli import parser, setup_logging
from workflow_scripts.common.io import write_json_atomic, write_parquet_atomic
from workflow_scripts.datasets.bioreview_inputs import read_articles, read_concerns, read_reports
from workflow_scripts.datasets.bioreview_prompts import CARD_CATEGORIES, FIGURE_CATEGORY
from workflow_scripts.sources.biomed.tables import SOURCES

log = logging.getLogger(__name__)

CONCERN_FIELDS = ("text", "category", "severity", "report_id", "reviewer", "round")


def normalized_text() -> pl.Expr:
    """A concern's text as the exact-duplicate rule compares it: case folded, white space collapsed."""
    return pl.col("text").str.to_lowercase().str.replace_all(r"\s+", " ").str.strip_chars()


def check_provenance(concerns: pl.DataFrame, reports: pl.DataFrame, articles: pl.DataFrame) -> None:
    """Every concern comes from a known report of a known article, or the inputs do not belong together."""
    for column, known, what in (("report_id", reports, "reports"), ("article_id", articles, "articles")):
        unknown = concerns.join(known.select(column), on=column, how="anti")[column].unique(maintain_order=True)
        if unknown.len():
            raise ValueError(f"{unknown.len()} {column}(s) of the concerns are in no {what} table given, e.g. "
                             f"{unknown.head(5).to_list()}")


def has_text() -> pl.Expr:
    sections = pl.col("sections").list.eval(pl.element().struct.field("text").fill_null("").str.strip_chars()
                                            .str.len_chars().sum()).list.first().fill_null(0)
    return (pl.col("abstract").fill_null("").str.strip_chars() != "") | (sections > 0)


def build(articles: pl.DataFrame, reports: pl.DataFrame, concerns: pl.DataFrame) -> tuple[pl.DataFrame, dict]:
    check_provenance(concerns, reports, articles)
    counts: dict = {"articles_in": articles.height, "reports_in": reports.height, "concerns_in": concerns.height}
    # the report order (round, reviewer) decides which copy of a duplicate stays
    order = reports.select("report_id", pl.int_range(pl.len()).alias("_report_order"))
    concerns = (concerns.join(order, on="report_id", how="left").with_row_index("_answer_order")
                .sort("article_id", "_report_order", "_answer_order"))
    nonfig = concerns.filter(pl.col("category") != FIGURE_CATEGORY)
    counts["figure_concerns_removed"] = concerns.height - nonfig.height
    unique = nonfig.unique([pl.col("article_id"), normalized_text()], keep="first", maintain_order=True)
    counts["duplicate_concerns_removed"] = nonfig.height - unique.height
    with_text = articles.filter(has_text())
    counts["title_only_articles_dropped"] = articles.height - with_text.height
    grouped = unique.group_by("article_id", maintain_order=True).agg(
        pl.struct(*CONCERN_FIELDS).alias("concerns"), pl.len().cast(pl.Int32).alias("n_concerns"))
    corpus = with_text.join(grouped, on="article_id", how="inner").sort("article_id")
    no_concern = with_text.join(grouped, on="article_id", how="anti")
    reviewed = no_concern["article_id"].is_in(reports["article_id"].implode())
    counts["articles_without_concern_dropped"] = int(reviewed.sum())
    counts["articles_without_report_dropped"] = int((~reviewed).sum())
    kept = corpus.explode("concerns").unnest("concerns") if corpus.height else unique.head(0)
    counts.update({
        "articles": corpus.height,
        "concerns": int(corpus["n_concerns"].sum()),
        "concerns_per_article": round(corpus["n_concerns"].mean(), 2) if corpus.height else None,
        "per_source": {s: {"articles": int((corpus["source"] == s).sum()),
                           "concerns": int(corpus.filter(pl.col("source") == s)["n_concerns"].sum())}
                       for s in SOURCES},
        "per_category": {c: int((kept["category"] == c).sum()) for c in CARD_CATEGORIES},
    })
    log.info("all_nonfig: %d article(s), %d concern(s) kept; removed %d figure and %d duplicate concern(s); "
             "dropped %d title-only article(s), %d without concern, %d without report", counts["articles"],
             counts["concerns"], counts["figure_concerns_removed"], counts["duplicate_concerns_removed"],
             counts["title_only_articles_dropped"], counts["articles_without_concern_dropped"],
             counts["articles_without_report_dropped"])
    return corpus, counts


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--articles", nargs="+", required=True, help="articles parquet of each source")
    p.add_argument("--reports", nargs="+", required=True, help="reports parquet of each source")
    p.add_argument("--concerns", required=True, help="bioreview_extraction's concerns parquet")
    p.add_argument("--out", required=True)
    p.add_argument("--counts", required=True, help="counts JSON (per step, per source, per category)")
    args = p.parse_args(argv)
    setup_logging(args.verbose)
    corpus, counts = build(read_articles(args.articles), read_reports(args.reports), read_concerns(args.concerns))
    if not corpus.height:
        log.error("the all_nonfig corpus is empty: %s", counts)
        return 1
    write_parquet_atomic(corpus, args.out)
    write_json_atomic(args.counts, counts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
