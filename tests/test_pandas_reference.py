"""The pair-building benchmark's pandas reference (benchmarks/pandas_pairs.py) writes the rows the step writes, under
rules other than the defaults too, and the benchmark's comparison names a split where the two differ."""

from __future__ import annotations

import copy
import shutil

import polars as pl
import pytest

from benchmarks.pair_building import compare
from benchmarks.pandas_pairs import build as reference_build
from workflow_scripts.common.config import schema_defaults
from workflow_scripts.datasets import scijudge_pairs as sp
from workflow_scripts.datasets.synthetic_papers import synthetic_tables

RULES = {  # scijudge.pairs changes: each is a rule of scijudge_splits / pair_rules the reference must follow
    "month window, train_fields, a null and a missing size": {
        "window": "month", "train_fields": ["CS", "Physics"], "test_id": {"sizes": {"CS": None, "Math": 3}}},
    "30-day windows, two pairs per paper": {"window": {"days": 30}, "max_pairs_per_paper": 2},
    "week window, the paper's prompt": {"window": "week", "prompt": "paper"},
}


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    root = tmp_path_factory.mktemp("papers")
    papers, citations = synthetic_tables(20_000, seed=5, dup_share=0.01)
    papers.write_parquet(root / "papers.parquet")
    citations.write_parquet(root / "citations.parquet")
    return root


def scijudge_block(change: dict) -> dict:
    block = copy.deepcopy(schema_defaults()["scijudge"])
    pairs = block["pairs"]
    # enough held-out papers and low enough thresholds that 20,000 papers give every split pairs
    pairs["test_id"].update(held_out_share=0.2, min_diff=8, min_rel_diff=0.3)
    for key, value in change.items():
        if key == "prompt":
            block["prompt"] = value
            block.update({k: block["prompt_variants"][value][k] for k in ("system_prompt", "user_template")})
        elif key == "test_id":
            pairs["test_id"]["sizes"] = value["sizes"]
        else:
            pairs[key] = value
    return block


def build_both(tables, out, block: dict):
    step, reference = out / "step", out / "reference"
    step.mkdir()
    reference.mkdir()
    sources = str(tables / "papers.parquet"), str(tables / "citations.parquet")
    sp.build(*sources, sp.PairConfig.from_block(block), 1234, {s: str(step / f"{s}.parquet") for s in sp.SPLITS})
    reference_build(*sources, block, 1234, str(reference))
    return step, reference


@pytest.mark.parametrize("change", list(RULES.values()), ids=list(RULES))
def test_reference_writes_the_steps_rows(tables, tmp_path, change):
    step, reference = build_both(tables, tmp_path, scijudge_block(change))
    assert all(pl.scan_parquet(step / f"{s}.parquet").select(pl.len()).collect().item() for s in sp.SPLITS)
    assert compare(step, reference, sp.SPLITS) == {s: "same" for s in sp.SPLITS}


def test_comparison_names_the_split_that_differs(tables, tmp_path):
    step = tmp_path / "step"
    step.mkdir()
    sp.build(str(tables / "papers.parquet"), str(tables / "citations.parquet"),
             sp.PairConfig.from_block(scijudge_block({})), 1234, {s: str(step / f"{s}.parquet") for s in sp.SPLITS})
    other = tmp_path / "other"
    shutil.copytree(step, other)
    pl.read_parquet(other / "train.parquet").slice(1).write_parquet(other / "train.parquet")  # a pair lost
    test_id = pl.read_parquet(other / "test_id.parquet")
    other_side = pl.when(pl.col("correct_answer") == "A").then(pl.lit("B")).otherwise(pl.lit("A"))
    first = pl.int_range(pl.len()) == 0
    test_id.with_columns(pl.when(first).then(other_side).otherwise("correct_answer").alias("correct_answer")).write_parquet(
        other / "test_id.parquet")  # one answer on the other side
    assert compare(step, other, sp.SPLITS) == {
        "train": "different pairs",
        "test_id": "same pairs, different rows (order, A/B side, paper attributes or prompts)",
        "test_ood": "same",
    }


def test_reference_refuses_the_caps_it_does_not_reproduce(tables, tmp_path):
    block = scijudge_block({"max_train_pairs": 100})
    with pytest.raises(ValueError, match="max_train_pairs"):
        reference_build(str(tables / "papers.parquet"), str(tables / "citations.parquet"), block, 1234, str(tmp_path))
