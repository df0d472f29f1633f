"""Benchmark: one Refiner reward computation (a GRPO step's batch) against the demo judge with injected latency.

``--completions`` distinct completions, each judged on ``--rubrics`` rubrics (the task's own plus the 3 static ones)
and ``--cited`` cited claims (support and relevance: 2 calls each) and ``--uncited`` uncited spans (1 call each),
scored by :func:`workflow_scripts.train.rewards.refiner_score.score_batch` through the LLM client against the demo
endpoint (``refiner_judge`` stand-in) holding every answer ``--latency-ms``, at most ``--concurrency`` in flight,
with a fresh cache. The ideal is calls x latency / concurrency; the wall time is split into the judge's
``complete_many`` and the scoring around it (parsing, request building, reading the answers).

    python benchmarks/refiner_reward.py [--completions 256 --rubrics 10 --cited 4 --uncited 1]
                                        [--latency-ms 300 --concurrency 128] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from workflow_scripts.llm.endpoints import open_client  # noqa: E402
from workflow_scripts.train.rewards.refiner_score import RewardOptions, ScoringItem, score_batch  # noqa: E402

STATIC = 3  # config refiner.static_rubrics (schema defaults)
WORDS = ("catalyst ammonia yield pressure ruthenium barium oxide iron cobalt nitride temperature activity support "
         "selectivity conversion surface kinetics promoter stability hydrogen nitrogen reactor").split()


def _sentence(i: int, j: int, n: int = 12) -> str:
    return " ".join(WORDS[(i * 7 + j * 3 + k) % len(WORDS)] for k in range(n)) + f" (case {i}.{j})."


def items(args) -> list[ScoringItem]:
    n_sources = max(args.cited, 1)
    tool_output = "<tool_output>\n" + "\n".join(
        f"<snippet id=S{j}>{_sentence(0, j, 30)}</snippet>" for j in range(n_sources)) + "\n</tool_output>"
    rubrics = [{"title": f"Rubric {r}", "description": _sentence(r, 99, 10)} for r in range(args.rubrics - STATIC)]
    batch = []
    for i in range(args.completions):  # all distinct: no request is asked twice
        claims = [f"<snippet id=S{j}>{_sentence(i, j)}</snippet>" for j in range(args.cited)]
        claims += [f" {_sentence(i, 50 + u)} " for u in range(args.uncited)]
        half = len(rubrics) // 2 + 1  # positive, then negative
        batch.append(ScoringItem.from_row(f"<answer>{''.join(claims)}</answer>", "Which catalyst works best?",
                                          tool_output, rubrics[:half], rubrics[half:], task_id=f"t{i}"))
    return batch


class TimedJudge:
    def __init__(self, client):
        self.client, self.seconds, self.calls = client, 0.0, 0

    def complete_many(self, requests):
        start = time.perf_counter()
        answers = self.client.complete_many(requests)
        self.seconds += time.perf_counter() - start
        self.calls += len(requests)
        return answers


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--completions", type=int, default=256)
    p.add_argument("--rubrics", type=int, default=10, help=f"per completion, the {STATIC} static ones included")
    p.add_argument("--cited", type=int, default=4, help="cited claims per completion (2 judge calls each)")
    p.add_argument("--uncited", type=int, default=1, help="uncited spans per completion (1 judge call each)")
    p.add_argument("--latency-ms", type=float, default=300.0)
    p.add_argument("--concurrency", type=int, default=128)
    p.add_argument("--json", default=None, help="also write the results here")
    args = p.parse_args()
    if args.rubrics <= STATIC + 1:
        p.error(f"--rubrics must exceed {STATIC + 1} (the static rubrics and one of each kind)")
    batch = items(args)
    options = RewardOptions.from_config()
    block = {"kind": "demo", "demo": {"policy": "refiner_judge", "latency_ms": args.latency_ms},
             "limits": {"max_concurrency": args.concurrency}}
    with tempfile.TemporaryDirectory() as cache, open_client("judge", block, cache) as client:
        judge = TimedJudge(client)
        cpu, start = cpu_s(), time.perf_counter()
        scores = score_batch(batch, judge, options)
        wall, cpu = time.perf_counter() - start, cpu_s() - cpu
        summary = client.summary()
    failures = sum(s.judge_failures for s in scores)
    assert failures == 0 and all(s.reward is not None for s in scores), (failures, summary["failures"])
    assert summary["requests"] == judge.calls, "every call should be a fresh request"
    ideal = judge.calls * args.latency_ms / 1000 / args.concurrency
    result = {"completions": args.completions, "calls": judge.calls,
              "calls_per_completion": judge.calls / args.completions, "latency_ms": args.latency_ms,
              "concurrency": args.concurrency, "wall_s": round(wall, 2), "ideal_s": round(ideal, 2),
              "ideal_over_wall": round(ideal / wall, 3), "judge_s": round(judge.seconds, 2),
              "scoring_s": round(wall - judge.seconds, 3), "client_cpu_s": round(cpu, 2),
              "mean_reward": round(sum(s.reward for s in scores) / len(scores), 3)}
    print("| completions | judge calls | wall | ideal (calls x latency / concurrency) | ideal / wall | "
          "in complete_many | scoring around it | client CPU |")
    print("|---|---|---|---|---|---|---|---|")
    print(f"| {args.completions} | {judge.calls:,} ({judge.calls / args.completions:g} each) | {wall:.2f} s | "
          f"{ideal:.2f} s | {ideal / wall:.0%} | {judge.seconds:.2f} s | {wall - judge.seconds:.2f} s | {cpu:.2f} s |")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
