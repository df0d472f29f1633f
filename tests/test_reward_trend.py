"""GRPO's reward trend (last quarter minus first, bootstrap interval) from a trainer state's log_history."""

import json

import pytest

from workflow_scripts.train import curves, reward_trend


def _history(rewards):
    # as TRL logs it: one entry per step, then the run summary without a reward
    return [{"step": i + 1, "loss": 0.0, "reward": r} for i, r in enumerate(rewards)] + [
        {"step": len(rewards), "train_runtime": 1.0}]


def test_difference_of_the_quarters_with_an_interval_around_it():
    rewards = [0.25, 0.5, 0.25, 0.5, 0.4, 0.6, 0.5, 0.5, 0.6, 0.7, 0.5, 0.8, 0.75, 1.0, 0.75, 0.5]
    trend = reward_trend.reward_trend(_history(rewards))
    assert trend["logged_steps"] == 16 and trend["steps_per_quarter"] == 4
    assert trend["first_quarter"] == {"steps": [1, 4], "mean": 0.375}
    assert trend["last_quarter"] == {"steps": [13, 16], "mean": 0.75}
    diff = trend["difference"]
    assert diff["value"] == pytest.approx(0.375)
    assert 0 < diff["ci_low"] < diff["value"] < diff["ci_high"] < 0.75
    assert trend["summary"].startswith("last - first quarter: +0.375 [")
    assert reward_trend.reward_trend(_history(rewards)) == trend  # seeded: the figure and the JSON agree


def test_flat_rewards_give_an_interval_that_holds_zero():
    rewards = [0.5, 0.25, 0.75, 0.5] * 4
    diff = reward_trend.reward_trend(_history(rewards))["difference"]
    assert diff["value"] == 0 and diff["ci_low"] < 0 < diff["ci_high"]


def test_too_few_steps():
    short = reward_trend.reward_trend(_history([0.5, 1.0, 0.0]))
    assert short["difference"] is None and "fewer than 4" in short["summary"]
    # one step per quarter: a difference, but nothing to resample
    four = reward_trend.reward_trend(_history([0.0, 0.5, 0.5, 1.0]))
    assert four["difference"] == {"value": 1.0, "ci_low": None, "ci_high": None} and four["bootstrap"] == 0


def test_cli_writes_the_json_and_the_curves_show_it(tmp_path, capsys):
    state = tmp_path / "trainer_state.json"
    rewards = [0.0, 0.25, 0.25, 0.5, 0.5, 0.5, 0.75, 1.0]
    state.write_text(json.dumps({"log_history": _history(rewards)}))
    out = tmp_path / "reward_trend.json"
    reward_trend.main(["--state", str(state), "--out", str(out)])
    written = json.loads(out.read_text())
    assert written["difference"]["value"] == pytest.approx(0.75)
    assert written["summary"] in capsys.readouterr().out
    png = curves.plot_log_history(_history(rewards), tmp_path / "curves.png")
    assert png.read_bytes().startswith(b"\x89PNG")
    with pytest.raises(ValueError, match="no log_history"):
        (tmp_path / "bad.json").write_text("{}")
        reward_trend.main(["--state", str(tmp_path / "bad.json"), "--out", str(out)])
