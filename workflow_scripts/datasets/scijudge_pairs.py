"""Build the SciJudge citation preference pairs: train / in-domain test / temporal-OOD test, with prompts.

Reads papers.parquet and citations.parquet, applies the pair rules of :mod:`pair_rules` with the thresholds from
config, places the more-cited paper in position A or B by a seeded coin, renders the SciJudge prompt, and writes one
parquet per split (readable by ``datasets``), a stats JSON and a dataset card. Splits never share a paper.

    python -m workflow_scripts.datasets.scijudge_pairs --papers papers.parquet --citations citations.parquet \
        --config-json '{"today": ..., "pairs": {...}}' --seed 1234 --train train.parquet ...
"""

from __future__ import annotations

import logging
import string
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from workflow_scripts.common.cli import json_arg, parser, setup_logging
from workflow_scripts.common.io import atomic_path, write_json_atomic, write_text_atomic
from workflow_scripts.datasets.pair_rules import OodRule, Thresholds, ood_pairs, split_half_pairs
from workflow_scripts.sources.records import normalize_title_expr

log = logging.getLogger(__name__)

SPLITS = ("train", "test_id", "test_ood")
FIELDS = ("CS", "Math", "Physics", "Others")
PAPER_ATTRS = {  # output suffix -> papers column
    "arxiv_id": "arxiv_id",
    "title": "title",
    "abstract": "abstract",
    "date": "published",
    "category": "field",
    "subcategory": "subcategory",
    "citations": "citations",
}
TEXT_ATTRS = ["title", "abstract"]  # read only for papers in pairs, after pairing
WINDOWS = {"week": "1w", "month": "1mo", "quarter": "1q", "year": "1y"}
THRESHOLD_KEYS = {"train": "scijudge.pairs", "test_id": "scijudge.pairs.test_id", "test_ood": "scijudge.pairs.test_ood"}


class EmptySplitError(ValueError):
    """A split would have no pairs: training or evaluation on it would fail (or mean nothing) much later."""


@dataclass
class PairConfig:
    """The ``scijudge`` config block (validated and defaulted by the schema before it gets here)."""

    today: str
    system_prompt: str
    user_template: str
    pairs: dict

    @classmethod
    def from_block(cls, block: dict) -> "PairConfig":
        keys = [f.name for f in fields(cls)]
        missing = [k for k in keys if k not in block]
        if missing:
            raise KeyError(f"scijudge config block lacks key(s) {missing}")
        return cls(**{k: block[k] for k in keys})


def load_papers(papers_path: str, citations_path: str, window: str) -> tuple[pl.DataFrame, dict]:
    """The columns pairing needs, without the text: titles and abstracts are read for paired papers only.

    ``title_key`` is a 64-bit hash of the normalized title, enough to spot one paper under two ids.
    """
    papers = pl.scan_parquet(papers_path).select(
        "arxiv_id", "primary_category", "field", "published", normalize_title_expr().hash(0).alias("title_key")
    )
    cites = pl.scan_parquet(citations_path).select("arxiv_id", pl.col("citation_count").cast(pl.Int64).alias("citations"))
    joined = (
        papers.join(cites, on="arxiv_id", how="left")
        .rename({"primary_category": "subcategory"})
        .with_columns(
            pl.col("published").dt.truncate(WINDOWS[window]).alias("window"),
            pl.col("published").dt.year().alias("year"),
        )
        .collect()
    )
    no_count = joined.filter(pl.col("citations").is_null()).height
    counts = {"papers": joined.height, "papers_without_citation_count": no_count}
    if no_count:
        log.warning("%d of %d papers have no citation count and cannot be paired", no_count, joined.height)
    return joined.filter(pl.col("citations").is_not_null()), counts


def select_pairs(papers: pl.DataFrame, cfg: dict) -> tuple[dict[str, pl.DataFrame], dict]:
    """Pairs (hi_id, lo_id) per split, and the counts that explain what was excluded."""
    cutoff = cfg["cutoff_year"]
    per_paper = cfg["max_pairs_per_paper"]
    group = ["subcategory", "window"]
    early = papers.filter(pl.col("year") <= cutoff)
    late = papers.filter(pl.col("year") > cutoff)

    train = split_half_pairs(early, group, Thresholds(cfg["min_diff"], cfg["min_rel_diff"]), per_paper)

    # the same paper can exist under two ids (re-submissions): a later paper whose title matches an earlier
    # paper's is kept out of the tests, or the test would ask about a paper the model was trained on
    overlap = late.join(early.select("title_key").unique(), on="title_key", how="semi")
    late_ok = late.join(overlap.select("arxiv_id"), on="arxiv_id", how="anti")

    tid = cfg["test_id"]
    test_id = split_half_pairs(late_ok, group, Thresholds(tid["min_diff"], tid["min_rel_diff"]), per_paper)

    used = pl.concat([test_id.select(pl.col("hi_id").alias("arxiv_id")), test_id.select(pl.col("lo_id").alias("arxiv_id"))])
    # nor may a test_ood paper be a test_id paper under another id: both re-submissions can fall after the cutoff
    used_titles = late_ok.join(used, on="arxiv_id", how="semi").select("title_key").unique()
    eligible = late_ok.join(used_titles, on="title_key", how="anti")
    ood = cfg["test_ood"]
    rule = OodRule(**{k: (tuple(v) if k == "ds_quantiles" else v) for k, v in ood.items() if k != "max_pairs"})
    test_ood = ood_pairs(late, eligible, rule)

    caps = {"train": cfg.get("max_train_pairs"), "test_id": tid.get("max_pairs"), "test_ood": ood.get("max_pairs")}
    out = {}
    for i, (name, pairs) in enumerate({"train": train, "test_id": test_id, "test_ood": test_ood}.items()):
        cap = caps[name]
        if cap is not None and pairs.height > cap:
            # seeded subsample, then back to the canonical order so the file does not depend on the draw order
            pairs = pairs.sample(n=cap, seed=cfg["_seed"] + i).sort(["subcategory", "hi_id", "lo_id"])
        out[name] = pairs.select("hi_id", "lo_id")
    counts = {
        "papers_up_to_cutoff": early.height,
        "papers_after_cutoff": late.height,
        "later_papers_excluded_title_overlap": overlap.height,
    }
    return out, counts


def _user_prompt_expr(template: str, today: str) -> pl.Expr:
    """The user template rendered column-wise: literal pieces and columns concatenated, no per-row Python."""
    parts: list[pl.Expr] = []
    columns = {
        "today": pl.lit(today),
        **{f"{a}_{s}": pl.col(f"paper_{s}_{a}").cast(pl.String) for a in ("title", "abstract", "date") for s in ("a", "b")},
    }
    for literal, name, spec, conv in string.Formatter().parse(template):
        if literal:
            parts.append(pl.lit(literal))
        if name is not None:
            if name not in columns or spec or conv:
                raise KeyError(f"user_template placeholder {{{name}}} is not one of {sorted(columns)}")
            parts.append(columns[name])
    return pl.concat_str(parts)


def assign_sides(pairs: pl.DataFrame, papers: pl.DataFrame, split: str, seed: int) -> pl.DataFrame:
    """Place the more-cited paper in A or B by a seeded coin; attach the light attributes of both papers."""
    rng = np.random.default_rng([seed, SPLITS.index(split)])
    hi_is_a = pl.col("hi_is_a")
    sides = pairs.with_columns(pl.Series("hi_is_a", rng.integers(0, 2, pairs.height).astype(bool))).select(
        (pl.lit(f"{split}-") + pl.col("hi_id") + pl.lit("-") + pl.col("lo_id")).alias("pair_id"),
        pl.when(hi_is_a).then(pl.col("hi_id")).otherwise(pl.col("lo_id")).alias("paper_a_arxiv_id"),
        pl.when(hi_is_a).then(pl.col("lo_id")).otherwise(pl.col("hi_id")).alias("paper_b_arxiv_id"),
        pl.when(hi_is_a).then(pl.lit("A")).otherwise(pl.lit("B")).alias("correct_answer"),
    )
    light = {k: v for k, v in PAPER_ATTRS.items() if k not in TEXT_ATTRS}
    for side in ("a", "b"):
        attrs = papers.select([pl.col(v).alias(f"paper_{side}_{k}") for k, v in light.items()])
        sides = sides.join(attrs, on=f"paper_{side}_arxiv_id", how="left", maintain_order="left")
    return sides


def messages_array(system_prompt: str, user_prompts: pa.Array) -> pa.Array:
    """[{system}, {user}] per row as an Arrow list<struct<role, content>>, built from columns (polars' own
    struct-and-list route costs several times more on millions of long prompts)."""
    n = len(user_prompts)
    user_prompts = user_prompts.cast(pa.large_string())
    system = pa.array([system_prompt], pa.large_string()).take(pa.array(np.zeros(n, dtype=np.int64)))
    order = np.empty(2 * n, dtype=np.int64)  # interleave: system of row i at 2i, user of row i at 2i + 1
    order[0::2], order[1::2] = np.arange(n), np.arange(n, 2 * n)
    contents = pa.concat_arrays([system, user_prompts]).take(pa.array(order))
    roles = pa.array(np.tile(np.array(["system", "user"], dtype=object), n), pa.large_string())
    turns = pa.StructArray.from_arrays([roles, contents], names=["role", "content"])
    return pa.LargeListArray.from_arrays(pa.array(np.arange(0, 2 * n + 1, 2, dtype=np.int64)), turns)


def write_split(sides: pl.DataFrame, texts: pl.DataFrame, split: str, block: PairConfig, path, chunk_rows: int) -> None:
    """Render prompts and write rows chunk by chunk (parquet row groups): one chunk of prompts in memory at a time,
    the compression of one chunk overlapping the rendering of the next."""
    rows = texts.select("arxiv_id", pl.int_range(pl.len(), dtype=pl.UInt32).alias("row"))
    for side in ("a", "b"):
        sides = sides.join(
            rows.rename({"arxiv_id": f"paper_{side}_arxiv_id", "row": f"row_{side}"}),
            on=f"paper_{side}_arxiv_id", how="left", maintain_order="left",
        )
    user = _user_prompt_expr(block.user_template, block.today)
    text_only = texts.select(TEXT_ATTRS)
    paper_columns = [f"paper_{s}_{k}" for s in ("a", "b") for k in PAPER_ATTRS]
    with atomic_path(path) as tmp, ThreadPoolExecutor(1) as compressor:
        writer, pending = None, None
        for start in range(0, max(sides.height, 1), chunk_rows):
            chunk = sides.slice(start, chunk_rows)
            for side in ("a", "b"):
                text = text_only.gather(chunk[f"row_{side}"])
                chunk = chunk.with_columns([text[c].alias(f"paper_{side}_{c}") for c in TEXT_ATTRS])
            table = chunk.select("pair_id", pl.lit(split).alias("split"), "correct_answer", *paper_columns).to_arrow()
            messages = messages_array(block.system_prompt, chunk.select(user).to_series().to_arrow())
            table = table.add_column(2, "messages", messages)
            if writer is None:
                # snappy: twice as fast as zstd on this text for ~1.4x the bytes; the write is the step's largest cost
                writer = pq.ParquetWriter(tmp, table.schema, compression="snappy", write_statistics=False)
            if pending is not None:
                pending.result()  # at most one chunk waits for compression: memory stays bounded
            pending = compressor.submit(writer.write_table, table)
        pending.result()
        writer.close()


def split_stats(sides: pl.DataFrame) -> dict:
    by_field = sides.group_by("paper_a_category").len().sort("paper_a_category")
    n_a = sides.filter(pl.col("correct_answer") == "A").height
    return {
        "pairs": sides.height,
        "per_field": {f: 0 for f in FIELDS} | dict(zip(by_field["paper_a_category"], by_field["len"])),
        "answer_A": n_a,
        "answer_B": sides.height - n_a,
        "share_A": round(n_a / sides.height, 4) if sides.height else None,
        "papers": 2 * sides.height,
    }


def render_card(stats: dict, block: PairConfig) -> str:
    names = sorted({f for s in SPLITS for f in stats["splits"][s]["per_field"]},
                   key=lambda f: (f not in FIELDS, FIELDS.index(f) if f in FIELDS else 0, f))
    head = "| split | " + " | ".join(names) + " | total | answer A | answer B | share A |"
    lines = [head, "|" + "---|" * (len(names) + 5)]
    for s in SPLITS:
        st = stats["splits"][s]
        cells = [str(st["per_field"].get(f, 0)) for f in names]
        lines.append(f"| {s} | " + " | ".join(cells) + f" | {st['pairs']} | {st['answer_A']} | {st['answer_B']} | {st['share_A']} |")
    p = block.pairs
    return "\n".join(
        [
            "# SciJudge citation preference pairs",
            "",
            "Each row asks which of two arXiv papers (A, B) of the same primary subcategory has more citations. "
            "The more-cited paper lands in position A or B by a seeded coin. `messages` holds the system and user "
            "prompt (SciJudge template); `correct_answer` is 'A' or 'B'.",
            "",
            "## Counts per field and split",
            "",
            *lines,
            "",
            "## Construction",
            "",
            f"- train: papers first published up to {p['cutoff_year']}, same subcategory and {p['window']}, "
            f"c_hi - c_lo >= {p['min_diff']} and (c_hi - c_lo)/c_hi >= {p['min_rel_diff']}; "
            f"each paper in at most {p['max_pairs_per_paper']} pair(s).",
            f"- test_id (in-domain): papers after {p['cutoff_year']}, same rule with >= {p['test_id']['min_diff']} "
            f"and >= {p['test_id']['min_rel_diff']}.",
            f"- test_ood (temporal OOD): remaining later papers; c_i >= q{p['test_ood']['hi_quantile']} and "
            f"c_j <= q{p['test_ood']['lo_quantile']} of the subcategory, dates within {p['test_ood']['max_days_apart']} days, "
            f"c_i - c_j >= max({p['test_ood']['rel_diff']} c_i, d_s), d_s = max({p['test_ood']['ds_floor']}, "
            f"{p['test_ood']['ds_scale']} (q{p['test_ood']['ds_quantiles'][1]} - q{p['test_ood']['ds_quantiles'][0]})).",
            f"- prompt date: Today is {block.today}.",
            "",
            "## Inputs",
            "",
            *[f"- {k.replace('_', ' ')}: {v}" for k, v in stats["inputs"].items()],
            "",
        ]
    )


def build(papers_path: str, citations_path: str, block: PairConfig, seed: int, outputs: dict[str, str],
          chunk_rows: int = 100_000) -> dict:
    """Select the pairs, write one parquet per split (``outputs``: split -> path) and return the stats."""
    cfg = dict(block.pairs, _seed=seed)
    papers, counts = load_papers(papers_path, citations_path, cfg["window"])
    pairs, more = select_pairs(papers, cfg)
    empty = [s for s in SPLITS if pairs[s].height == 0]
    if empty:
        raise EmptySplitError(_empty_splits_message(empty, papers, cfg["cutoff_year"]))
    sides = {s: assign_sides(pairs[s], papers, s, seed) for s in SPLITS}
    del papers, pairs
    needed = pl.concat([sides[s].select(pl.col(f"paper_{x}_arxiv_id").alias("arxiv_id")) for s in SPLITS for x in "ab"])
    texts = pl.scan_parquet(papers_path).select("arxiv_id", *TEXT_ATTRS).join(needed.lazy(), on="arxiv_id", how="semi").collect()
    for s in SPLITS:
        write_split(sides[s], texts, s, block, outputs[s], chunk_rows)
    stats = {"inputs": counts | more, "splits": {s: split_stats(sides[s]) for s in SPLITS}}
    for s in SPLITS:
        st = stats["splits"][s]
        log.info("%s: %d pairs, per field %s, share A %s", s, st["pairs"], st["per_field"], st["share_A"])
    return stats


def _empty_splits_message(empty: list[str], papers: pl.DataFrame, cutoff: int) -> str:
    """Which splits are empty and why: a period without papers (the cutoff year) or thresholds no pair meets."""
    early = papers.filter(pl.col("year") <= cutoff).height
    late = papers.height - early
    span = f"{papers['published'].min()}..{papers['published'].max()}" if papers.height else "none"
    lines = [
        f"no pairs for split(s) {empty}; papers with a citation count: {early} first published up to cutoff_year "
        f"{cutoff}, {late} after it (first versions {span})"
    ]
    for split in empty:
        period = early if split == "train" else late
        if not period:
            when = "up to" if split == "train" else "after"
            why = f"its period ({when} {cutoff}) holds no paper: change scijudge.pairs.cutoff_year"
        else:
            why = f"no pair of its {period} papers meets the thresholds of {THRESHOLD_KEYS[split]}"
        lines.append(f"{split}: {why}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = parser(__doc__.split("\n\n")[0])
    p.add_argument("--papers", required=True, help="papers.parquet")
    p.add_argument("--citations", required=True, help="citations.parquet")
    p.add_argument("--config-json", type=json_arg, required=True, help="the scijudge config block as JSON")
    p.add_argument("--seed", type=int, required=True)
    for s in SPLITS:
        p.add_argument(f"--{s.replace('_', '-')}", required=True, help=f"output parquet of the {s} split")
    p.add_argument("--stats", required=True, help="output stats JSON")
    p.add_argument("--card", required=True, help="output dataset card (markdown)")
    p.add_argument("--chunk-rows", type=int, default=100_000, help="rows rendered and written at a time (bounds memory)")
    args = p.parse_args(argv)
    setup_logging(args.verbose)
    block = PairConfig.from_block(args.config_json)
    try:
        outputs = {s: getattr(args, s) for s in SPLITS}
        stats = build(args.papers, args.citations, block, args.seed, outputs, args.chunk_rows)
    except EmptySplitError as exc:
        raise SystemExit(f"scijudge pairs: {exc}") from None
    write_json_atomic(args.stats, stats)
    write_text_atomic(args.card, render_card(stats, block))


if __name__ == "__main__":
    main()
