"""Statistics shared by the evaluation lines: seeded bootstrap resamples, percentile and Wilson intervals, and the
way a value with its interval is written in a markdown table."""

from __future__ import annotations

import math
import zlib
from statistics import NormalDist
from typing import Iterator, Mapping

import numpy as np


def seeded_rng(seed: int, *keys: str) -> np.random.Generator:
    """One random stream per (seed, keys): a group's resamples do not depend on which other groups or models exist."""
    return np.random.default_rng([seed, *(zlib.crc32(k.encode()) for k in keys)])


def bootstrap_indices(n: int, n_boot: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """``n_boot`` resamples of ``n`` items with replacement, as index arrays of shape (chunk, n); chunked so that
    memory stays bounded at any size."""
    chunk = max(1, 2_000_000 // max(n, 1))
    for start in range(0, n_boot, chunk):
        yield rng.integers(0, n, size=(min(chunk, n_boot - start), n))


def percentile_interval(point: float | None, boots: np.ndarray | None, level: float) -> dict:
    """``{"value", "ci_low", "ci_high"}``: the point estimate and the percentile bootstrap interval (None without
    resamples)."""
    lo, hi = (None, None) if boots is None else np.quantile(boots, [(1 - level) / 2, (1 + level) / 2]).tolist()
    return {"value": point, "ci_low": lo, "ci_high": hi}


def wilson_interval(successes: int, n: int, level: float) -> tuple[float | None, float | None]:
    """Wilson score interval of a proportion: stays inside [0, 1] and is sensible at 0 or n successes and small n,
    where the normal approximation is not."""
    if n == 0:
        return None, None
    z = NormalDist().inv_cdf((1 + level) / 2)
    p = successes / n
    denom = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, center - half), min(1.0, center + half)


def pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


def interval_cell(s: Mapping | None, signed: bool = False) -> str:
    """A value in % with its interval, ``81.1 [72.6, 88.4]``; "–" when there is no value."""
    if s is None or s["value"] is None:
        return "–"
    v = f"{100 * s['value']:+.1f}" if signed else pct(s["value"])
    return v if s["ci_low"] is None else f"{v} [{pct(s['ci_low'])}, {pct(s['ci_high'])}]"
