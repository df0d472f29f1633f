"""SciJudge GRPO rewards (TRL reward-function signature: completions plus dataset columns as keyword arguments).

Reference recipe: reward 1 for a correct answer, 0 otherwise; the format reward is off by default (weight 0), when
listed with weight 0 it is still logged, which shows whether the policy keeps the <reason>/<answer> format.
"""

from __future__ import annotations

from typing import Any, Sequence

from workflow_scripts.common.answers import is_well_formatted, parse_answer


def correctness_reward(completions: Sequence[Any], correct_answer: Sequence[str], **kwargs) -> list[float]:
    return [1.0 if parse_answer(c) == gold else 0.0 for c, gold in zip(completions, correct_answer, strict=True)]


def format_reward(completions: Sequence[Any], **kwargs) -> list[float]:
    return [1.0 if is_well_formatted(c) else 0.0 for c in completions]


# name in config -> function; the order is the order of TRL's reward_weights
REWARD_FUNCS = {"correctness": correctness_reward, "format": format_reward}
REQUIRED_COLUMNS = ("correct_answer",)
