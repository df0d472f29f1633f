"""Scoring of Refiner completions: the format gate, the rubric judge, the citation judge and the composite reward.

One function, :func:`score_batch`, serves the GRPO reward (workflow_scripts.train.rewards.refiner) and the
evaluation of checkpoints, so both score alike. All judge calls of a batch go out as one ``complete_many``
(bounded by the judge endpoint's ``limits.max_concurrency``; identical requests are asked once).

Per completion (values from config ``refiner.reward``):

- **format gate**: exactly one ``<answer>`` block and every cited id present in the tool output. A completion
  without one answer block scores 0 (there is nothing to judge); one citing an unknown id scores 0 when
  ``format_gate`` is on, and is judged otherwise (its unknown ids then lower the id validity). Gated completions
  cost no judge call.
- **rubric score**: the judge scores the answer block against each rubric on 0..``rubric_max_score``, normalised to
  s in [0, 1]; a positive rubric earns s, a negative one 1 - s. Rubrics: the task's positive and negative ones plus
  ``refiner.static_rubrics`` unless ``instance_rubrics_only``. The score is the mean credit over the rubrics whose
  call succeeded: a failed call is left out, never scored (a failed negative rubric scored 0 would be full credit).
- **citation score** (``apply_citation_reward``): each claim gets recall and precision, and their F1; the mean F1
  over claims is combined with the id validity (the share of distinct cited ids present in the tool output) as
  ``citation_f1_weight * F1 + citation_id_weight * id validity``. A cited claim: recall = the judge's support of the
  claim by the cited sources (``support_scores``: fully 1, partially 0.5, none 0), precision = whether the sources
  are relevant to it (1/0); two calls. An uncited span of at least ``min_uncited_words`` words (``judge_uncited``):
  recall = 0 if the judge says it needs a citation else 1, precision 1; one call. Shorter spans (connectives) are
  not claims. A claim with a failed call is left out of the mean. An answer without claims has F1 0 (nothing cited,
  nothing supported) and, citing nothing, id validity 0.
- **reward**: ``combine: convex`` gives (1 - w) * rubric + w * citation, ``additive`` rubric + w * citation
  (w = ``citation_weight``), times ``verification_reward``. When a component has no successful call at all the
  reward is None (TRL then gives the completion no advantage) and the reason is recorded: the other component
  alone would be on another scale. Every failure is counted by kind (schema, not_json, http_500, timeout,
  truncated, budget, ...), never read as a score.
"""

from __future__ import annotations

import functools
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping, Sequence

import jsonschema

from workflow_scripts.common.config import ConfigError, load_schema, with_defaults
from workflow_scripts.datasets.refiner_snippets import parse_tool_output
from workflow_scripts.llm.answers import Answer
from workflow_scripts.llm.request import ChatRequest
from workflow_scripts.train.rewards import refiner_judge as rj
from workflow_scripts.train.rewards.refiner_claims import Claim, check_format

COMBINE = ("convex", "additive")


# ------------------------------------------------------------------------------------------------------- options
@dataclass(frozen=True)
class RewardOptions:
    combine: str
    citation_weight: float
    apply_citation_reward: bool
    verification_reward: float
    instance_rubrics_only: bool
    format_gate: bool
    rubric_max_score: int
    support_scores: Mapping[str, float]
    citation_f1_weight: float
    citation_id_weight: float
    judge_uncited: bool
    min_uncited_words: int
    judge_params: Mapping[str, Any]
    prompts: rj.JudgePrompts
    static_rubrics: tuple[rj.Rubric, ...]

    @classmethod
    def from_config(cls, reward: Mapping[str, Any] | None = None, judge: Mapping[str, Any] | None = None,
                    static_rubrics: Sequence[Mapping[str, Any]] | None = None) -> "RewardOptions":
        """From config ``refiner.reward``, ``refiner.judge`` and ``refiner.static_rubrics`` (each validated against
        the schema, defaults filled; None = the schema's defaults); ConfigError naming every wrong key."""
        block = refiner_block(reward, judge, static_rubrics)
        r = block["reward"]
        if r["combine"] not in COMBINE:  # the schema says so too; a block built by hand may not have been checked
            raise ConfigError(f"config key refiner.reward.combine: {r['combine']!r} is not one of {list(COMBINE)}")
        try:
            prompts = rj.JudgePrompts.from_config(block["judge"])
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        statics = tuple(rj.Rubric(s["title"], s["description"], s["kind"], static=True)
                        for s in block["static_rubrics"])
        return cls(combine=r["combine"], citation_weight=float(r["citation_weight"]),
                   apply_citation_reward=r["apply_citation_reward"],
                   verification_reward=float(r["verification_reward"]),
                   instance_rubrics_only=r["instance_rubrics_only"], format_gate=r["format_gate"],
                   rubric_max_score=int(r["rubric_max_score"]),
                   support_scores={k: float(v) for k, v in r["support_scores"].items()},
                   citation_f1_weight=float(r["citation_f1_weight"]),
                   citation_id_weight=float(r["citation_id_weight"]), judge_uncited=r["judge_uncited"],
                   min_uncited_words=int(r["min_uncited_words"]), judge_params=dict(r["judge_params"]),
                   prompts=prompts, static_rubrics=statics)


REFINER_KEYS = ("reward", "judge", "static_rubrics")


def refiner_block(reward: Mapping | None, judge: Mapping | None, static_rubrics: Sequence | None) -> dict[str, Any]:
    """The reward's keys of config ``refiner``, validated with the schema's defaults filled in."""
    given = {k: v for k, v in zip(REFINER_KEYS, (reward, judge, static_rubrics)) if v is not None}
    config = {"refiner": {k: (list(v) if k == "static_rubrics" else dict(v)) for k, v in given.items()}}
    schema = load_schema()
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        raise ConfigError("invalid config:\n  " + "\n  ".join(
            f"config key {'.'.join(map(str, e.absolute_path))}: {e.message}" for e in errors))
    filled = with_defaults(config, schema)["refiner"]
    return {k: filled[k] for k in REFINER_KEYS}


# ------------------------------------------------------------------------------------------------------- inputs
@functools.lru_cache(maxsize=4096)  # a prompt's tool output is parsed once for all its generations
def snippet_texts(tool_output: str) -> Mapping[str, str]:
    return {s.id: s.text for s in parse_tool_output(tool_output)}


@dataclass(frozen=True)
class ScoringItem:
    completion: str
    question: str
    snippets: Mapping[str, str]  # id -> text of the tool output's sources
    positive_rubrics: Sequence[Mapping[str, Any]] = ()
    negative_rubrics: Sequence[Mapping[str, Any]] = ()
    task_id: str | None = None

    @classmethod
    def from_row(cls, completion: str, question: str, tool_output: str, positive_rubrics, negative_rubrics,
                 task_id: str | None = None) -> "ScoringItem":
        """From a task-table row's columns; ValueError naming the task when its tool output cannot be parsed."""
        try:
            snippets = snippet_texts(tool_output)
        except ValueError as exc:
            raise ValueError(f"task {task_id or '(no task_id)'}: tool_output: {exc}") from None
        return cls(completion, question, snippets, tuple(positive_rubrics or ()), tuple(negative_rubrics or ()),
                   task_id)

    def rubrics(self, options: RewardOptions) -> list[rj.Rubric]:
        found = []
        for kind, rubrics in (("positive", self.positive_rubrics), ("negative", self.negative_rubrics)):
            for i, r in enumerate(rubrics):
                description = (r.get("description") or "").strip()
                if not description:
                    raise ValueError(f"task {self.task_id or '(no task_id)'}: {kind}_rubrics[{i}] has no description")
                found.append(rj.Rubric((r.get("title") or "").strip(), description, kind))
        return found if options.instance_rubrics_only else found + list(options.static_rubrics)


# ------------------------------------------------------------------------------------------------------- outputs
@dataclass
class RubricScore:
    title: str
    kind: str
    static: bool
    score: float | None  # the judge's score normalised to [0, 1]; None when the call failed
    credit: float | None  # score for a positive rubric, 1 - score for a negative one
    problem: str | None = None  # the failure kind of a failed call


@dataclass
class CompletionScore:
    task_id: str | None
    format_ok: bool
    format_problem: str | None
    has_answer: bool = False  # exactly one <answer> block
    answer_chars: int = 0
    n_claims: int = 0  # cited claims + uncited spans of at least min_uncited_words words
    n_cited_claims: int = 0
    n_empty_claims: int = 0
    markup_problems: list[str] = field(default_factory=list)
    cited_share: float | None = None  # cited claims / claims
    n_cited_ids: int = 0
    invalid_ids: list[str] = field(default_factory=list)
    id_validity: float | None = None  # share of distinct cited ids present in the tool output
    invalid_id_rate: float | None = None
    rubrics: list[RubricScore] = field(default_factory=list)
    rubric_score: float | None = None
    citation_recall: float | None = None
    citation_precision: float | None = None
    citation_f1: float | None = None
    citation_score: float | None = None
    judge_calls: int = 0
    judge_failures: int = 0
    failure_kinds: dict[str, int] = field(default_factory=dict)
    composite: float | None = None  # before verification_reward
    reward: float | None = None
    unscored_reason: str | None = None  # why the reward is None

    @property
    def static_scores(self) -> dict[str, float | None]:
        """Credit per static rubric, by title (None when its call failed)."""
        return {r.title: r.credit for r in self.rubrics if r.static}

    def credits(self, kind: str) -> list[float]:
        return [r.credit for r in self.rubrics if r.kind == kind and not r.static and r.credit is not None]

    def as_row(self) -> dict[str, Any]:
        """A flat row for parquet: lists of structs, no maps."""
        row = asdict(self)
        row["failure_kinds"] = [{"kind": k, "count": v} for k, v in sorted(self.failure_kinds.items())]
        return row


# ------------------------------------------------------------------------------------------------------- scoring
def score_batch(items: Sequence[ScoringItem], judge: rj.Judge, options: RewardOptions) -> list[CompletionScore]:
    """Scores of ``items``, in order; every judge call of the batch asked in one ``complete_many``."""
    plans = [_Plan(item, options) for item in items]
    requests = [r for p in plans for r in p.requests]
    answers = judge.complete_many(requests) if requests else []
    if len(answers) != len(requests):
        raise RuntimeError(f"the judge returned {len(answers)} answers to {len(requests)} requests")
    scores, start = [], 0
    for plan in plans:
        scores.append(plan.finish(answers[start: start + len(plan.requests)]))
        start += len(plan.requests)
    return scores


class _Plan:
    """The judge calls one completion needs, and how their answers become its score."""

    def __init__(self, item: ScoringItem, options: RewardOptions):
        self.options = o = options
        self.requests: list[ChatRequest] = []
        self.jobs: list[tuple[str, Any]] = []  # (kind, what) per request
        check = check_format(item.completion, item.snippets.keys())
        self.score = s = CompletionScore(item.task_id, check.ok, check.problem)
        self.answer = answer = check.answer
        self.claims: list[Claim] = []
        if answer is None:
            return
        s.has_answer, s.answer_chars = True, len(answer.text.strip())
        s.n_empty_claims, s.markup_problems = answer.empty_claims, list(answer.markup_problems)
        self.claims = [c for c in answer.claims if c.cited or c.words >= o.min_uncited_words]
        s.n_claims = len(self.claims)
        s.n_cited_claims = sum(c.cited for c in self.claims)
        s.cited_share = s.n_cited_claims / s.n_claims if s.n_claims else None
        s.n_cited_ids = len(answer.cited_ids)
        s.invalid_ids = list(check.invalid_ids)
        if answer.cited_ids:
            s.id_validity = 1 - len(check.invalid_ids) / len(answer.cited_ids)
            s.invalid_id_rate = 1 - s.id_validity
        if not check.ok and o.format_gate:
            return
        question, response, params = item.question, answer.text.strip(), o.judge_params
        schema = rj.rubric_schema(o.rubric_max_score)
        for rubric in item.rubrics(o):
            self._ask("rubric", rubric, o.prompts.request("rubric", params, schema, question=question,
                                                          response=response, criterion=rubric.criterion))
        if not o.apply_citation_reward:
            return
        for claim in self.claims:
            if claim.cited:
                valid = [i for i in claim.ids if i in item.snippets]
                if not valid:  # only with the gate off: no source to judge against
                    continue
                fields = dict(question=question, claim=claim.text, snippets=rj.snippets_text(valid, item.snippets))
                self._ask("support", claim, o.prompts.request("support", params, rj.SUPPORT_SCHEMA, **fields))
                self._ask("relevance", claim, o.prompts.request("relevance", params, rj.RELEVANCE_SCHEMA, **fields))
            elif o.judge_uncited:
                self._ask("needs_citation", claim, o.prompts.request(
                    "needs_citation", params, rj.NEEDS_CITATION_SCHEMA, question=question, claim=claim.text))

    def _ask(self, kind: str, what: Any, request: ChatRequest) -> None:
        self.jobs.append((kind, what))
        self.requests.append(request)

    def finish(self, answers: Sequence[Answer]) -> CompletionScore:
        s, o = self.score, self.options
        if self.answer is None or (not s.format_ok and o.format_gate):
            s.composite = s.reward = 0.0
            return s
        failures: Counter = Counter()
        claim_values: dict[int, dict[str, Any]] = {}  # id(claim) -> the values its calls gave
        failed_claims: set[int] = set()
        for (kind, what), answer in zip(self.jobs, answers):
            problem = rj.failure(answer)
            if problem:
                failures[problem] += 1
            if kind == "rubric":
                value = None if problem else rj.rubric_value(answer, o.rubric_max_score)
                credit = None if value is None else (value if what.kind == "positive" else 1 - value)
                s.rubrics.append(RubricScore(what.title, what.kind, what.static, value, credit, problem))
            elif problem:
                failed_claims.add(id(what))
            elif kind == "support":
                claim_values.setdefault(id(what), {})["recall"] = rj.support_value(answer, o.support_scores)
            elif kind == "relevance":
                claim_values.setdefault(id(what), {})["precision"] = rj.relevance_value(answer)
            else:  # needs_citation
                claim_values[id(what)] = {"recall": 0.0 if rj.needs_citation_value(answer) else 1.0,
                                          "precision": 1.0}
        s.judge_calls, s.judge_failures = len(answers), sum(failures.values())
        s.failure_kinds = dict(sorted(failures.items()))
        credits = [r.credit for r in s.rubrics if r.credit is not None]
        s.rubric_score = sum(credits) / len(credits) if credits else None
        if o.apply_citation_reward:
            self._citation(claim_values, failed_claims)
        s.composite, s.unscored_reason = self._composite()
        s.reward = None if s.composite is None else s.composite * o.verification_reward
        return s

    def _citation(self, values: dict[int, dict[str, Any]], failed: set[int]) -> None:
        s, o = self.score, self.options
        scored: list[tuple[float, float]] = []  # (recall, precision) per claim
        n_failed = 0
        for claim in self.claims:
            key = id(claim)
            if key in failed:
                n_failed += 1
            elif key in values:
                scored.append((values[key]["recall"], values[key]["precision"]))
            elif claim.cited:  # every id it cites is unknown (only with the gate off): nothing supports it
                scored.append((0.0, 0.0))
            # else: an uncited span, not judged (judge_uncited off)
        if scored:
            s.citation_recall = sum(r for r, _ in scored) / len(scored)
            s.citation_precision = sum(p for _, p in scored) / len(scored)
            s.citation_f1 = sum(_f1(r, p) for r, p in scored) / len(scored)
        elif n_failed:  # every judged claim failed: no citation score
            return
        else:
            s.citation_f1 = 0.0
        s.citation_score = o.citation_f1_weight * s.citation_f1 + o.citation_id_weight * (s.id_validity or 0.0)

    def _composite(self) -> tuple[float | None, str | None]:
        s, o = self.score, self.options
        if s.rubric_score is None:
            if not s.rubrics:
                return None, "rubric: no rubric to score (the task has none and instance_rubrics_only is set)"
            return None, f"rubric: every rubric judge call failed ({_kinds(s.failure_kinds)})"
        if not o.apply_citation_reward:
            return s.rubric_score, None
        if s.citation_score is None:
            return None, f"citation: every claim judge call failed ({_kinds(s.failure_kinds)})"
        w = o.citation_weight
        if o.combine == "convex":
            return (1 - w) * s.rubric_score + w * s.citation_score, None
        return s.rubric_score + w * s.citation_score, None


def _f1(recall: float, precision: float) -> float:
    return 2 * recall * precision / (recall + precision) if recall + precision > 0 else 0.0


def _kinds(kinds: Mapping[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in kinds.items())
