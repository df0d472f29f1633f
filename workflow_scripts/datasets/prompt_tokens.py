"""Counting a prompt's tokens as the model will see them: the base model's own tokenizer on the chat template's
rendering. Every line's prompt budget (Reviewer, BioReview, Refiner) counts with it."""

from __future__ import annotations

from typing import Any, Mapping, Sequence


def load_tokenizer(model: str):
    """The base model's tokenizer (fast: cuts need character offsets), with its chat template."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model)
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError(f"base model {model}: its tokenizer is not a fast tokenizer; the body cut needs offsets")
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError(f"base model {model}: the tokenizer has no chat template")
    return tokenizer


class TokenCounter:
    """Tokens of a text, of a prompt as rendered for generation, or of a whole conversation (an SFT row);
    ``template_kwargs`` go to the chat template (e.g. ``enable_thinking=False``, as the model is trained)."""

    name = "tokenizer"

    def __init__(self, tokenizer, template_kwargs: Mapping[str, Any] | None = None):
        self.tokenizer = tokenizer
        self.template_kwargs = dict(template_kwargs or {})

    def text(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])

    def prompt(self, messages: Sequence[Mapping[str, str]]) -> int:
        return self.text(self.tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True,
                                                            **self.template_kwargs))

    def conversation(self, messages: Sequence[Mapping[str, str]]) -> int:
        return self.text(self.tokenizer.apply_chat_template(list(messages), tokenize=False, **self.template_kwargs))


def token_stats(values: Sequence[int]) -> dict | None:
    """min, median, mean and max of token (or other) counts for a card; None where there are none."""
    if not values:
        return None
    ordered = sorted(values)
    return {"min": ordered[0], "median": ordered[len(ordered) // 2], "mean": round(sum(ordered) / len(ordered), 1),
            "max": ordered[-1]}
