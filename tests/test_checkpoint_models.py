"""The model of every saved GRPO checkpoint, kept in the run directory as it is saved (surviving rotation and kills)
and published for evaluation when the run ends."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from safetensors.torch import load_file

from tests.test_train_grpo import CPU_BLOCK
from workflow_scripts.train import checkpoint_models as cm
from workflow_scripts.train import grpo
from workflow_scripts.train.keep_callback import KeepCheckpointModels
from workflow_scripts.train.run_dir import reset_stale_checkpoints
from workflow_scripts.train.stop_callback import StopOnRequest

MODEL_FILES = ("config.json", "model.safetensors", "tokenizer.json")


def _checkpoint(run: Path, step: int) -> Path:
    """A complete checkpoint as the Trainer writes it: model files, then the resume state."""
    path = run / f"checkpoint-{step}"
    path.mkdir(parents=True)
    for name in (*MODEL_FILES, "optimizer.pt", "scheduler.pt", "rng_state.pth"):
        (path / name).write_text(f"{name} at {step}")
    (path / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    return path


def test_kept_models_are_links_without_resume_state_and_outlive_their_checkpoint(tmp_path):
    run, publish = tmp_path / "run", tmp_path / "publish"
    for step in (2, 4):
        cm.keep(_checkpoint(run, step), run, step)
    kept = cm.step_dir(run / cm.KEPT_DIR, 2)
    assert sorted(p.name for p in kept.iterdir()) == sorted(MODEL_FILES)
    assert (kept / "model.safetensors").stat().st_ino == (run / "checkpoint-2/model.safetensors").stat().st_ino
    for path in (run / "checkpoint-2").iterdir():  # save_total_limit rotates the checkpoint out
        path.unlink()
    (run / "checkpoint-2").rmdir()
    assert (kept / "model.safetensors").read_text() == "model.safetensors at 2"

    assert cm.publish(run, publish) == [2, 4]
    assert cm.steps(publish / cm.PUBLISHED_DIR) == [2, 4]
    published = cm.step_dir(publish / cm.PUBLISHED_DIR, 4) / "model.safetensors"
    assert published.read_text() == "model.safetensors at 4"
    # published again (a rerun): the old publication is replaced, not merged into
    cm.remove_kept(run)
    assert cm.publish(run, publish) == [] and (publish / cm.PUBLISHED_DIR).is_dir()
    assert cm.steps(publish / cm.PUBLISHED_DIR) == []


def _save_event(run: Path, step: int, stop_reason=None, max_steps=6, main=True):
    """What the Trainer hands on_save after checkpoint-<step> (save every 2 steps)."""
    stop = StopOnRequest()
    stop.reason = stop_reason
    args = SimpleNamespace(output_dir=str(run), save_strategy="steps")
    state = SimpleNamespace(global_step=step, max_steps=max_steps, save_steps=2, is_world_process_zero=main)
    KeepCheckpointModels(stop).on_save(args, state, None)


def test_the_callback_keeps_cadence_saves_but_not_the_final_step_a_stop_save_or_another_rank(tmp_path):
    run = tmp_path / "run"
    for step in (2, 3, 4, 6):
        _checkpoint(run, step)
    _save_event(run, 2)
    _save_event(run, 3, stop_reason="wall time")  # off the cadence: which steps show must not depend on a stop
    _save_event(run, 4, stop_reason="wall time")  # a stop at a cadence step is a cadence save
    _save_event(run, 6)  # the final step: final/ is that model
    _save_event(run, 4, main=False)
    assert cm.steps(run / cm.KEPT_DIR) == [2, 4]


def test_another_run_in_the_directory_removes_the_kept_models(tmp_path):
    run = tmp_path / "run"
    reset_stale_checkpoints(str(run), {"config": {"max_steps": 4}})
    cm.keep(_checkpoint(run, 2), run, 2)
    assert reset_stale_checkpoints(str(run), {"config": {"max_steps": 4}}) == []  # the same run: resumed
    assert cm.steps(run / cm.KEPT_DIR) == [2]
    assert reset_stale_checkpoints(str(run), {"config": {"max_steps": 8}}) == ["checkpoint-2"]
    assert not (run / cm.KEPT_DIR).exists()


@pytest.mark.slow
@pytest.mark.usefixtures("isolated_training_env")
def test_grpo_publishes_every_saved_checkpoint_model(tmp_path, tiny_model_dir, scijudge_pairs_parquet):
    run, publish = tmp_path / "run", tmp_path / "publish"
    block = {**CPU_BLOCK, "max_steps": 3, "save_steps": 1, "save_total_limit": 1}
    grpo.main(["--model", str(tiny_model_dir), "--train", str(scijudge_pairs_parquet), "--output-dir", str(run),
               "--publish-dir", str(publish), "--reward", "scijudge", "--config-json", json.dumps(block),
               "--keep-checkpoint-models"])
    assert sorted(p.name for p in run.glob("checkpoint-*")) == ["checkpoint-3"]  # save_total_limit at work
    published = publish / cm.PUBLISHED_DIR
    assert cm.steps(run / cm.KEPT_DIR) == cm.steps(published) == [1, 2]
    final = load_file(publish / "final" / "model.safetensors")
    for step in (1, 2):
        model = cm.step_dir(published, step)
        assert load_file(model / "model.safetensors").keys() == final.keys()
        assert (model / "tokenizer_config.json").exists() and not (model / "optimizer.pt").exists()
        # one copy on disk: the publication links the kept files
        kept = cm.step_dir(run / cm.KEPT_DIR, step) / "model.safetensors"
        assert (model / "model.safetensors").stat().st_ino == kept.stat().st_ino
