"""The SciJudge prompt: system message and user template from config, rendered for one pair in either A/B order,
and the prompt variants (config ``scijudge.prompt``) with the answer format each asks for.

Shared by the pair builder (which writes ``messages``) and the evaluation (which asks both orders of each pair); the
GRPO rewards, the SFT warm-up and the evaluation take the answer format of the configured variant from here.
"""

from __future__ import annotations

from typing import Any, Mapping, MutableMapping

from workflow_scripts.common.answers import AnswerFormat

# variant -> the answer format its prompt asks for; its texts are config (scijudge.prompt_variants.<variant>)
VARIANTS: dict[str, AnswerFormat] = {
    "card": AnswerFormat("reason"),  # the model card's prompt: <reason>..</reason><answer>X</answer>
    "paper": AnswerFormat("think"),  # the paper's (arXiv 2603.14473, appendix B.4): <think>..</think><answer>X</answer>
}
TEXT_KEYS = ("system_prompt", "user_template")
PROMPT_KEYS = ("prompt", *TEXT_KEYS, "today")  # what a step that renders or parses prompts takes from config


def answer_format(variant: str) -> AnswerFormat:
    if variant not in VARIANTS:
        raise ValueError(f"prompt variant {variant!r} unknown; choose one of {sorted(VARIANTS)}")
    return VARIANTS[variant]


def fill_prompt_texts(block: MutableMapping[str, Any]) -> None:
    """Fill the ``scijudge`` config block's system_prompt / user_template left null with the selected variant's texts
    (prompt_variants); texts set in config are kept, so a variant's wording stays overridable."""
    texts = block["prompt_variants"][block["prompt"]]
    for key in TEXT_KEYS:
        if block.get(key) is None:
            block[key] = texts[key]


def prompt_settings(values: Any, where: str) -> dict[str, str]:
    """The PROMPT_KEYS of a JSON argument, checked: a step never parses with another variant than it was asked."""
    if not isinstance(values, Mapping) or any(k not in values for k in PROMPT_KEYS):
        raise ValueError(f"{where} must be an object with the keys {list(PROMPT_KEYS)} (as in config scijudge)")
    answer_format(values["prompt"])
    return {k: values[k] for k in PROMPT_KEYS}


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
