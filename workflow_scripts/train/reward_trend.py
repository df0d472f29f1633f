"""Whether GRPO's reward rose: the mean reward of the last quarter of the logged steps minus that of the first
quarter, with a bootstrap interval, from a trainer_state.json ``log_history``.

Each logged step's ``reward`` is the mean over that step's completions. The quarters hold ``steps // 4`` steps each;
the interval resamples the step rewards of each quarter (with replacement, independently), so it says whether the
rise exceeds the step-to-step spread of the batch means. With fewer than two steps per quarter there is no interval.
The bootstrap seed is fixed: the curves figure (workflow_scripts.train.curves) and the JSON give the same numbers.

    python -m workflow_scripts.train.reward_trend --state trainer_state.json --out reward_trend.json
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from workflow_scripts.common.cli import parser, setup_logging
from workflow_scripts.common.io import write_json_atomic
from workflow_scripts.eval.stats import percentile_interval, seeded_rng

REWARD_KEY = "reward"
BOOTSTRAP = 2000
CI_LEVEL = 0.95
SEED = 0


def step_rewards(log_history: Sequence[Mapping], key: str = REWARD_KEY) -> list[tuple[int, float]]:
    """(step, reward) of every logged training step, in step order; summary entries without the key are skipped."""
    points = {int(e["step"]): float(e[key]) for e in log_history
              if "step" in e and isinstance(e.get(key), (int, float)) and math.isfinite(e[key])}
    return sorted(points.items())


def reward_trend(log_history: Sequence[Mapping], key: str = REWARD_KEY, n_boot: int = BOOTSTRAP,
                 level: float = CI_LEVEL, seed: int = SEED) -> dict:
    """The first and last quarter's mean ``key`` and their difference with a percentile bootstrap interval (quarters
    and difference None when fewer than 4 steps were logged), and a one-line ``summary``."""
    points = step_rewards(log_history, key)
    quarter = len(points) // 4
    if quarter == 0:
        return {"metric": key, "logged_steps": len(points), "steps_per_quarter": 0, "first_quarter": None,
                "last_quarter": None, "difference": None, "bootstrap": 0, "ci_level": level,
                "summary": f"{len(points)} logged step(s): fewer than 4, no quarters"}
    first = np.array([r for _, r in points[:quarter]])
    last = np.array([r for _, r in points[-quarter:]])
    boots = None
    if quarter >= 2 and n_boot > 0:
        rng = seeded_rng(seed, "reward_trend", key)
        boots = (last[rng.integers(0, quarter, (n_boot, quarter))].mean(axis=1)
                 - first[rng.integers(0, quarter, (n_boot, quarter))].mean(axis=1))
    trend = {
        "metric": key,
        "logged_steps": len(points),
        "steps_per_quarter": quarter,
        "first_quarter": {"steps": [points[0][0], points[quarter - 1][0]], "mean": float(first.mean())},
        "last_quarter": {"steps": [points[-quarter][0], points[-1][0]], "mean": float(last.mean())},
        "difference": percentile_interval(float(last.mean() - first.mean()), boots, level),
        "bootstrap": n_boot if boots is not None else 0,
        "ci_level": level,
    }
    d = trend["difference"]
    ci = "" if d["ci_low"] is None else f" [{d['ci_low']:+.3f}, {d['ci_high']:+.3f}]"
    trend["summary"] = (f"last - first quarter: {d['value']:+.3f}{ci} ({first.mean():.3f} -> {last.mean():.3f}, "
                        f"{quarter} steps each)")
    return trend


def main(argv: Sequence[str] | None = None) -> None:
    p = parser(__doc__.split("\n\n")[0])
    p.add_argument("--state", required=True, help="trainer_state.json of a GRPO run")
    p.add_argument("--out", required=True, help="JSON to write")
    args = p.parse_args(argv)
    setup_logging(args.verbose)
    state = json.loads(Path(args.state).read_text(encoding="utf-8"))
    if "log_history" not in state:
        raise ValueError(f"{args.state}: no log_history (not a trainer_state.json)")
    trend = reward_trend(state["log_history"])
    write_json_atomic(args.out, trend)
    print(trend["summary"])


if __name__ == "__main__":
    main()
