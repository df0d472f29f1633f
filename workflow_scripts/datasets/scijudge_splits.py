"""Which papers pair up in which SciJudge split, as the paper builds them (arXiv 2603.14473, appendices A-B).

* Every split is bounded by ``until_date`` and by the prompt's "today": later papers are left out (counted).
* Papers up to the cutoff year are split by paper before any pairing: a seeded hash of the arXiv id (never the row
  order) holds out ``test_id.held_out_share`` of them. Train pairs come from the rest; the in-domain test from the
  held-out papers, with its own thresholds, sampled per field to ``test_id.sizes`` (a field that cannot reach its
  size keeps what it has, and the shortfall is reported with its reason).
* The temporal OOD test comes from the papers after the cutoff alone (nothing else competes for them), among those
  with at least ``test_ood.min_citations`` citations, quantiles included.
* Duplicates (one paper under several ids, :mod:`dedupe`): inside train one paper of each group is kept (the earliest
  first version, then the smallest id); no paper of a group enters a test.
* ``train_fields`` (field OOD, the paper's Table 5) keeps the train pairs of the listed fields only, counting the
  others; the tests keep every field.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

import polars as pl

from workflow_scripts.datasets.dedupe import DedupeConfig, duplicate_groups, duplicate_pairs
from workflow_scripts.datasets.pair_rules import OodRule, Thresholds, ood_pairs, split_half_pairs
from workflow_scripts.datasets.stable_hash import hash_strings, unit_interval

log = logging.getLogger(__name__)

CALENDAR_WINDOWS = {"week": "1w", "month": "1mo", "quarter": "1q", "year": "1y"}
PAPER_COLUMNS = ["arxiv_id", "primary_category", "field", "published", "title"]
GROUP = ["subcategory", "window"]


class SizeError(ValueError):
    """``strict: true`` and a test split short of its configured sizes."""


def window_expr(window: str | dict) -> pl.Expr:
    """The pairing window of each paper's first-version date: a calendar period, or N-day windows from 1970-01-01."""
    every = f"{window['days']}d" if isinstance(window, dict) else CALENDAR_WINDOWS[window]
    return pl.col("published").dt.truncate(every).alias("window")


def window_text(window: str | dict) -> str:
    if isinstance(window, dict):
        return f"the same {window['days']}-day window (consecutive windows counted from 1970-01-01)"
    return f"the same calendar {window}"


@dataclass
class Selection:
    """Pairs (hi_id, lo_id, and hi_row, lo_row: rows of ``papers``) per split, the paper attributes they need, and
    the counts that explain them."""

    pairs: dict[str, pl.DataFrame]
    papers: pl.DataFrame
    counts: dict = field(default_factory=dict)
    test_id_fields: dict = field(default_factory=dict)
    duplicates: dict = field(default_factory=dict)


def load_papers(papers_path: str, citations_path: str, until: dt.date, today: dt.date) -> tuple[pl.DataFrame, dict]:
    """Papers with a citation count first published by ``until`` and ``today``, with the columns pairing and
    duplicate detection need and their row in the file (``file_row``: abstracts are read later, for paired papers
    only); and what was left out."""
    names = pl.scan_parquet(papers_path).collect_schema().names()
    missing = [c for c in PAPER_COLUMNS if c not in names]
    if missing:
        raise ValueError(f"{papers_path}: not a papers table, missing column(s) {missing}")
    optional = [c for c in ("doi", "journal_ref") if c in names]
    cite_names = pl.scan_parquet(citations_path).collect_schema().names()
    if not {"arxiv_id", "citation_count"} <= set(cite_names):
        raise ValueError(f"{citations_path}: not a citations table, needs arxiv_id and citation_count")
    cites = pl.scan_parquet(citations_path).select(
        "arxiv_id", pl.col("citation_count").cast(pl.Int64).alias("citations"))
    papers = (
        pl.scan_parquet(papers_path).with_row_index("file_row").select(*PAPER_COLUMNS, *optional, "file_row")
        .join(cites, on="arxiv_id", how="left")
        .rename({"primary_category": "subcategory"})
        .collect()
    )
    after_today = pl.col("published") > today
    after_until = (pl.col("published") > until) & ~after_today
    counts = papers.select(
        papers=pl.len(),
        papers_after_today=after_today.sum(),
        papers_after_until_date=after_until.sum(),
        papers_without_citation_count=(pl.col("citations").is_null() & ~after_today & ~after_until).sum(),
    ).row(0, named=True)
    kept = papers.filter((pl.col("published") <= min(until, today)) & pl.col("citations").is_not_null())
    if counts["papers_without_citation_count"]:
        log.warning("%d of %d papers have no citation count and cannot be paired",
                    counts["papers_without_citation_count"], counts["papers"])
    if counts["papers_after_today"] or counts["papers_after_until_date"]:
        log.info("left out: %d paper(s) first published after today %s, %d after until_date %s",
                 counts["papers_after_today"], today, counts["papers_after_until_date"], until)
    return kept, counts


def citation_snapshot(citations_path: str) -> dict:
    """When the citation counts were fetched (first and last fetch), from the table's ``fetched_at``."""
    if "fetched_at" not in pl.scan_parquet(citations_path).collect_schema().names():
        return {"first": None, "last": None, "note": "citations table has no fetched_at column"}
    row = pl.scan_parquet(citations_path).select(
        pl.col("fetched_at").min().alias("first"), pl.col("fetched_at").max().alias("last")).collect().row(0)
    return {"first": _day(row[0]), "last": _day(row[1])}


def _day(value) -> str | None:
    return value.date().isoformat() if isinstance(value, dt.datetime) else (str(value) if value is not None else None)


def _ids(pairs: pl.DataFrame) -> pl.DataFrame:
    return pl.concat([pairs.select(pl.col("hi_id").alias("arxiv_id")), pairs.select(pl.col("lo_id").alias("arxiv_id"))])


def _with_rows(pairs: pl.DataFrame, papers: pl.DataFrame) -> pl.DataFrame:
    """The papers' rows (``row``) of both sides of each pair."""
    # the paired papers first (a look-up in a small set), so that the joins hash thousands of ids, not millions
    rows = papers.select("arxiv_id", "row").filter(pl.col("arxiv_id").is_in(_ids(pairs)["arxiv_id"].implode()))
    return (pairs.join(rows.rename({"arxiv_id": "hi_id", "row": "hi_row"}), on="hi_id", how="left", maintain_order="left")
            .join(rows.rename({"arxiv_id": "lo_id", "row": "lo_row"}), on="lo_id", how="left", maintain_order="left"))


def _train_pool(pool: pl.DataFrame, groups: pl.DataFrame) -> tuple[pl.DataFrame, int]:
    """The pool less every duplicate but one per group (earliest first version, then smallest id)."""
    grouped = pool.join(groups, on="arxiv_id", how="inner")
    keep = grouped.sort("published", "arxiv_id").unique("group", keep="first", maintain_order=True).select("arxiv_id")
    drop = grouped.join(keep, on="arxiv_id", how="anti").select("arxiv_id")
    return pool.join(drop, on="arxiv_id", how="anti"), drop.height


def in_fields(pairs: pl.DataFrame, papers: pl.DataFrame, fields: list[str] | None) -> tuple[pl.DataFrame, int]:
    """The pairs whose papers are of one of ``fields`` (config ``train_fields``: field OOD), and how many were left
    out; None keeps every pair. A pair's papers share their subcategory, hence their field."""
    if fields is None:
        return pairs, 0
    keep = papers["field"].gather(pairs["hi_row"]).is_in(list(fields))
    return pairs.filter(keep), pairs.height - int(keep.sum())


def stratify(cand: pl.DataFrame, papers: pl.DataFrame, sizes: dict, seed: int) -> tuple[pl.DataFrame, dict]:
    """Up to ``sizes[field]`` pairs per field, chosen by a seeded hash of the pair (independent of row order and
    nested: a larger size keeps the smaller sample); and per field the target, the candidates and the pairs kept.
    ``cand`` names the more-cited paper by its row of ``papers`` too (``hi_row``)."""
    cand = cand.with_columns(papers["field"].gather(cand["hi_row"]))
    cand = cand.with_columns(pl.Series("_h", hash_strings(cand["hi_id"] + "|" + cand["lo_id"], seed)))
    cand = cand.with_columns(pl.col("_h").rank("ordinal").over("field").alias("_rank"))
    limit = pl.col("field").replace_strict(sizes, default=0, return_dtype=pl.Int64)
    unlimited = pl.col("field").is_in([f for f, n in sizes.items() if n is None])
    chosen = cand.filter(unlimited | (pl.col("_rank") <= limit.fill_null(0)))
    available = dict(cand.group_by("field").len().iter_rows())
    taken = dict(chosen.group_by("field").len().iter_rows())
    report = {f: {"target": sizes.get(f, 0), "candidates": available.get(f, 0), "pairs": taken.get(f, 0)}
              for f in dict.fromkeys([*sizes, *sorted(available)])}
    return chosen.drop("field", "_h", "_rank"), report


def _shortfalls(report: dict, held_papers: dict, thresholds: Thresholds) -> list[str]:
    """Why each field with a target got fewer pairs, in words; also fills ``reason`` in the report."""
    short = []
    for name, r in report.items():
        target = r["target"]
        if target is None or r["pairs"] >= target:
            r["reason"] = "size null: every pair taken" if target is None else None
            if target == 0 and r["candidates"]:
                r["reason"] = f"no size for this field: {r['candidates']} candidate pair(s) not used"
            continue
        n_held = held_papers.get(name, 0)
        r["reason"] = (
            f"{n_held} held-out paper(s) of this field gave {r['candidates']} pair(s) with c_hi - c_lo >= "
            f"{thresholds.min_diff} and (c_hi - c_lo)/c_hi >= {thresholds.min_rel_diff}"
            if n_held else "no held-out paper of this field"
        )
        short.append(f"{name}: {r['pairs']} of {target} pairs ({r['reason']})")
    return short


def select(papers: pl.DataFrame, cfg: dict, seed: int) -> Selection:
    """The pairs of every split from ``papers`` (see :func:`load_papers`); ``cfg`` is the ``scijudge.pairs`` block."""
    cutoff, tid, ood = cfg["cutoff_year"], cfg["test_id"], cfg["test_ood"]
    dup_pairs, dup_counts = duplicate_pairs(papers, DedupeConfig.from_block(cfg["dedupe"], seed))
    groups = duplicate_groups(dup_pairs)
    papers = papers.select(
        "arxiv_id", "subcategory", "field", "published", "citations", "file_row",
        pl.int_range(pl.len(), dtype=pl.UInt32).alias("row"),
        pl.col("published").dt.year().alias("year"), window_expr(cfg["window"]),
        pl.Series("held_out", unit_interval(hash_strings(papers["arxiv_id"], seed)) < tid["held_out_share"]),
    )
    in_group = pl.col("arxiv_id").is_in(groups["arxiv_id"].implode())
    early = pl.col("year") <= cutoff
    train_pool, train_dups_removed = _train_pool(papers.filter(early & ~pl.col("held_out")), groups)
    held = papers.filter(early & pl.col("held_out"))
    held_pool = held.filter(~in_group)
    late = papers.filter(~early)
    ood_base = late.filter(pl.col("citations") >= ood["min_citations"])
    ood_pool = ood_base.filter(~in_group)

    per_paper = cfg["max_pairs_per_paper"]
    train = split_half_pairs(train_pool, GROUP, Thresholds(cfg["min_diff"], cfg["min_rel_diff"]), per_paper, carry=("row",))
    train, outside_train_fields = in_fields(train, papers, cfg.get("train_fields"))
    id_rule = Thresholds(tid["min_diff"], tid["min_rel_diff"])
    test_id_cand = split_half_pairs(held_pool, GROUP, id_rule, per_paper, carry=("row",))
    test_id, field_report = stratify(test_id_cand, papers, tid["sizes"], seed)
    shortfalls = _shortfalls(field_report, dict(held_pool.group_by("field").len().iter_rows()), id_rule)
    if shortfalls:
        message = "test_id is short of its sizes: " + "; ".join(shortfalls)
        if cfg.get("strict"):
            raise SizeError(f"{message} (scijudge.pairs.strict is true; lower scijudge.pairs.test_id.sizes or raise "
                            "test_id.held_out_share)")
        log.warning("%s; going on (scijudge.pairs.strict is false)", message)
    rule = OodRule(**{k: (tuple(v) if k == "ds_quantiles" else v) for k, v in ood.items()
                      if k not in ("max_pairs", "min_citations")})
    test_ood = _with_rows(ood_pairs(ood_base, ood_pool, rule), papers)

    caps = {"train": cfg.get("max_train_pairs"), "test_ood": ood.get("max_pairs")}
    out = {}
    for i, (name, pairs) in enumerate({"train": train, "test_id": test_id, "test_ood": test_ood}.items()):
        cap = caps.get(name)
        if cap is not None and pairs.height > cap:
            # seeded subsample, then back to the canonical order so the file does not depend on the draw order
            pairs = pairs.sample(n=cap, seed=seed + i).sort(["subcategory", "hi_id", "lo_id"])
        out[name] = pairs.select("hi_id", "lo_id", "hi_row", "lo_row")

    counts = {
        "papers_up_to_cutoff": papers.filter(early).height,
        "papers_held_out": held.height,
        "papers_after_cutoff": late.height,
        "papers_after_cutoff_below_min_citations": late.height - ood_base.height,
        "train_pairs_outside_train_fields": outside_train_fields,
    }
    duplicates = {
        **dup_counts,
        "groups": groups["group"].n_unique(),
        "papers_in_groups": groups.height,
        "train_duplicates_removed": train_dups_removed,
        "held_out_duplicates_excluded": held.height - held_pool.height,
        "ood_duplicates_excluded": ood_base.height - ood_pool.height,
    }
    return Selection(out, papers, counts, field_report, duplicates)
