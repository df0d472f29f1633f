"""p(accept) of a review from the log-probabilities at its decision word, for the Reviewer line's reliability diagram.

The decision line ends ``... for ACCEPTANCE.`` or ``... for REJECTION.``; at the token where the decision word starts
the model chose between the two. Its candidates (the top log-probabilities of that step) that begin the one word or
the other, after whatever the token holds before the word (a leading space, or SentencePiece's "▁"), are summed per
side and renormalised over the two: p(accept) = P(ACCEPTANCE...) / (P(ACCEPTANCE...) + P(REJECTION...)). A side
that is not among the candidates counts as 0; when neither is, there is no probability (None).

Two inputs give the same answer: a local model's ``Generation`` (tokens and top_logprobs, hf or vllm) and an
OpenAI-compatible chat completion's ``logprobs.content`` (``[{token, logprob, top_logprobs: [{token, logprob}]}]``).
"""

from __future__ import annotations

import math
from typing import Iterable, Mapping, Sequence

from workflow_scripts.datasets.reviewer_decision import WORDS

SPACE_MARK = "\u2581"  # SentencePiece writes a leading space as "▁" in token strings
DECISION_WORDS = {decision: word for word, decision in WORDS.items()}  # accept -> ACCEPTANCE, reject -> REJECTION

Candidates = Iterable[tuple[str, float]]  # (token text, log-probability) of one step


def p_accept(tokens: Sequence[str], candidates: Sequence[Candidates], text: str, offset: int) -> float | None:
    """p(accept) at the decision word that starts at ``offset`` in ``text``. ``tokens`` are the generated tokens'
    texts and ``candidates[i]`` the alternatives of step i. The tokens may hold more than ``text`` (an endpoint's
    answer is stripped of surrounding space and of a <think> block): both are aligned at their ends."""
    tokens = [t.replace(SPACE_MARK, " ") for t in tokens]
    joined = "".join(tokens)
    position = _locate(joined, text, offset)
    if position is None:
        return None
    start = 0
    for step, token in enumerate(tokens):
        if start <= position < start + len(token):
            return _renormalised(candidates[step], lead=joined[start:position])
        start += len(token)
    return None


def p_accept_of_generation(generation, offset: int) -> float | None:
    """p(accept) of a ``workflow_scripts.eval.generation.Generation`` made with ``top_logprobs`` > 0."""
    if generation.tokens is None or generation.top_logprobs is None:
        raise ValueError("the generation has no top log-probabilities: generate with top_logprobs > 0")
    return p_accept(generation.tokens, [top.items() for top in generation.top_logprobs], generation.text, offset)


def p_accept_of_chat_logprobs(content: Sequence[Mapping], text: str, offset: int) -> float | None:
    """p(accept) from a chat completion's ``logprobs.content`` list (``Answer.logprobs`` of the LLM layer)."""
    tokens, candidates = [], []
    for entry in content:
        step = [(alt["token"], alt["logprob"]) for alt in entry.get("top_logprobs") or ()]
        if (entry["token"], entry["logprob"]) not in step:  # the chosen token, when the alternatives leave it out
            step.append((entry["token"], entry["logprob"]))
        tokens.append(entry["token"])
        candidates.append(step)
    return p_accept(tokens, candidates, text, offset)


def _locate(joined: str, text: str, offset: int) -> int | None:
    """Where ``offset`` of ``text`` lies in the tokens' text, checked by finding a decision word there."""
    position = len(joined.rstrip()) - len(text.rstrip()) + offset
    if _starts_decision(joined, position):
        return position
    found = joined.find(text)  # a token that is not clean text (raw bytes) after the decision shifts the ends
    return found + offset if found >= 0 and _starts_decision(joined, found + offset) else None


def _starts_decision(joined: str, position: int) -> bool:
    return position >= 0 and any(joined.startswith(word, position) for word in WORDS)


def _renormalised(candidates: Candidates, lead: str) -> float | None:
    mass = dict.fromkeys(DECISION_WORDS, 0.0)
    for token, logprob in candidates:
        token = token.replace(SPACE_MARK, " ")
        if not token.startswith(lead):
            continue  # another continuation of the text before the word (no space where there is one, ...)
        rest = token[len(lead):]
        for decision, word in DECISION_WORDS.items():
            if rest and (word.startswith(rest) or rest.startswith(word)):
                mass[decision] += math.exp(logprob)
    total = sum(mass.values())
    return mass["accept"] / total if total > 0 else None
