"""The Refiner's GRPO reward: one composite function, ``refiner``, scoring each completion with the rubric judge,
the citation judge and the format gate (:mod:`.refiner_score`).

One function rather than one per component: TRL adds the functions' rewards with ``nansum``, so a component
returning None would silently count 0; here a completion whose judge calls all failed gets None as a whole, which
TRL turns into no advantage for that completion.

Options (the GRPO block's ``reward_options``): ``judge``, the judge endpoint block (config
``llm.endpoints.judge``), and ``cache_dir`` (config ``llm.cache_dir``) are required; ``reward``, ``judge_prompts``
and ``static_rubrics`` are config ``refiner.reward``, ``refiner.judge`` and ``refiner.static_rubrics`` (the
schema's defaults when left out).

The judge is reached through the LLM layer (``open_client``), opened on the first scoring call for the life of the
process. The training launcher serves a demo or vLLM judge once for all ranks (``--serve-llm judge=BLOCK``) and
sets ``SCITASTE_LLM_JUDGE_URL``, which ``open_client`` then uses; without it, a demo judge is started by this
process, and a vLLM judge is refused when training runs in several processes (each would start a server).

Logged per step through TRL's ``log_metric`` (averaged over the step and the processes): every component
(``refiner/format_ok``, ``rubric_score``, ``rubric_positive``, ``rubric_negative``, ``static/<title as a slug>``,
``citation_score``, ``citation_f1``, ``citation_recall``, ``citation_precision``, ``id_validity``,
``cited_share``, ``n_claims``, ``answer_chars``), ``refiner/judge_failure_rate`` (failed calls / calls) and
``refiner/unscored`` (share of completions whose reward is None). The share of groups with zero reward spread is
TRL's own ``frac_reward_zero_std``, computed over the gathered batch (a group may span processes, so a reward
function cannot). Each completion's format problem, rubric and citation scores go to TRL's completions table
through ``log_extra``.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import logging
import os
import re
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from workflow_scripts.common.answers import completion_text
from workflow_scripts.llm.client import LLMClient
from workflow_scripts.llm.config import endpoint
from workflow_scripts.llm.endpoints import open_client, served_url_env
from workflow_scripts.train.rewards.refiner_score import CompletionScore, RewardOptions, ScoringItem, score_batch

log = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("tool_output", "question", "positive_rubrics", "negative_rubrics")
JUDGE_USE = "judge"
METRIC_PREFIX = "refiner/"
_OPENED: list["JudgeClient"] = []  # for close_judges()
_SLUG = re.compile(r"[^a-z0-9]+")


class JudgeClient:
    """The judge endpoint for the life of the process, opened on the first request (a run that fails its checks
    starts no server) and closed at exit."""

    def __init__(self, block: Mapping[str, Any], cache_dir: str | os.PathLike):
        self.endpoint = endpoint(JUDGE_USE, block)  # checked now: a wrong block fails before training starts
        self.block, self.cache_dir = dict(block), Path(cache_dir)
        self._client: LLMClient | None = None
        self._stack: contextlib.ExitStack | None = None

    def complete_many(self, requests):
        client = self.client()
        answers = client.complete_many(requests)
        # every failure is counted in the scores and logged per step; the rows would only grow over a long run
        client.rejects.rows.clear()
        return answers

    def client(self) -> LLMClient:
        if self._client is None:
            self._open()
        return self._client  # type: ignore[return-value]

    def _open(self) -> None:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if self.endpoint.kind == "vllm" and world > 1 and not os.environ.get(served_url_env(JUDGE_USE)):
            raise RuntimeError(
                f"{self.endpoint.label}: {world} training processes would each start a vLLM judge; let the launcher "
                "serve it (--serve-llm judge=BLOCK, as the Refiner's GRPO rule does) or use an external endpoint")
        self._stack = contextlib.ExitStack()
        self._client = self._stack.enter_context(open_client(JUDGE_USE, self.block, self.cache_dir))
        _OPENED.append(self)
        atexit.register(self.close)

    def close(self) -> None:
        if self._stack is not None:
            stack, self._stack = self._stack, None
            summary = self._client.summary() if self._client else None
            stack.close()
            if summary:
                log.info("judge calls: %d requests, %d cache hits, failures %s, invalid %s", summary["requests"],
                         summary["cache_hits"], summary["failures"] or "none", summary["invalid"] or "none")
            self._client = None


def close_judges() -> None:
    """Close every judge this process opened (at exit anyway; for a caller that trains in process and goes on)."""
    while _OPENED:
        _OPENED.pop().close()


def reward_funcs(judge: Mapping[str, Any] | None = None, cache_dir: str | None = None,
                 reward: Mapping[str, Any] | None = None, judge_prompts: Mapping[str, Any] | None = None,
                 static_rubrics: Sequence[Mapping[str, Any]] | None = None) -> dict[str, Callable]:
    """Config name -> TRL reward function: ``{"refiner": ...}`` (see the module docstring for the options)."""
    if judge is None or cache_dir is None:
        raise TypeError("the refiner reward needs the options 'judge' (config llm.endpoints.judge) and 'cache_dir' "
                        "(config llm.cache_dir)")
    options = RewardOptions.from_config(reward, judge_prompts, static_rubrics)
    bound = functools.partial(refiner_reward, judge=JudgeClient(judge, cache_dir), options=options)
    return {"refiner": functools.update_wrapper(bound, refiner_reward)}  # TRL logs it under __name__


def refiner_reward(completions: Sequence[Any], tool_output: Sequence[str], question: Sequence[str],
                   positive_rubrics: Sequence[Any], negative_rubrics: Sequence[Any], *, judge, options: RewardOptions,
                   task_id: Sequence[str] | None = None, log_metric: Callable | None = None,
                   log_extra: Callable | None = None, **kwargs) -> list[float | None]:
    ids = task_id if task_id is not None else [None] * len(completions)
    items = [ScoringItem.from_row(completion_text(c), q, t, pos, neg, tid)
             for c, q, t, pos, neg, tid in zip(completions, question, tool_output, positive_rubrics,
                                               negative_rubrics, ids, strict=True)]
    scores = score_batch(items, judge, options)
    metrics = batch_metrics(scores)
    if log_metric is not None:
        for name, value in metrics.items():
            log_metric(name, value)
    if log_extra is not None:
        log_extra("format", [s.format_problem.split(":", 1)[0] if s.format_problem else "ok" for s in scores])
        log_extra("rubric_score", [s.rubric_score for s in scores])
        log_extra("citation_score", [s.citation_score for s in scores])
    failures = sum(s.judge_failures for s in scores)
    if failures:
        kinds = dict(sum((Counter(s.failure_kinds) for s in scores), Counter()))
        log.warning("refiner reward: %d of %d judge calls failed (%s), left out of the scores; %d of %d "
                    "completions unscored", failures, sum(s.judge_calls for s in scores), kinds,
                    sum(s.reward is None for s in scores), len(scores))
    return [s.reward for s in scores]


def metric_slug(title: str) -> str:
    """A rubric title as a metric name (TensorBoard tags keep to letters, digits and _ . / -)."""
    return _SLUG.sub("_", title.strip().lower()).strip("_")


def batch_metrics(scores: Sequence[CompletionScore]) -> dict[str, float]:
    """Mean of each component over the completions that have it (a metric no completion has is not logged)."""
    series: dict[str, list[float]] = {"format_ok": [float(s.format_ok) for s in scores],
                                      "unscored": [float(s.reward is None) for s in scores]}

    def add(name: str, value: float | None) -> None:
        if value is not None:
            series.setdefault(name, []).append(float(value))

    for s in scores:
        for name in ("rubric_score", "citation_score", "citation_f1", "citation_recall", "citation_precision",
                     "id_validity", "cited_share"):
            add(name, getattr(s, name))
        if s.has_answer:
            add("n_claims", s.n_claims)
            add("answer_chars", s.answer_chars)
        for kind in ("positive", "negative"):
            credits = s.credits(kind)
            add(f"rubric_{kind}", sum(credits) / len(credits) if credits else None)
        for title, credit in s.static_scores.items():
            add(f"static/{metric_slug(title)}", credit)
    metrics = {METRIC_PREFIX + name: sum(v) / len(v) for name, v in series.items() if v}
    calls = sum(s.judge_calls for s in scores)
    if calls:
        metrics[METRIC_PREFIX + "judge_failure_rate"] = sum(s.judge_failures for s in scores) / calls
    return metrics
