"""A training run stops with a checkpoint on request, before its budget, and the next run resumes from it: a real
SIGUSR1 to the launcher of a real (tiny) SFT run, and the SLURM deadline that requests the same stop before the time
limit."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from workflow_scripts.train import walltime

REPO = Path(__file__).resolve().parents[1]
BUDGET = 100  # steps: a few seconds of the tiny model, long enough to be stopped midway
BLOCK = {"max_steps": BUDGET, "save_steps": 1000, "per_device_train_batch_size": 2, "logging_steps": 1,
         "max_length": 512, "learning_rate": 1e-3, "seed": 1234, "gradient_checkpointing": False, "use_cpu": True,
         "bf16": False, "report_to": ["none"]}

pytestmark = pytest.mark.usefixtures("isolated_training_env")


def launcher(model, train, run_dir, publish_dir) -> list[str]:
    return [sys.executable, "-m", "workflow_scripts.train.launch", "--accelerate-config",
            "workflow_scripts/train/accelerate/cpu.yaml", "--gpus-per-node", "0", "--wall-time-margin", "600", "--",
            "-m", "workflow_scripts.train.sft", "--model", str(model), "--train", str(train), "--output-dir",
            str(run_dir), "--publish-dir", str(publish_dir), "--config-json", json.dumps(BLOCK)]


def test_sigusr1_saves_a_checkpoint_and_the_next_run_resumes_from_it(tmp_path, tiny_model_dir, scijudge_pairs_parquet):
    train = tmp_path / "sft.parquet"
    pairs = pl.read_parquet(scijudge_pairs_parquet)
    pl.DataFrame({"prompt": pairs["messages"].to_list(),
                  "completion": [[{"role": "assistant", "content": f"<answer>{a}</answer>"}]
                                 for a in pairs["correct_answer"]]}).write_parquet(train)
    run_dir, publish = tmp_path / "scratch" / "run", tmp_path / "results" / "run"  # the run dir on "scratch"
    cmd = launcher(tiny_model_dir, train, run_dir, publish)
    log = tmp_path / "first.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 180
            while "'loss'" not in log.read_text():  # the trainer has taken its first step
                assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
                time.sleep(0.05)
            proc.send_signal(signal.SIGUSR1)
            code = proc.wait(timeout=180)
        finally:
            proc.kill()
    text = log.read_text()
    assert code == walltime.EXIT_STOPPED, text[-3000:]
    assert "stop requested (SIGUSR1)" in text and "stopped on request (SIGUSR1)" in text, text[-3000:]
    (checkpoint,) = run_dir.glob("checkpoint-*")
    step = json.loads((checkpoint / "trainer_state.json").read_text())["global_step"]
    assert 1 <= step < BUDGET and checkpoint.name == f"checkpoint-{step}"
    assert not (publish / "final").exists() and not (run_dir / "final").exists()  # stopped: no final model

    # the job run again (the SLURM retry) resumes from that checkpoint and ends at the budget
    second = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr[-3000:]
    assert f"resuming from {checkpoint} (step {step} of {BUDGET})" in second.stderr
    assert json.loads((publish / "trainer_state.json").read_text())["global_step"] == BUDGET
    assert (publish / "final" / "config.json").exists() and (publish / "curves.png").exists()
    assert not (run_dir / "final").exists()  # checkpoints stay on scratch, the model goes to results
    identity = json.loads((run_dir / "run_fingerprint.json").read_text())
    assert identity["launch"]["num_processes"] == 1 and identity["launch"]["accelerate_config"]["use_cpu"] is True


@pytest.mark.parametrize("text, seconds", [("1-02:03:04", 93784.0), ("02:03:04", 7384.0), ("03:04", 184.0),
                                            ("0:00", 0.0), ("UNLIMITED", None), ("NOT_SET", None), ("", None)])
def test_squeue_time_left(text, seconds):
    assert walltime.parse_time_left(text) == seconds


def test_time_left_is_asked_of_squeue(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    squeue = bin_dir / "squeue"  # a stand-in that answers like `squeue -h -j ID -o %L`, and records its arguments
    squeue.write_text(f"#!/bin/sh\necho \"$@\" > {tmp_path / 'args'}\necho 1:02:03\n")
    squeue.chmod(squeue.stat().st_mode | stat.S_IEXEC)
    env = {"SLURM_JOB_ID": "42", "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    assert walltime.slurm_time_left(env) == 3723.0
    assert (tmp_path / "args").read_text().split() == ["-h", "-j", "42", "-o", "%L"]
    assert walltime.slurm_time_left({"PATH": env["PATH"]}) is None  # outside SLURM: no deadline


def test_the_deadline_requests_a_stop_margin_seconds_before_the_end(tmp_path):
    env = {"SLURM_JOB_ID": "42", "SLURM_JOB_END_TIME": str(int(time.time()) + 3)}
    (tmp_path / walltime.STOP_REQUEST).write_text('{"reason": "left by the job before"}')
    with walltime.StopRequests(tmp_path, margin=2, env=env):
        assert walltime.stop_request(tmp_path) is None  # a request of an earlier job is cleared first
        deadline = time.monotonic() + 10
        while walltime.stop_request(tmp_path) is None:
            assert time.monotonic() < deadline, "no stop request before the time limit"
            time.sleep(0.05)
    assert walltime.stop_request(tmp_path)["reason"] == "2 s before the SLURM time limit"
    assert walltime.exit_status(1, tmp_path) == walltime.EXIT_STOPPED and walltime.exit_status(0, tmp_path) == 0
