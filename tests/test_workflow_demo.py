"""The demo DAG end to end through Snakemake: readers -> papers -> citations -> pairs -> GRPO -> evaluation -> report."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
import yaml

from tests.workflow_runner import ROOT, SNAKEMAKE, planned_jobs, snakemake, write_config

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("demo")
    write_config(workdir)
    # a stall guard, not a speed target: the demo's time is measured (README), and here it shares 2 cores
    snakemake(workdir, "--cores", "2", timeout=1800)
    return workdir


def test_demo_builds_every_data_artifact(demo_run):
    papers = pl.read_parquet(demo_run / "results/arxiv/papers.parquet")
    assert papers.height > 3000 and papers["arxiv_id"].is_unique().all()
    assert set(papers["field"].unique()) == {"CS", "Math", "Physics", "Others"}
    merged = json.loads((demo_run / "results/arxiv/papers.summary.json").read_text())
    assert len(merged["inputs"]) == 3 and all(n > 0 for n in merged["inputs"].values()), merged["inputs"]
    report = json.loads((demo_run / "results/arxiv/citations.report.json").read_text())
    assert report["without_count"] > 0, "the demo leaves some papers without a count, and they must be reported"
    stats = json.loads((demo_run / "results/scijudge/pairs/stats.json").read_text())
    assert all(stats["splits"][s]["pairs"] > 0 for s in ("train", "test_id", "test_ood"))
    audit = json.loads((demo_run / "results/scijudge/pairs/leakage_audit.json").read_text())
    assert audit["passed"]
    # rejected records are counted, never silently dropped
    rejects = (demo_run / "results/interim/arxiv/dump.rejects.jsonl").read_text().splitlines()
    assert any("abstract" in json.loads(r)["reason"] for r in rejects)


def test_demo_trains_and_evaluates_the_scijudge_model(demo_run):
    state = json.loads((demo_run / "results/scijudge/grpo/trainer_state.json").read_text())
    grpo = yaml.safe_load((ROOT / "config.yaml").read_text())["scijudge"]["grpo"]["trainer"]
    assert state["global_step"] == grpo["max_steps"]
    assert (demo_run / "results/scijudge/grpo/final/config.json").exists()
    metrics = json.loads((demo_run / "results/scijudge/eval/metrics.json").read_text())
    assert set(metrics["models"]) == {"base", "sft", "grpo", "baseline"}
    for model in metrics["models"].values():
        assert set(model["splits"]) == {"test_id", "test_ood"}
    baseline = metrics["models"]["baseline"]["splits"]["test_id"]["overall"]["value"]
    assert baseline > 0.5, "the text baseline learns the demo's citation signal"
    # the format warm-up makes the tiny model answer parseably, and GRPO then sees rewards that vary
    assert metrics["models"]["sft"]["splits"]["test_id"]["unparseable"]["rate"] < 0.5
    rewards = [e["reward_std"] for e in state["log_history"] if "reward_std" in e]
    assert any(r > 0 for r in rewards), rewards
    # the report's reward trend: last quarter of the steps minus the first, with an interval from the steps' rewards
    trend = json.loads((demo_run / "results/scijudge/grpo/reward_trend.json").read_text())
    step_rewards = [e["reward"] for e in state["log_history"] if "reward" in e]
    quarter = len(step_rewards) // 4
    assert trend["steps_per_quarter"] == quarter >= 2
    diff = trend["difference"]
    assert diff["value"] == pytest.approx((sum(step_rewards[-quarter:]) - sum(step_rewards[:quarter])) / quarter)
    assert diff["ci_low"] <= diff["value"] <= diff["ci_high"]
    assert (demo_run / "results/scijudge/eval/accuracy.png").stat().st_size > 10_000
    # every saved checkpoint evaluated, between step 0 (the warm-up model) and the final model
    save = grpo["save_steps"]
    last = state["global_step"]
    curve = json.loads((demo_run / "results/scijudge/eval/checkpoint_curves.json").read_text())
    assert [p["step"] for p in curve["points"]] == [0, *range(save, last, save), last]
    for split in ("test_id", "test_ood"):
        assert curve["models"][str(last)]["splits"][split]["overall"]["value"] == \
            metrics["models"]["grpo"]["splits"][split]["overall"]["value"]


def test_demo_runs_the_reviewer_line(demo_run):
    reviewer = demo_run / "results/reviewer"
    audit = json.loads((reviewer / "leakage_audit.json").read_text())
    assert audit["passed"], audit
    train = pl.read_parquet(reviewer / "sft_data/train.parquet")
    assert train.height == 40 and {"prompt", "completion", "decision"} <= set(train.columns)
    card = (reviewer / "sft_data/README.md").read_text()
    assert "demo stand-in" in card and "not a language model" in card
    state = json.loads((reviewer / "sft/trainer_state.json").read_text())
    assert state["global_step"] > 0 and (reviewer / "sft/adapter/adapter_config.json").exists()
    metrics = json.loads((reviewer / "eval/metrics.json").read_text())
    assert metrics["model_order"] == ["base", "student", "teacher", "always_accept"]
    assert metrics["models"]["teacher"]["confusion"]["tp"] + metrics["models"]["teacher"]["confusion"]["fn"] > 0
    assert "demo stand-in" in (reviewer / "eval/metrics.md").read_text()
    # the teacher step asked again (as a rerun does; outside the DAG, whose files stay as they are) is answered from
    # the response cache: not one request reaches the endpoint, and the answers are the same
    again = demo_run / "teacher_again"
    subprocess.run([sys.executable, "-m", "workflow_scripts.llm.batch", "--use", "teacher", "--endpoint",
                    json.dumps({"kind": "demo", "demo": {"policy": "reviewer_teacher"}}), "--cache-dir",
                    str(demo_run / "results/llm_cache"), "--requests", str(reviewer / "teacher/requests.jsonl"),
                    "--answers", str(again / "answers.jsonl"), "--summary", str(again / "summary.json"),
                    "--rejects", str(again / "rejects.jsonl")], cwd=ROOT, check=True, capture_output=True, timeout=120)
    summary = json.loads((again / "summary.json").read_text())
    assert summary["requests"] == 0 and summary["cache_hits"] == 60, summary
    texts = [json.loads(line)["text"] for line in (again / "answers.jsonl").read_text().splitlines()]
    assert texts == [json.loads(line)["text"] for line in (reviewer / "teacher/answers.jsonl").read_text().splitlines()]


# ---- the BioReview line (in `all`): metrics, the QLoRA adapter, audit, card and rejects, a planted leak

BIO = "results/bioreview"


def _json(path):
    return json.loads(path.read_text())


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_bioreview_metrics_score_both_models_and_the_baselines_on_the_test_split(demo_run):
    metrics = _json(demo_run / BIO / "eval/metrics.json")
    models = {system["model"] for system in metrics["systems"]}
    assert models == {"base", "tuned", "baseline:paper_blind", "baseline:nearest_training_article"}
    test = pl.read_parquet(demo_run / BIO / "splits/test.parquet")
    predictions = pl.read_parquet(demo_run / BIO / "eval/predictions/tuned.parquet")
    assert sorted(predictions["article_id"]) == sorted(test["article_id"])
    # every output is accounted for: parsed whole, by the fallback, or a counted failure
    parse = _json(demo_run / BIO / "eval/predictions/tuned.json")["parse"]
    assert parse["json"] + parse["fallback"] + parse["failed"] == test.height
    assert predictions["parse_ok"].sum() == parse["json"]
    tuned_raw = next(s for s in metrics["systems"] if s["label"] == "tuned [raw]")
    assert tuned_raw["parse_failures"] == test.height - parse["json"]
    # the demo matcher is labelled: not the reference's embedding model, its threshold calibrated
    md = (demo_run / BIO / "eval/metrics.md").read_text()
    assert "Not comparable with SPECTER2" in md and "calibrated on" in md


def test_the_bioreview_qlora_run_trained_a_4bit_adapter_on_the_card_targets(demo_run):
    adapter = _json(demo_run / BIO / "sft/adapter/adapter_config.json")
    assert (adapter["r"], adapter["lora_alpha"]) == (16, 32)
    assert sorted(adapter["target_modules"]) == sorted(["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                                                        "up_proj", "down_proj"])
    log = (demo_run / "results/logs/bioreview_sft.log").read_text()
    assert "LoRA tensors match base model" in log
    assert _json(demo_run / "results/models/tiny-qwen3_5/config.json")["layer_types"] == ["linear_attention",
                                                                                    "full_attention"]


def test_bioreview_audit_card_and_rejects(demo_run):
    audit = _json(demo_run / BIO / "leakage_audit.json")
    assert audit["ok"] and not audit["family_across_splits"] and not audit["doi_family_across_splits"]
    card = (demo_run / BIO / "README.md").read_text()
    for heading in ("## Sources", "## Extraction", "## Splits", "## SFT rows", "what may be redistributed"):
        assert heading in card, heading
    assert "demo stand-in bioreview_extractor" in card
    # the demo plants one bad file or record per source, and bad answers in the extractor's: each counted
    for source in ("elife", "plos", "f1000", "nature"):
        summary = _json(demo_run / f"results/biomed/{source}.summary.json")
        rejects = _lines(demo_run / f"results/biomed/{source}.rejects.jsonl")
        assert summary["rejected"] == len(rejects) >= 1, source
    counts = _json(demo_run / BIO / "extraction/counts.json")
    assert counts["rejected"] == len(_lines(demo_run / BIO / "extraction/rejects.jsonl")) >= 1
    assert sum(counts["dropped"].values()) >= 1


def test_a_planted_bioreview_leak_fails_the_dag(demo_run, tmp_path):
    leaky = tmp_path / "leaky"
    shutil.copytree(demo_run, leaky, symlinks=True)
    splits = leaky / BIO / "splits"
    train, val = pl.read_parquet(splits / "train.parquet"), pl.read_parquet(splits / "val.parquet")
    leaked = train.row(0, named=True)["article_id"]
    pl.concat([val, train.head(1).with_columns(pl.lit("val").alias("split"))]).write_parquet(splits / "val.parquet")
    proc = snakemake(leaky, "--cores", "2", "bioreview", check=False)
    assert proc.returncode != 0
    assert "Error in rule bioreview_leakage_audit" in proc.stderr
    assert leaked in (leaky / "results/logs/bioreview_leakage_audit.log").read_text()


# ---- the Refiner line (in `all`): tasks from the corpus, audit, SFT, GRPO with the judge, metrics per checkpoint

REF = "results/refiner"


def test_demo_runs_the_refiner_line(demo_run):
    cfg = yaml.safe_load((ROOT / "config.yaml").read_text())["refiner"]
    counts = _json(demo_run / REF / "tasks.counts.json")
    tasks = pl.read_parquet(demo_run / REF / "tasks.parquet")
    assert tasks.height == counts["tasks"] > 0 and counts["filtered_by_length"] > 0
    assert _json(demo_run / REF / "leakage_audit.json")["passed"]
    assert "demo stand-in refiner_writer" in (demo_run / REF / "README.md").read_text()
    sft = _json(demo_run / REF / "sft/trainer_state.json")
    assert sft["global_step"] == cfg["sft"]["trainer"]["max_steps"]
    assert any("eval_loss" in e for e in sft["log_history"])
    grpo = _json(demo_run / REF / "grpo/trainer_state.json")
    last, save = cfg["grpo"]["trainer"]["max_steps"], cfg["grpo"]["trainer"]["save_steps"]
    assert grpo["global_step"] == last
    # every step logs the reward's components and the groups without reward spread; the launcher served the judge
    steps = [e for e in grpo["log_history"] if "loss" in e]
    assert len(steps) == last and all({"refiner/format_ok", "refiner/unscored", "frac_reward_zero_std", "kl"} <= set(e)
                                      for e in steps)
    assert "ready at http://127.0.0.1" in (demo_run / "results/logs/refiner_grpo.log").read_text()
    # the SFT model is step 0, then every saved checkpoint, the final model, and the references off the curve
    metrics = _json(demo_run / REF / "eval/metrics.json")
    assert [(p["label"], p["step"]) for p in metrics["points"]] == [
        ("sft", 0), *((f"step-{s}", s) for s in range(save, last, save)), ("grpo", last), ("reference", None)]
    test = set(pl.read_parquet(demo_run / REF / "splits/test.parquet")["task_id"])
    scores = pl.read_parquet(demo_run / REF / "eval/scores.parquet")
    for point in metrics["points"][:-1]:
        assert set(scores.filter(pl.col("model") == point["label"])["task_id"]) == test, point
    # the tiny model's answers fail the format gate (reward 0, never judged); the references are judged, each
    # static rubric too, without a failed call
    reference = metrics["models"]["reference"]["metrics"]
    assert reference["format_valid"]["value"] == 1.0 and reference["rubric_score"]["n"] > 0
    assert reference["judge_failure_rate"]["value"] == 0.0
    assert len(metrics["static_rubrics"]) == 3
    assert metrics["models"]["sft"]["metrics"]["reward"]["ci_low"] is not None
    md = (demo_run / REF / "eval/metrics.md").read_text()
    assert "demo stand-in refiner_judge" in md and "| 0 | start (sft) |" in md
    for png in ("eval/curves.png", "grpo/reward_components.png", "grpo/curves.png", "sft/curves.png"):
        assert (demo_run / REF / png).stat().st_size > 10_000, png


def test_report_shows_table_chart_and_curves(demo_run):
    snakemake(demo_run, "--report", "report.html")
    html = (demo_run / "report.html").read_text(errors="replace")
    for name in ("metrics.md", "accuracy.png", "curves.png", "both A/B orders", "reliability.png", "llm_calls.md",
                 "always-accept", "checkpoint_curves.png", "accuracy against GRPO training step",
                 "BioReview test split", "Hungarian assignment", "reward_components.png", "reference refinements",
                 "metrics on the held-out test tasks against GRPO step", "What the Refiner reward logged"):
        assert name in html, name


def test_second_run_does_nothing(demo_run):
    assert planned_jobs(snakemake(demo_run, "-n")) == {}


def test_changed_pair_threshold_reruns_only_pairs_and_what_follows(demo_run):
    cfg = write_config(demo_run, "changed.yaml", scijudge={"pairs": {"min_diff": 9}})
    jobs = planned_jobs(snakemake(demo_run, "-n", config=cfg))
    # scijudge_eval_checkpoint joins once the retrained GRPO has said which steps it saved (a checkpoint rule)
    # the extra OOD sets: the retrained models (in scijudge_eval_model) and baseline answer them again (their pairs do
    # not change)
    downstream = {"scijudge_sft_data", "scijudge_sft_warmup", "scijudge_grpo", "scijudge_eval_model",
                  "scijudge_baseline", "scijudge_metrics", "scijudge_checkpoint_curves", "scijudge_ood_baseline",
                  "scijudge_ood_metrics"}
    assert set(jobs) - {"all"} == {"scijudge_pairs", "scijudge_leakage_audit"} | downstream


def test_changed_eval_setting_reruns_only_the_evaluation(demo_run):
    cfg = write_config(demo_run, "eval.yaml", scijudge={"eval": {"metrics": {"bootstrap": 300}}})
    assert set(planned_jobs(snakemake(demo_run, "-n", config=cfg))) - {"all"} == {
        "scijudge_metrics", "scijudge_checkpoint_curves", "scijudge_ood_metrics"}


def test_wrong_config_value_names_the_key(tmp_path):
    cfg = write_config(tmp_path, citations={"source": "google_scholar"})
    proc = snakemake(tmp_path, "-n", config=cfg, check=False)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "citations.source" in out and "semantic_scholar" in out and "openalex" in out


@pytest.mark.parametrize("config", ["config.yaml", "config.production.yaml"])
def test_dry_run_and_rule_graph_work_offline(tmp_path, config):
    from tests.workflow_runner import ROOT

    cfg = ROOT / config
    planned = planned_jobs(snakemake(tmp_path, "-n", config=cfg))
    assert {"scijudge_pairs", "scijudge_grpo", "scijudge_metrics"} <= set(planned)
    graph = snakemake(tmp_path, "--rulegraph", config=cfg).stdout
    assert graph.lstrip().startswith("digraph") and "scijudge_leakage_audit" in graph


def _start(workdir, config):
    """Snakemake in its own session, as a terminal runs it: a Ctrl-C reaches Snakemake and every job it started."""
    cmd = [*SNAKEMAKE, "--snakefile", str(ROOT / "Snakefile"), "--directory", str(workdir), "--configfile",
           str(config), "--cores", "2"]
    env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", POLARS_MAX_THREADS="2")
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def _wait_for(condition, proc, what, timeout=300):
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, f"Snakemake ended before {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def _training_pids(module, workdir: Path):
    """The processes running ``module`` for the run in ``workdir``: other tests (the SLURM demo) may train the same
    module at the same time, in their own directories, and must not be hit."""
    out = subprocess.run(["pgrep", "-f", module.replace(".", "[.]")], capture_output=True, text=True).stdout
    pids = []
    for pid in map(int, out.split()):
        try:
            if Path(f"/proc/{pid}/cwd").resolve() == workdir.resolve():
                pids.append(pid)
        except OSError:  # ended meanwhile
            pass
    return pids


def test_interrupted_retrains_are_never_forgotten(demo_run):
    """A retrain interrupted after a config change (Ctrl-C of the whole run, SIGKILL of the training job) is rerun
    by the next plain run with what follows it, and the report builds afterwards."""
    # the warm-up retrains with its demo steps; GRPO is cut to one checkpoint and the evaluation to the main table,
    # since what is tested is that interrupted jobs are rerun, not what they learn
    cfg = write_config(demo_run, "retrain.yaml", scijudge={
        "sft_warmup": {"trainer": {"learning_rate": 2.0e-2}},
        "grpo": {"trainer": {"max_steps": 2, "save_steps": 2}},
        "eval": {"ood_sets": [], "checkpoints": {"enabled": False}},
    })
    sft_steps = yaml.safe_load(cfg.read_text())["scijudge"]["sft_warmup"]["trainer"]["max_steps"]
    sft_log = demo_run / "results/logs/scijudge_sft_warmup.log"
    retrained = {"scijudge_sft_warmup", "scijudge_grpo", "scijudge_eval_model", "scijudge_metrics"}

    # Ctrl-C while the warm-up trains (SIGINT to Snakemake's whole process group, as a terminal sends it)
    run = _start(demo_run, cfg)
    final = demo_run / "results/scijudge/sft_warmup/final"  # removed by Snakemake as the retrain starts
    _wait_for(lambda: not final.exists() and sft_log.exists()
              and re.search(rf" [1-9]\d*/{sft_steps} \[", sft_log.read_text(errors="replace")), run,
              "the warm-up's first steps")
    os.killpg(run.pid, signal.SIGINT)
    assert run.wait(120) != 0
    assert not final.exists()
    assert retrained <= set(planned_jobs(snakemake(demo_run, "-n", config=cfg)))

    # the rerun gets to GRPO, whose training process is then killed (SIGKILL, as the OOM killer would)
    run = _start(demo_run, cfg)
    _wait_for(lambda: (demo_run / "results/scijudge/sft_warmup/final").exists() and _training_pids("workflow_scripts.train.grpo", demo_run),
              run, "GRPO to start", timeout=600)
    for pid in _training_pids("workflow_scripts.train.grpo", demo_run):
        os.kill(pid, signal.SIGKILL)
    assert run.wait(120) != 0
    assert not (demo_run / "results/scijudge/grpo/final").exists()
    assert {"scijudge_grpo", "scijudge_eval_model", "scijudge_metrics"} <= set(planned_jobs(snakemake(demo_run, "-n", config=cfg)))

    snakemake(demo_run, "--cores", "2", config=cfg)
    assert planned_jobs(snakemake(demo_run, "-n", config=cfg)) == {}
    sft = demo_run / "results/scijudge/sft_warmup"
    assert json.loads((sft / "trainer_state.json").read_text())["global_step"] == sft_steps
    assert json.loads((sft / "run_fingerprint.json").read_text())["config"]["learning_rate"] == 2.0e-2
    snakemake(demo_run, "--report", "report.html", config=cfg)
    assert "curves.png" in (demo_run / "report.html").read_text(errors="replace")
