"""Refiner splits by question (planted duplicates stay together, the leakage audit passes and fails as it should), SFT
rows from the references (prompt-completion, no reference and too long left out, never cut) and the dataset card."""

from __future__ import annotations

import json
import random

import polars as pl
import pytest

from workflow_scripts.common.config import schema_defaults
from workflow_scripts.datasets import leakage_audit, refiner_card, refiner_sft, refiner_splits
from workflow_scripts.datasets.dedupe import DedupeConfig
from workflow_scripts.datasets.refiner_schema import TASK_SCHEMA, prompt_messages, task_id, tasks_frame

PROMPT = schema_defaults()["refiner"]["prompt"]
_WORDS = ("lattice gauge boson kernel spectral manifold entropy protein galaxy survey sparse convex diffusion "
          "topology plasma estimator attention transformer quantum citation graph neural bound theorem").split()


def task(i: int, question: str, reference: str | None = "default") -> dict:
    tool = f"<tool_output>\n<snippet id=p{i}-0>Paper {i} measured {question.lower()}</snippet>\n</tool_output>"
    messages = prompt_messages(PROMPT, question, f"Notes on task {i}.", tool)
    ref = f"<answer><snippet id=p{i}-0>Paper {i} measured it.</snippet></answer>" if reference == "default" \
        else reference
    return {"task_id": task_id("corpus", f"p{i}", question), "question": question, "reasoning": f"Notes on task {i}.",
            "tool_output": tool, "snippets": [{"id": f"p{i}-0", "text": f"Paper {i} measured {question.lower()}"}],
            "positive_rubrics": [{"title": "Measures", "description": "Says what was measured."}],
            "negative_rubrics": [], "reference": ref, "origin": "corpus", "messages": messages,
            "prompt_tokens": 100 + i}


def planted_tasks() -> tuple[pl.DataFrame, list[tuple[str, ...]]]:
    """60 distinct questions plus, for 8 of them, a duplicate written differently (case, spacing, punctuation) and
    for 4 more a near duplicate (one word changed in a long question)."""
    rng = random.Random(5)
    questions = [" ".join(rng.sample(_WORDS, 9)).capitalize() + "?" for _ in range(60)]
    rows = [task(i, q) for i, q in enumerate(questions)]
    groups = []
    for k in range(8):
        twin = "  " + questions[k].upper().replace("?", " ?!") + " "
        rows.append(task(100 + k, twin))
        groups.append((questions[k], twin))
    for k in range(8, 12):
        words = questions[k].rstrip("?").split()
        near = " ".join(words + ["in", "recent", "large", "scale", "surveys", "of", "the", "field"]) + "?"
        near_twin = " ".join(words + ["in", "recent", "large", "scale", "surveys", "of", "this", "field"]) + "?"
        rows[k] = task(k, near)
        rows.append(task(200 + k, near_twin))
        groups.append((near, near_twin))
    return tasks_frame(rows), groups


@pytest.fixture(scope="module")
def split_dir(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("refiner_splits")
    tasks, groups = planted_tasks()
    tasks.write_parquet(tmp / "tasks.parquet")
    assert refiner_splits.main(["--tasks", str(tmp / "tasks.parquet"), "--seed", "42", "--val-share", "0.2",
                                "--test-share", "0.25", "--dedupe-seed", "1234", "--out-dir", str(tmp / "splits"),
                                "--stats", str(tmp / "stats.json")]) == 0
    return tmp, tasks, groups


def audit_args(tmp, splits: dict) -> list[str]:
    return [*(a for name, path in splits.items() for a in ("--split", f"{name}={path}")), "--id-columns", "task_id",
            "--title-columns", "question", "--seed", "1234", "--out", str(tmp / "audit.json")]


def test_planted_duplicates_share_a_split_and_the_audit_passes(split_dir):
    tmp, tasks, groups = split_dir
    splits = {name: pl.read_parquet(tmp / "splits" / f"{name}.parquet") for name in refiner_splits.SPLITS}
    split_of = {q: name for name, frame in splits.items() for q in frame["question"]}
    assert len(split_of) == tasks.height and sum(f.height for f in splits.values()) == tasks.height
    for group in groups:
        assert len({split_of[q] for q in group}) == 1, group
    stats = json.loads((tmp / "stats.json").read_text())
    assert stats["duplicates"]["pairs_by_rule"] == {"title-exact": 8, "title-near": 4}
    assert stats["groups_of_several"] == 12 and stats["tasks_in_groups_of_several"] == 24
    assert stats["splits"]["test"]["tasks"] >= stats["targets"]["test"] == round(0.25 * tasks.height)
    assert all(set(frame["split"]) == {name} for name, frame in splits.items())
    paths = {name: tmp / "splits" / f"{name}.parquet" for name in refiner_splits.SPLITS}
    assert leakage_audit.main(audit_args(tmp, paths)) == 0
    assert json.loads((tmp / "audit.json").read_text())["passed"]


def test_without_the_question_groups_the_same_shares_would_leak(split_dir):
    _, tasks, groups = split_dir
    alone = tasks.select("task_id", pl.col("task_id").alias("group"))
    assigned, _ = refiner_splits.assign(tasks, alone, seed=42, val_share=0.2, test_share=0.25)
    split_of = dict(zip(assigned["question"], assigned["split"]))
    assert any(len({split_of[q] for q in group}) > 1 for group in groups)  # the grouping is what prevents it
    grouped, _ = refiner_splits.question_groups(tasks, DedupeConfig.from_block({}, 1234))
    assert grouped["group"].n_unique() == tasks.height - len(groups)


def test_the_audit_fails_on_a_question_moved_into_another_split(split_dir, tmp_path):
    tmp, _, groups = split_dir
    splits = {name: pl.read_parquet(tmp / "splits" / f"{name}.parquet") for name in refiner_splits.SPLITS}
    home = next(name for name, f in splits.items() if groups[0][0] in f["question"].to_list())
    other = next(name for name in refiner_splits.SPLITS if name != home)
    moved = splits[home].filter(pl.col("question") == groups[0][1])
    splits[home] = splits[home].filter(pl.col("question") != groups[0][1])
    splits[other] = pl.concat([splits[other], moved])
    paths = {}
    for name, frame in splits.items():
        paths[name] = tmp_path / f"{name}.parquet"
        frame.write_parquet(paths[name])
    assert leakage_audit.main(audit_args(tmp_path, paths)) == 1


# ---------------------------------------------------------------------------------------------------- SFT rows, card


def test_sft_rows_hold_the_prompt_and_the_reference(split_dir, tiny_model_dir, tmp_path):
    _, tasks, _ = split_dir
    rows = [task(300, "Which kernel bounds hold?", reference=None)] + [task(301 + i, f"Question {i} on gauge bosons?")
                                                                     for i in range(4)]
    rows[-1]["reference"] = "<answer><snippet id=p304-0>" + "long " * 3000 + "</snippet></answer>"
    frame = tasks_frame(rows).with_columns(pl.lit("train").alias("split"))
    frame.write_parquet(tmp_path / "train.parquet")
    args = ["--split", str(tmp_path / "train.parquet"), "--model", str(tiny_model_dir), "--max-length", "1500",
            "--out", str(tmp_path / "sft.parquet"), "--meta", str(tmp_path / "sft.json"), "--rejects",
            str(tmp_path / "sft.rejects.jsonl")]
    assert refiner_sft.main(args) == 0
    sft = pl.read_parquet(tmp_path / "sft.parquet")
    meta = json.loads((tmp_path / "sft.json").read_text())
    assert sft.height == meta["rows"] == 3 and meta["rejects"] == {"no_reference": 1, "too_long": 1}
    first = sft.row(0, named=True)
    source = next(r for r in rows if r["task_id"] == first["task_id"])
    assert first["prompt"] == source["messages"] and [m["role"] for m in first["prompt"]] == ["system", "user"]
    assert first["completion"] == [{"role": "assistant", "content": source["reference"]}]
    assert first["split"] == "train" and first["sequence_tokens"] > first["prompt_tokens"]
    assert (sft["sequence_tokens"] <= 1500).all()
    assert json.loads(pl.read_parquet_metadata(tmp_path / "sft.parquet")["refiner_sft"])["rows"] == 3
    rejects = [json.loads(line) for line in (tmp_path / "sft.rejects.jsonl").read_text().splitlines()]
    assert {r["record"]: r["reason"].split(":")[0] for r in rejects} == {rows[0]["task_id"]: "no_reference",
                                                                         rows[-1]["task_id"]: "too_long"}


def test_the_card_renders_counts_rejects_splits_and_sft(split_dir, tmp_path):
    tmp, _, _ = split_dir
    counts = {"mode": "corpus", "tasks": 72, "with_reference": 70, "origins": {"corpus": 72}, "rejected": 3,
              "rejects": {"prompt_too_long": 2, "rubrics_invalid": 1}, "filtered_by_length": 2,
              "max_prompt_tokens": 990, "policy_model": "tiny", "prompt_tokens": {"min": 1, "median": 2, "max": 3},
              "made_by": {"question": "demo stand-in refiner_writer (demo/refiner_writer@1)"}}
    summary = {"endpoint": {"model": "demo/refiner_writer@1", "kind": "demo",
                            "stand_in": {"name": "refiner_writer", "version": "1", "doc": "A documented simulation."}},
               "requests": 10, "cache_hits": 2, "tokens_in": 100, "tokens_out": 50, "invalid": {"schema": 1}}
    sft = {"rows": 30, "max_length": 8192, "rejects": {"no_reference": 2},
           "sequence_tokens": {"min": 5, "median": 6, "max": 7}}
    (tmp_path / "counts.json").write_text(json.dumps(counts))
    (tmp_path / "llm.json").write_text(json.dumps(summary))
    (tmp_path / "sft.json").write_text(json.dumps(sft))
    (tmp_path / "audit.json").write_text(json.dumps({"passed": True, "papers_per_split": {"train": 1}}))
    assert refiner_card.main(["--task-counts", str(tmp_path / "counts.json"), "--split-stats", str(tmp / "stats.json"),
                              "--audit", str(tmp_path / "audit.json"), "--sft-meta", f"train={tmp_path / 'sft.json'}",
                              "--llm-summary", str(tmp_path / "llm.json"), "--out-md", str(tmp_path / "README.md"),
                              "--out-json", str(tmp_path / "card.json")]) == 0
    text = (tmp_path / "README.md").read_text()
    assert "| prompt_too_long | 2 |" in text and "2 task(s) over 990 tokens were filtered out, never cut" in text
    assert "demo stand-in's" in text and "A documented simulation." in text and "Leakage audit" in text
    assert "| train | 30 | 8192 | 5 / 6 / 7 |" in text
    card = json.loads((tmp_path / "card.json").read_text())
    assert card["tasks"] == counts and card["writer"]["requests"] == 10 and card["audit"]["passed"] is True


def test_the_task_schema_is_the_interface():
    assert list(TASK_SCHEMA) == ["task_id", "question", "reasoning", "tool_output", "snippets", "positive_rubrics",
                                 "negative_rubrics", "reference", "origin", "messages", "prompt_tokens"]
