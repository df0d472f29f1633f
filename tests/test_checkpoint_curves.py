"""Accuracy against GRPO step: the table and chart from hand-made predictions, and the fan-out of one evaluation per
saved checkpoint in the workflow (a dry run)."""

from __future__ import annotations

import json
import re

import polars as pl
import pytest

from tests.fixtures_models import make_pairs
from tests.workflow_runner import planned_jobs, snakemake, write_config
from workflow_scripts.eval import scijudge as sj
from workflow_scripts.eval import scijudge_curves as curves

FIELDS = ["CS", "Math", "Physics", "Others"]
PER_FIELD = 6


def _pairs(split, seed):
    fields = [f for f in FIELDS for _ in range(PER_FIELD)]
    return make_pairs(len(fields), seed=seed, split=split).with_columns(paper_a_category=pl.Series(fields))


PAIRS = pl.concat([_pairs("test_id", 0), _pairs("test_ood", 1)])


def _predictions(tmp_path, step, right_per_field):
    """Predictions of one point: in every split, the first ``right_per_field[field]`` pairs of a field have both
    orders right, the rest answer the wrong letter in the swapped order."""
    flip = {"A": "B", "B": "A"}
    rank = PAIRS.with_row_index("i").select(pl.col("i").rank("ordinal").over("split", "paper_a_category") - 1)["i"]
    right = [r < right_per_field[f] for r, f in zip(rank, PAIRS["paper_a_category"])]
    orig = PAIRS["correct_answer"].to_list()
    swap = [flip[a] if ok else a for a, ok in zip(orig, right)]  # the swapped order expects the other letter
    outputs = {o: {"raw": [f"<answer>{a}</answer>" for a in ans], "answer": ans} for o, ans in
               (("orig", orig), ("swap", swap))}
    path = tmp_path / f"step-{step}.parquet"
    sj.build_predictions(PAIRS, f"step {step}", outputs).write_parquet(path)
    return str(path)


@pytest.fixture
def points(tmp_path):
    start = _predictions(tmp_path, 0, {"CS": 0, "Math": 0, "Physics": 0, "Others": 0})
    mid = _predictions(tmp_path, 2, {"CS": 3, "Math": 1, "Physics": 0, "Others": 6})
    final = _predictions(tmp_path, 4, {"CS": 6, "Math": 3, "Physics": 6, "Others": 6})
    state = tmp_path / "trainer_state.json"
    state.write_text(json.dumps({"global_step": 4}))
    return start, mid, final, state


def _main(tmp_path, points, *extra):
    start, mid, final, state = points
    curves.main(["--start", start, "--start-label", "sft", "--checkpoint", f"2={mid}", "--final", final,
                 "--trainer-state", str(state), "--out-json", str(tmp_path / "c.json"), "--out-md",
                 str(tmp_path / "c.md"), "--out-png", str(tmp_path / "c.png"), "--bootstrap", "200", *extra])
    return json.loads((tmp_path / "c.json").read_text()), (tmp_path / "c.md").read_text()


def test_accuracy_per_field_and_split_against_step(tmp_path, points):
    metrics, table = _main(tmp_path, points)
    assert [(p["step"], p["model"]) for p in metrics["points"]] == [(0, "start (sft)"), (2, "checkpoint"),
                                                                     (4, "final (grpo)")]
    for split in ("test_id", "test_ood"):
        acc = {step: {f: metrics["models"][step]["splits"][split]["by_field"][f]["value"] for f in FIELDS}
               for step in ("0", "2", "4")}
        assert acc == {"0": {"CS": 0.0, "Math": 0.0, "Physics": 0.0, "Others": 0.0},
                       "2": {"CS": 0.5, "Math": 1 / 6, "Physics": 0.0, "Others": 1.0},
                       "4": {"CS": 1.0, "Math": 0.5, "Physics": 1.0, "Others": 1.0}}
        mid = metrics["models"]["2"]["splits"][split]
        assert mid["overall"]["value"] == pytest.approx(10 / 24)
        assert mid["by_field"]["CS"]["ci_low"] < 0.5 < mid["by_field"]["CS"]["ci_high"]  # a band, not a point
        assert mid["delta_vs_reference"]["overall"]["value"] == pytest.approx(10 / 24)  # against step 0
    assert "## in-domain (test_id)" in table and "## temporal OOD (test_ood)" in table
    assert "| step | model | n | CS | Math | Physics | Others | overall | unparseable |" in table
    assert re.search(r"\| 2 \| checkpoint \| 24 \| 50\.0 \[\d+\.\d, \d+\.\d\] \| 16\.7 \[", table), table
    png = (tmp_path / "c.png").read_bytes()
    assert png.startswith(b"\x89PNG") and png == curves.curve_chart(metrics)  # the same data give the same bytes


def test_a_checkpoint_at_or_after_the_final_step_is_refused(tmp_path, points):
    start, mid, final, state = points
    state.write_text(json.dumps({"global_step": 2}))
    with pytest.raises(SystemExit, match=r"checkpoint step\(s\) \[2\] are not between step 0 .* final step 2"):
        _main(tmp_path, points)


def test_a_step_given_twice_is_refused(tmp_path, points):
    with pytest.raises(SystemExit, match="step 2 given twice"):
        _main(tmp_path, points, "--checkpoint", f"2={points[1]}")


# ---- the workflow: one evaluation per published checkpoint model


def _fake_training(workdir, config, steps):
    """Every output up to and including GRPO, as empty files (and directories for the directory() outputs, which are
    the extensionless ones), published checkpoint models at ``steps``, then marked up to date in DAG order."""
    dry = snakemake(workdir, "-n", "scijudge_model", config=config)
    outputs = {p.strip() for line in dry.stdout.splitlines() if line.strip().startswith("output: ")
               for p in line.strip().removeprefix("output: ").split(",")}
    for name in outputs:
        path = workdir / name
        if path.suffix:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()
        else:
            path.mkdir(parents=True, exist_ok=True)
    for step in steps:
        (workdir / f"results/scijudge/grpo/checkpoint_models/step-{step}").mkdir()
    snakemake(workdir, "--touch", "--cores", "1", "scijudge_model", config=config)


def test_every_published_checkpoint_is_evaluated_and_joins_the_curve(tmp_path):
    cfg = write_config(tmp_path, scijudge={"grpo": {"trainer": {"max_steps": 6, "save_steps": 2}}})
    before = planned_jobs(snakemake(tmp_path, "-n", "scijudge_eval", config=cfg))
    # before GRPO has run, which checkpoints it saves is unknown: the curve waits for it (a checkpoint rule)
    assert "scijudge_checkpoint_curves" in before and "scijudge_eval_checkpoint" not in before

    _fake_training(tmp_path, cfg, steps=(2, 4))  # what a run of 6 steps saving every 2 publishes (6 is final/)
    # mtime only: the faked tree has no record of params or code to compare
    dry = snakemake(tmp_path, "-n", "-p", "scijudge_eval", "--rerun-triggers", "mtime", config=cfg)
    planned = planned_jobs(dry)
    assert planned["scijudge_eval_checkpoint"] == 2 and "scijudge_grpo" not in planned
    jobs = re.split(r"^\[.*\]$", dry.stdout, flags=re.M)  # each job's listing starts with a time stamp line
    evals = {re.search(r"wildcards: model=(\S+)", j).group(1): j for j in jobs if "rule scijudge_eval_checkpoint:" in j}
    assert sorted(evals) == ["step-2", "step-4"]
    curve = next(j for j in jobs if "rule scijudge_checkpoint_curves:" in j)
    assert ("input: results/scijudge/eval/predictions/sft.parquet, "
            "results/scijudge/eval/predictions/checkpoints/step-2.parquet, "
            "results/scijudge/eval/predictions/checkpoints/step-4.parquet, "
            "results/scijudge/eval/predictions/grpo.parquet, results/scijudge/grpo/trainer_state.json") in curve
    assert "--checkpoint 2=results/scijudge/eval/predictions/checkpoints/step-2.parquet --checkpoint 4=" in curve

    # the metrics table's own predict call (every param of scijudge_eval_model), on the checkpoint's published model
    def predict(job):
        return re.search(r"python -m workflow_scripts\.eval\.scijudge predict .*", job).group(0)

    sft = next(j for j in jobs if "rule scijudge_eval_model:" in j and "wildcards: model=sft" in j)
    command = predict(evals["step-4"])
    assert "--model results/scijudge/grpo/checkpoint_models/step-4 " in command
    # ... on the main test pairs only (the model's own job also answers the OOD sets, --also-json)
    assert "--also-json" not in command
    main_only = " ".join(re.sub(r" --also-json '.*?'(?= --also-json| >)", "", predict(sft)).split())
    assert " ".join(command.replace("grpo/checkpoint_models/step-4", "sft_warmup/final").replace(
        "predictions/checkpoints/step-4", "predictions/sft").replace(
        "scijudge_eval_checkpoint/step-4", "scijudge_eval_model/sft").split()) == main_only


def test_the_curve_can_be_turned_off(tmp_path):
    cfg = write_config(tmp_path, scijudge={"eval": {"checkpoints": {"enabled": False}}})
    dry = snakemake(tmp_path, "-n", "-p", "scijudge_eval", config=cfg)
    assert "scijudge_checkpoint_curves" not in planned_jobs(dry)
    assert "checkpoint_models" not in dry.stdout and "--keep-checkpoint-models" not in dry.stdout
