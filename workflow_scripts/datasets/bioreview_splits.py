"""BioReview train / val / test splits by article family, and the leakage audit that fails on any overlap.

    python -m workflow_scripts.datasets.bioreview_splits split --corpus corpus.parquet --seed 42 \\
        --val-share 0.128 --test-share 0.150 --out-dir splits/ --stats stats.json
    python -m workflow_scripts.datasets.bioreview_splits audit --split train=splits/train.parquet \\
        --split val=splits/val.parquet --split test=splits/test.parquet --out leakage_audit.json

``split``: every version of a paper (its ``family_id``: the F1000 / Wellcome / Gates DOI stem, eLife's versionless
id) lands in one split, which the reference did not do (its splits were disjoint by article only, and F1000 families
crossed them). Sizes are shares of each source's articles, not counts: the reference's 4,734 / 838 / 981 articles
(72.2% / 12.8% / 15.0% of 6,553) came from a corpus that cannot be rebuilt, and a share keeps the proportions on any
corpus, the demo's included. Per source (stratified), families are ordered by a seeded hash of their key and go to
test until it holds ``round(test_share * n)`` of the source's ``n`` articles, then to val likewise, the rest to
train: a family is never cut, so a split may exceed its target by one family. An article without a family_id is
its own family (counted). Outputs ``train.parquet``, ``val.parquet``, ``test.parquet`` (the corpus rows plus
``split``) and the stats (per split and source: articles, families, concerns; targets; seed).

``audit``: exits 1 with a message naming them when an article id occurs twice (in one split or two), a family_id
occurs in two splits, or two splits hold articles of one DOI family recomputed from the DOI (:func:`doi_family`,
a check on the sources' family_id); writes what it checked to ``--out`` either way.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import polars as pl

from workflow_scripts.common.cli import parser, setup_logging
from workflow_scripts.common.io import write_json_atomic, write_parquet_atomic
from workflow_scripts.datasets.stable_hash import hash_strings

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
# a versioned DOI -> its versionless stem: F1000Research / Wellcome / Gates Open Research, eLife
VERSIONED_DOI = (r"^(10\.12688/(?:f1000research|wellcomeopenres|gatesopenres)\.[^.]+)\.\d+$",
                 r"^(10\.7554/elife\.\d+)\.\d+$")


def doi_family() -> pl.Expr:
    """The family of ``doi``: the stem of a versioned F1000 / Wellcome / Gates / eLife DOI, else the DOI itself."""
    doi = pl.col("doi").str.strip_chars().str.to_lowercase()
    for pattern in VERSIONED_DOI:
        doi = doi.str.replace(pattern, "${1}")
    return doi.alias("doi_family")


def family_key() -> pl.Expr:
    return pl.coalesce(pl.col("family_id"), pl.col("article_id")).alias("family")


def assign(corpus: pl.DataFrame, *, seed: int, val_share: float, test_share: float) -> tuple[pl.DataFrame, dict]:
    """The corpus with a ``split`` column, and the targets per source."""
    corpus = corpus.with_columns(family_key())
    # a family's source is its first article's (families never span sources in the source tables)
    families = (corpus.sort("article_id").group_by("family", maintain_order=True)
                .agg(pl.col("source").first(), pl.len().alias("articles")))
    families = families.with_columns(pl.Series("rank", hash_strings(families["family"], seed))).sort(
        "source", "rank", "family")
    split_of, targets = {}, {}
    for (source,), group in families.group_by("source", maintain_order=True):
        n = int(group["articles"].sum())
        target = {"test": round(test_share * n), "val": round(val_share * n)}
        filled = {"test": 0, "val": 0}
        for family, articles in group.select("family", "articles").iter_rows():
            name = next((s for s in ("test", "val") if filled[s] < target[s]), "train")
            if name != "train":
                filled[name] += articles
            split_of[family] = name
        targets[source] = {"articles": n, **target, "train": n - target["test"] - target["val"]}
    out = corpus.with_columns(pl.col("family").replace_strict(split_of, return_dtype=pl.String).alias("split"))
    return out.drop("family"), targets


def split_stats(assigned: pl.DataFrame, targets: dict, *, seed: int, val_share: float, test_share: float) -> dict:
    def counts(frame: pl.DataFrame) -> dict:
        return {"articles": frame.height, "families": frame.select(family_key())["family"].n_unique(),
                "concerns": int(frame["n_concerns"].sum()) if "n_concerns" in frame.columns else None}

    return {
        "seed": seed, "val_share": val_share, "test_share": test_share, "targets": targets,
        "articles_without_family_id": int(assigned["family_id"].is_null().sum()),
        "splits": {name: {**counts(assigned.filter(pl.col("split") == name)),
                          "per_source": {source: counts(assigned.filter((pl.col("split") == name)
                                                                        & (pl.col("source") == source)))
                                         for source in sorted(targets)}}
                   for name in SPLITS},
    }


# ---------------------------------------------------------------------------------------------------------------------
# leakage audit


class Leakage(ValueError):
    """Splits that share an article or a family; the message names them."""


def audit(splits: dict[str, pl.DataFrame]) -> dict:
    """What the audit checked and what it found (:func:`leaks` turns the findings into messages)."""
    rows = pl.concat([frame.select("article_id", "family_id", "doi").with_columns(pl.lit(name).alias("split"))
                      for name, frame in splits.items()])
    rows = rows.with_columns(family_key(), doi_family())

    def crossing(column: str) -> list[dict]:
        spread = (rows.filter(pl.col(column).is_not_null()).group_by(column)
                  .agg(pl.col("split").unique().sort(), pl.col("article_id").sort())
                  .filter(pl.col("split").list.len() > 1).sort(column))
        return [{"key": key, "splits": s, "articles": a} for key, s, a in spread.iter_rows()]

    repeated = (rows.group_by("article_id").agg(pl.col("split").sort()).filter(pl.col("split").list.len() > 1)
                .sort("article_id"))
    return {
        "splits": {name: {"articles": frame.height} for name, frame in splits.items()},
        "article_id_repeated": [{"article_id": a, "splits": s} for a, s in repeated.iter_rows()],
        "family_across_splits": crossing("family"),
        "doi_family_across_splits": crossing("doi_family"),
    }


def leaks(report: dict) -> list[str]:
    found = [f"article {r['article_id']} occurs {len(r['splits'])} times (in {r['splits']})"
             for r in report["article_id_repeated"]]
    for check, what in (("family_across_splits", "family"), ("doi_family_across_splits", "DOI family")):
        found += [f"{what} {r['key']} is in {r['splits']} (articles {r['articles']})" for r in report[check]]
    return found


def check(splits: dict[str, pl.DataFrame]) -> dict:
    report = audit(splits)
    found = leaks(report)
    report["ok"] = not found
    if found:
        shown = "\n  ".join(found[:50])
        more = f"\n  ... and {len(found) - 50} more" if len(found) > 50 else ""
        raise Leakage(f"leakage between the BioReview splits ({len(found)} finding(s)):\n  {shown}{more}")
    return report


def split_arg(text: str) -> tuple[str, Path]:
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise ValueError(f"--split takes NAME=PATH, got {text!r}")
    return name, Path(path)


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("split", help="assign families to train / val / test")
    s.add_argument("--corpus", required=True, help="the all_nonfig corpus parquet")
    s.add_argument("--seed", type=int, required=True)
    s.add_argument("--val-share", type=float, required=True, help="share of each source's articles in val")
    s.add_argument("--test-share", type=float, required=True, help="share of each source's articles in test")
    s.add_argument("--out-dir", type=Path, required=True, help="writes train.parquet, val.parquet, test.parquet")
    s.add_argument("--stats", required=True)
    a = sub.add_parser("audit", help="fail when two splits share an article or a family")
    a.add_argument("--split", type=split_arg, action="append", required=True, help="NAME=PATH, once per split")
    a.add_argument("--out", required=True, help="the audit's findings (JSON)")
    args = p.parse_args(argv)
    setup_logging(args.verbose)
    if args.command == "split":
        if not (0 <= args.val_share and 0 <= args.test_share and args.val_share + args.test_share < 1):
            p.error("--val-share and --test-share must be >= 0 with a sum below 1")
        corpus = pl.read_parquet(args.corpus)
        shares = {"seed": args.seed, "val_share": args.val_share, "test_share": args.test_share}
        assigned, targets = assign(corpus, **shares)
        stats = split_stats(assigned, targets, **shares)
        if stats["articles_without_family_id"]:
            log.warning("%d article(s) without a family_id: each is its own family",
                        stats["articles_without_family_id"])
        for name in SPLITS:
            write_parquet_atomic(assigned.filter(pl.col("split") == name), args.out_dir / f"{name}.parquet")
        write_json_atomic(args.stats, stats)
        log.info("splits: %s", {name: stats["splits"][name]["articles"] for name in SPLITS})
        return 0
    splits = {name: pl.read_parquet(path) for name, path in args.split}
    try:
        report = check(splits)
    except Leakage as exc:
        write_json_atomic(args.out, {**audit(splits), "ok": False})
        log.error("%s", exc)
        return 1
    write_json_atomic(args.out, report)
    log.info("leakage audit passed: %s", {name: f.height for name, f in splits.items()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
