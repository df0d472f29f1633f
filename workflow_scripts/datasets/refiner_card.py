"""The Refiner dataset card: where the tasks came from, what made each field, what every step kept and dropped, what
the writer's calls cost, the splits and their audit, and the SFT rows.

    python -m workflow_scripts.datasets.refiner_card --task-counts counts.json --split-stats stats.json \\
        --audit leakage_audit.json --sft-meta train=sft/train.json --sft-meta val=sft/val.json \\
        [--llm-summary llm_summary.json] --out-md README.md --out-json card.json

The JSON holds every input as it is (``tasks``, ``splits``, ``audit`` summary, ``sft`` per split, ``writer``: the
LLM run summary, with the stand-in's description where a demo endpoint answered); the markdown renders it.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any, Mapping, Sequence

from workflow_scripts.common.cli import parser, setup_logging
from workflow_scripts.common.io import write_json_atomic, write_text_atomic
from workflow_scripts.datasets.card_text import md_lines, named_path, read_json

log = logging.getLogger(__name__)


def _tokens(stats: Mapping | None) -> str:
    return "-" if not stats else f"{stats['min']} / {stats['median']} / {stats['max']}"


def audit_summary(audit: Mapping[str, Any]) -> dict:
    duplicates = audit.get("duplicates") or {}
    return {"passed": audit.get("passed"), "per_split": audit.get("papers_per_split"),
            "overlaps": audit.get("overlaps"), "pairs_by_rule": duplicates.get("pairs_by_rule"),
            "cross_split_pairs": len(duplicates.get("cross_split_pairs") or [])}


def _writer_lines(summary: Mapping | None) -> list[str]:
    if not summary:
        return ["No writer endpoint was called: every field comes from the dataset."]
    endpoint = summary.get("endpoint") or {}
    cost = summary.get("cost")
    spent = f"{cost['amount']} {cost['currency']}" if cost else "no price configured"
    lines = [f"Writer `{endpoint.get('model')}` ({endpoint.get('kind')}): {summary.get('requests', 0)} requests "
             f"sent, {summary.get('cache_hits', 0)} answered from the cache, {summary.get('tokens_in', 0)} prompt + "
             f"{summary.get('tokens_out', 0)} completion tokens; invalid answers "
             f"{json.dumps(summary.get('invalid') or {}, sort_keys=True)}, failed "
             f"{json.dumps(summary.get('failures') or {}, sort_keys=True)}, not asked {summary.get('not_asked', 0)}; "
             f"cost: {spent}."]
    stand_in = endpoint.get("stand_in")
    if stand_in:
        lines += ["", f"**Every writer answer is a demo stand-in's** (`{stand_in['name']}` version "
                      f"{stand_in['version']}), a deterministic simulation, not a language model: {stand_in['doc']}"]
    return lines


def markdown(card: Mapping[str, Any]) -> str:
    tasks, splits, audit, sft = card["tasks"], card["splits"], card["audit"], card["sft"]
    lines = ["# Refiner dataset", "",
             f"Tasks {'built from the corpus' if tasks['mode'] == 'corpus' else 'loaded from a published dataset'}"
             f": {tasks['tasks']} kept ({tasks['with_reference']} with a reference refinement), {tasks['rejected']} "
             f"rejected; origins {json.dumps(tasks['origins'], sort_keys=True)}.", "", "## What made each field", ""]
    lines += md_lines(["field", "made by"], sorted(tasks["made_by"].items()))
    lines += ["", "## Rejects and filters", "",
              f"Prompts are counted with the policy tokenizer of `{tasks['policy_model']}` (chat template with the "
              f"generation prompt); {tasks.get('filtered_by_length', 0)} task(s) over {tasks['max_prompt_tokens']} "
              "tokens were filtered out, never cut. Kept prompts, tokens min / median / max: "
              f"{_tokens(tasks.get('prompt_tokens'))}.", ""]
    lines += md_lines(["reason", "rows"], sorted(tasks["rejects"].items()) or [("(none)", 0)])
    lines += ["", "## Writer calls", "", *_writer_lines(card.get("writer")), "", "## Splits (by question)", ""]
    lines += md_lines(["split", "tasks", "question groups", "with reference", "prompt tokens min / median / max"],
                    [(name, s["tasks"], s["groups"], s["with_reference"], _tokens(s["prompt_tokens"]))
                     for name, s in splits["splits"].items()])
    lines += ["", f"Duplicate questions kept together: {splits['groups_of_several']} group(s) of "
                  f"{splits['tasks_in_groups_of_several']} tasks (pairs by rule "
                  f"{json.dumps(splits['duplicates']['pairs_by_rule'], sort_keys=True)}); shares val "
                  f"{splits['val_share']}, test {splits['test_share']}, seed {splits['seed']}.", "",
              f"Leakage audit (task ids, same and near-duplicate questions across splits): "
              f"{'passed' if audit['passed'] else 'FAILED'}.", "", "## SFT rows", ""]
    lines += md_lines(["split", "rows", "max length", "sequence tokens min / median / max", "left out"],
                    [(name, m["rows"], m["max_length"], _tokens(m["sequence_tokens"]),
                      json.dumps(m["rejects"], sort_keys=True)) for name, m in sft.items()])
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--task-counts", required=True, help="refiner_tasks' counts JSON")
    p.add_argument("--split-stats", required=True)
    p.add_argument("--audit", required=True, help="the leakage audit's report")
    p.add_argument("--sft-meta", type=named_path, action="append", required=True, help="SPLIT=meta.json, per split")
    p.add_argument("--llm-summary", default=None, help="the writer's run summary, when it was called")
    p.add_argument("--out-md", required=True)
    p.add_argument("--out-json", required=True)
    args = p.parse_args(argv)
    setup_logging(args.verbose)
    card = {"tasks": read_json(args.task_counts), "splits": read_json(args.split_stats),
            "audit": audit_summary(read_json(args.audit)), "sft": {name: read_json(path) for name, path in args.sft_meta},
            "writer": read_json(args.llm_summary) if args.llm_summary else None}
    write_json_atomic(args.out_json, card)
    write_text_atomic(args.out_md, markdown(card))
    log.info("dataset card written to %s and %s", args.out_md, args.out_json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
