"""Cluster configurations that cannot work are refused before anything runs, with the arithmetic that failed (at DAG
build, and again by the launcher with the model's own config); a ZeRO run is never resumed at another world size;
the pieces that let jobs run offline, on bf16 kernels, and within the prompt budget."""

from __future__ import annotations

import copy
import json
import logging
from pathlib import Path

import pytest
import yaml

from tests.workflow_runner import ROOT, merge
from workflow_scripts.common.config import ConfigError, check_config
from workflow_scripts.train import hub_model, launch, vllm_config
from workflow_scripts.train.run_dir import LaunchChangedError, fingerprint, reset_stale_checkpoints

PRODUCTION = yaml.safe_load((ROOT / "config.production.yaml").read_text())
DEMO = yaml.safe_load((ROOT / "config.yaml").read_text())


def refused(base: dict, **overrides) -> str:
    cfg = merge(copy.deepcopy(base), overrides)
    with pytest.raises(ConfigError) as err:
        check_config(cfg)
    return str(err.value)


def grpo(launch_: dict | None = None, trainer: dict | None = None, **more) -> dict:
    return {"scijudge": {"grpo": {**({"launch": launch_} if launch_ else {}),
                                  **({"trainer": trainer} if trainer else {}), **more}}}


def test_production_trains_with_vllm_colocate_bf16_and_flash_attention():
    from workflow_scripts.common.config import with_defaults

    trainer = with_defaults(PRODUCTION)["scijudge"]["grpo"]["trainer"]
    assert (trainer["use_vllm"], trainer["vllm_mode"], trainer["dtype"]) == (True, "colocate", "bfloat16")
    assert trainer["attn_implementation"] == "flash_attention_2"
    assert trainer["vllm_max_model_length"] == 2048 + trainer["max_completion_length"]  # prompt budget + completion


@pytest.mark.parametrize(
    "overrides, message",
    [
        # a server on K of the G GPUs of the last node would run data parallel G/K, which vLLM refuses
        (grpo({"nodes": 8, "gpus_per_node": 8, "vllm_server_gpus": 4}, {"use_vllm": True, "vllm_mode": "server",
                                                                        "vllm_max_model_length": 4096}),
         "scijudge.grpo.launch.vllm_server_gpus: vllm_server_gpus 4 on 8 nodes: the server takes the whole last node, "
         "all 8 GPUs as tensor parallel 8 with data parallel 1"),
        (grpo({"nodes": 1, "gpus_per_node": 8, "vllm_server_gpus": 8}, {"use_vllm": True, "vllm_mode": "server",
                                                                        "vllm_max_model_length": 4096}),
         "vllm_server_gpus 8 leaves none of the 8 GPU(s) of one node to the trainer"),
        (grpo({"nodes": 8, "gpus_per_node": 8, "vllm_server_gpus": 1}),
         "scijudge.grpo.launch.vllm_server_gpus: 1 GPUs for a vLLM server, but the trainer is not in vLLM server mode"),
        (grpo(trainer={"use_vllm": True, "vllm_mode": "server", "vllm_max_model_length": 4096}),
         "the trainer asks for vllm_mode server, but no server is started"),
        (grpo(trainer={"use_vllm": True, "vllm_tensor_parallel_size": 3, "vllm_max_model_length": 4096}),
         "vllm_tensor_parallel_size 3 does not divide the 64 training processes (TRL groups that many consecutive "
         "ranks into one vLLM engine) (8 node(s) x 8 process(es) = 64 training processes)"),
        (grpo(trainer={"use_vllm": True}),
         "scijudge.grpo.trainer.vllm_max_model_length: use_vllm needs it (the prompt budget + max_completion_length)"),
        (grpo(trainer={"use_vllm": True, "vllm_max_model_length": 2048, "max_completion_length": 2048}),
         "vllm_max_model_length 2048 leaves no prompt budget: it must exceed max_completion_length 2048"),
        (grpo({"nodes": 1, "gpus_per_node": 0}, {"use_vllm": True, "vllm_max_model_length": 4096}),
         "use_vllm needs GPUs, but launch.gpus_per_node is 0"),
        # the batch arithmetic names the layout it counted: 7 nodes train, the 8th serves
        (grpo({"nodes": 8, "gpus_per_node": 8, "vllm_server_gpus": 8},
              {"use_vllm": True, "vllm_mode": "server", "vllm_max_model_length": 4096, "per_device_train_batch_size": 8,
               "gradient_accumulation_steps": 1, "num_generations": 12}),
         "8 x 56 processes x 1 steps per generation = 448) does not divide into groups of num_generations 12: change "
         "the batch, gradient_accumulation_steps or the number of GPUs (8 node(s) x 8 GPUs less the vLLM server's 8 = "
         "56 training processes)"),
        ({"cluster": {"wall_time_margin_s": 7200}, **grpo(resources={"mem_mb": 1000, "runtime": 60,
                                                                     "cpus_per_task": 1})},
         "config key cluster.wall_time_margin_s: 7200 s before the time limit leaves no training time in "
         "scijudge.grpo.resources.runtime 60 min = 3600 s"),
        ({"scijudge": {"eval": {"resources": {"mem_mb": 1000, "runtime": 60, "cpus_per_task": 1, "gpus": 9}}}},
         "config key scijudge.eval.resources.gpus: 9 GPUs asked, but a node has 8 (cluster.gpus_per_node)"),
        ({"scijudge": {"sft_warmup": {"enabled": True, "launch": {"gpus_per_node": 16}}}},
         "config key scijudge.sft_warmup.launch.gpus_per_node: 16 GPUs asked per node, but a node has 8"),
    ],
)
def test_configs_that_cannot_work_are_refused_with_the_arithmetic(overrides, message):
    assert message in refused(PRODUCTION, **overrides)


def test_the_model_config_is_checked_when_it_can_be_read(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"num_attention_heads": 12, "num_key_value_heads": 4,
                                                   "max_position_embeddings": 2048}))
    msg = refused(PRODUCTION, scijudge={"base_model": str(model), **grpo(
        {"nodes": 3, "gpus_per_node": 8, "vllm_server_gpus": 8},
        {"use_vllm": True, "vllm_mode": "server", "vllm_max_model_length": 4096})["scijudge"]})
    assert "tensor parallel 8 does not divide the model's 12 attention heads" in msg
    assert "tensor parallel 8 neither divides nor is a multiple of the model's 4 key/value heads" not in msg  # 8 % 4
    assert "vllm_max_model_length 4096 is longer than the model's context (max_position_embeddings 2048)" in msg
    # the launcher checks the same against the model it is given, whatever the DAG check could see
    entry = ["-m", "workflow_scripts.train.grpo", "--model", str(model), "--train", "t.parquet", "--output-dir", "o",
             "--reward", "scijudge", "--config-json", json.dumps(
                 {"use_vllm": True, "vllm_tensor_parallel_size": 8, "vllm_max_model_length": 1024,
                  "per_device_train_batch_size": 8, "gradient_accumulation_steps": 1, "num_generations": 8})]
    plan = launch.build_plan(str(ROOT / "workflow_scripts/train/accelerate/zero3.yaml"), entry, nodes=1,
                             gpus_per_node=8, main_port=1, env={})
    with pytest.raises(ValueError, match="vLLM would refuse this launch of .*: tensor parallel 8 does not divide the "
                                         "model's 12 attention heads"):
        launch.validate(entry, plan, 8, {}, visible=8)


def test_the_shipped_configs_pass_the_cluster_checks():
    check_config(copy.deepcopy(PRODUCTION))
    check_config(copy.deepcopy(DEMO))
    assert vllm_config.server_layout(9, 8, 8) == (8, 64, 8)  # 9 nodes keep the reference 64 trainer GPUs


# ---------------------------------------------------------------------------------------------- run identity
def _identity(tmp_path, processes: int, config: str = "zero3.yaml") -> dict:
    (tmp_path / "train.parquet").write_text("rows")
    accelerate = ROOT / "workflow_scripts/train/accelerate" / config
    return fingerprint("Qwen/Qwen3-4B-Instruct-2507", str(tmp_path / "train.parquet"), {"max_steps": 4},
                       processes, str(accelerate))


def test_a_zero_checkpoint_is_not_resumed_at_another_world_size(tmp_path):
    out = tmp_path / "run"
    reset_stale_checkpoints(str(out), _identity(tmp_path, 64))
    (out / "checkpoint-50" / "global_step50").mkdir(parents=True)  # DeepSpeed's partitioned state
    assert reset_stale_checkpoints(str(out), _identity(tmp_path, 64)) == []  # same launch: resumed
    with pytest.raises(LaunchChangedError) as err:
        reset_stale_checkpoints(str(out), _identity(tmp_path, 56))
    msg = str(err.value)
    assert "cannot resume checkpoint-50 under this launch: written by 64 training processes, launched now with 56" \
        in msg
    assert "launch as before" in msg and f"remove {out}/checkpoint-*" in msg
    assert (out / "checkpoint-50").exists()  # never removed for a launch change alone
    with pytest.raises(LaunchChangedError, match=r"the accelerate config differs in \['deepspeed_config'"):
        reset_stale_checkpoints(str(out), _identity(tmp_path, 64, "zero2.yaml"))
    # another identity besides: another run, which starts at step 0 as always
    changed = _identity(tmp_path, 56)
    changed["config"] = {"max_steps": 8}
    assert reset_stale_checkpoints(str(out), changed) == ["checkpoint-50"]


def test_a_plain_checkpoint_at_another_world_size_is_another_run(tmp_path, caplog):
    out = tmp_path / "run"
    reset_stale_checkpoints(str(out), _identity(tmp_path, 2, "cpu.yaml"))
    (out / "checkpoint-2").mkdir(parents=True)
    with caplog.at_level(logging.WARNING):
        assert reset_stale_checkpoints(str(out), _identity(tmp_path, 4, "cpu.yaml")) == ["checkpoint-2"]
    assert "launch.num_processes" in caplog.text


def test_an_identity_recorded_before_launches_were_keeps_its_checkpoints(tmp_path):
    out = tmp_path / "run"
    old = _identity(tmp_path, 64)
    del old["launch"]
    reset_stale_checkpoints(str(out), old)
    (out / "checkpoint-50" / "global_step50").mkdir(parents=True)
    assert reset_stale_checkpoints(str(out), _identity(tmp_path, 64)) == []


# ---------------------------------------------------------------------------------------------- job environment
def test_flash_attention_falls_back_to_sdpa_with_a_log_line(caplog):
    from workflow_scripts.train.common import attention_implementation

    with caplog.at_level(logging.WARNING):
        assert attention_implementation("flash_attention_2", use_cpu=True) == "sdpa"
    assert "attn_implementation flash_attention_2" in caplog.text and "loading with sdpa instead" in caplog.text
    assert attention_implementation("eager", use_cpu=True) == "eager"


def test_an_offline_job_loads_a_hub_model_from_its_local_snapshot(tmp_path, monkeypatch):
    from huggingface_hub import constants

    cache = tmp_path / "hub"
    snapshot = cache / "models--org--model" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    (cache / "models--org--model" / "refs").mkdir()
    (cache / "models--org--model" / "refs" / "main").write_text("abc123")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert Path(hub_model.local_model("org/model")) == snapshot
    with pytest.raises(FileNotFoundError, match=rf"base model org/other \(revision main\) is not in the hub cache "
                                                rf"{cache} and HF_HUB_OFFLINE is set: .*rule hub_model_download"):
        hub_model.local_model("org/other")
    assert hub_model.local_model(str(tmp_path)) == str(tmp_path)  # a local directory is itself
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    assert hub_model.local_model("org/other") == "org/other"  # online: from_pretrained fetches it
    assert hub_model.repo_of(hub_model.slug("Qwen/Qwen3-4B-Instruct-2507")) == "Qwen/Qwen3-4B-Instruct-2507"


def test_a_prompt_over_the_budget_stops_grpo_before_training(tiny_model_dir, scijudge_pairs_parquet):
    from datasets import load_dataset
    from transformers import AutoTokenizer

    from workflow_scripts.train.grpo import check_prompt_budget

    dataset = load_dataset("parquet", data_files=str(scijudge_pairs_parquet), split="train")
    dataset = dataset.rename_column("messages", "prompt")
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    check_prompt_budget(dataset, tokenizer, 4096, scijudge_pairs_parquet)
    with pytest.raises(ValueError, match=r"16 prompt\(s\) exceed the prompt budget of 20 tokens .* the longest, row"):
        check_prompt_budget(dataset, tokenizer, 20, scijudge_pairs_parquet)
