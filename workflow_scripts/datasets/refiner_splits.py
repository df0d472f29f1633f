"""Refiner train / val / test splits by question: one question (or its near duplicate) never in two splits.

    python -m workflow_scripts.datasets.refiner_splits --tasks tasks.parquet --seed 42 --val-share 0.05 \\
        --test-share 0.05 --dedupe-json '{}' --dedupe-seed 1234 --out-dir splits/ --stats stats.json
    python -m workflow_scripts.datasets.leakage_audit --split train=splits/train.parquet ... \\
        --id-columns task_id --title-columns question --dedupe-json '{}' --seed 1234 --out leakage_audit.json

The unit of the split is a question group: the connected components of the duplicate pairs that
:mod:`.dedupe` finds among the tasks' questions (``title-exact``: the same text up to case, accents, punctuation and
spacing; ``title-near``: word-shingle Jaccard similarity at or over ``title_similarity``), a task without a duplicate
being its own group. The leakage audit (:mod:`.leakage_audit`, the pipeline's one audit) then runs the same rules
with the same seed over the written splits, and fails the DAG on a task id or a duplicate question in two splits,
or on an empty split.

Groups are ranked by a seeded hash of their smallest task id and go to test until it holds ``round(test_share *
n)`` of the ``n`` tasks, then to val likewise, the rest to train: a group is never cut, so a split may exceed its
target by one group. Outputs ``train.parquet``, ``val.parquet``, ``test.parquet`` (task rows plus ``split``, in
task_id order) and the stats (per split: tasks, groups, tasks with a reference, prompt token statistics; duplicate
pairs by rule; groups of several tasks; targets; seeds).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import polars as pl

from workflow_scripts.common.cli import json_arg, parser, setup_logging
from workflow_scripts.common.io import write_json_atomic, write_parquet_atomic
from workflow_scripts.datasets.dedupe import DedupeConfig, duplicate_groups, duplicate_pairs
from workflow_scripts.datasets.refiner_schema import read_tasks
from workflow_scripts.datasets.stable_hash import hash_strings

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")


def question_groups(tasks: pl.DataFrame, cfg: DedupeConfig) -> tuple[pl.DataFrame, dict]:
    """(task_id, group) for every task, and the duplicate pairs' counts by rule."""
    papers = tasks.select(pl.col("task_id").alias("arxiv_id"), pl.col("question").alias("title"))
    pairs, counts = duplicate_pairs(papers, cfg)
    groups = duplicate_groups(pairs).rename({"arxiv_id": "task_id"})
    out = tasks.select("task_id").join(groups, on="task_id", how="left").with_columns(
        pl.coalesce("group", "task_id").alias("group"))
    return out, {"pairs_by_rule": counts["pairs_by_rule"], "rules_checked": counts["rules_checked"]}


def assign(tasks: pl.DataFrame, groups: pl.DataFrame, *, seed: int, val_share: float, test_share: float
           ) -> tuple[pl.DataFrame, dict]:
    """The tasks with a ``split`` column, and the targets."""
    sizes = groups.group_by("group").agg(pl.len().alias("tasks"))
    sizes = sizes.with_columns(pl.Series("rank", hash_strings(sizes["group"], seed))).sort("rank", "group")
    n = tasks.height
    target = {"test": round(test_share * n), "val": round(val_share * n)}
    filled = {"test": 0, "val": 0}
    split_of = {}
    for group, count in sizes.select("group", "tasks").iter_rows():
        name = next((s for s in ("test", "val") if filled[s] < target[s]), "train")
        if name != "train":
            filled[name] += count
        split_of[group] = name
    located = groups.with_columns(pl.col("group").replace_strict(split_of, return_dtype=pl.String).alias("split"))
    out = tasks.join(located.select("task_id", "split"), on="task_id", how="left").sort("task_id")
    return out, {"tasks": n, **target, "train": n - target["test"] - target["val"]}


def split_stats(assigned: pl.DataFrame, groups: pl.DataFrame, targets: dict, dedupe: dict, **settings) -> dict:
    def tokens(frame: pl.DataFrame) -> dict | None:
        if frame.is_empty():
            return None
        t = frame["prompt_tokens"]
        return {"min": int(t.min()), "median": int(t.median()), "max": int(t.max())}

    with_group = assigned.join(groups, on="task_id")
    sizes = groups.group_by("group").len()
    return {
        **settings, "targets": targets, "duplicates": dedupe,
        "groups_of_several": int((sizes["len"] > 1).sum()),
        "tasks_in_groups_of_several": int(sizes.filter(pl.col("len") > 1)["len"].sum()),
        "splits": {name: {"tasks": frame.height, "groups": frame["group"].n_unique(),
                          "with_reference": int(frame["reference"].is_not_null().sum()),
                          "prompt_tokens": tokens(frame)}
                   for name in SPLITS for frame in [with_group.filter(pl.col("split") == name)]},
    }


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--tasks", required=True, help="the task table of refiner_tasks")
    p.add_argument("--seed", type=int, required=True, help="ranks the question groups")
    p.add_argument("--val-share", type=float, required=True)
    p.add_argument("--test-share", type=float, required=True)
    p.add_argument("--dedupe-json", type=json_arg, default={}, help="the duplicate rules' config block (JSON)")
    p.add_argument("--dedupe-seed", type=int, required=True, help="MinHash seed: the leakage audit's --seed")
    p.add_argument("--out-dir", type=Path, required=True, help="writes train.parquet, val.parquet, test.parquet")
    p.add_argument("--stats", required=True)
    args = p.parse_args(argv)
    setup_logging(args.verbose)
    if not (0 < args.val_share and 0 < args.test_share and args.val_share + args.test_share < 1):
        p.error("--val-share and --test-share must be > 0 with a sum below 1")
    tasks = read_tasks(args.tasks)
    repeated = tasks.filter(pl.col("task_id").is_duplicated())["task_id"].unique().sort().to_list()
    if repeated:
        raise SystemExit(f"{args.tasks}: task id(s) occur twice: {repeated[:10]}")
    groups, dedupe = question_groups(tasks, DedupeConfig.from_block(args.dedupe_json, args.dedupe_seed))
    settings = {"seed": args.seed, "val_share": args.val_share, "test_share": args.test_share,
                "dedupe_seed": args.dedupe_seed}
    assigned, targets = assign(tasks, groups, seed=args.seed, val_share=args.val_share, test_share=args.test_share)
    stats = split_stats(assigned, groups, targets, dedupe, **settings)
    for name in SPLITS:
        write_parquet_atomic(assigned.filter(pl.col("split") == name), args.out_dir / f"{name}.parquet")
    write_json_atomic(args.stats, stats)
    log.info("splits by question: %s; %d group(s) of duplicate questions (%d tasks)",
             {name: stats["splits"][name]["tasks"] for name in SPLITS}, stats["groups_of_several"],
             stats["tasks_in_groups_of_several"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
