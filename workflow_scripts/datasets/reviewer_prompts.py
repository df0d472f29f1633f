"""The Reviewer prompt: one paper as [system, user] messages, its body cut to fit the base model's prompt budget.

The system prompt and the user template (with ``{title}``, ``{abstract}``, ``{body}``, filled by ``str.format``)
come from config verbatim. The body is the paper's sections as ``heading\\ntext`` blocks joined by blank lines (a
null heading gives the text alone). Real papers run ~15k tokens against an 8k training context, so only the BODY is
cut, counted with the base model's own tokenizer on the whole rendered prompt (chat template with the generation
prompt), so that the prompt fits ``max_prompt_tokens``; the instructions, title and abstract are never cut. A paper
whose prompt does not fit even with an empty body cannot be asked and is rejected (``prompt_over_budget``).

The body is tokenized once (with character offsets); a cut keeps the first k body tokens. The largest fitting k is
found by probing near the additive estimate (budget minus the prompt without body) and bisecting, a handful of
renders per truncated paper (~60 ms for a 15k-token paper), so ~5k papers take minutes on one core.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

PLACEHOLDERS = ("title", "abstract", "body")
# the prompt's tokens differ from (prompt without body) + (body alone) only by merges where the body meets the
# template, a few tokens at most; beyond this margin a body certainly does not fit
JOIN_SLACK_TOKENS = 64


class Unrenderable(Exception):
    """A paper that cannot become a prompt: ``reason`` is the rejects reason, ``detail`` says why."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


@dataclass(frozen=True)
class Prompt:
    messages: list[dict[str, str]]
    prompt_tokens: int  # the rendered prompt (chat template + generation prompt), base tokenizer
    body_tokens_kept: int
    body_tokens_total: int

    @property
    def body_truncated(self) -> bool:
        return self.body_tokens_kept < self.body_tokens_total


def body_text(sections: Sequence[Mapping] | None) -> str:
    """The paper's body: ``heading\\ntext`` blocks joined by blank lines; a null heading gives the text alone."""
    blocks = []
    for s in sections or ():
        heading, text = (s.get("heading") or "").strip(), (s.get("text") or "").strip()
        block = "\n".join(part for part in (heading, text) if part)
        if block:
            blocks.append(block)
    return "\n\n".join(blocks)


def check_template(user_template: str) -> None:
    """The template must format with exactly the three fields, or every paper would fail the same way."""
    try:
        user_template.format(**{name: "" for name in PLACEHOLDERS})
    except (KeyError, IndexError, ValueError) as exc:
        raise ValueError(f"user template: cannot be filled with {PLACEHOLDERS} ({type(exc).__name__}: {exc})") from None
    missing = [name for name in PLACEHOLDERS if "{" + name + "}" not in user_template]
    if missing:
        raise ValueError(f"user template: no placeholder for {missing}")


class PromptRenderer:
    """Renders papers for one tokenizer, system prompt, user template and budget."""

    def __init__(self, tokenizer, system_prompt: str, user_template: str, max_prompt_tokens: int):
        check_template(user_template)
        if max_prompt_tokens < 1:
            raise ValueError(f"max_prompt_tokens must be positive, got {max_prompt_tokens}")
        self.tokenizer, self.system, self.template = tokenizer, system_prompt, user_template
        self.budget = max_prompt_tokens

    def messages(self, title: str, abstract: str, body: str) -> list[dict[str, str]]:
        user = self.template.format(title=title, abstract=abstract, body=body)
        return [{"role": "system", "content": self.system}, {"role": "user", "content": user}]

    def count(self, messages: list[dict[str, str]]) -> int:
        text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return len(self.tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])

    def render(self, title: str, abstract: str, body: str) -> Prompt:
        """The prompt with the longest body prefix (in whole body tokens) that keeps it within the budget."""
        encoded = self.tokenizer(body, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
        ends = [end for _, end in encoded["offset_mapping"]]
        total = len(ends)
        counts: dict[int, int] = {}

        def tokens_with(k: int) -> int:  # the prompt's tokens when the first k body tokens are kept
            if k not in counts:
                counts[k] = self.count(self.messages(title, abstract, body[: ends[k - 1]] if k else ""))
            return counts[k]

        def fits(k: int) -> bool:
            return tokens_with(k) <= self.budget

        if not fits(0):
            raise Unrenderable("prompt_over_budget", f"the instructions, title and abstract alone take "
                                                     f"{tokens_with(0)} tokens, over max_prompt_tokens {self.budget}")
        room = self.budget - tokens_with(0)
        # a body far longer than the room cannot fit: skip rendering it whole (the costliest render of a long paper)
        too_long = total > room + JOIN_SLACK_TOKENS
        kept = total if not too_long and fits(total) else largest_fitting(fits, 0, total, room)
        messages = self.messages(title, abstract, body[: ends[kept - 1]] if kept else "")
        return Prompt(messages, tokens_with(kept), kept, total)


def largest_fitting(fits: Callable[[int], bool], lo: int, hi: int, guess: int) -> int:
    """The largest k in [lo, hi) with ``fits(k)``, given ``fits(lo)`` and not ``fits(hi)`` (fits is monotone):
    gallop out from ``guess`` (the prompt's tokens are nearly additive, so it is usually off by a token or two),
    then bisect the bracket found."""
    k = min(max(guess, lo + 1), hi - 1)
    if k <= lo:
        return lo
    step = 1
    if fits(k):
        lo = k
        while lo + step < hi and fits(lo + step):
            lo += step
            step *= 2
        hi = min(hi, lo + step)
    else:
        hi = k
        while hi - step > lo and not fits(hi - step):
            hi -= step
            step *= 2
        lo = max(lo, hi - step)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if fits(mid):
            lo = mid
        else:
            hi = mid
    return lo
