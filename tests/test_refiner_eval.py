"""Refiner evaluation: the metrics on hand-made per-completion rows (pass rates, intervals, a missing score never
counted as 0), the table's rows, and predict -> score (the demo judge on loopback) -> metrics through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from workflow_scripts.eval import refiner as ev
from workflow_scripts.eval import refiner_metrics as rm

pytestmark = pytest.mark.usefixtures("isolated_training_env")


def rubric(title: str, kind: str, score: float | None, static: bool = False) -> dict:
    credit = None if score is None else (score if kind == "positive" else 1 - score)
    return {"title": title, "kind": kind, "static": static, "score": score, "credit": credit,
            "problem": None if score is not None else "http_500"}


def row(model: str = "sft", task: str = "t0", **fields) -> dict:
    """A scored completion as `score` writes it: every field present, the given ones set."""
    base = {name: None for name in ev.SCORE_SCHEMA}
    base.update(model=model, task_id=task, completion="<answer>x</answer>", num_tokens=10, finished=True,
                format_ok=True, has_answer=True, answer_chars=100, judge_calls=0, judge_failures=0, rubrics=[],
                markup_problems=[], invalid_ids=[], failure_kinds=[])
    base.update(fields)
    return base


def metric(rows, key, n_boot=0, level=0.95, seed=1):
    titles = rm.static_titles(rows)
    return rm.model_metrics(rows, titles, n_boot=n_boot, level=level, seed=seed, label="m")[key]


def test_a_positive_rubric_passes_at_the_top_score_a_negative_one_at_zero():
    rows = [
        row(task="a", rubrics=[rubric("p1", "positive", 1.0), rubric("p2", "positive", 0.5),
                               rubric("n1", "negative", 0.0), rubric("n2", "negative", 0.5)]),
        row(task="b", rubrics=[rubric("p1", "positive", 1.0), rubric("n1", "negative", 1.0),
                               rubric("Citation Discipline", "positive", 1.0, static=True),
                               rubric("Off-Query Padding", "negative", 0.0, static=True)]),
        row(task="c", rubrics=[rubric("p1", "positive", 0.0),
                               rubric("Citation Discipline", "positive", 0.5, static=True),
                               rubric("Off-Query Padding", "negative", 0.5, static=True)]),
    ]
    # the static rubrics are kept out of the tasks' own pass rates and get one each
    assert metric(rows, "positive_pass") == {"value": 2 / 4, "ci_low": None, "ci_high": None, "n": 4}
    assert metric(rows, "negative_pass")["value"] == pytest.approx(1 / 3) and metric(rows, "negative_pass")["n"] == 3
    assert metric(rows, rm.STATIC_PREFIX + "Citation Discipline")["value"] == 0.5
    assert metric(rows, rm.STATIC_PREFIX + "Off-Query Padding")["value"] == 0.5
    assert rm.static_titles(rows) == ["Citation Discipline", "Off-Query Padding"]


def test_a_missing_score_is_left_out_never_counted_as_zero():
    rows = [
        row(task="a", composite=0.6, rubric_score=0.8, citation_f1=0.5, judge_calls=4, judge_failures=1,
            rubrics=[rubric("p", "positive", 1.0), rubric("q", "positive", None), rubric("n", "negative", None)]),
        # every judge call failed: no score at all, not zeros
        row(task="b", composite=None, rubric_score=None, citation_f1=None, judge_calls=3, judge_failures=3,
            rubrics=[rubric("p", "positive", None), rubric("n", "negative", None)], unscored_reason="rubric: ..."),
        # failed the format gate: not judged, reward 0 as in training
        row(task="c", composite=0.0, format_ok=False, has_answer=False, answer_chars=0,
            format_problem="no_answer: ..."),
    ]
    assert metric(rows, "rubric_score") == {"value": 0.8, "ci_low": None, "ci_high": None, "n": 1}
    assert metric(rows, "reward")["value"] == pytest.approx(0.3) and metric(rows, "reward")["n"] == 2
    assert metric(rows, "positive_pass")["value"] == 1.0 and metric(rows, "positive_pass")["n"] == 1
    assert metric(rows, "negative_pass") == {"value": None, "ci_low": None, "ci_high": None, "n": 0}
    assert metric(rows, "citation_f1")["value"] == 0.5
    assert metric(rows, "judge_failure_rate")["value"] == pytest.approx(4 / 7)
    assert metric(rows, "format_valid")["value"] == pytest.approx(2 / 3) and metric(rows, "format_valid")["n"] == 3
    assert metric(rows, "answer_chars")["value"] == 100 and metric(rows, "answer_chars")["n"] == 2


def test_intervals_are_percentile_bootstraps_over_tasks():
    rows = [row(task=f"t{i}", composite=float(i % 2), rubric_score=0.5) for i in range(100)]
    stats = metric(rows, "reward", n_boot=2000)
    assert stats["value"] == 0.5 and 0.38 < stats["ci_low"] < 0.43 and 0.57 < stats["ci_high"] < 0.62
    assert metric(rows, "reward", n_boot=2000) == stats  # seeded
    assert metric(rows, "reward", n_boot=2000, seed=2) != stats
    assert metric(rows, "rubric_score", n_boot=500) == {"value": 0.5, "ci_low": 0.5, "ci_high": 0.5, "n": 100}
    # a resample without any value of a metric (here: the one judged task left out) is not a 0 in the interval
    few = [row(task="a", rubric_score=1.0), *(row(task=f"u{i}", rubric_score=None) for i in range(3))]
    assert metric(few, "rubric_score", n_boot=500) == {"value": 1.0, "ci_low": 1.0, "ci_high": 1.0, "n": 1}


def test_cells_show_the_unit_and_a_dash_without_value():
    assert rm.cell({"value": 0.41234, "ci_low": 0.35, "ci_high": 0.47}, "score") == "0.412 [0.350, 0.470]"
    assert rm.cell({"value": 0.5, "ci_low": 0.25, "ci_high": 0.75}, "percent") == "50.0 [25.0, 75.0]"
    assert rm.cell({"value": 203.6, "ci_low": None, "ci_high": None}, "chars") == "204"
    assert rm.cell({"value": None, "ci_low": None, "ci_high": None}, "percent") == "–"


def test_table_rows_put_the_points_in_step_order():
    labels = ["grpo", "step-20", "sft", "reference", "step-10", "base"]
    rows = ev.table_rows(labels, "sft", 30)
    assert [(r["label"], r["step"]) for r in rows] == [("base", None), ("sft", 0), ("step-10", 10),
                                                        ("step-20", 20), ("grpo", 30), ("reference", None)]
    # without SFT the base model is step 0, once
    assert [r["label"] for r in ev.table_rows(["base", "grpo"], "base", 4)] == ["base", "grpo"]
    with pytest.raises(ValueError, match=r"checkpoint step\(s\) \[40\]"):
        ev.table_rows(["sft", "grpo", "step-40"], "sft", 30)
    with pytest.raises(ValueError, match="no scores of the model 'sft'"):
        ev.table_rows(["grpo"], "sft", 30)
    with pytest.raises(ValueError, match="unknown model 'mystery'"):
        ev.table_rows(["sft", "grpo", "mystery"], "sft", 30)


TOOL_OUTPUT = ("<tool_output>\n<snippet id=S1>Ruthenium catalysts reached an ammonia yield of twelve percent at ten "
               "bar.</snippet>\n<snippet id=S2>Iron catalysts need pressures above one hundred bar.</snippet>\n"
               "</tool_output>")
GOOD = "<answer><snippet id=S1>Ruthenium catalysts reached an ammonia yield of twelve percent.</snippet></answer>"


@pytest.fixture
def tasks(tmp_path) -> Path:
    rows = [{"task_id": f"task-{i}", "question": "Which catalyst gives the highest ammonia yield?",
             "reasoning": "Two sources.", "tool_output": TOOL_OUTPUT,
             "positive_rubrics": [{"title": "Yield", "description": "Reports the ammonia yield of ruthenium"}],
             "negative_rubrics": [{"title": "Enzymes", "description": "Speculates about nitrogenase enzymes"}],
             "reference": GOOD if i else None,
             "messages": [{"role": "system", "content": "Refine."}, {"role": "user", "content": TOOL_OUTPUT}]}
            for i in range(3)]
    path = tmp_path / "test.parquet"
    pl.DataFrame(rows).write_parquet(path)
    return path


def predictions(path: Path, label: str, answers: list[str]) -> Path:
    pl.DataFrame({"model": [label] * len(answers), "task_id": [f"task-{i}" for i in range(len(answers))],
                  "completion": answers, "num_tokens": [20] * len(answers), "finished": [True] * len(answers)},
                 schema=ev.PREDICTION_SCHEMA).write_parquet(path)
    return path


def test_score_and_metrics_with_the_demo_judge(tmp_path, tasks):
    sft = predictions(tmp_path / "sft.parquet", "sft", [GOOD, "<answer><snippet id=S9>Made up.</snippet></answer>",
                                                        "no answer block"])
    grpo = predictions(tmp_path / "grpo.parquet", "grpo", [GOOD, GOOD, GOOD])
    step = predictions(tmp_path / "step-2.parquet", "step-2", [GOOD, "x", "x"])
    scores, summary = tmp_path / "scores.parquet", tmp_path / "scores.json"
    judge = {"kind": "demo", "demo": {"policy": "refiner_judge"}}
    ev.main(["score", "--tasks", str(tasks), "--predictions", str(sft), "--predictions", str(step),
             "--predictions", str(grpo), "--references", "--judge-json", json.dumps(judge), "--cache-dir",
             str(tmp_path / "cache"), "--out", str(scores), "--summary", str(summary)])
    table = pl.read_parquet(scores)
    assert table.height == 3 * 3 + 2  # the two tasks with a reference
    first = table.filter(pl.col("model") == "sft").sort("task_id").to_dicts()
    assert [r["format_ok"] for r in first] == [True, False, False]
    assert first[1]["invalid_ids"] == ["S9"] and first[1]["composite"] == 0.0 and first[1]["judge_calls"] == 0
    assert first[0]["judge_calls"] > 0 and first[0]["citation_f1"] == 1.0 and len(first[0]["rubrics"]) == 5
    assert (table.filter(pl.col("model") == "reference")["num_tokens"].is_null()).all()
    record = json.loads(summary.read_text())
    assert "demo stand-in refiner_judge" in record["judge"]["label"] and record["tasks"] == 3
    assert record["models"]["sft"]["judge_calls"] == first[0]["judge_calls"]

    state = tmp_path / "trainer_state.json"
    state.write_text(json.dumps({"global_step": 4, "log_history": []}))
    out = {k: tmp_path / f"metrics.{k}" for k in ("json", "md", "png")}
    ev.main(["metrics", "--scores", str(scores), "--summary", str(summary), "--start-label", "sft",
             "--trainer-state", str(state), "--bootstrap", "50", "--out-json", str(out["json"]),
             "--out-md", str(out["md"]), "--out-png", str(out["png"])])
    metrics = json.loads(out["json"].read_text())
    assert [(p["label"], p["step"]) for p in metrics["points"]] == [("sft", 0), ("step-2", 2), ("grpo", 4),
                                                                    ("reference", None)]
    assert metrics["models"]["sft"]["metrics"]["format_valid"]["value"] == pytest.approx(1 / 3)
    assert metrics["models"]["grpo"]["metrics"]["citation_f1"]["value"] == 1.0
    md = out["md"].read_text()
    assert "demo stand-in refiner_judge" in md and "| 0 | start (sft) | 3 |" in md
    assert "Wrong-Entity Confabulation" in md
    assert out["png"].read_bytes()[:4] == b"\x89PNG"

    # the same answers again: every judge call from the cache, the same scores
    ev.main(["score", "--tasks", str(tasks), "--predictions", str(sft), "--predictions", str(step),
             "--predictions", str(grpo), "--references", "--judge-json", json.dumps(judge), "--cache-dir",
             str(tmp_path / "cache"), "--out", str(tmp_path / "again.parquet"), "--summary", str(tmp_path / "a.json")])
    assert json.loads((tmp_path / "a.json").read_text())["calls"]["requests"] == 0
    assert pl.read_parquet(tmp_path / "again.parquet").equals(table)


def test_score_refuses_answers_to_unknown_tasks(tmp_path, tasks):
    other = predictions(tmp_path / "sft.parquet", "sft", [GOOD] * 4)  # task-3 is not in the table
    with pytest.raises(ValueError, match=r"1 answered task\(s\) are not in the task table, e.g. \['task-3'\]"):
        ev.main(["score", "--tasks", str(tasks), "--predictions", str(other), "--judge-json",
                 json.dumps({"kind": "demo", "demo": {"policy": "refiner_judge"}}), "--cache-dir",
                 str(tmp_path / "cache"), "--out", str(tmp_path / "s.parquet"), "--summary", str(tmp_path / "s.json")])


def test_predict_answers_every_task_seeded(tmp_path, tasks, tiny_model_dir):
    gen = json.dumps({"max_new_tokens": 8, "temperature": 1.0, "dtype": "float32"})
    outs = []
    for name, extra in (("a", []), ("b", ["--batch-size", "1"])):
        out = tmp_path / f"{name}.parquet"
        ev.main(["predict", "--model", str(tiny_model_dir), "--tasks", str(tasks), "--label", "sft", "--gen-json",
                 gen, "--out", str(out), *extra])
        outs.append(pl.read_parquet(out))
    assert outs[0]["task_id"].to_list() == ["task-0", "task-1", "task-2"] and set(outs[0]["model"]) == {"sft"}
    assert outs[0].equals(outs[1])  # the batch size changes speed, not the answers
    ev.main(["predict", "--model", str(tiny_model_dir), "--tasks", str(tasks), "--label", "sft", "--gen-json", gen,
             "--max-tasks", "2", "--out", str(tmp_path / "c.parquet")])
    assert pl.read_parquet(tmp_path / "c.parquet")["task_id"].to_list() == ["task-0", "task-1"]


def test_reward_curves_show_the_logged_components(tmp_path):
    history = [{"step": s, "loss": 0.1, "reward": 1.0, "frac_reward_zero_std": 0.5, "refiner/format_ok": 0.25 * s,
                "refiner/judge_failure_rate": 0.0} for s in (1, 2, 3)]
    state = tmp_path / "trainer_state.json"
    state.write_text(json.dumps({"log_history": history}))
    ev.main(["reward-curves", "--state", str(state), "--out", str(tmp_path / "r.png")])
    assert (tmp_path / "r.png").read_bytes()[:4] == b"\x89PNG"


def test_the_judge_is_recorded_with_its_revision(tmp_path):
    marker = tmp_path / "Qwen--Qwen3.5-35B-A3B.json"
    marker.write_text(json.dumps({"repo_id": "Qwen/Qwen3.5-35B-A3B", "revision": "main", "commit": "0123abcd"}))
    provenance = {"use": "judge", "kind": "vllm", "model": "Qwen/Qwen3.5-35B-A3B", "base_url": None, "stand_in": None}
    record = ev.judge_record({"kind": "vllm"}, provenance, str(marker))
    assert record["revision"] == "0123abcd" and "hub revision 0123abcd" in record["label"]
    external = ev.judge_record({"kind": "external"}, {**provenance, "kind": "external",
                                                      "base_url": "https://judge.example.org/v1"}, None)
    assert external["revision"] is None and "not recorded" in external["label"]
