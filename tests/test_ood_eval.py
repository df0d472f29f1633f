"""The extra SciJudge OOD sets (ICLR metric OOD, bioRxiv biology) in the evaluation: every model of the main table and
the baseline on each configured set, with the set's own prompt and metrics table; `ood_sets` chooses the sets."""

from __future__ import annotations

import json
import re

from tests.workflow_runner import planned_jobs, snakemake, write_config

MODELS = {"base", "sft", "grpo"}


def _shells(proc) -> list[str]:
    return re.findall(r"python -m workflow_scripts\.eval\.scijudge predict .*", proc.stdout)


def test_each_configured_set_gets_every_model_the_baseline_and_a_table(tmp_path):
    cfg = write_config(tmp_path)
    proc = snakemake(tmp_path, "-n", "-p", "scijudge_eval_ood", config=cfg)
    planned = planned_jobs(proc)
    assert planned["scijudge_eval_ood_model"] == 2 * len(MODELS)
    assert planned["scijudge_ood_baseline"] == 2 and planned["scijudge_ood_metrics"] == 2
    for oodset in ("iclr", "biorxiv"):
        preds = [s for s in _shells(proc) if f"--out results/scijudge/eval/ood/{oodset}/predictions/" in s]
        assert len(preds) == len(MODELS), preds
        assert all(f"--pairs results/scijudge/ood/{oodset}/pairs.parquet --out" in s for s in preds), preds
        prompts = {json.loads(re.search(r"--prompt-json '(.*?)'(?: >|$)", s.replace("'\"'\"'", "'")).group(1))
                   ["user_template"] for s in preds}
        assert len(prompts) == 1  # one prompt per set, the same for every model
        question = "more likely to be accepted" if oodset == "iclr" else "higher citation count"
        assert question in prompts.pop(), oodset

    only = write_config(tmp_path, "biorxiv_only.yaml", scijudge={"eval": {"ood_sets": ["biorxiv"]}})
    planned = planned_jobs(snakemake(tmp_path, "-n", config=only))
    assert planned["scijudge_eval_ood_model"] == len(MODELS) and planned["scijudge_ood_metrics"] == 1
    assert "scijudge_iclr_pairs" not in planned
