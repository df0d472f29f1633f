"""The run summary of an endpoint in one step: what was asked, answered, retried, failed and spent.

    python -m workflow_scripts.llm.summary --out llm_calls.md results/.../llm_summary.json [...]

The client keeps a :class:`RunStats`; a step writes it as JSON next to its outputs. :func:`markdown` renders any
number of summaries as one table for the Snakemake report (caption: ``rules/report/llm_summary.rst``), with the
stand-in's description under it wherever a demo endpoint answered.
"""

from __future__ import annotations

import json
import statistics
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from workflow_scripts.common.cli import parser, setup_logging
from workflow_scripts.common.io import write_json_atomic, write_text_atomic


@dataclass
class RunStats:
    requests: int = 0  # requests answered by the endpoint (each counted once, however many retries it took)
    http_attempts: int = 0  # every HTTP exchange, retries included
    cache_hits: int = 0
    tokens_in: int = 0  # of the answers received (the cost of this run)
    tokens_out: int = 0
    cached_tokens_in: int = 0  # of the answers served from the cache (what they cost when they were asked)
    cached_tokens_out: int = 0
    not_asked: int = 0
    budget_stop: str | None = None
    retries: Counter = field(default_factory=Counter)  # by kind: http_429, http_503, timeout, connection, ...
    failures: Counter = field(default_factory=Counter)  # requests without an answer after the retries, by kind
    invalid: Counter = field(default_factory=Counter)  # answers failing the caller's format, by kind
    finish_reasons: Counter = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    wall_s: float = 0.0

    def answered(self, record: Mapping[str, Any], cached: bool) -> None:
        usage = record.get("usage") or {}
        if cached:
            self.cache_hits += 1
            self.cached_tokens_in += usage.get("prompt_tokens", 0)
            self.cached_tokens_out += usage.get("completion_tokens", 0)
        else:
            self.requests += 1
            self.tokens_in += usage.get("prompt_tokens", 0)
            self.tokens_out += usage.get("completion_tokens", 0)
            self.latencies.append(record.get("latency_s") or 0.0)
        self.finish_reasons[str(record.get("finish_reason"))] += 1

    def to_dict(self, endpoint: Mapping[str, Any], prices: Mapping[str, Any]) -> dict[str, Any]:
        lat = sorted(self.latencies)
        cost = None
        if prices.get("input_per_million") is not None or prices.get("output_per_million") is not None:
            cost = round((self.tokens_in * (prices.get("input_per_million") or 0)
                          + self.tokens_out * (prices.get("output_per_million") or 0)) / 1e6, 6)
        return {
            "endpoint": dict(endpoint),
            "requests": self.requests, "http_attempts": self.http_attempts, "cache_hits": self.cache_hits,
            "tokens_in": self.tokens_in, "tokens_out": self.tokens_out,
            "cached_tokens_in": self.cached_tokens_in, "cached_tokens_out": self.cached_tokens_out,
            "retries": dict(sorted(self.retries.items())), "failures": dict(sorted(self.failures.items())),
            "invalid": dict(sorted(self.invalid.items())), "finish_reasons": dict(sorted(self.finish_reasons.items())),
            "not_asked": self.not_asked, "budget_stop": self.budget_stop,
            "latency_s": {"mean": round(statistics.fmean(lat), 4), "p50": round(lat[len(lat) // 2], 4),
                          "p95": round(lat[min(len(lat) - 1, int(len(lat) * 0.95))], 4), "max": round(lat[-1], 4)}
            if lat else None,
            "cost": None if cost is None else {"amount": cost, "currency": prices.get("currency", "USD")},
            "wall_s": round(self.wall_s, 3),
        }


def write(path: str | Path, summary: Mapping[str, Any]) -> None:
    write_json_atomic(path, summary)


def markdown(summaries: Sequence[Mapping[str, Any]]) -> str:
    """One row per endpoint summary; the stand-in's description under the table for demo endpoints."""
    head = ("| use | endpoint | model | requests | cache hits | tokens in / out | retries | failed | invalid | "
            "truncated | not asked | latency p50 / p95 | cost |")
    rows = [head, "|" + "---|" * head.count(" | ") + "---|"]
    notes = []
    for s in summaries:
        e = s["endpoint"]
        lat = s.get("latency_s")
        cost = s.get("cost")
        rows.append(" | ".join([
            f"| {e['use']}", e["kind"], f"`{e['model']}`", f"{s['requests']:,}", f"{s['cache_hits']:,}",
            f"{s['tokens_in']:,} / {s['tokens_out']:,}", _counts(s["retries"]), _counts(s["failures"]),
            _counts(s["invalid"]), f"{s['finish_reasons'].get('length', 0):,}",
            f"{s['not_asked']:,}" + (" (budget)" if s.get("budget_stop") else ""),
            f"{lat['p50']:.2f} s / {lat['p95']:.2f} s" if lat else "-",
            f"{cost['amount']:.2f} {cost['currency']}" if cost else "-",
        ]) + " |")
        if e.get("stand_in"):
            st = e["stand_in"]
            notes.append(f"- **{e['use']}** answered by the demo stand-in `{st['name']}` (version {st['version']}), "
                         f"a deterministic simulation, not a language model: {st['doc']}")
    return "\n".join(rows + ([""] + notes if notes else [])) + "\n"


def _counts(counter: Mapping[str, int]) -> str:
    total = sum(counter.values())
    if not total:
        return "0"
    return f"{total:,} (" + ", ".join(f"{k} {v}" for k, v in counter.items()) + ")"


def main(argv: list[str] | None = None) -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("summaries", nargs="+", help="llm_summary.json files written by steps")
    p.add_argument("--out", required=True, help="markdown file for the report")
    args = p.parse_args(argv)
    setup_logging(args.verbose)
    write_text_atomic(args.out, markdown([json.loads(Path(s).read_text()) for s in args.summaries]))


if __name__ == "__main__":
    main()
