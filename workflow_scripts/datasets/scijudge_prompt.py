"""The SciJudge prompt: system message and user template from config, rendered for one pair in either A/B order.

Shared by the pair builder (which writes ``messages``) and the evaluation (which asks both orders of each pair).
"""

from __future__ import annotations

from typing import Mapping

def render_messages(
    pair: Mapping, *, system_prompt: str, user_template: str, today: str, swap: bool = False
) -> list[dict[str, str]]:
    """Messages for ``pair`` (a row with paper_{a,b}_{title,abstract,date}); ``swap`` shows paper B as 'A'."""
    first, second = ("b", "a") if swap else ("a", "b")
    user = user_template.format(
        today=today,
        title_a=pair[f"paper_{first}_title"],
        abstract_a=pair[f"paper_{first}_abstract"],
        date_a=_date(pair[f"paper_{first}_date"]),
        title_b=pair[f"paper_{second}_title"],
        abstract_b=pair[f"paper_{second}_abstract"],
        date_b=_date(pair[f"paper_{second}_date"]),
    )
    return [{"role": "system", "content": system_prompt}, {"role": "user", "content": user}]


def swapped_answer(answer: str) -> str:
    return {"A": "B", "B": "A"}[answer]


def _date(value) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)
