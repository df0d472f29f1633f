"""Reward sets for GRPO, chosen by name on the command line (``--reward scijudge``); weights come from config.

Each reward module exposes ``reward_funcs(**options)`` (config name -> TRL reward function; options such as the
SciJudge prompt variant come from the trainer block's ``reward_options``) and REQUIRED_COLUMNS (dataset columns the
functions read). A later line adds its module to REWARD_SETS.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, Mapping

REWARD_SETS = {"scijudge": "workflow_scripts.train.rewards.scijudge",
               "refiner": "workflow_scripts.train.rewards.refiner"}


def load_rewards(name: str, weights: Mapping[str, float], options: Mapping[str, Any] | None = None
                 ) -> tuple[list[Callable], list[float], tuple[str, ...]]:
    """Reward functions, their weights (TRL ``reward_weights``) and the dataset columns they need.

    Only rewards named in ``weights`` are used; a weight of 0 keeps a reward logged without steering training.
    ``options`` go to the reward set's ``reward_funcs``.
    """
    if name not in REWARD_SETS:
        raise ValueError(f"unknown reward set {name!r}; known: {sorted(REWARD_SETS)}")
    module = importlib.import_module(REWARD_SETS[name])
    try:
        funcs = module.reward_funcs(**dict(options or {}))
    except TypeError as exc:
        raise ValueError(f"reward set {name!r}: bad reward_options {dict(options or {})}: {exc}") from None
    unknown = sorted(set(weights) - set(funcs))
    if unknown:
        raise ValueError(f"reward set {name!r} has no reward(s) {unknown}; known: {sorted(funcs)}")
    if not any(w for w in weights.values()):
        raise ValueError(f"reward set {name!r}: all reward weights are 0 ({dict(weights)}): nothing to train on")
    names = [n for n in funcs if n in weights]
    return [funcs[n] for n in names], [float(weights[n]) for n in names], tuple(module.REQUIRED_COLUMNS)
