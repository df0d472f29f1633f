"""Markdown pieces shared by the Reviewer dataset cards (prompt pool and benchmark, teacher SFT set)."""

from __future__ import annotations

import statistics
from typing import Sequence


def md_table(header: Sequence[str], rows: Sequence[Sequence]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join("-" if v is None else str(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def number_stats(values: Sequence[float]) -> dict:
    """count, mean, median and max (None where there are no values)."""
    if not values:
        return {"n": 0, "mean": None, "median": None, "max": None}
    return {"n": len(values), "mean": round(statistics.fmean(values), 1), "median": statistics.median(values),
            "max": max(values)}


def rate(part: int, whole: int) -> str:
    return f"{part}/{whole} ({100 * part / whole:.1f}%)" if whole else f"{part}/0 (-)"
