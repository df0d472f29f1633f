"""The run identity: checkpoints of another run are removed before a rerun; cadence keys keep them."""

import json

from workflow_scripts.train.run_dir import at_budget, fingerprint, reset_stale_checkpoints


def _run(tmp_path, model_text="weights", train_text="rows", **block):
    model = tmp_path / "model"
    model.mkdir(exist_ok=True)
    (model / "model.safetensors").write_text(model_text)
    (tmp_path / "train.parquet").write_text(train_text)
    return fingerprint(str(model), str(tmp_path / "train.parquet"), {"learning_rate": 1e-5, "max_steps": 4, **block})


def test_every_weight_defining_change_restarts_the_run(tmp_path):
    out = tmp_path / "run"
    (out / "checkpoint-2").mkdir(parents=True)
    # checkpoints without a recorded identity cannot be trusted
    assert reset_stale_checkpoints(str(out), _run(tmp_path)) == ["checkpoint-2"]
    for change in ({"max_steps": 8}, {"num_train_epochs": 2}, {"learning_rate": 3e-4}, {"model_text": "other"},
                   {"train_text": "other rows"}):
        (out / "checkpoint-2").mkdir()
        assert reset_stale_checkpoints(str(out), _run(tmp_path)) == []  # the same run keeps its checkpoints
        assert reset_stale_checkpoints(str(out), _run(tmp_path, **change)) == ["checkpoint-2"], change
        reset_stale_checkpoints(str(out), _run(tmp_path))


def test_cadence_and_logging_keys_keep_the_run(tmp_path):
    out = tmp_path / "run"
    reset_stale_checkpoints(str(out), _run(tmp_path))
    (out / "checkpoint-2").mkdir(parents=True)
    cadence = {"logging_steps": 7, "save_steps": 3, "save_total_limit": 1, "report_to": ["none"], "eval_steps": 9}
    assert reset_stale_checkpoints(str(out), _run(tmp_path, **cadence)) == []
    assert (out / "checkpoint-2").exists()


def test_identity_follows_content_not_timestamps(tmp_path):
    first = _run(tmp_path)
    assert _run(tmp_path) == first  # files rewritten with the same bytes (a rebuilt, identical input)
    assert _run(tmp_path, train_text="new rows") != first


def test_at_budget_reads_the_checkpoint_state(tmp_path):
    for step, budget, done in ((4, 4, True), (2, 4, False), (5, 4, True)):
        ckpt = tmp_path / f"checkpoint-{step}"
        ckpt.mkdir()
        (ckpt / "trainer_state.json").write_text(json.dumps({"global_step": step, "max_steps": budget}))
        assert at_budget(ckpt) == (done, step, budget)
