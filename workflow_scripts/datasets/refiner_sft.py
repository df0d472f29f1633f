"""Refiner SFT rows: each task's policy prompt with its reference refinement as the one assistant turn.

    python -m workflow_scripts.datasets.refiner_sft --split splits/train.parquet --model POLICY_MODEL \\
        --max-length 8192 --out sft/train.parquet --meta sft/train.json --rejects sft/train.rejects.jsonl

Rows are TRL's conversational prompt-completion format, as :mod:`workflow_scripts.train.sft` reads it (the loss on
the completion only): ``prompt`` = the task's messages (system + user, from ``refiner.prompt``), ``completion`` =
one assistant message holding the reference refinement (checked by the reward's format gate when the task was
made); plus task_id, split, origin, prompt_tokens and sequence_tokens (prompt + reference through the policy's chat
template, its tokenizer). A task without a reference (``no_reference``) or whose sequence is longer than
``--max-length`` (``too_long``: the SFT trainer would cut it) is a rejects row, counted in the metadata; nothing is
cut.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Sequence

import polars as pl

from workflow_scripts.common.cli import parser, setup_logging
from workflow_scripts.common.io import Rejects, write_json_atomic, write_parquet_atomic
from workflow_scripts.datasets.prompt_tokens import TokenCounter, token_stats
from workflow_scripts.datasets.refiner_schema import MESSAGE, prompt_counter, read_tasks

log = logging.getLogger(__name__)

SFT_SCHEMA: dict[str, pl.DataType] = {
    "task_id": pl.String, "split": pl.String, "origin": pl.String, "prompt": pl.List(MESSAGE),
    "completion": pl.List(MESSAGE), "prompt_tokens": pl.Int64, "sequence_tokens": pl.Int64,
}


def build(tasks: pl.DataFrame, counter: TokenCounter, max_length: int, rejects: Rejects, file: str) -> list[dict]:
    rows = []
    for task in tasks.sort("task_id").iter_rows(named=True):
        if task["reference"] is None:
            rejects.add(file, task["task_id"], "no_reference: the task has no reference refinement")
            continue
        completion = [{"role": "assistant", "content": task["reference"]}]
        tokens = counter.conversation(task["messages"] + completion)
        if tokens > max_length:
            rejects.add(file, task["task_id"], f"too_long: prompt + reference are {tokens} tokens > {max_length} "
                                               "(left out, not cut)")
            continue
        rows.append({"task_id": task["task_id"], "split": task.get("split"), "origin": task["origin"],
                     "prompt": task["messages"], "completion": completion, "prompt_tokens": task["prompt_tokens"],
                     "sequence_tokens": tokens})
    return rows


def metadata(tasks: pl.DataFrame, rows: Sequence[dict], rejects: Rejects, *, model: str, max_length: int) -> dict:
    return {
        "tasks": tasks.height, "rows": len(rows), "rejected": len(rejects), "rejects": rejects.counts(),
        "max_length": max_length, "tokenizer": model,
        "prompt_tokens": token_stats([r["prompt_tokens"] for r in rows]),
        "completion_tokens": token_stats([r["sequence_tokens"] - r["prompt_tokens"] for r in rows]),
        "sequence_tokens": token_stats([r["sequence_tokens"] for r in rows]),
        "per_origin": {o: sum(r["origin"] == o for r in rows) for o in sorted({r["origin"] for r in rows})},
    }


def write_rows(rows: list[dict], meta: dict, out: str | Path) -> None:
    # the counts travel with the data: the parquet's key-value metadata
    write_parquet_atomic(pl.DataFrame(rows, schema=SFT_SCHEMA, orient="row"), out,
                         metadata={"refiner_sft": json.dumps(meta, sort_keys=True)})


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--split", required=True, help="one split of refiner_splits (task rows)")
    p.add_argument("--model", required=True, help="the policy model (its tokenizer and chat template count)")
    p.add_argument("--max-length", type=int, required=True, help="the SFT max_length (refiner.sft_data.max_length)")
    p.add_argument("--out", required=True)
    p.add_argument("--meta", required=True, help="counts and token statistics (JSON)")
    p.add_argument("--rejects", required=True)
    args = p.parse_args(argv)
    setup_logging(args.verbose)
    if args.max_length < 1:
        p.error("--max-length must be positive")
    tasks = read_tasks(args.split)
    rejects = Rejects()
    rows = build(tasks, prompt_counter(args.model), args.max_length, rejects, args.split)
    meta = metadata(tasks, rows, rejects, model=args.model, max_length=args.max_length)
    rejects.write(args.rejects)
    write_json_atomic(args.meta, meta)
    if not rows:
        log.error("no SFT row from %s: %s", args.split, meta)
        return 1
    write_rows(rows, meta, args.out)
    log.info("%d SFT row(s) of %d task(s) -> %s; left out %s", len(rows), tasks.height, args.out, rejects.counts())
    return 0


if __name__ == "__main__":
    sys.exit(main())
