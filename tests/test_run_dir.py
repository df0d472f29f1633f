"""Checkpoints written under another run definition are removed before a rerun; budget changes keep them."""

from workflow_scripts.train.run_dir import fingerprint, reset_stale_checkpoints


def _run(tmp_path, model_text="weights", **block):
    model = tmp_path / "model"
    model.mkdir(exist_ok=True)
    weights = model / "model.safetensors"
    if not weights.exists() or weights.read_text() != model_text:  # a rebuilt model has new files
        weights.write_text(model_text)
    train = tmp_path / "train.parquet"
    if not train.exists():
        train.write_text("rows")
    return fingerprint(str(model), str(train), {"learning_rate": 1e-5, "max_steps": 4, **block})


def test_budget_change_keeps_checkpoints_other_changes_remove_them(tmp_path):
    out = tmp_path / "run"
    (out / "checkpoint-2").mkdir(parents=True)
    assert reset_stale_checkpoints(str(out), _run(tmp_path)) == []  # first sight: nothing to compare with
    assert reset_stale_checkpoints(str(out), _run(tmp_path, max_steps=8)) == []  # a larger budget continues
    assert (out / "checkpoint-2").exists()
    assert reset_stale_checkpoints(str(out), _run(tmp_path, learning_rate=3e-4, max_steps=8)) == ["checkpoint-2"]
    (out / "checkpoint-5").mkdir()
    assert reset_stale_checkpoints(str(out), _run(tmp_path, "other weights", learning_rate=3e-4, max_steps=8)) == ["checkpoint-5"]
