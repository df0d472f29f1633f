"""The extra SciJudge OOD sets (ICLR metric OOD, bioRxiv biology) in the evaluation: every model of the main table and
the baseline on each configured set, with the set's own prompt and metrics table; `ood_sets` chooses the sets."""

from __future__ import annotations

import json
import re

from tests.workflow_runner import planned_jobs, snakemake, write_config

MODELS = {"base", "sft", "grpo"}


def _shells(proc) -> list[str]:
    return re.findall(r"python -m workflow_scripts\.eval\.scijudge predict .*", proc.stdout)


def _also(shell: str) -> list[dict]:
    """The extra sets (--also-json) of one printed predict command."""
    return [json.loads(m.replace("'\"'\"'", "'")) for m in re.findall(r"--also-json '(.*?)'(?= --| >|$)", shell)]


def test_each_configured_set_gets_every_model_the_baseline_and_a_table(tmp_path):
    cfg = write_config(tmp_path)
    proc = snakemake(tmp_path, "-n", "-p", "scijudge_eval_ood", config=cfg)
    planned = planned_jobs(proc)
    # one predict job per model answers the main pairs and every set, each with its own prompt and output
    assert planned["scijudge_eval_model"] == len(MODELS) and "scijudge_eval_ood_model" not in planned
    assert planned["scijudge_ood_baseline"] == 2 and planned["scijudge_ood_metrics"] == 2
    shells = _shells(proc)
    assert len(shells) == len(MODELS)
    for oodset in ("iclr", "biorxiv"):
        sets = [item for s in shells for item in _also(s)
                if item["out"].startswith(f"results/scijudge/eval/ood/{oodset}/predictions/")]
        assert sorted(item["out"].rsplit("/", 1)[1] for item in sets) == sorted(f"{m}.parquet" for m in MODELS)
        assert all(item["pairs"] == [f"results/scijudge/ood/{oodset}/pairs.parquet"] for item in sets), sets
        prompts = {item["prompt"]["user_template"] for item in sets}
        assert len(prompts) == 1  # one prompt per set, the same for every model
        question = "more likely to be accepted" if oodset == "iclr" else "higher citation count"
        assert question in prompts.pop(), oodset

    only = write_config(tmp_path, "biorxiv_only.yaml", scijudge={"eval": {"ood_sets": ["biorxiv"]}})
    proc = snakemake(tmp_path, "-n", "-p", config=only)
    planned = planned_jobs(proc)
    assert planned["scijudge_ood_metrics"] == 1 and "scijudge_iclr_pairs" not in planned
    assert {item["out"].split("/")[4] for s in _shells(proc) for item in _also(s)} == {"biorxiv"}
