"""The Reviewer line's decision line: ``I recommend this paper for ACCEPTANCE.`` or ``... REJECTION.``.

One parser for the teacher filter and the evaluation, so that a review kept for training and a prediction scored in
the benchmark are read the same way. A line counts when, stripped of markdown emphasis, quotes, bullets and
surrounding space, it is the sentence alone (the final full stop optional, as the card's regex has it). The decision
is the last such line; a review holding both decisions (a teacher echoing the two template lines) has none.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PREFIX = "I recommend this paper for "
WORDS = {"ACCEPTANCE": "accept", "REJECTION": "reject"}
_LINE = re.compile(r"I recommend this paper for (ACCEPTANCE|REJECTION)\.?")
# what a model may wrap the sentence in: bullets, emphasis, quotes, a block quote, heading marks, spaces
_WRAPPING = " \t*_`>\"'#-"


@dataclass(frozen=True)
class Decision:
    decision: str | None  # "accept" / "reject"; None when the text has no usable decision line
    problem: str | None  # "no_decision" or "both_decisions" when decision is None
    offset: int | None  # where the decision word (ACCEPTANCE / REJECTION) starts in the text, for its logprobs


def parse_decision(text: str | None) -> Decision:
    """The decision of a review: exactly one distinct decision among its decision lines, the last one counting."""
    found: list[tuple[str, int]] = []
    position = 0
    for line in (text or "").splitlines(keepends=True):
        core = line.strip(_WRAPPING + "\r\n")
        match = _LINE.fullmatch(core)
        if match:
            start = position + line.index(core) + len(PREFIX)
            found.append((WORDS[match.group(1)], start))
        position += len(line)
    if not found:
        return Decision(None, "no_decision", None)
    if len({d for d, _ in found}) > 1:
        return Decision(None, "both_decisions", None)
    decision, offset = found[-1]
    return Decision(decision, None, offset)
