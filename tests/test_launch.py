"""The launcher's commands, built from fake SLURM environments (env vars only; nothing is launched)."""

import json
import os
import shlex
import subprocess
import sys

from pathlib import Path

import pytest

from workflow_scripts.train import launch

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _repo_cwd(monkeypatch):
    monkeypatch.chdir(REPO)  # the accelerate config paths below are repo-relative, as in the Snakemake rules

CFG = "workflow_scripts/train/accelerate/zero3.yaml"
BLOCK = {"per_device_train_batch_size": 8, "gradient_accumulation_steps": 2, "num_generations": 8,
         "generation_batch_size": None, "steps_per_generation": None}
ENTRY = ["-m", "workflow_scripts.train.grpo", "--model", "m", "--train", "t.parquet", "--output-dir", "o",
         "--reward", "scijudge", "--config-json", json.dumps({**BLOCK, "report_to": ["tensorboard", "wandb"]})]
SLURM = {"SLURM_JOB_ID": "42", "SLURM_JOB_NUM_NODES": "3", "SLURM_JOB_NODELIST": "gpu[07-08],cpu5",
         "SLURM_GPUS_ON_NODE": "4"}


@pytest.mark.parametrize(
    "nodelist, hosts",
    [
        ("gpu[01-03,07],cpu5", ["gpu01", "gpu02", "gpu03", "gpu07", "cpu5"]),
        ("node17", ["node17"]),
        ("n[9-11]", ["n9", "n10", "n11"]),
        ("gpu[008-010]", ["gpu008", "gpu009", "gpu010"]),
        ("rack[1-2]-n[01,03]", ["rack1-n01", "rack1-n03", "rack2-n01", "rack2-n03"]),
        ("a[1],b[2-3]", ["a1", "b2", "b3"]),
    ],
)
def test_expand_nodelist(nodelist, hosts):
    assert launch.expand_nodelist(nodelist, use_scontrol=False) == hosts


@pytest.mark.parametrize("bad", ["gpu[01-03", "gpu01-03]", "gpu[a-b]", "gpu[05-01]", "gpu[[1]]"])
def test_expand_nodelist_errors(bad):
    with pytest.raises(ValueError, match="SLURM node"):
        launch.expand_nodelist(bad, use_scontrol=False)


def test_single_node_outside_slurm():
    plan = launch.build_plan("cpu.yaml", ENTRY, nodes=None, gpus_per_node=0, main_port=29500, env={})
    assert plan.command[:4] == [sys.executable, "-m", "accelerate.commands.accelerate_cli", "launch"]
    assert plan.command[4:12] == ["--config_file", "cpu.yaml", "--num_processes", "1", "--num_machines", "1",
                                  "--main_process_port", "29500"]
    assert plan.command[12:] == ENTRY and (plan.num_machines, plan.num_processes) == (1, 1)
    plan = launch.build_plan(CFG, ENTRY, nodes=1, gpus_per_node=4, main_port=1234, env=SLURM)
    assert plan.command[0] == sys.executable and "--num_processes" in plan.command  # N=1 inside SLURM: no srun
    assert plan.num_processes == 4


def test_multi_node_srun(tmp_path):
    plan = launch.build_plan(CFG, ENTRY, nodes=3, gpus_per_node=4, main_port=29511, env=SLURM, use_scontrol=False)
    assert plan.command[:7] == ["srun", "--nodes", "3", "--ntasks-per-node", "1", "--kill-on-bad-exit=1", "bash"]
    assert plan.command[7] == "-c" and (plan.num_machines, plan.num_processes) == (3, 12)
    script = plan.command[8]
    # run the per-task script the way each srun task would, with `exec` swapped for printing its argv
    probe = script.replace("exec ", "printf '%s\\n' ", 1)
    argv = subprocess.run(["bash", "-c", probe], env={**os.environ, "SLURM_PROCID": "2"},
                          capture_output=True, text=True, check=True).stdout.splitlines()
    opts = dict(zip(argv[4::1], argv[5::1]))
    assert argv[:4] == [sys.executable, "-m", "accelerate.commands.accelerate_cli", "launch"]
    assert opts["--config_file"] == CFG
    assert opts["--num_machines"] == "3" and opts["--num_processes"] == "12"
    assert opts["--machine_rank"] == "2"  # evaluated per task
    assert opts["--main_process_ip"] == "gpu07" and opts["--main_process_port"] == "29511"
    assert opts["--rdzv_backend"] == "c10d"
    assert argv[argv.index("-m", 4):] == ENTRY  # the JSON argument survives the shell intact


@pytest.mark.parametrize(
    "env, nodes, match",
    [
        ({}, 2, "needs a SLURM allocation"),
        (SLURM, 4, "allocation has only 3"),
        ({"SLURM_JOB_ID": "1", "SLURM_JOB_NUM_NODES": "2"}, 2, "SLURM_JOB_NODELIST"),
        ({}, 0, ">= 1"),
    ],
)
def test_plan_errors(env, nodes, match):
    with pytest.raises(ValueError, match=match):
        launch.build_plan(CFG, ENTRY, nodes=nodes, gpus_per_node=4, main_port=29500, env=env, use_scontrol=False)


def test_gpu_count_validation():
    plan = launch.build_plan(CFG, ENTRY, nodes=3, gpus_per_node=8, main_port=1, env=SLURM, use_scontrol=False)
    with pytest.raises(ValueError, match="SLURM granted 4 GPU"):
        launch.validate(ENTRY, plan, 8, SLURM, visible=8)
    with pytest.raises(ValueError, match="has 2 visible GPU"):
        launch.validate(ENTRY, plan, 4, {}, visible=2)
    assert launch.slurm_gpus_per_node({"SLURM_GPUS_PER_NODE": "a100:4"}) == 4
    plan = launch.build_plan(CFG, ENTRY, nodes=3, gpus_per_node=4, main_port=1, env=SLURM, use_scontrol=False)
    launch.validate(ENTRY, plan, 4, SLURM, visible=4)  # 8 x 12 x 2 = 192 completions, groups of 8: fine


@pytest.mark.parametrize(
    "block, processes, match",
    [
        ({"per_device_train_batch_size": 3, "num_generations": 2}, 1, "does not divide into groups"),
        ({"per_device_train_batch_size": 2, "num_generations": 8, "gradient_accumulation_steps": 2}, 3, "= 12"),
        ({"per_device_train_batch_size": 4, "generation_batch_size": 6}, 1, "not a multiple"),
    ],
)
def test_batch_validation(block, processes, match):
    entry = ["-m", "workflow_scripts.train.grpo", "--config-json", json.dumps(block)]
    plan = launch.Plan([], 1, processes)
    with pytest.raises(ValueError, match=match):
        launch.validate(entry, plan, 0, {}, visible=0)


def test_batch_validation_reads_config_file(tmp_path):
    cfg = tmp_path / "block.json"
    cfg.write_text(json.dumps({"per_device_train_batch_size": 3, "num_generations": 2}))
    entry = ["-m", "workflow_scripts.train.grpo", "--config-file", str(cfg)]
    with pytest.raises(ValueError, match="num_generations 2"):
        launch.validate(entry, launch.Plan([], 1, 1), 0, {}, visible=0)
    # an entry point without validate_launch (SFT) is accepted
    launch.validate(["-m", "workflow_scripts.train.sft", "--config-file", str(cfg)], launch.Plan([], 1, 1), 0, {}, 0)


def test_main_dry_run_in_slurm(monkeypatch, capsys):
    for key, value in SLURM.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(launch.shutil, "which", lambda name: None)  # no scontrol: the Python expansion
    monkeypatch.setattr(launch, "visible_gpus", lambda: 4)
    launch.main(["--accelerate-config", CFG, "--nodes", "2", "--main-port", "29600", "--dry-run", "--", *ENTRY])
    cmd = shlex.split(capsys.readouterr().out)
    assert cmd[:3] == ["srun", "--nodes", "2"]
    assert "--num_processes 8" in cmd[-1] and "--main_process_ip gpu07" in cmd[-1]  # G from SLURM_GPUS_ON_NODE


def test_main_usage_errors(capsys):
    with pytest.raises(SystemExit):
        launch.main(["--accelerate-config", CFG])  # nothing after --
    with pytest.raises(SystemExit):
        launch.main(["--accelerate-config", "nope.yaml", "--", "-m", "x"])
    assert "does not exist" in capsys.readouterr().err


def test_main_dry_run_local(monkeypatch, capsys):
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    cfg = "workflow_scripts/train/accelerate/cpu.yaml"
    launch.main(["--accelerate-config", cfg, "--gpus-per-node", "0", "--dry-run", "--", *ENTRY])
    cmd = shlex.split(capsys.readouterr().out)
    assert cmd[4:10] == ["--config_file", cfg, "--num_processes", "1", "--num_machines", "1"]
    assert cmd[-len(ENTRY):] == ENTRY


@pytest.mark.parametrize("name", ["cpu", "zero2", "zero3"])
def test_accelerate_configs_load(name):
    from accelerate.commands.config.config_args import load_config_from_file

    cfg = load_config_from_file(f"workflow_scripts/train/accelerate/{name}.yaml")
    if name == "cpu":
        assert cfg.use_cpu and str(cfg.distributed_type) in ("NO", "DistributedType.NO")
        return
    assert str(cfg.mixed_precision).endswith("bf16") and not cfg.use_cpu
    ds = cfg.deepspeed_config
    assert ds["zero_stage"] == {"zero2": 2, "zero3": 3}[name]
    assert ds["deepspeed_multinode_launcher"] == "standard"
    if name == "zero3":
        assert ds["zero3_init_flag"] is True and ds["zero3_save_16bit_model"] is True
