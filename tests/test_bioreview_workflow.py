"""The BioReview line end to end on the demo: `snakemake bioreview` in a temporary directory (a few minutes on 2 cores),
then a leak planted into its splits stops the DAG at the audit."""

import json
import shutil

import polars as pl
import pytest

from tests.workflow_runner import snakemake, write_config

RESULTS = "results/bioreview"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("bioreview")
    write_config(workdir)
    snakemake(workdir, "--cores", "2", "bioreview")
    return workdir


def _json(path):
    return json.loads(path.read_text())


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_metrics_score_both_models_and_the_baselines_on_the_test_split(run):
    metrics = _json(run / RESULTS / "eval/metrics.json")
    models = {system["model"] for system in metrics["systems"]}
    assert models == {"base", "tuned", "baseline:paper_blind", "baseline:nearest_training_article"}
    test = pl.read_parquet(run / RESULTS / "splits/test.parquet")
    predictions = pl.read_parquet(run / RESULTS / "eval/predictions/tuned.parquet")
    assert sorted(predictions["article_id"]) == sorted(test["article_id"])
    # every output is accounted for: parsed whole, by the fallback, or a counted failure
    parse = _json(run / RESULTS / "eval/predictions/tuned.json")["parse"]
    assert parse["json"] + parse["fallback"] + parse["failed"] == test.height
    assert predictions["parse_ok"].sum() == parse["json"]
    tuned_raw = next(s for s in metrics["systems"] if s["label"] == "tuned [raw]")
    assert tuned_raw["parse_failures"] == test.height - parse["json"]
    # the demo matcher is labelled: not the reference's embedding model, its threshold calibrated
    md = (run / RESULTS / "eval/metrics.md").read_text()
    assert "Not comparable with SPECTER2" in md and "calibrated on" in md


def test_the_qlora_run_trained_a_4bit_adapter_on_the_card_targets(run):
    adapter = _json(run / RESULTS / "sft/adapter/adapter_config.json")
    assert (adapter["r"], adapter["lora_alpha"]) == (16, 32)
    assert sorted(adapter["target_modules"]) == sorted(["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                                                        "up_proj", "down_proj"])
    log = (run / "results/logs/bioreview_sft.log").read_text()
    assert "LoRA tensors match base model" in log
    assert _json(run / "results/models/tiny-qwen3_5/config.json")["layer_types"] == ["linear_attention",
                                                                                    "full_attention"]


def test_audit_card_and_rejects(run):
    audit = _json(run / RESULTS / "leakage_audit.json")
    assert audit["ok"] and not audit["family_across_splits"] and not audit["doi_family_across_splits"]
    card = (run / RESULTS / "README.md").read_text()
    for heading in ("## Sources", "## Extraction", "## Splits", "## SFT rows", "what may be redistributed"):
        assert heading in card, heading
    assert "demo stand-in bioreview_extractor" in card
    # the demo plants one bad file or record per source, and bad answers in the extractor's: each counted
    for source in ("elife", "plos", "f1000", "nature"):
        summary = _json(run / f"results/biomed/{source}.summary.json")
        rejects = _lines(run / f"results/biomed/{source}.rejects.jsonl")
        assert summary["rejected"] == len(rejects) >= 1, source
    counts = _json(run / RESULTS / "extraction/counts.json")
    assert counts["rejected"] == len(_lines(run / RESULTS / "extraction/rejects.jsonl")) >= 1
    assert sum(counts["dropped"].values()) >= 1


def test_a_planted_leak_fails_the_dag(run, tmp_path):
    leaky = tmp_path / "leaky"
    shutil.copytree(run, leaky, symlinks=True)
    splits = leaky / RESULTS / "splits"
    train, val = pl.read_parquet(splits / "train.parquet"), pl.read_parquet(splits / "val.parquet")
    leaked = train.row(0, named=True)["article_id"]
    pl.concat([val, train.head(1).with_columns(pl.lit("val").alias("split"))]).write_parquet(splits / "val.parquet")
    proc = snakemake(leaky, "--cores", "2", "bioreview", check=False)
    assert proc.returncode != 0
    assert "Error in rule bioreview_leakage_audit" in proc.stderr
    assert leaked in (leaky / "results/logs/bioreview_leakage_audit.log").read_text()
