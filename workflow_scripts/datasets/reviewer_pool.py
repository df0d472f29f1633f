"""The Reviewer line's prompts: the teacher's prompt pool and the labelled benchmark, audited against each other.

    python -m workflow_scripts.datasets.reviewer_pool --papers results/reviews/papers.parquet --model BASE_MODEL_DIR \\
        --system-json '"You are ..."' --user-template-json '"Review ... {title} ... {abstract} ... {body}"' \\
        --max-prompt-tokens 6800 \\
        --pool-sizes '{"iclr_2017": 134, "iclr_2019": 100, "iclr_2020": 100, "iclr_2021": 100}' \\
        --benchmark-venues iclr_2017 acl_2017 conll_2016 --benchmark-splits dev test \\
        --label-rules '{"iclr_2017": "decision", "acl_2017": "accept_all", "conll_2016": "accept_all"}' --seed 1234 \\
        --out-pool pool.parquet --out-benchmark benchmark.parquet --out-audit audit.json \\
        --out-rejects rejects.jsonl --out-card README.md

Every paper becomes a [system, user] prompt (:mod:`.reviewer_prompts`: body cut with the base model's tokenizer so
the whole prompt fits ``--max-prompt-tokens``; a paper without sections is a rejects row ``no_text`` unless
``--allow-empty-body``).

**Benchmark**: the papers of ``--benchmark-venues`` in ``--benchmark-splits`` (production: PeerRead ICLR 2017,
ACL 2017 and CoNLL 2016, dev + test = 95 papers), labelled by each venue's rule (:mod:`.reviewer_labels`, which
documents the options and what they give on the real data). A paper whose rule gives no label is a rejects row
(``no_label``); ``--expected-benchmark-size`` stops the step when the count differs. The true accept rate per venue
and overall is logged and in the card.

**Pool**: per venue of ``--pool-sizes``, a seeded sample (ranked by a hash of seed and key, so a larger size keeps
a smaller one's papers) of the candidates: rows with a split only from ``--pool-splits`` (PeerRead ICLR 2017: train);
OpenReview rows (no split) are every submission the source step kept, i.e. those with a decision. Before sampling,
candidates matching a benchmark paper by key or normalized title are rejects (``benchmark_match_id``,
``benchmark_match_title``), and a title seen twice (a resubmission to a later ICLR) keeps its earliest copy
(``duplicate_title``). A venue with fewer candidates than its size gives all of them, with a warning and the
shortfall in the card.

**Audit** (:mod:`.reviewer_leakage`) of the final pool and benchmark: any match or duplicate in the pool exits
non-zero naming the papers, and then only the audit report, the rejects and the card are written.

Outputs: pool and benchmark parquet (key, source, venue, year, split, paper_id, title, messages [{role, content}],
prompt_tokens, body_tokens_kept, body_tokens_total, body_truncated; the benchmark adds label (bool) and
label_rule), the rejects (JSON lines: file, record = the paper's key, reason), the audit report (JSON) and the
dataset card (markdown).
"""

from __future__ import annotations

import hashlib
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import polars as pl

from workflow_scripts.common.cli import json_arg, parser, setup_logging
from workflow_scripts.common.io import Rejects, write_json_atomic, write_parquet_atomic, write_text_atomic
from workflow_scripts.datasets import reviewer_leakage
from workflow_scripts.datasets.card_text import md_table, number_stats, rate
from workflow_scripts.datasets.reviewer_labels import LabelRule, parse_rules
from workflow_scripts.datasets.prompt_tokens import load_tokenizer
from workflow_scripts.datasets.reviewer_prompts import PromptRenderer, Unrenderable, body_text
from workflow_scripts.sources.records import normalize_title_expr

log = logging.getLogger(__name__)

PAPER_COLUMNS = ("key", "source", "venue", "year", "split", "paper_id", "title", "abstract", "sections", "decision",
                 "reviews")
MESSAGE = pl.Struct({"role": pl.String, "content": pl.String})
PROMPT_SCHEMA: dict[str, pl.DataType] = {
    "key": pl.String, "source": pl.String, "venue": pl.String, "year": pl.Int32, "split": pl.String,
    "paper_id": pl.String, "title": pl.String, "messages": pl.List(MESSAGE), "prompt_tokens": pl.Int64,
    "body_tokens_kept": pl.Int64, "body_tokens_total": pl.Int64, "body_truncated": pl.Boolean,
}
BENCHMARK_SCHEMA = {**PROMPT_SCHEMA, "label": pl.Boolean, "label_rule": pl.String}


@dataclass(frozen=True)
class Selection:
    pool_sizes: Mapping[str, int]
    pool_splits: Sequence[str]
    benchmark_venues: Sequence[str]
    benchmark_splits: Sequence[str]
    label_rules: Mapping[str, LabelRule]
    seed: int
    allow_empty_body: bool = False
    expected_benchmark_size: int | None = None


@dataclass
class Built:
    pool: pl.DataFrame
    benchmark: pl.DataFrame
    rejects: Rejects
    audit: dict
    stats: dict = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # each stops the step


def hash_rank(seed: int, key: str) -> str:
    return hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()


def read_papers(path: str | Path) -> pl.DataFrame:
    frame = pl.read_parquet(path)
    missing = [c for c in PAPER_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: not a review papers table (tables.PAPER_SCHEMA), missing column(s) {missing}")
    return frame.select(PAPER_COLUMNS).sort("key")


class Prompter:
    """Papers to prompt rows; papers that cannot be prompted go to the rejects, counted."""

    def __init__(self, renderer: PromptRenderer, allow_empty_body: bool, rejects: Rejects, source_file: str):
        self.renderer, self.allow_empty_body = renderer, allow_empty_body
        self.rejects, self.file = rejects, source_file
        self.empty_bodies_kept = 0

    def row(self, paper: Mapping) -> dict | None:
        title = (paper["title"] or "").strip()
        body = body_text(paper["sections"])
        if not title:
            return self.reject(paper, "no_title", "the paper has no title")
        if not body and not self.allow_empty_body:
            return self.reject(paper, "no_text", "the paper has no sections (no parsed PDF text)")
        try:
            prompt = self.renderer.render(title, (paper["abstract"] or "").strip(), body)
        except Unrenderable as exc:
            return self.reject(paper, exc.reason, exc.detail)
        self.empty_bodies_kept += not body
        return {**{k: paper[k] for k in ("key", "source", "venue", "year", "split", "paper_id")}, "title": title,
                "messages": prompt.messages, "prompt_tokens": prompt.prompt_tokens,
                "body_tokens_kept": prompt.body_tokens_kept, "body_tokens_total": prompt.body_tokens_total,
                "body_truncated": prompt.body_truncated}

    def reject(self, paper: Mapping, reason: str, detail: str) -> None:
        self.rejects.add(self.file, paper["key"], f"{reason}: {detail}")
        return None


def build_benchmark(papers: pl.DataFrame, sel: Selection, prompter: Prompter) -> tuple[pl.DataFrame, dict]:
    chosen = papers.filter(pl.col("venue").is_in(list(sel.benchmark_venues))
                           & pl.col("split").is_in(list(sel.benchmark_splits)))
    rows, excluded = [], {}
    for paper in chosen.iter_rows(named=True):
        rule = sel.label_rules[paper["venue"]]
        if rule.rule == "exclude":
            excluded[paper["venue"]] = excluded.get(paper["venue"], 0) + 1
            continue
        label, problem = rule.label(paper["decision"], paper["reviews"])
        if label is None:
            prompter.reject(paper, "no_label", problem)
            continue
        row = prompter.row(paper)
        if row is not None:
            rows.append({**row, "label": label, "label_rule": rule.describe()})
    frame = pl.DataFrame(rows, schema=BENCHMARK_SCHEMA, orient="row")
    per_venue = {}
    for venue in sel.benchmark_venues:
        of_venue = frame.filter(pl.col("venue") == venue)
        per_venue[venue] = {"rule": sel.label_rules[venue].describe(),
                            "in_table": chosen.filter(pl.col("venue") == venue).height,
                            "excluded_by_rule": excluded.get(venue, 0), "papers": of_venue.height,
                            "accepts": int(of_venue["label"].sum())}
    stats = {"venues": per_venue, "papers": frame.height, "accepts": int(frame["label"].sum())}
    for venue, s in per_venue.items():
        log.info("benchmark %s (%s): %d paper(s), true accept rate %s", venue, s["rule"], s["papers"],
                 rate(s["accepts"], s["papers"]))
    log.info("benchmark: %d paper(s), true accept rate %s", frame.height, rate(stats["accepts"], frame.height))
    return frame, stats


def build_pool(papers: pl.DataFrame, sel: Selection, prompter: Prompter, benchmark: pl.DataFrame
               ) -> tuple[pl.DataFrame, dict]:
    chosen = papers.filter(pl.col("venue").is_in(list(sel.pool_sizes))
                           & (pl.col("split").is_null() | pl.col("split").is_in(list(sel.pool_splits))))
    rendered = [r for r in (prompter.row(p) for p in chosen.iter_rows(named=True)) if r is not None]
    candidates = pl.DataFrame(rendered, schema=PROMPT_SCHEMA, orient="row")
    # a benchmark paper (or its resubmission) in the pool: out before sampling, counted by the rule that caught it
    matched: dict[str, str] = {}
    for m in reviewer_leakage.audit(candidates, benchmark)["matches"]:
        if m["pool_key"] not in matched:
            matched[m["pool_key"]] = m["rule"]
            prompter.reject({"key": m["pool_key"]}, f"benchmark_match_{m['rule']}",
                            f"matches benchmark paper {m['benchmark_key']} ({m['benchmark_title']!r})")
    candidates = candidates.filter(~pl.col("key").is_in(list(matched)))
    # one copy per normalized title: the earliest submission
    firsts = (candidates.sort("year", "key").with_columns(normalize_title_expr("title").alias("_norm"))
              .with_columns(pl.col("key").first().over("_norm").alias("_first")))
    repeats = firsts.filter((pl.col("_norm") != "") & (pl.col("key") != pl.col("_first")))
    for key, first, title in repeats.select("key", "_first", "title").iter_rows():
        prompter.reject({"key": key}, "duplicate_title", f"same normalized title as {first} ({title!r})")
    candidates = candidates.filter(~pl.col("key").is_in(repeats["key"].to_list()))
    picked, per_venue = [], {}
    for venue, size in sel.pool_sizes.items():
        of_venue = candidates.filter(pl.col("venue") == venue)
        ranked = of_venue.with_columns(pl.Series("_rank", [hash_rank(sel.seed, k) for k in of_venue["key"]],
                                                 dtype=pl.String)).sort("_rank")
        take = ranked.head(size).drop("_rank")
        picked.append(take)
        shortfall = size - take.height
        per_venue[venue] = {
            "in_table": chosen.filter(pl.col("venue") == venue).height,
            "benchmark_matches": chosen.filter((pl.col("venue") == venue) & pl.col("key").is_in(list(matched))).height,
            "duplicates": repeats.filter(pl.col("venue") == venue).height,
            "available": of_venue.height, "size": size, "sampled": take.height, "shortfall": shortfall}
        if shortfall:
            log.warning("pool %s: %d candidate(s) for a size of %d: taking all, %d short", venue, of_venue.height,
                        size, shortfall)
    pool = pl.concat(picked).sort("key") if picked else candidates.clear()
    matches_by_rule = {rule: sum(v == rule for v in matched.values()) for rule in ("id", "title")}
    log.info("pool: %d paper(s) of %d requested; benchmark matches excluded %s, duplicate titles %d", pool.height,
             sum(sel.pool_sizes.values()), matches_by_rule, repeats.height)
    return pool, {"venues": per_venue, "papers": pool.height, "requested": sum(sel.pool_sizes.values()),
                  "benchmark_matches": matches_by_rule, "duplicates": repeats.height}


def prompt_stats(frame: pl.DataFrame) -> dict:
    return {"papers": frame.height, "truncated": int(frame["body_truncated"].sum()),
            "prompt_tokens": number_stats(frame["prompt_tokens"].to_list()),
            "body_tokens_total": number_stats(frame["body_tokens_total"].to_list()),
            "body_tokens_kept": number_stats(frame["body_tokens_kept"].to_list())}


def build(papers: pl.DataFrame, renderer: PromptRenderer, sel: Selection, source_file: str) -> Built:
    rejects = Rejects()
    prompter = Prompter(renderer, sel.allow_empty_body, rejects, source_file)
    benchmark, bench_stats = build_benchmark(papers, sel, prompter)
    pool, pool_stats = build_pool(papers, sel, prompter, benchmark)
    report = reviewer_leakage.audit(pool, benchmark)
    built = Built(pool, benchmark, rejects, report)
    built.stats = {"papers_read": papers.height, "benchmark": bench_stats, "pool": pool_stats,
                   "prompts": {"pool": prompt_stats(pool), "benchmark": prompt_stats(benchmark)},
                   "empty_bodies_kept": prompter.empty_bodies_kept, "rejects": rejects.counts(),
                   "max_prompt_tokens": renderer.budget, "seed": sel.seed}
    if not report["passed"]:
        built.problems += reviewer_leakage.failure_lines(report)
    if sel.expected_benchmark_size is not None and benchmark.height != sel.expected_benchmark_size:
        built.problems.append(f"the benchmark has {benchmark.height} paper(s), expected {sel.expected_benchmark_size}; "
                              f"per venue {({v: s['papers'] for v, s in bench_stats['venues'].items()})}, rejects "
                              f"{rejects.counts()}")
    return built


def render_card(built: Built, sel: Selection) -> str:
    s, b, p = built.stats, built.stats["benchmark"], built.stats["pool"]
    bench_rows = [[v, x["rule"], x["in_table"], x["excluded_by_rule"], x["papers"], rate(x["accepts"], x["papers"])]
                  for v, x in b["venues"].items()]
    bench_rows.append(["**all**", "", sum(x["in_table"] for x in b["venues"].values()),
                       sum(x["excluded_by_rule"] for x in b["venues"].values()), b["papers"],
                       rate(b["accepts"], b["papers"])])
    pool_rows = [[v, x["in_table"], x["benchmark_matches"], x["duplicates"], x["available"], x["size"], x["sampled"],
                  x["shortfall"] or ""] for v, x in p["venues"].items()]
    by_source = [[src, venue, n] for src, venue, n in
                 built.pool.group_by("source", "venue").len().sort("source", "venue").iter_rows()]
    token_rows = []
    for name, t in s["prompts"].items():
        pt, total, kept = t["prompt_tokens"], t["body_tokens_total"], t["body_tokens_kept"]
        token_rows.append([name, t["papers"], rate(t["truncated"], t["papers"]), pt["mean"], pt["median"], pt["max"],
                           total["mean"], total["max"], kept["mean"]])
    audit = built.audit
    lines = [
        "# Reviewer prompts: teacher pool and benchmark", "",
        f"From {s['papers_read']} papers of the review tables; seed {sel.seed}. Prompts: the configured system prompt "
        f"and user template; only the paper body is cut, with the base model's tokenizer, so that the whole prompt "
        f"(chat template and generation prompt) fits {s['max_prompt_tokens']} tokens.", "",
        "## Benchmark", "",
        f"Venues {list(sel.benchmark_venues)}, splits {list(sel.benchmark_splits)}. The label rule is per venue; "
        "PeerRead has decisions for ICLR 2017 only (see workflow_scripts/datasets/reviewer_labels.py).", "",
        md_table(["venue", "label rule", "papers in table", "excluded by rule", "benchmark papers", "true accept rate"],
                 bench_rows), "",
        "## Prompt pool", "",
        f"{p['papers']} papers of {p['requested']} requested. Candidates with a split come from "
        f"{list(sel.pool_splits)} only; benchmark matches (key or normalized title) and repeated titles are removed "
        "before the seeded sample.", "",
        md_table(["venue", "in table", "benchmark matches", "duplicate titles", "candidates", "size", "sampled",
                  "shortfall"], pool_rows), "",
        md_table(["source", "venue", "pool papers"], by_source), "",
        "## Truncation", "",
        md_table(["set", "papers", "body truncated", "prompt tokens mean", "median", "max", "body tokens mean",
                  "body tokens max", "body tokens kept mean"], token_rows), "",
        f"Papers without text: {'allowed' if sel.allow_empty_body else 'rejected (no_text)'}; "
        f"{s['empty_bodies_kept']} entered with an empty body.", "",
        "## Rejects", "",
        md_table(["reason", "papers"], [[k, v] for k, v in s["rejects"].items()]) if s["rejects"] else "None.", "",
        "## Leakage audit", "",
        ("Passed: no pool paper shares a key or a normalized title with a benchmark paper, and no title repeats in "
         "the pool." if audit["passed"] else "**FAILED**:\n\n" + "\n".join(
             f"- {line}" for line in reviewer_leakage.failure_lines(audit))),
    ]
    if built.problems and audit["passed"]:
        lines += ["", "## Stopped", "", *[f"- {x}" for x in built.problems]]
    return "\n".join(lines) + "\n"


def selection_from_args(args) -> Selection:
    venues = list(dict.fromkeys(args.benchmark_venues))
    extra = sorted(set(args.label_rules) - set(venues))
    if extra:
        log.warning("label rules for venues outside the benchmark are unused: %s", extra)
    sizes = args.pool_sizes
    if not isinstance(sizes, dict) or not all(isinstance(n, int) and n >= 0 for n in sizes.values()):
        raise ValueError(f"--pool-sizes: a JSON object venue -> non-negative integer, got {sizes!r}")
    return Selection(sizes, args.pool_splits, venues, args.benchmark_splits, parse_rules(args.label_rules, venues),
                     args.seed, args.allow_empty_body, args.expected_benchmark_size)


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--papers", required=True, help="results/reviews/papers.parquet")
    p.add_argument("--model", required=True, help="the base model (its tokenizer and chat template count tokens)")
    system = p.add_mutually_exclusive_group(required=True)
    system.add_argument("--system-file", type=Path, help="the system prompt, a text file")
    system.add_argument("--system-json", type=json_arg, help="the system prompt as a JSON string")
    p.add_argument("--user-template-json", type=json_arg, required=True,
                   help="the user template as a JSON string, with {title}, {abstract} and {body}")
    p.add_argument("--max-prompt-tokens", type=int, required=True)
    p.add_argument("--allow-empty-body", action="store_true", help="papers without sections enter with an empty body")
    p.add_argument("--pool-sizes", type=json_arg, required=True, help="JSON: venue -> papers in the pool")
    p.add_argument("--pool-splits", nargs="+", default=["train"], help="splits a pool paper with a split may come from")
    p.add_argument("--benchmark-venues", nargs="+", required=True)
    p.add_argument("--benchmark-splits", nargs="+", required=True)
    p.add_argument("--label-rules", type=json_arg, required=True, help="JSON: venue -> rule (reviewer_labels.py)")
    p.add_argument("--expected-benchmark-size", type=int, default=None, help="stop when the benchmark differs")
    p.add_argument("--seed", type=int, required=True)
    for name in ("pool", "benchmark", "audit", "rejects", "card"):
        p.add_argument(f"--out-{name}", required=True)
    args = p.parse_args(argv)
    setup_logging(args.verbose)
    system_prompt = args.system_file.read_text(encoding="utf-8") if args.system_file else args.system_json
    if not isinstance(system_prompt, str) or not isinstance(args.user_template_json, str):
        p.error("--system-json and --user-template-json must be JSON strings")
    try:
        sel = selection_from_args(args)
        renderer = PromptRenderer(load_tokenizer(args.model), system_prompt, args.user_template_json,
                                  args.max_prompt_tokens)
    except ValueError as exc:
        p.error(str(exc))
    built = build(read_papers(args.papers), renderer, sel, args.papers)
    built.rejects.write(args.out_rejects)
    write_json_atomic(args.out_audit, built.audit)
    write_text_atomic(args.out_card, render_card(built, sel))
    reviewer_leakage.log_report(built.audit)
    if built.problems:
        for problem in built.problems:
            log.error("%s", problem)
        log.error("pool and benchmark not written: see %s", args.out_card)
        return 1
    write_parquet_atomic(built.pool, args.out_pool)
    write_parquet_atomic(built.benchmark, args.out_benchmark)
    log.info("%d pool and %d benchmark prompt(s) -> %s, %s; %d reject(s) %s", built.pool.height,
             built.benchmark.height, args.out_pool, args.out_benchmark, len(built.rejects), built.rejects.counts())
    return 0


if __name__ == "__main__":
    sys.exit(main())
