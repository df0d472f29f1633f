"""The launcher's commands, built from fake SLURM environments and stand-in scontrol/srun (nothing is trained)."""

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
    plan = launch.build_plan(CFG, ENTRY, nodes=3, gpus_per_node=4, main_port=29511, env=SLURM, use_scontrol=False,
                             rendezvous_timeout=90)
    # the enclosing step's shape unset, then srun with the whole shape of the per-node step given explicitly
    unset = [f"--unset={name}" for name in launch.STEP_SHAPE]
    assert plan.command[:len(unset) + 1] == ["env", *unset]
    assert {"--unset=SLURM_NTASKS", "--unset=SLURM_JOB_NODELIST"} <= set(unset)
    srun = plan.command[len(unset) + 1:]
    assert srun[:14] == ["srun", "--overlap", "--nodes", "3", "--ntasks", "3", "--ntasks-per-node", "1", "--relative",
                         "0", "--kill-on-bad-exit=1", "--label", "bash", "-c"]
    assert (plan.num_machines, plan.num_processes) == (3, 12)
    argv, opts = srun_task_argv(plan.command[-1], rank=2)
    assert argv[:4] == [sys.executable, "-m", "accelerate.commands.accelerate_cli", "launch"]
    assert opts["--config_file"] == CFG
    assert opts["--num_machines"] == "3" and opts["--num_processes"] == "12"
    assert opts["--machine_rank"] == "2"  # evaluated per task
    assert opts["--main_process_ip"] == "gpu07" and opts["--main_process_port"] == "29511"
    assert opts["--rdzv_backend"] == "c10d" and opts["--rdzv_conf"] == "join_timeout=180,read_timeout=90"
    assert argv[argv.index("-m", 4):] == ENTRY  # the JSON argument survives the shell intact


def srun_task_argv(script: str, rank: int) -> tuple[list[str], dict[str, str]]:
    """Run the per-task script the way srun task ``rank`` would, printing the launch's argv instead of running it."""
    argv = subprocess.run(["bash", "-c", "printf '%s\\n' " + script], env={**os.environ, "SLURM_PROCID": str(rank)},
                          capture_output=True, text=True, check=True).stdout.splitlines()
    return argv, dict(zip(argv[4::1], argv[5::1]))


def test_failed_node_names_itself_and_the_rendezvous(tmp_path):
    # a node whose launch fails (here: exits 3) says which node it is and where it tried to meet the others
    script = launch.per_node_srun(["sh", "-c", "echo rendezvous refused >&2; exit 3", "sh"], [], ["n1", "n2"], 29500,
                                  rendezvous_timeout=20)[-1]
    proc = subprocess.run(["bash", "-c", script], env={**os.environ, "SLURM_PROCID": "1"}, capture_output=True,
                          text=True)
    assert proc.returncode == 3
    assert proc.stderr.splitlines() == [
        "rendezvous refused",
        f"launch: node {os.uname().nodename} (machine rank 1 of 2) exited with status 3; rendezvous host n1:29500, "
        "timeout 20 s",
    ]


# distributed_type NO (cpu.yaml) or MULTI_CPU (which expects mpirun): one plain process per node
@pytest.mark.parametrize("distributed_type", ["'NO'", "MULTI_CPU"])
def test_multi_node_needs_a_torchrun_config(tmp_path, distributed_type):
    config = tmp_path / "accelerate.yaml"
    config.write_text(f"distributed_type: {distributed_type}\nuse_cpu: true\n")
    with pytest.raises(ValueError, match="each node would train alone; use accelerate/cpu_multinode.yaml"):
        launch.build_plan(config, ENTRY, nodes=2, gpus_per_node=0, main_port=1, env=SLURM, use_scontrol=False)
    plan = launch.build_plan("workflow_scripts/train/accelerate/cpu_multinode.yaml", ENTRY, nodes=2, gpus_per_node=0,
                             main_port=1, env=SLURM, use_scontrol=False)
    assert plan.num_processes == 2 and "--label" in plan.command


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


# ---------------------------------------------------------------------------------------------- inside a job step
# `scontrol show job 42` of a running 3-node job (Slurm 22.05), as the launcher reads it
SCONTROL_JOB = """\
JobId=42 JobName=3f1c2a7e-scijudge_grpo
   UserId=root(0) GroupId=root(0) MCS_label=N/A
   JobState=RUNNING Reason=None Dependency=(null)
   RunTime=00:00:07 TimeLimit=00:30:00 TimeMin=N/A
   Partition=gpu AllocNode:Sid=login1:4242
   ReqNodeList=(null) ExcNodeList=(null)
   NodeList=gpu[07-08],cpu5
   BatchHost=gpu07
   NumNodes=3 NumCPUs=6 NumTasks=3 CPUs/Task=2 ReqB:S:C:T=0:0:*:*
   TRES=cpu=6,mem=24000M,node=3,billing=6,gres/gpu=12
"""
# a stand-in scontrol that knows job 42 only; anything else fails as scontrol does
FAKE_SCONTROL = """#!/bin/sh
case "$*" in
    "show job 42") cat "$(dirname "$0")/job42.txt" ;;
    "show hostnames gpu[07-08],cpu5") printf 'gpu07\\ngpu08\\ncpu5\\n' ;;
    *) echo "slurm_load_jobs error: Invalid job id specified ($*)" >&2; exit 1 ;;
esac
"""
# what the slurm executor's `srun -n1 --cpus-per-task=2` sets in the rule's step: one node, one task
STEP = {"SLURM_JOB_ID": "42", "SLURM_NNODES": "1", "SLURM_NTASKS": "1", "SLURM_NPROCS": "1", "SLURM_NTASKS_PER_NODE": "1",
        "SLURM_JOB_NODELIST": "gpu07", "SLURM_NODELIST": "gpu07", "SLURM_CPUS_PER_TASK": "2", "SLURM_GPUS_ON_NODE": "4"}


@pytest.fixture
def in_job_step(tmp_path, monkeypatch) -> Path:
    """This process inside job 42's one-task step, with the stand-in scontrol first on PATH (its directory)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "job42.txt").write_text(SCONTROL_JOB)
    (bin_dir / "scontrol").write_text(FAKE_SCONTROL)
    (bin_dir / "scontrol").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("SLURM_JOB_NUM_NODES", raising=False)  # the jobstep plugin passes it on no more
    for key, value in STEP.items():
        monkeypatch.setenv(key, value)
    return bin_dir


def test_nodes_come_from_scontrol_not_the_step(in_job_step, monkeypatch, capsys):
    assert launch.slurm_allocation(os.environ) == ["gpu07", "gpu08", "cpu5"]
    monkeypatch.setattr(launch, "visible_gpus", lambda: 4)
    launch.main(["--accelerate-config", CFG, "--main-port", "29600", "--dry-run", "--", *ENTRY])  # N: the job's
    cmd = shlex.split(capsys.readouterr().out)
    srun = cmd[cmd.index("srun"):]
    assert srun[:6] == ["srun", "--overlap", "--nodes", "3", "--ntasks", "3"]
    assert "--num_processes 12" in cmd[-1] and "--main_process_ip gpu07" in cmd[-1]  # G from SLURM_GPUS_ON_NODE
    with pytest.raises(ValueError, match=r"--nodes 4 but the SLURM allocation has only 3 node\(s\): gpu07, gpu08, cpu5"):
        launch.build_plan(CFG, ENTRY, nodes=4, gpus_per_node=4, main_port=1, env=os.environ)


@pytest.mark.parametrize(
    "job, scontrol, match",
    [
        ("43", True, r"`scontrol show job 43` failed with status 1: slurm_load_jobs error: Invalid job id"),
        ("42", False, "SLURM_JOB_ID is set but scontrol is not on PATH"),
    ],
)
def test_allocation_errors(in_job_step, monkeypatch, job, scontrol, match):
    monkeypatch.setenv("SLURM_JOB_ID", job)
    if not scontrol:
        monkeypatch.setenv("PATH", str(in_job_step / "none"))
    with pytest.raises(ValueError, match=match):
        launch.slurm_allocation(os.environ)


def test_pending_job_has_no_nodes(in_job_step):
    (in_job_step / "job42.txt").write_text(SCONTROL_JOB.replace("NodeList=gpu[07-08],cpu5", "NodeList=(null)"))
    with pytest.raises(ValueError, match="names no nodes"):
        launch.slurm_allocation(os.environ)


# a stand-in srun: records the arguments and the SLURM variables it was started with
FAKE_SRUN = f"""#!{sys.executable}
import json, os, sys
record = {{"argv": sys.argv[1:], "env": {{k: v for k, v in os.environ.items() if k.startswith("SLURM_")}}}}
json.dump(record, open(os.environ["FAKE_SRUN_RECORD"], "w"))
"""


def test_nested_srun_gets_no_step_task_counts(in_job_step, tmp_path):
    (in_job_step / "srun").write_text(FAKE_SRUN)
    (in_job_step / "srun").chmod(0o755)
    record = tmp_path / "srun.json"
    entry = [*ENTRY[:ENTRY.index("--output-dir") + 1], str(tmp_path / "run"), *ENTRY[ENTRY.index("--output-dir") + 2:]]
    proc = subprocess.run([sys.executable, "-m", "workflow_scripts.train.launch", "--accelerate-config", CFG, "--",
                           *entry], cwd=REPO, env={**os.environ, "FAKE_SRUN_RECORD": str(record)},
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    srun = json.loads(record.read_text())
    assert srun["argv"][:9] == ["--overlap", "--nodes", "3", "--ntasks", "3", "--ntasks-per-node", "1", "--relative", "0"]
    # the job's identity and the per-task CPUs stay; the step's task counts and one-node list do not reach srun
    assert srun["env"]["SLURM_JOB_ID"] == "42" and srun["env"]["SLURM_CPUS_PER_TASK"] == "2"
    assert not set(srun["env"]) & set(launch.STEP_SHAPE), srun["env"]


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


@pytest.mark.parametrize("name", ["cpu", "cpu_multinode", "zero2", "zero3"])
def test_accelerate_configs_load(name):
    from accelerate.commands.config.config_args import load_config_from_file

    cfg = load_config_from_file(f"workflow_scripts/train/accelerate/{name}.yaml")
    if name == "cpu":
        assert cfg.use_cpu and str(cfg.distributed_type) in ("NO", "DistributedType.NO")
        return
    if name == "cpu_multinode":  # started through torchrun (what MULTI_GPU selects); the processes find no GPU
        assert cfg.use_cpu and str(cfg.distributed_type).endswith("MULTI_GPU") and cfg.mixed_precision == "no"
        return
    assert str(cfg.mixed_precision).endswith("bf16") and not cfg.use_cpu
    ds = cfg.deepspeed_config
    assert ds["zero_stage"] == {"zero2": 2, "zero3": 3}[name]
    assert ds["deepspeed_multinode_launcher"] == "standard"
    if name == "zero3":
        assert ds["zero3_init_flag"] is True and ds["zero3_save_16bit_model"] is True


# ---------------------------------------------------------------------------------------------- vLLM server mode
SERVER_BLOCK = {**BLOCK, "use_vllm": True, "vllm_mode": "server"}
SERVER_ENTRY = [*ENTRY[:-1], json.dumps(SERVER_BLOCK)]
SLURM4 = {"SLURM_JOB_ID": "7", "SLURM_JOB_NUM_NODES": "4", "SLURM_JOB_NODELIST": "gpu[01-04]",
          "SLURM_GPUS_ON_NODE": "8"}


def config_json(command: list[str]) -> dict:
    return json.loads(command[command.index("--config-json") + 1])


def test_server_one_node_splits_gpus():
    plan = launch.build_plan(CFG, SERVER_ENTRY, nodes=1, gpus_per_node=8, main_port=29500, env={}, server_gpus=1)
    assert (plan.num_machines, plan.num_processes) == (1, 7)
    assert plan.env == {"CUDA_VISIBLE_DEVICES": "0,1,2,3,4,5,6"}
    opts = dict(zip(plan.command, plan.command[1:]))
    assert opts["--num_processes"] == "7" and opts["--num_machines"] == "1"
    server = plan.server
    assert server.env == {"CUDA_VISIBLE_DEVICES": "7"}
    assert server.command == [*launch.SERVE, "--model", "m", "--tensor-parallel-size", "1", "--data-parallel-size",
                              "1", "--host", "127.0.0.1", "--port", "8000"]
    assert server.url == "http://127.0.0.1:8000" and server.log == os.path.join("o", "vllm_server.log")
    # the trainer's block: as given, plus where the server is
    assert config_json(plan.command) == {**SERVER_BLOCK, "vllm_server_host": "127.0.0.1", "vllm_server_port": 8000}
    # SLURM (or the user) may have narrowed the devices: split the listed ones
    plan = launch.build_plan(CFG, SERVER_ENTRY, nodes=1, gpus_per_node=4, main_port=1, server_gpus=2,
                             server_port=8123, env={"CUDA_VISIBLE_DEVICES": "2,3,5,7"})
    assert plan.env["CUDA_VISIBLE_DEVICES"] == "2,3" and plan.server.env["CUDA_VISIBLE_DEVICES"] == "5,7"
    assert plan.num_processes == 2 and plan.server.command[-1] == "8123"
    assert plan.server.command[plan.server.command.index("--tensor-parallel-size") + 1] == "2"


def test_server_node_of_a_multi_node_job():
    plan = launch.build_plan(CFG, SERVER_ENTRY, nodes=None, gpus_per_node=8, main_port=29511, env=SLURM4,
                             use_scontrol=False, server_gpus=8)
    assert (plan.num_machines, plan.num_processes) == (3, 24) and plan.env == {}
    server = plan.server
    assert server.command[:8] == ["srun", "--overlap", "--nodes", "1", "--ntasks", "1", "--relative", "3"]
    assert server.command[8:] == [*launch.SERVE, "--model", "m", "--tensor-parallel-size", "8",
                                  "--data-parallel-size", "1", "--host", "0.0.0.0", "--port", "8000"]
    assert server.host == "gpu04" and server.env == {}
    srun = plan.command[plan.command.index("srun"):]
    assert srun[:10] == ["srun", "--overlap", "--nodes", "3", "--ntasks", "3", "--ntasks-per-node", "1", "--relative", "0"]
    argv, opts = srun_task_argv(plan.command[-1], rank=1)
    assert opts["--num_machines"] == "3" and opts["--num_processes"] == "24" and opts["--machine_rank"] == "1"
    assert opts["--main_process_ip"] == "gpu01"
    assert config_json(argv)["vllm_server_host"] == "gpu04"
    # the trainer's context window is the server's
    entry = [*ENTRY[:-1], json.dumps({**SERVER_BLOCK, "vllm_max_model_length": 4096})]
    plan = launch.build_plan(CFG, entry, nodes=None, gpus_per_node=8, main_port=1, env=SLURM4, use_scontrol=False,
                             server_gpus=8)
    assert plan.server.command[-2:] == ["--max-model-len", "4096"] and plan.server.tensor_parallel == 8
    # 2 nodes: the trainer is one node, run here (the batch step is on the allocation's first node)
    plan = launch.build_plan(CFG, SERVER_ENTRY, nodes=2, gpus_per_node=8, main_port=1, env=SLURM4,
                             use_scontrol=False, server_gpus=8)
    assert plan.command[0] == sys.executable and plan.num_processes == 8 and plan.server.host == "gpu02"
    assert plan.server.command[7] == "1"  # --relative 1: the last of the 2 nodes


@pytest.mark.parametrize(
    "block, nodes, gpus, k, match",
    [
        (SERVER_BLOCK, 1, 8, 8, "leaves none of the 8 GPU"),
        (SERVER_BLOCK, 1, 0, 1, "leaves none of the 0 GPU"),
        # data parallel 1 on a whole node: K < G would leave GPUs of the server node idle
        (SERVER_BLOCK, 4, 8, 4, "takes the whole last node, all 8 GPUs as tensor parallel 8 with data parallel 1"),
        (SERVER_BLOCK, 1, 8, 0, "no server is started"),
        (BLOCK, 1, 8, 1, "not vLLM server mode"),
        ({**SERVER_BLOCK, "use_vllm": False}, 1, 8, 1, "not vLLM server mode"),
        ({**SERVER_BLOCK, "vllm_server_host": "h"}, 1, 8, 1, r"sets \['vllm_server_host'\]"),
        (SERVER_BLOCK, 1, 8, -1, ">= 0"),
    ],
)
def test_server_errors(block, nodes, gpus, k, match):
    entry = [*ENTRY[:-1], json.dumps(block)]
    with pytest.raises(ValueError, match=match):
        launch.build_plan(CFG, entry, nodes=nodes, gpus_per_node=gpus, main_port=1, env=SLURM4, use_scontrol=False,
                          server_gpus=k)


def test_server_mode_with_a_server_of_ones_own():
    entry = [*ENTRY[:-1], json.dumps({**SERVER_BLOCK, "vllm_server_base_url": "http://gen:8000"})]
    plan = launch.build_plan(CFG, entry, nodes=1, gpus_per_node=8, main_port=1, env={})
    assert plan.server is None and plan.num_processes == 8 and plan.command[-len(entry):] == entry


def test_server_address_rewrite(tmp_path):
    address = {"vllm_server_host": "h", "vllm_server_port": 9}
    assert launch.with_server_address(["x.py", "--config-json", '{"a": 1}', "--y"], "h", 9) == [
        "x.py", "--config-json", json.dumps({"a": 1, **address}), "--y"]
    assert launch.with_server_address(["--config-json={}"], "h", 9) == ["--config-json=" + json.dumps(address)]
    # the last --config-json is the one argparse keeps
    rewritten = launch.with_server_address(["--config-json", "{}", "--config-json", '{"b": 2}'], "h", 9)
    assert rewritten[:2] == ["--config-json", "{}"] and json.loads(rewritten[3]) == {"b": 2, **address}
    # a block given as a file only: the address comes as a --config-json, which the trainer merges over the file
    cfg = tmp_path / "block.yaml"
    cfg.write_text("use_vllm: true\nvllm_mode: server\nvllm_server_port: 1\n")
    entry = launch.with_server_address(["-m", "workflow_scripts.train.grpo", "--config-file", str(cfg)], "h", 9)
    assert launch.entry_point_block(entry)[1] == {"use_vllm": True, "vllm_mode": "server", **address}


def test_batch_check_counts_trainer_processes_only(monkeypatch):
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    monkeypatch.setattr(launch, "visible_gpus", lambda: 8)
    # 8 per device x 7 trainer processes = 56 completions, not a multiple of 16 (8 x 8 = 64 would be)
    entry = [*ENTRY[:-1], json.dumps({**SERVER_BLOCK, "gradient_accumulation_steps": 1, "num_generations": 16})]
    with pytest.raises(ValueError, match="8 x 7 processes"):
        launch.main(["--accelerate-config", CFG, "--gpus-per-node", "8", "--vllm-server-gpus", "1", "--", *entry])


def test_main_dry_run_with_server(monkeypatch, capsys):
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setattr(launch, "visible_gpus", lambda: 8)
    launch.main(["--accelerate-config", CFG, "--gpus-per-node", "8", "--vllm-server-gpus", "2",
                 "--vllm-server-port", "8042", "--dry-run", "--", *SERVER_ENTRY])
    server, trainer = (shlex.split(line) for line in capsys.readouterr().out.splitlines())
    assert server[0] == "CUDA_VISIBLE_DEVICES=6,7" and server[-5:] == ["8042", ">", "o/vllm_server.log", "2>&1", "&"]
    assert trainer[0] == "CUDA_VISIBLE_DEVICES=0,1,2,3,4,5" and "6" == trainer[trainer.index("--num_processes") + 1]


# A stand-in for `trl vllm-serve`: a real HTTP server whose /health answers 503, then 200 after a delay (vLLM's is
# 200 once the model is loaded). It records its pid, argv and GPUs, for the test to check the split and the cleanup.
FAKE_SERVER = """
import http.server, json, os, sys, time
info, delay = sys.argv[1], float(sys.argv[2])
args = dict(zip(sys.argv[3::2], sys.argv[4::2]))
ready = time.time() + delay
json.dump({"pid": os.getpid(), "args": args, "gpus": os.environ["CUDA_VISIBLE_DEVICES"], "ready": ready},
          open(info, "w"))

class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/health" and time.time() > ready else 503)
        self.end_headers()

    def log_message(self, fmt, *args):
        print(fmt % args, flush=True)

http.server.HTTPServer((args["--host"], int(args["--port"])), Health).serve_forever()
"""
# A stand-in trainer, run by the real accelerate launch: records its pid, GPUs and config block, then sleeps if asked.
FAKE_TRAINER = """
import json, os, sys, time
out = sys.argv[sys.argv.index("--output-dir") + 1]
block = json.loads(sys.argv[sys.argv.index("--config-json") + 1])
json.dump({"pid": os.getpid(), "gpus": os.environ["CUDA_VISIBLE_DEVICES"], "block": block, "started": time.time()},
          open(os.path.join(out, "trainer.json"), "w"))
time.sleep(block.get("sleep", 0))
"""


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie is dead, only not yet reaped
    except FileNotFoundError:
        return False


def wait_for(predicate, timeout: float = 60.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def launcher(tmp_path, block, serve_command, *extra) -> list[str]:
    (tmp_path / "fake_trainer.py").write_text(FAKE_TRAINER)
    return [sys.executable, "-m", "workflow_scripts.train.launch", "--accelerate-config",
            "workflow_scripts/train/accelerate/cpu.yaml", "--gpus-per-node", "2", "--vllm-server-gpus", "1",
            "--vllm-server-port", str(free_port()), "--vllm-serve-command", shlex.join(serve_command), *extra, "--",
            str(tmp_path / "fake_trainer.py"), "--model", "tiny", "--output-dir", str(tmp_path),
            "--config-json", json.dumps({"use_vllm": True, "vllm_mode": "server", **block})]


def fake_server(tmp_path, delay: float) -> list[str]:
    (tmp_path / "fake_server.py").write_text(FAKE_SERVER)
    return [sys.executable, str(tmp_path / "fake_server.py"), str(tmp_path / "server.json"), str(delay)]


def test_server_then_trainer_then_stop(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    proc = subprocess.run(launcher(tmp_path, {}, fake_server(tmp_path, delay=1.0)), env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    server, trainer = (json.loads((tmp_path / f"{name}.json").read_text()) for name in ("server", "trainer"))
    assert server["gpus"] == "1" and trainer["gpus"] == "0"
    assert server["args"]["--model"] == "tiny" and server["args"]["--tensor-parallel-size"] == "1"
    port = int(server["args"]["--port"])
    assert trainer["block"] == {"use_vllm": True, "vllm_mode": "server", "vllm_server_host": "127.0.0.1",
                                "vllm_server_port": port}
    # the trainer started only once /health said 200, and the server is gone
    assert trainer["started"] >= server["ready"]
    assert '"GET /health HTTP/1.1" 200' in (tmp_path / "vllm_server.log").read_text()
    assert not alive(server["pid"])


def test_sigterm_stops_trainer_and_server(tmp_path):
    import signal

    cmd = launcher(tmp_path, {"sleep": 120}, fake_server(tmp_path, delay=0))
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: (tmp_path / "trainer.json").exists())
        proc.send_signal(signal.SIGTERM)  # what SLURM sends on preemption
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM and "stopping the trainer and the vLLM server" in err
    for name in ("trainer", "server"):
        pid = json.loads((tmp_path / f"{name}.json").read_text())["pid"]
        wait_for(lambda: not alive(pid), timeout=10)


def test_server_crash_is_reported_with_its_log(tmp_path):
    crash = [sys.executable, "-c", "import sys; print('CUDA out of memory (stand-in)'); sys.exit(3)"]
    proc = subprocess.run(launcher(tmp_path, {}, crash), cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and not (tmp_path / "trainer.json").exists()
    assert "exited with status 3 before it was ready" in proc.stderr and "CUDA out of memory" in proc.stderr


def test_wait_ready_times_out_with_the_log(tmp_path):
    from tests.loopback import LoopbackServer, Reply

    log_path = tmp_path / "server.log"
    log_path.write_text("loading weights\n")
    sleeper = launch._start([sys.executable, "-c", "import time; time.sleep(60)"], {})  # own process group
    try:
        with LoopbackServer() as server:
            server.route("/health", lambda request: Reply(503))
            with pytest.raises(TimeoutError, match=r"within 0.5 s(.|\n)*loading weights"):
                launch.wait_ready(server.url, sleeper, 0.5, str(log_path), interval=0.1)
            assert len(server.requests) >= 2
            launch.wait_ready(server.url, sleeper, 0.5, str(log_path), stopped=lambda: True)  # a signal: no wait
            server.route("/health", lambda request: Reply(200))
            launch.wait_ready(server.url, sleeper, 0.5, str(log_path))
    finally:
        launch._stop(sleeper, grace=5)
    assert sleeper.returncode == -15


# ---------------------------------------------------------------------------------------------- served LLM endpoints
def test_served_llm_endpoint_gets_gpus_of_its_own():
    plan = launch.build_plan(CFG, SERVER_ENTRY, nodes=1, gpus_per_node=8, main_port=1, env={}, server_gpus=2,
                             llm_gpus=2)
    assert plan.env == {"CUDA_VISIBLE_DEVICES": "0,1,2,3"} and plan.num_processes == 4
    assert plan.llm_devices == ["4", "5"] and plan.server.env == {"CUDA_VISIBLE_DEVICES": "6,7"}
    plan = launch.build_plan(CFG, ENTRY, nodes=1, gpus_per_node=4, main_port=1, env={"CUDA_VISIBLE_DEVICES": "3,4,6,7"},
                             llm_gpus=1)
    assert plan.env == {"CUDA_VISIBLE_DEVICES": "3,4,6"} and plan.llm_devices == ["7"] and plan.server is None
    with pytest.raises(ValueError, match="leaves no GPU to train on: 1 for the served LLM endpoint"):
        launch.build_plan(CFG, SERVER_ENTRY, nodes=1, gpus_per_node=2, main_port=1, env={}, server_gpus=1, llm_gpus=1)
    with pytest.raises(ValueError, match="needs a one-node launch, not 4 nodes"):
        launch.build_plan(CFG, ENTRY, nodes=None, gpus_per_node=8, main_port=1, env=SLURM4, use_scontrol=False,
                          llm_gpus=2)


# A trainer that asks the served endpoint one chat completion, through the URL the launcher gave it
JUDGE_CLIENT = """
import json, os, sys, urllib.request
out = sys.argv[sys.argv.index("--output-dir") + 1]
url = os.environ["SCITASTE_LLM_JUDGE_URL"]
body = {"model": "demo/generic@1", "messages": [{"role": "user", "content": "hello"}]}
req = urllib.request.Request(url + "/chat/completions", json.dumps(body).encode(), {"Content-Type": "application/json"})
answer = json.load(urllib.request.urlopen(req, timeout=30))
json.dump({"url": url, "content": answer["choices"][0]["message"]["content"]}, open(os.path.join(out, "judge.json"), "w"))
"""


def test_launcher_serves_the_judge_once_and_stops_it(tmp_path):
    (tmp_path / "judge_client.py").write_text(JUDGE_CLIENT)
    block = {"kind": "demo", "demo": {"policy": "generic"}}
    proc = subprocess.run([sys.executable, "-m", "workflow_scripts.train.launch", "--accelerate-config",
                           "workflow_scripts/train/accelerate/cpu.yaml", "--gpus-per-node", "0", "--serve-llm",
                           f"judge={json.dumps(block)}", "--", str(tmp_path / "judge_client.py"), "--output-dir",
                           str(tmp_path)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    answer = json.loads((tmp_path / "judge.json").read_text())
    assert answer["url"].startswith("http://127.0.0.1:") and answer["url"].endswith("/v1") and answer["content"]
    assert "interrupted (SIGTERM): workflow_scripts.llm.demo_server" in (tmp_path / "llm_judge_server.log").read_text()
    import urllib.error
    import urllib.request

    with pytest.raises(urllib.error.URLError):  # stopped with the trainer
        urllib.request.urlopen(answer["url"].removesuffix("/v1") + "/health", timeout=5)
    with pytest.raises(ValueError, match="--serve-llm 'judge': expected USE=BLOCK"):
        launch.served_endpoints(["judge"])
