"""BioReview SFT rows: the model card's prompts over an article cut to a token budget, the article's concerns as target.

    python -m workflow_scripts.datasets.bioreview_sft --split splits/train.parquet --model BASE_MODEL_DIR \\
        --budget 15000 --out sft/train.parquet --meta sft/train.json --rejects sft/train_rejects.jsonl
    (--counter chars3 instead of --model: the reference's ceil(characters / 3) counter)

Each row is TRL's conversational prompt-completion format (loss on the completion only), as
:mod:`workflow_scripts.train.sft` reads it: ``prompt`` = the card's ``SYSTEM_PROMPT`` and ``USER_PREFIX`` + the
article text, ``completion`` = one assistant message holding the JSON array (indent 2) of the article's concerns
{text, category, severity}; plus article_id, family_id, source, split, n_concerns, prompt_tokens, truncated.

The article text is the title, the abstract, then the body sections (``{title}\\n{text}``, blank lines between) in
the reference's priority: methods, results, introduction, discussion, then the other sections with supplementary
ones last (document order within a rank). The budget counts the whole prompt, system prompt, prefix and chat
template included, with one counter recorded in the metadata (``--meta`` and the parquet's key-value metadata):

* ``tokenizer``: the base model's own tokenizer and chat template (``enable_thinking=False`` passed to it, as the
  reference trained), the default;
* ``chars3``: ``ceil(characters / 3)`` of the system and user messages, what the reference's 15,000 "tokens"
  really were (about 45,000 characters); use it only to reproduce that.

Over budget, the body gets what the title, abstract and prompt leave, ``B``; each of its ``n`` sections may keep
``min(128, max(16, B // (2n)))`` tokens plus a share of the rest proportional to its length, and a section over its
allowance is cut at the longest prefix (by binary search over characters) that fits with the marker
``\\n[...truncated]``. Priority orders the sections but reserves nothing. Because tokens do not add up exactly across
joins, the whole prompt is counted again and ``B`` lowered by the excess until it fits. Where ``16 n`` exceeds
``B`` the lowest-priority sections are left out first (the reference would overflow). An article whose prompt
without any body already exceeds the budget is a rejects row naming it.
"""

from __future__ import annotations

import json
import logging
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Sequence

import polars as pl

from workflow_scripts.common.cli import parser, setup_logging
from workflow_scripts.common.io import Rejects, write_json_atomic, write_parquet_atomic
from workflow_scripts.datasets.bioreview_prompts import CONCERN_KEYS, SYSTEM_PROMPT, USER_PREFIX
from workflow_scripts.datasets.prompt_tokens import token_stats

log = logging.getLogger(__name__)

MARKER = "\n[...truncated]"
KIND_PRIORITY = ("methods", "results", "introduction", "discussion")
MESSAGE = pl.Struct({"role": pl.String, "content": pl.String})
SFT_SCHEMA: dict[str, pl.DataType] = {
    "article_id": pl.String, "family_id": pl.String, "source": pl.String, "split": pl.String,
    "prompt": pl.List(MESSAGE), "completion": pl.List(MESSAGE), "n_concerns": pl.Int32, "prompt_tokens": pl.Int64,
    "truncated": pl.Boolean,
}


class TokenCounter(Protocol):
    name: str

    def text(self, text: str) -> int: ...

    def prompt(self, messages: list[dict]) -> int: ...


class CharCounter:
    """The reference's counter: ceil(characters / 3)."""

    name = "chars3"

    def text(self, text: str) -> int:
        return math.ceil(len(text) / 3)

    def prompt(self, messages: list[dict]) -> int:
        return math.ceil(sum(len(m["content"]) for m in messages) / 3)


def section_rank(section: dict) -> int:
    if section["kind"] in KIND_PRIORITY:
        return KIND_PRIORITY.index(section["kind"])
    return len(KIND_PRIORITY) + ("supplement" in (section.get("title") or "").lower())


def body_sections(sections: Sequence[dict] | None) -> list[str]:
    """The non-empty sections as ``{title}\\n{text}`` in priority order (a stable sort: document order in a rank)."""
    ordered = sorted((s for s in sections or () if (s.get("text") or "").strip()), key=section_rank)
    return [f"{s.get('title') or s['kind']}\n{s['text'].strip()}" for s in ordered]


def messages(header: str, sections: Sequence[str]) -> list[dict]:
    return [{"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": USER_PREFIX + "\n\n".join([header, *sections])}]


def allowances(lengths: Sequence[int], budget: int) -> list[int]:
    """Tokens each section may keep: a floor of min(128, max(16, B // 2n)) plus a share proportional to its length."""
    n = len(lengths)
    floor = min(128, max(16, budget // (2 * n)))
    rest, total = max(0, budget - floor * n), sum(lengths) or 1
    return [min(length, floor + rest * length // total) for length in lengths]


def cut(text: str, allowance: int, counter: TokenCounter) -> str:
    """The text whole when it fits ``allowance``, else its longest prefix that fits with MARKER ('' if none)."""
    if counter.text(text) <= allowance:
        return text
    low, high = 0, len(text)  # invariant: text[:low] + MARKER fits (or low == 0), text[:high] does not
    while low < high - 1:
        middle = (low + high) // 2
        if counter.text(text[:middle].rstrip() + MARKER) <= allowance:
            low = middle
        else:
            high = middle
    kept = text[:low].rstrip()
    return kept + MARKER if kept else ""


class Unfittable(ValueError):
    """Not even the prompt without a body fits the budget."""


@dataclass
class Fitted:
    messages: list[dict]
    tokens: int
    truncated: bool


def fit(title: str, abstract: str, sections: Sequence[dict] | None, counter: TokenCounter, budget: int) -> Fitted:
    header = "\n\n".join(part for part in ((title or "").strip(), (abstract or "").strip()) if part)
    body = body_sections(sections)
    whole = messages(header, body)
    tokens = counter.prompt(whole)
    if tokens <= budget:
        return Fitted(whole, tokens, False)
    fixed = counter.prompt(messages(header, []))
    available = budget - fixed
    lengths = [counter.text(s) for s in body]
    while available > 0:
        kept = body[:max(1, available // 16)]  # the floor of 16 must fit: lowest priority out first
        pieces = [p for p in (cut(s, a, counter) for s, a in zip(kept, allowances(lengths[:len(kept)], available)))
                  if p]
        trial = messages(header, pieces)
        tokens = counter.prompt(trial)
        if tokens <= budget:
            return Fitted(trial, tokens, True)
        available -= tokens - budget
    if fixed <= budget:
        return Fitted(messages(header, []), fixed, bool(body))
    raise Unfittable(f"the prompt without any body is {fixed} tokens, over the budget of {budget}")


def completion(concerns: Sequence[dict]) -> list[dict]:
    items = [{key: c[key] for key in CONCERN_KEYS} for c in concerns]
    return [{"role": "assistant", "content": json.dumps(items, ensure_ascii=False, indent=2)}]


def build(split: pl.DataFrame, counter: TokenCounter, budget: int, rejects: Rejects, file: str) -> list[dict]:
    rows = []
    for article in split.sort("article_id").iter_rows(named=True):
        try:
            fitted = fit(article["title"], article["abstract"], article["sections"], counter, budget)
        except Unfittable as exc:
            rejects.add(file, article["article_id"], f"over_budget: {exc}")
            continue
        rows.append({"article_id": article["article_id"], "family_id": article["family_id"],
                     "source": article["source"], "split": article.get("split"), "prompt": fitted.messages,
                     "completion": completion(article["concerns"]), "n_concerns": len(article["concerns"]),
                     "prompt_tokens": fitted.tokens, "truncated": fitted.truncated})
    return rows


def metadata(rows: Sequence[dict], counter: TokenCounter, budget: int, model: str | None, rejects: Rejects) -> dict:
    truncated = sum(r["truncated"] for r in rows)
    return {
        "counter": counter.name, "tokenizer": model if counter.name == "tokenizer" else None, "budget": budget,
        "marker": MARKER, "rows": len(rows), "truncated": truncated,
        "truncated_share": round(truncated / len(rows), 4) if rows else None, "rejected": len(rejects),
        "rejects": rejects.counts(),
        "prompt_tokens": token_stats([r["prompt_tokens"] for r in rows]),
        "completion_tokens": token_stats([counter.text(r["completion"][0]["content"]) for r in rows]),
        "per_source": {s: sum(r["source"] == s for r in rows) for s in sorted({r["source"] for r in rows})},
    }


def write_rows(rows: list[dict], meta: dict, out: str | Path) -> None:
    # the counter travels with the data: the parquet's key-value metadata
    write_parquet_atomic(pl.DataFrame(rows, schema=SFT_SCHEMA, orient="row"), out,
                         metadata={"bioreview_sft": json.dumps(meta, sort_keys=True)})


def make_counter(model: str | None, kind: str) -> TokenCounter:
    if kind == "chars3":
        return CharCounter()
    from workflow_scripts.datasets.prompt_tokens import TokenCounter, load_tokenizer

    return TokenCounter(load_tokenizer(model), {"enable_thinking": False})


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--split", required=True, help="one split of bioreview_splits (corpus rows)")
    p.add_argument("--counter", choices=("tokenizer", "chars3"), default="tokenizer")
    p.add_argument("--model", default=None, help="the base model directory (its tokenizer counts; --counter tokenizer)")
    p.add_argument("--budget", type=int, required=True, help="tokens of the whole prompt (the card's 15000)")
    p.add_argument("--out", required=True)
    p.add_argument("--meta", required=True, help="counter, budget and counts (JSON)")
    p.add_argument("--rejects", required=True)
    args = p.parse_args(argv)
    setup_logging(args.verbose)
    if args.counter == "tokenizer" and not args.model:
        p.error("--counter tokenizer needs --model (or give --counter chars3)")
    if args.budget < 1:
        p.error("--budget must be positive")
    counter = make_counter(args.model, args.counter)
    rejects = Rejects()
    rows = build(pl.read_parquet(args.split), counter, args.budget, rejects, args.split)
    meta = metadata(rows, counter, args.budget, args.model, rejects)
    rejects.write(args.rejects)
    if not rows:
        log.error("no SFT row from %s: %s", args.split, meta)
        return 1
    write_rows(rows, meta, args.out)
    write_json_atomic(args.meta, meta)
    log.info("%d SFT row(s) (%d truncated to %d %s tokens) -> %s", len(rows), meta["truncated"], args.budget,
             counter.name, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
