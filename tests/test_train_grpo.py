"""GRPO on the tiny model: through the launcher (accelerate launch, CPU config), resume, bad inputs."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from workflow_scripts.train import curves, grpo

pytestmark = pytest.mark.usefixtures("isolated_training_env")
REPO = Path(__file__).resolve().parents[1]
# tiny and fast: 2 prompts x 2 generations of 16 tokens per step; beta > 0 so a KL is computed and logged
CPU_BLOCK = {
    "loss_type": "dapo", "beta": 0.03, "learning_rate": 1e-4, "num_generations": 2, "per_device_train_batch_size": 2,
    "gradient_accumulation_steps": 1, "max_completion_length": 16, "temperature": 1.0, "top_p": 0.85,
    "epsilon": 0.2, "epsilon_high": 0.25, "logging_steps": 1, "save_steps": 1, "seed": 1234,
    "gradient_checkpointing": False, "use_cpu": True, "bf16": False, "report_to": ["tensorboard"],
    "rewards": {"correctness": 1.0, "format": 0.0},
}


def _args(model, train, out, **overrides):
    block = {**CPU_BLOCK, **overrides}
    return ["--model", str(model), "--train", str(train), "--output-dir", str(out), "--reward", "scijudge",
            "--config-json", json.dumps(block)]


def _state(path):
    return json.loads(Path(path).read_text())


def _launch(model, train, out, **overrides):
    """The GRPO entry point through the launcher (accelerate launch, CPU config), as every training rule runs it."""
    return [sys.executable, "-m", "workflow_scripts.train.launch", "--accelerate-config",
            "workflow_scripts/train/accelerate/cpu.yaml", "--gpus-per-node", "0", "--",
            "-m", "workflow_scripts.train.grpo", *_args(model, train, out, **overrides)]


def _run(cmd):
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc


def _weights(run_dir):
    return load_file(Path(run_dir) / "final" / "model.safetensors")


def _same_weights(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _steps(state):
    return [e["step"] for e in state["log_history"] if "loss" in e]


@pytest.mark.slow
def test_grpo_training_run_contract(tmp_path, tiny_model_dir, scijudge_pairs_parquet):
    """Interrupted runs resume and end exactly at the budget with the uninterrupted run's weights; a finished run
    rerun (forced, a logging change, --rerun-incomplete) is finalized without another step; another budget restarts."""
    budget = {"max_steps": 4, "save_steps": 2}
    ref = tmp_path / "uninterrupted"
    proc = _run(_launch(tiny_model_dir, scijudge_pairs_parquet, ref, **budget))
    assert "accelerate_cli launch --config_file" in proc.stderr  # really went through accelerate launch
    for name in ("checkpoint-2", "checkpoint-4", "final", "trainer_state.json", "curves.png", "tensorboard"):
        assert (ref / name).exists(), name
    first = _state(ref / "trainer_state.json")
    assert first["global_step"] == 4 and _steps(first) == [1, 2, 3, 4]
    logged = {k for e in first["log_history"] for k in e}
    assert {"loss", "reward", "kl", "rewards/correctness_reward/mean", "rewards/format_reward/mean"} <= logged
    model = AutoModelForCausalLM.from_pretrained(ref / "final")
    tok = AutoTokenizer.from_pretrained(ref / "final")
    assert model.config.model_type == "qwen3" and tok.chat_template

    # killed for real (SIGKILL to the launcher's process group, as a preempted job) once checkpoint-2 is complete
    out = tmp_path / "grpo"
    cmd = _launch(tiny_model_dir, scijudge_pairs_parquet, out, **budget)
    victim = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while not (out / "checkpoint-2" / "trainer_state.json").exists():
            assert victim.poll() is None and time.monotonic() < deadline, "training ended before checkpoint-2"
            time.sleep(0.1)
    finally:
        os.killpg(victim.pid, signal.SIGKILL)
        victim.wait()
    assert not (out / "final").exists() and not (out / "checkpoint-4").exists()  # the kill came before the end
    proc = _run(cmd)
    assert "resuming from" in proc.stderr and "checkpoint-2" in proc.stderr
    resumed = _state(out / "trainer_state.json")
    assert resumed["global_step"] == 4 and _steps(resumed) == [1, 2, 3, 4]
    assert _same_weights(_weights(out), _weights(ref)), "a resumed run must end with the uninterrupted run's weights"

    # a finished run rerun: Snakemake removed its outputs (forcerun, a changed logging key, --rerun-incomplete);
    # the checkpoint at the budget is finalized as it is, never trained one step further
    shutil.rmtree(out / "final")
    (out / "trainer_state.json").unlink()
    proc = _run(_launch(tiny_model_dir, scijudge_pairs_parquet, out, **budget, logging_steps=2))
    assert "at the budget (step 4 of 4)" in proc.stderr, proc.stderr[-3000:]
    assert "training starts at step 0" not in proc.stderr
    again = _state(out / "trainer_state.json")
    assert again["global_step"] == 4 and _steps(again) == [1, 2, 3, 4]
    assert not (out / "checkpoint-5").exists()
    assert _same_weights(_weights(out), _weights(ref))

    # another budget is another run (the schedule depends on it): old checkpoints go, training starts at step 0
    proc = _run(_launch(tiny_model_dir, scijudge_pairs_parquet, out, max_steps=2, save_steps=2))
    assert "removed 2 checkpoint(s)" in proc.stderr and "config.max_steps" in proc.stderr, proc.stderr[-3000:]
    shorter = _state(out / "trainer_state.json")
    assert shorter["global_step"] == 2 and _steps(shorter) == [1, 2]
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-2"]

    png = tmp_path / "curves.png"
    curves.main(["--state", str(out / "trainer_state.json"), "--out", str(png)])
    assert png.read_bytes().startswith(b"\x89PNG")


def test_incomplete_checkpoint_is_skipped(tmp_path):
    from workflow_scripts.train.common import last_checkpoint

    assert last_checkpoint(tmp_path / "nothing") is None
    for step, complete in ((1, True), (2, True), (10, False)):
        (tmp_path / f"checkpoint-{step}").mkdir()
        if complete:
            (tmp_path / f"checkpoint-{step}" / "trainer_state.json").write_text("{}")
    assert last_checkpoint(tmp_path) == str(tmp_path / "checkpoint-2")  # numeric order, killed save ignored


def test_training_kwargs_machine_defaults(tmp_path, monkeypatch):
    from workflow_scripts.train.common import training_kwargs

    kw = training_kwargs({"report_to": ["tensorboard", "wandb"]}, tmp_path)
    assert kw["report_to"] == ["tensorboard"]  # W&B only with a key
    assert kw["use_cpu"] is True and kw["bf16"] is False  # no GPU here
    assert kw["output_dir"] == str(tmp_path)
    assert os.environ["TENSORBOARD_LOGGING_DIR"] == str(tmp_path / "tensorboard")  # fixed dir: resume appends
    monkeypatch.setenv("WANDB_API_KEY", "not-a-real-key")
    assert training_kwargs({"report_to": ["tensorboard", "wandb"]}, tmp_path)["report_to"] == ["tensorboard", "wandb"]
    assert training_kwargs({"report_to": "none"}, tmp_path)["report_to"] == []


def test_missing_model(tmp_path, scijudge_pairs_parquet):
    with pytest.raises(FileNotFoundError, match="no such directory"):
        grpo.main(_args(tmp_path / "no" / "model", scijudge_pairs_parquet, tmp_path / "o", max_steps=1))
    assert not (tmp_path / "o").exists()


def test_model_without_chat_template(tmp_path, tiny_model_dir, scijudge_pairs_parquet):
    bare = tmp_path / "bare"
    AutoModelForCausalLM.from_pretrained(tiny_model_dir).save_pretrained(bare)
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    tok.chat_template = None
    tok.save_pretrained(bare)
    (bare / "chat_template.jinja").unlink(missing_ok=True)
    with pytest.raises(ValueError, match="no chat template"):
        grpo.main(_args(bare, scijudge_pairs_parquet, tmp_path / "o", max_steps=1))
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    "overrides, error, match",
    [
        ({"learning_rat": 1e-5}, ValueError, r"unknown config key 'learning_rat'.*learning_rate"),
        ({"output_dir": "x"}, ValueError, "--output-dir"),
        ({"reward_weights": [1.0]}, ValueError, "by name in 'rewards'"),
        ({"rewards": {"corectness": 1.0}}, ValueError, "corectness"),
        ({"use_vllm": True}, RuntimeError, "vllm is not importable"),
        ({"num_generations": 3}, ValueError, "divisible by num_generations"),
    ],
)
def test_bad_config(tmp_path, tiny_model_dir, scijudge_pairs_parquet, overrides, error, match):
    with pytest.raises(error, match=match):
        grpo.main(_args(tiny_model_dir, scijudge_pairs_parquet, tmp_path / "o", max_steps=1, **overrides))


def test_bad_dataset(tmp_path, tiny_model_dir, scijudge_pairs_parquet):
    df = pl.read_parquet(scijudge_pairs_parquet)
    bad = tmp_path / "bad.parquet"
    df.with_columns(pl.when(pl.col("pair_id") == "train-00003").then(pl.lit("C")).otherwise(pl.col("correct_answer"))
                    .alias("correct_answer")).write_parquet(bad)
    with pytest.raises(ValueError, match=r"bad.parquet: correct_answer not in \{A, B\}.*train-00003"):
        grpo.main(_args(tiny_model_dir, bad, tmp_path / "o", max_steps=1))
    df.drop("correct_answer").write_parquet(bad)
    with pytest.raises(ValueError, match=r"missing column\(s\) \['correct_answer'\]"):
        grpo.main(_args(tiny_model_dir, bad, tmp_path / "o", max_steps=1))


def test_help():
    for module in ("grpo", "sft", "launch", "curves", "tiny_model"):
        out = subprocess.run([sys.executable, "-m", f"workflow_scripts.train.{module}", "--help"], cwd=REPO,
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0 and "usage" in out.stdout, (module, out.stderr[-2000:])


def test_curves_series_selection(tmp_path):
    history = [
        {"step": 1, "loss": 0.5, "reward": 0.1, "kl": 0.0, "clip_ratio/low_mean": 0.0, "epoch": 0.1,
         "rewards/correctness_reward/mean": 0.1, "rewards/correctness_reward/std": 0.3},
        {"step": 2, "loss": float("nan"), "reward": 0.2, "kl": 0.01, "eval_loss": 0.4, "eval_runtime": 1.0},
        {"step": 2, "train_runtime": 3.0, "train_loss": 0.5},
    ]
    main = curves.series(history)
    assert list(main) == ["loss", "reward", "kl", "eval_loss", "rewards/correctness_reward/mean"]
    assert main["loss"] == ([1], [0.5])  # NaN dropped
    assert "clip_ratio/low_mean" in curves.series(history, all_series=True)
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    curves.plot_log_history(history, a)
    curves.plot_log_history(history, b)
    assert a.read_bytes() == b.read_bytes()  # no timestamps in the PNG
