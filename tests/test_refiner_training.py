"""The Refiner's training wiring: the SFT entry trains on the reference completion only; the GRPO job serves a vllm or
demo judge beside the trainer (its GPUs in the job) and only calls an external one, in the production DAG as SLURM
would get it (tests/sbatch_render.py, nothing run); the config checks that stop a run that could not work."""

from __future__ import annotations

import copy
import json
import re
import shlex

import polars as pl
import pytest
import yaml

from tests.test_sbatch_render import options, render
from tests.workflow_runner import ROOT, merge
from workflow_scripts.common.config import ConfigError, check_config, with_defaults

pytestmark = pytest.mark.usefixtures("isolated_training_env")

DEMO = yaml.safe_load((ROOT / "config.yaml").read_text())
PRODUCTION = yaml.safe_load((ROOT / "config.production.yaml").read_text())
REFERENCE = "<answer>\n<snippet id=S1>Ruthenium reached a yield of twelve percent.</snippet>\n</answer>"


def test_sft_rows_train_on_the_reference_completion_only(tmp_path, tiny_model_dir):
    """The refiner_sft rule's trainer block (the demo's, with the rows' max_length) through the SFT entry's own
    loading: every prompt token is masked out of the loss, every completion token is trained on."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from workflow_scripts.train import common, config, sft

    prompt = [{"role": "system", "content": "Refine the answer with citations."},
              {"role": "user", "content": "Question: which catalyst?\n<tool_output>\n<snippet id=S1>Ruthenium "
                                          "reached twelve percent.</snippet>\n</tool_output>"}]
    rows = tmp_path / "train.parquet"
    pl.DataFrame({"task_id": ["t0"], "prompt": [prompt],
                  "completion": [[{"role": "assistant", "content": REFERENCE}]]}).write_parquet(rows)
    for block in (DEMO["refiner"]["sft"]["trainer"], with_defaults(PRODUCTION)["refiner"]["sft"]["trainer"]):
        assert block["completion_only_loss"] is True
    block = {**DEMO["refiner"]["sft"]["trainer"], "max_length": 8192, "report_to": []}
    script_kw, model_kw, trl_kw = config.split_block(block, sft.SFTScriptArgs, common.ModelArgs, SFTConfig)
    targs = SFTConfig(**common.training_kwargs(trl_kw, tmp_path / "run"))
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    dataset = sft.load_sft_dataset(rows, sft.SFTScriptArgs(**script_kw))
    trainer = SFTTrainer(model=AutoModelForCausalLM.from_pretrained(tiny_model_dir), args=targs,
                         train_dataset=dataset, eval_dataset=dataset, processing_class=tokenizer)
    batch = trainer.data_collator([trainer.train_dataset[0]])
    ids, labels = batch["input_ids"][0].tolist(), batch["labels"][0].tolist()
    prompt_len = len(tokenizer.apply_chat_template(prompt, tokenize=True, add_generation_prompt=True)["input_ids"])
    assert ids[:prompt_len] == tokenizer.apply_chat_template(prompt, tokenize=True,
                                                             add_generation_prompt=True)["input_ids"]
    assert all(label == -100 for label in labels[:prompt_len])
    trained = tokenizer.decode([i for i, label in zip(ids, labels) if label != -100])
    assert trained.startswith(REFERENCE) and trained.strip().endswith("<|im_end|>"), trained


# ---- the production DAG's GRPO and scoring jobs, for each kind of judge


def jobs_by_rule(jobs):
    found = {}
    for job in jobs:
        found.setdefault(job["rule"], []).append(job)
    return found


def served(shell: str) -> dict | None:
    """The endpoint block the launcher is told to serve, or None."""
    m = re.search(r"--serve-llm ('[^']*')", shell)
    if not m:
        return None
    use, _, block = shlex.split(m.group(1))[0].partition("=")
    assert use == "judge"
    return json.loads(block)


@pytest.fixture(scope="module")
def production_jobs(tmp_path_factory):
    return jobs_by_rule(render(tmp_path_factory.mktemp("refiner_production"), PRODUCTION, "refiner"))


def test_a_vllm_judge_is_served_beside_the_trainer_on_gpus_of_its_own(production_jobs):
    grpo = production_jobs["refiner_grpo"][0]
    judge = with_defaults(PRODUCTION)["llm"]["endpoints"]["judge"]
    trainer_gpus = with_defaults(PRODUCTION)["refiner"]["grpo"]["launch"]["gpus_per_node"]
    total = trainer_gpus + judge["vllm"]["gpus"]
    block = served(grpo["shell"])
    assert block["kind"] == "vllm" and block["model"] == "Qwen/Qwen3.5-35B-A3B"
    assert block["extra_body"] == {"chat_template_kwargs": {"enable_thinking": False}}
    assert f"--gpus-per-node {total} " in grpo["shell"] and "--reward refiner" in grpo["shell"]
    opts = options(grpo["sbatch"])
    assert opts["--gres"] == f"gpu:{total}" and opts["-p"] == "h100" and int(opts.get("--nodes", 1)) == 1
    # the judge's model is downloaded on the submitting host like the base models, its marker an input
    assert "results/models/hub/Qwen--Qwen3.5-35B-A3B.json" in grpo["input"]
    trainer = json.loads(shlex.split(grpo["shell"].split("--config-json ", 1)[1])[0])
    assert trainer["reward_options"]["judge"] == block and trainer["beta"] == 0.001
    assert trainer["generation_batch_size"] == 256 and trainer["num_generations"] == 8
    # the scoring job serves it too, on the endpoint's GPUs, and records the model's revision from the marker
    score = production_jobs["refiner_eval_score"][0]
    assert options(score["sbatch"])["--gres"] == f"gpu:{judge['vllm']['gpus']}"
    assert "--judge-marker results/models/hub/Qwen--Qwen3.5-35B-A3B.json" in score["shell"]


def test_an_external_judge_is_only_called(tmp_path):
    config = merge(copy.deepcopy(PRODUCTION), {"llm": {"endpoints": {"judge": {
        "kind": "external", "base_url": "https://judge.example.org/v1", "model": "Qwen/Qwen3.5-35B-A3B",
        "api_key_env": "JUDGE_API_KEY"}}}})
    jobs = jobs_by_rule(render(tmp_path, config, "refiner"))
    grpo = jobs["refiner_grpo"][0]
    assert served(grpo["shell"]) is None and "--serve-llm" not in grpo["shell"]
    gpus = with_defaults(PRODUCTION)["refiner"]["grpo"]["launch"]["gpus_per_node"]
    assert f"--gpus-per-node {gpus} " in grpo["shell"] and options(grpo["sbatch"])["--gres"] == f"gpu:{gpus}"
    assert not any("Qwen3.5-35B-A3B" in path for path in grpo["input"])
    # the trainers still get the block, naming the key's variable, never a key
    assert '"api_key_env": "JUDGE_API_KEY"' in grpo["shell"]
    score = jobs["refiner_eval_score"][0]
    assert "--gres" not in options(score["sbatch"]) and "--judge-marker" not in score["shell"]


def test_the_demo_judge_is_served_on_loopback(tmp_path):
    jobs = jobs_by_rule(render(tmp_path, DEMO, "results/refiner/grpo/trainer_state.json"))
    grpo = jobs["refiner_grpo"][0]
    assert served(grpo["shell"])["demo"]["policy"] == "refiner_judge"
    assert "--gpus-per-node 0 " in grpo["shell"] and "--model results/refiner/sft/final" in grpo["shell"]


# ---- config checks made while the DAG is built


def problems(base: dict, **overrides) -> str:
    try:
        check_config(merge(copy.deepcopy(base), overrides))
    except ConfigError as exc:
        return str(exc)
    return ""


def test_the_judge_gpus_count_in_the_grpo_job():
    assert problems(PRODUCTION) == ""
    msg = problems(PRODUCTION, refiner={"grpo": {"launch": {"gpus_per_node": 7}}})
    assert "config key refiner.grpo.launch.gpus_per_node: 7 + 2 for the served LLM endpoint GPUs asked" in msg
    msg = problems(PRODUCTION, refiner={"grpo": {"launch": {"nodes": 2}}})
    assert "config key refiner.grpo.launch.nodes: 2 nodes, but the launcher serves an LLM endpoint" in msg
    msg = problems(PRODUCTION, llm={"endpoints": {"judge": {"vllm": {"gpus": 8}}}},
                   refiner={"eval": {"score_resources": {"mem_mb": 1000, "runtime": 10, "cpus_per_task": 1, "gpus": 1}}})
    assert "config key refiner.eval.score_resources: 9 GPUs asked (the judge's included)" in msg
    # an external judge takes no GPU of the job: all 8 may train, on several nodes
    external = {"kind": "external", "base_url": "https://judge.example.org/v1", "model": "judge"}
    assert problems(PRODUCTION, llm={"endpoints": {"judge": external}},
                    refiner={"grpo": {"launch": {"gpus_per_node": 8, "nodes": 2}}}) == ""


def test_the_grpo_batch_and_trainer_keys_are_checked():
    msg = problems(PRODUCTION, refiner={"grpo": {"trainer": {"betta": 0.001}}})
    assert "config key refiner.grpo.trainer.betta: unknown; did you mean beta?" in msg
    trainer = {**with_defaults(PRODUCTION)["refiner"]["grpo"]["trainer"], "generation_batch_size": 250}
    msg = problems(PRODUCTION, refiner={"grpo": {"trainer": trainer}})
    assert "config key refiner.grpo.trainer: generation_batch_size 250 is not a multiple" in msg


def test_keys_the_rules_set_are_refused():
    msg = problems(DEMO, refiner={"sft": {"trainer": {**DEMO["refiner"]["sft"]["trainer"], "max_length": 512}}})
    assert "config key refiner.sft.trainer.max_length: set refiner.sft_data.max_length instead" in msg
    msg = problems(DEMO, refiner={"grpo": {"trainer": {**DEMO["refiner"]["grpo"]["trainer"],
                                                       "reward_options": {"cache_dir": "x"}}}})
    assert "config key refiner.grpo.trainer.reward_options: set by the rule" in msg


def test_sft_needs_references():
    no_refs = {"tasks": {"dataset": {"ask_references": False, "columns": {"reference": None}}}}
    msg = problems(PRODUCTION, refiner=no_refs)
    assert "config key refiner.sft.enabled: the SFT stage needs reference refinements" in msg
    assert problems(PRODUCTION, refiner={**no_refs, "sft": {"enabled": False}}) == ""
    assert problems(PRODUCTION, refiner={"tasks": {"dataset": {"ask_references": False,
                                                               "columns": {"reference": "answer"}}}}) == ""
