"""The BioReview dataset card: what each step kept and dropped, what the extraction cost, and what may be redistributed.

    python -m workflow_scripts.datasets.bioreview_card --corpus corpus.parquet --source-summary elife.summary.json ...
        --extraction-counts counts.json --corpus-counts corpus_counts.json --split-stats stats.json \\
        --audit leakage_audit.json --sft-meta train=train.json --sft-meta val=val.json --sft-meta test=test.json \\
        --extractor "demo stand-in bioreview_extractor (not a language model)" --out README.md

Redistribution: an article's text, and the concerns taken from its reviews, may be shared again when its licence is
Creative Commons Attribution (CC BY, any version) or CC0; anything else (an "all rights reserved" licence, none
recorded) is counted as not redistributable, per source. This is the rule the reference's licence matrix comes down to
(eLife and F1000 are CC BY throughout; PLOS and PeerJ are CC BY where the review history is published; a Nature
article only when open access with transparent peer review), read from each article's own licence rather than from
its source; publishers' terms for the review texts themselves are not checked here.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Mapping, Sequence

import polars as pl

from workflow_scripts.common.cli import parser, setup_logging
from workflow_scripts.common.io import write_text_atomic
from workflow_scripts.datasets.card_text import md_lines, named_path, read_json

log = logging.getLogger(__name__)

_OPEN_LICENCE = re.compile(r"creativecommons\.org/(?:licenses/by/|publicdomain/zero/)|\bCC[ -]?(?:BY|0)\b", re.I)
_RESTRICTED = re.compile(r"-(?:nc|nd)\b", re.I)  # by-nc, by-nd, by-nc-sa, ...


def redistributable(licence: str | None) -> bool:
    """CC BY (any version, no NC / ND clause) or CC0, by URL or name."""
    return bool(licence) and bool(_OPEN_LICENCE.search(licence)) and not _RESTRICTED.search(licence)


def licence_table(corpus: pl.DataFrame) -> pl.DataFrame:
    flags = corpus.select("source", pl.col("license").map_elements(redistributable, return_dtype=pl.Boolean)
                          .alias("open"), "n_concerns")
    return (flags.group_by("source").agg(pl.len().alias("articles"), pl.col("open").sum().alias("redistributable"),
                                         pl.col("n_concerns").filter(pl.col("open")).sum().alias("open_concerns"))
            .with_columns((pl.col("articles") - pl.col("redistributable")).alias("not_redistributable"))
            .sort("source"))


def _cost(llm: Mapping | None) -> str:
    if not llm:
        return "no LLM summary"
    cost = llm.get("cost")
    spent = "no price configured" if cost is None else f"{cost}"
    return (f"{llm.get('requests', 0)} requests sent, {llm.get('cache_hits', 0)} answered from the cache, "
            f"{llm.get('tokens_in', 0)} prompt + {llm.get('tokens_out', 0)} completion tokens; cost: {spent}")


def markdown(*, sources: Mapping[str, Mapping], extraction: Mapping, corpus_counts: Mapping, split_stats: Mapping,
             audit: Mapping, sft: Mapping[str, Mapping], licences: pl.DataFrame, extractor: str) -> str:
    lines = ["# BioReview dataset", "",
             f"Concerns extracted from published peer reviews by **{extractor}**; the all_nonfig corpus (figure "
             "concerns removed, exact duplicates removed, articles without a concern dropped), split by DOI family.",
             "", "## Sources", ""]
    lines += md_lines(["source", "articles", "reports", "responses", "rejected", "papers lost to bad files"],
                    [(s, v.get("articles"), v.get("reports"), v.get("responses"), v.get("rejected"),
                      v.get("papers_lost")) for s, v in sorted(sources.items())])
    lines += ["", "## Extraction", "",
              f"Reports asked: {extraction.get('reports')}; answers parsed: {extraction.get('answers_parsed')}; "
              f"items {extraction.get('items')}, concerns kept {extraction.get('kept')}; dropped by reason "
              f"{json.dumps(extraction.get('dropped', {}), sort_keys=True)}; rejected reports "
              f"{extraction.get('rejected')}.", "",
              f"LLM calls: {_cost(extraction.get('llm'))}.", "",
              "## Corpus (all_nonfig)", "", "```json", json.dumps(corpus_counts, indent=2, sort_keys=True), "```", "",
              "## Splits", "", "```json", json.dumps(split_stats, indent=2, sort_keys=True), "```", "",
              f"Leakage audit (article ids, families, DOI families across splits): "
              f"{'passed' if audit.get('ok') else 'FAILED'}.", "",
              "## SFT rows", ""]
    lines += md_lines(["split", "rows", "counter", "budget", "truncated", "rejects"],
                    [(name, m.get("rows"), m.get("counter"), m.get("budget"), m.get("truncated"), m.get("rejects"))
                     for name, m in sft.items()])
    lines += ["", "## Licences: what may be redistributed", "",
              "CC BY (no NC/ND clause) or CC0 may be shared again with attribution; the rest stays in this run.", ""]
    lines += md_lines(licences.columns, licences.rows())
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--corpus", required=True, help="the all_nonfig corpus parquet (source, license, n_concerns)")
    p.add_argument("--source-summary", nargs="+", required=True, help="each source parser's summary JSON")
    p.add_argument("--extraction-counts", required=True)
    p.add_argument("--corpus-counts", required=True)
    p.add_argument("--split-stats", required=True)
    p.add_argument("--audit", required=True)
    p.add_argument("--sft-meta", type=named_path, action="append", required=True, help="SPLIT=meta.json, per split")
    p.add_argument("--extractor", required=True, help="how the card names what extracted the concerns")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    setup_logging(args.verbose)
    corpus = pl.read_parquet(args.corpus)
    missing = [c for c in ("source", "license", "n_concerns") if c not in corpus.columns]
    if missing:
        raise SystemExit(f"{args.corpus}: missing column(s) {missing}")
    sources = {Path(path).name.split(".")[0]: read_json(path) for path in args.source_summary}
    text = markdown(sources=sources, extraction=read_json(args.extraction_counts), corpus_counts=read_json(args.corpus_counts),
                    split_stats=read_json(args.split_stats), audit=read_json(args.audit),
                    sft={name: read_json(path) for name, path in args.sft_meta}, licences=licence_table(corpus),
                    extractor=args.extractor)
    write_text_atomic(args.out, text)
    log.info("dataset card written to %s", args.out)


if __name__ == "__main__":
    main()
