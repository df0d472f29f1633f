"""Pieces shared by the dataset cards (Reviewer pool and teacher set, BioReview, Refiner): markdown tables, number
summaries, and the NAME=PATH / JSON inputs of a card step."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Sequence


def md_lines(header: Sequence[str], rows: Sequence[Sequence]) -> list[str]:
    """A markdown table, one line per item; None shows as '-'."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join("-" if v is None else str(v) for v in row) + " |" for row in rows]


def md_table(header: Sequence[str], rows: Sequence[Sequence]) -> str:
    return "\n".join(md_lines(header, rows))


def named_path(text: str) -> tuple[str, Path]:
    """A NAME=PATH argument."""
    name, _, path = text.partition("=")
    if not path:
        raise ValueError(f"expected NAME=PATH, got {text!r}")
    return name, Path(path)


def read_json(path: str | Path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def number_stats(values: Sequence[float]) -> dict:
    """count, mean, median and max (None where there are no values)."""
    if not values:
        return {"n": 0, "mean": None, "median": None, "max": None}
    return {"n": len(values), "mean": round(statistics.fmean(values), 1), "median": statistics.median(values),
            "max": max(values)}


def rate(part: int, whole: int) -> str:
    return f"{part}/{whole} ({100 * part / whole:.1f}%)" if whole else f"{part}/0 (-)"
