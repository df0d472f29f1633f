"""SciJudge GRPO rewards (TRL reward-function signature: completions plus dataset columns as keyword arguments).

Reference recipe: reward 1 for a correct answer, 0 otherwise; the format reward is off by default (weight 0), when
listed with weight 0 it is still logged, which shows whether the policy keeps the format its prompt asks for. Both
follow the configured prompt variant (option ``prompt``: card or paper, config ``scijudge.prompt``).
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Sequence

from workflow_scripts.common.answers import AnswerFormat
from workflow_scripts.datasets.scijudge_prompt import VARIANTS, answer_format

CARD = VARIANTS["card"]


def correctness_reward(completions: Sequence[Any], correct_answer: Sequence[str], *, answers: AnswerFormat = CARD,
                       **kwargs) -> list[float]:
    return [1.0 if answers.parse(c) == gold else 0.0 for c, gold in zip(completions, correct_answer, strict=True)]


def format_reward(completions: Sequence[Any], *, answers: AnswerFormat = CARD, **kwargs) -> list[float]:
    return [1.0 if answers.is_well_formatted(c) else 0.0 for c in completions]


def reward_funcs(prompt: str = "card") -> dict[str, Callable]:
    """Config name -> TRL reward function for the prompt variant ``prompt``; the order is TRL's reward_weights'."""
    answers = answer_format(prompt)
    return {name: _bound(func, answers) for name, func in (("correctness", correctness_reward),
                                                           ("format", format_reward))}


def _bound(func: Callable, answers: AnswerFormat) -> Callable:
    bound = functools.partial(func, answers=answers)
    return functools.update_wrapper(bound, func)  # TRL logs each reward under its function's __name__


REQUIRED_COLUMNS = ("correct_answer",)
