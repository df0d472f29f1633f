"""The one launcher every training rule uses: ``accelerate launch`` on this machine, or one per node under SLURM.

    python -m workflow_scripts.train.launch --accelerate-config FILE [--nodes N] [--gpus-per-node G] \\
        [--main-port 29500] [--vllm-server-gpus K] [--dry-run] -- -m workflow_scripts.train.grpo ARGS...

One node (or no SLURM allocation): ``accelerate launch --config_file FILE --num_processes max(G,1) --num_machines 1``.
Inside a SLURM allocation with N > 1 nodes (asked of ``scontrol show job``, never read from the job step's
environment): ``srun --nodes N --ntasks N --ntasks-per-node 1 bash -c '<accelerate launch ...>'``, one launch per
node, rank from $SLURM_PROCID, rendezvous (c10d) at the first host within --rendezvous-timeout. Before anything
starts, the GPU count and the entry point's batch arithmetic are checked (``validate_launch(block, processes)``).

GRPO with ``use_vllm: true, vllm_mode: server`` generates through a ``trl vllm-serve`` process that this launcher
starts first (``--vllm-server-gpus K``), always with data parallel 1 (vLLM refuses more for dense models): on one
node it gets the last K GPUs (tensor parallel K) and the trainer the first G-K; on N > 1 nodes it gets the whole last
node (K = G, tensor parallel G) and the trainer the first N-1 nodes; ``vllm_max_model_length`` of the trainer's block
is its ``--max-model-len``. The launcher adds the server's address to the trainer's config block, waits for its
/health, runs the trainer, and stops the server when the trainer ends or a signal (SLURM preemption, Snakemake)
arrives.

A reward that calls an LLM endpoint (the Refiner's judge: ``--serve-llm judge=BLOCK``, the ``llm.endpoints.judge``
block as JSON) gets its server from this launcher, once for all ranks: a ``vllm`` endpoint on ``vllm.gpus`` GPUs of
its own (after the trainer's, before a GRPO vLLM server's), a ``demo`` endpoint on loopback; the trainers find it
in ``SCITASTE_LLM_<USE>_URL`` (workflow_scripts.llm.endpoints). Only a one-node launch serves one: for several nodes,
run the server yourself and configure it as an ``external`` endpoint.

The launcher stays the trainer's parent (workflow_scripts.train.walltime): on SIGUSR1, and --wall-time-margin seconds
before the SLURM time limit, the trainer saves a checkpoint and stops, and the launcher exits with status 75.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib
import itertools
import json
import logging
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Mapping, Sequence

from workflow_scripts.common import server_process
from workflow_scripts.common.cli import parser, setup_logging
from workflow_scripts.train import vllm_config, walltime
from workflow_scripts.train.run_dir import LaunchChangedError, fingerprint, reset_stale_checkpoints

log = logging.getLogger(__name__)

ACCELERATE = [sys.executable, "-m", "accelerate.commands.accelerate_cli", "launch"]
# the launcher itself already runs inside a job step (the slurm executor wraps each job in `srun -n1`): a nested
# step must share that step's CPUs and memory, or it waits forever for them ("Unable to create step")
SRUN = ["srun", "--overlap"]
# The shape of the executor's one-task step as srun reads it: task counts (its -n, -N, --ntasks-per-*) and node list
# (SLURM_JOB_NODELIST is the step's one node there: srun would refuse a second). Unset, srun asks slurmctld.
STEP_SHAPE = ("SLURM_NTASKS", "SLURM_NPROCS", "SLURM_NNODES", "SLURM_JOB_NUM_NODES", "SLURM_NTASKS_PER_NODE",
              "SLURM_NTASKS_PER_CORE", "SLURM_NTASKS_PER_SOCKET", "SLURM_NTASKS_PER_GPU", "SLURM_JOB_NODELIST",
              "SLURM_NODELIST")
SERVE = [sys.executable, "-m", "trl.cli.main", "vllm-serve"]  # `trl vllm-serve` of this environment
SERVER_LOG = "vllm_server.log"  # in the entry's --output-dir, which survives a failed or preempted run
# where the trainer finds the server: set by this launcher when it runs the server, by the user otherwise
SERVER_ADDRESS_KEYS = ("vllm_server_base_url", "vllm_server_host", "vllm_server_port")


REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def resolve_shipped(path: str) -> str:
    """A relative path that is not in the working directory is one of the files shipped with the workflow (the
    accelerate configs): Snakemake may run in another working directory than the repository."""
    if os.path.isabs(path) or os.path.exists(path):
        return path
    shipped = os.path.join(REPO_ROOT, path)
    return shipped if os.path.exists(shipped) else path


# ---------------------------------------------------------------------------------------------- SLURM node lists
def slurm_allocation(env: Mapping[str, str], use_scontrol: bool = True) -> list[str] | None:
    """Hosts of the SLURM job this launcher runs in, as slurmctld has them; None outside SLURM.

    Never from the step's environment: the slurm executor runs each rule inside a one-task job step (``srun -n1``),
    whose SLURM_NNODES and SLURM_JOB_NODELIST describe that step (one node), and SLURM_JOB_NUM_NODES is not passed
    on. ``use_scontrol=False`` reads the job-level SLURM_JOB_NODELIST of ``env`` instead: plans built off a cluster.
    """
    job_id = env.get("SLURM_JOB_ID")
    if not job_id:
        return None
    if not use_scontrol:
        nodelist = env.get("SLURM_JOB_NODELIST")
        if not nodelist:
            raise ValueError("SLURM allocation without SLURM_JOB_NODELIST: cannot find the main node")
        return expand_nodelist(nodelist, use_scontrol=False)
    job = _scontrol("show", "job", job_id)
    nodelist = re.search(r"(?:^|\s)NodeList=(\S+)", job)
    if not nodelist or nodelist.group(1) == "(null)":
        raise ValueError(f"`scontrol show job {job_id}` names no nodes (is the job running?): {job.strip()[:300]}")
    return expand_nodelist(nodelist.group(1))


def _scontrol(*args: str) -> str:
    if shutil.which("scontrol") is None:
        raise ValueError("SLURM_JOB_ID is set but scontrol is not on PATH: cannot ask SLURM for the job's nodes")
    proc = subprocess.run(["scontrol", *args], capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise ValueError(f"`scontrol {' '.join(args)}` failed with status {proc.returncode}: {proc.stderr.strip()}")
    return proc.stdout


def expand_nodelist(nodelist: str, use_scontrol: bool = True) -> list[str]:
    """Host names of a SLURM node list ("gpu[01-03,07],cpu5"); ``scontrol show hostnames`` when available."""
    if use_scontrol and shutil.which("scontrol"):
        return _scontrol("show", "hostnames", nodelist).split()
    return _expand_nodelist_py(nodelist)


def _expand_nodelist_py(nodelist: str) -> list[str]:
    hosts: list[str] = []
    for item in _split_top_level(nodelist.strip()):
        # "rack[1-2]-n[01-02]": literal text and bracket groups alternate; the hosts are their product
        pieces = re.split(r"(\[[^\]]*\])", item)
        choices = [_expand_ranges(p[1:-1]) if p.startswith("[") else [p] for p in pieces if p]
        if any("[" in p or "]" in p for p in pieces if not p.startswith("[")):
            raise ValueError(f"cannot parse SLURM node list {nodelist!r} (item {item!r})")
        hosts.extend("".join(combo) for combo in itertools.product(*choices))
    return hosts


def _split_top_level(text: str) -> list[str]:
    items, depth, current = [], 0, []
    for ch in text:
        depth += {"[": 1, "]": -1}.get(ch, 0)
        if depth < 0 or depth > 1:
            raise ValueError(f"cannot parse SLURM node list {text!r}: unbalanced brackets")
        if ch == "," and depth == 0:
            items.append("".join(current))
            current = []
        else:
            current.append(ch)
    if depth:
        raise ValueError(f"cannot parse SLURM node list {text!r}: unbalanced brackets")
    items.append("".join(current))
    return [i for i in items if i]


def _expand_ranges(spec: str) -> list[str]:
    out: list[str] = []
    for part in spec.split(","):
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part.strip())
        if not m:
            raise ValueError(f"cannot parse SLURM node range {part!r} in [{spec}]")
        lo, hi = m.group(1), m.group(2) or m.group(1)
        width = len(lo)  # zero padding as written: gpu[01-03] -> gpu01..gpu03
        if int(hi) < int(lo):
            raise ValueError(f"descending SLURM node range {part!r}")
        out.extend(str(i).zfill(width) for i in range(int(lo), int(hi) + 1))
    return out


# ---------------------------------------------------------------------------------------------- command building
@dataclass
class Server:
    """The vLLM server of GRPO's vllm_mode "server", started before the trainer and stopped after it."""

    command: list[str]
    env: dict[str, str]  # CUDA_VISIBLE_DEVICES when it shares the node with the trainer
    host: str  # where the trainer and the readiness check reach it
    port: int
    log: str
    tensor_parallel: int = 1

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


@dataclass
class Plan:
    command: list[str]  # what is exec'd
    num_machines: int
    num_processes: int  # trainer processes: the server's GPUs are not counted
    env: dict[str, str] = field(default_factory=dict)  # added to the trainer's environment
    server: Server | None = None
    llm_devices: list[str] = field(default_factory=list)  # GPUs set aside for the served LLM endpoints


def slurm_gpus_per_node(env: Mapping[str, str]) -> int | None:
    """GPUs SLURM gave this job on a node (SLURM_GPUS_ON_NODE, or a count in SLURM_GPUS_PER_NODE like 'a100:4')."""
    for key in ("SLURM_GPUS_ON_NODE", "SLURM_GPUS_PER_NODE"):
        value = env.get(key)
        if value:
            m = re.search(r"(\d+)\s*$", value.split(",")[0])
            if m:
                return int(m.group(1))
    return None


def build_plan(
    accelerate_config: str,
    entry: Sequence[str],
    *,
    nodes: int | None,
    gpus_per_node: int,
    main_port: int,
    env: Mapping[str, str],
    use_scontrol: bool = True,
    server_gpus: int = 0,
    server_port: int = 8000,
    serve_command: Sequence[str] = SERVE,
    rendezvous_timeout: int = 300,
    llm_gpus: int = 0,
) -> Plan:
    """The command to exec; ``entry`` is what follows ``accelerate launch`` options (``-m module ARGS``).
    ``llm_gpus``: GPUs of this node set aside for served LLM endpoints (--serve-llm)."""
    if nodes is not None and nodes < 1:
        raise ValueError(f"--nodes must be >= 1, got {nodes}")
    # a one-node launch runs right here: it needs nothing of the allocation
    job_hosts = slurm_allocation(env, use_scontrol) if nodes is None or nodes > 1 else None
    n = nodes if nodes is not None else (len(job_hosts) if job_hosts else 1)
    if n > 1 and job_hosts is None:
        raise ValueError(f"--nodes {n} needs a SLURM allocation (SLURM_JOB_ID is not set): run under sbatch/salloc")
    if job_hosts is not None and n > len(job_hosts):
        raise ValueError(f"--nodes {n} but the SLURM allocation has only {len(job_hosts)} node(s): "
                         f"{', '.join(job_hosts)}")
    hosts = job_hosts[:n] if n > 1 else []
    per_node = max(gpus_per_node, 1)
    trainer_env: dict[str, str] = {}
    server = None
    llm_devices: list[str] = []
    if llm_gpus:
        if n > 1:
            raise ValueError(f"a served LLM endpoint ({llm_gpus} GPU(s)) needs a one-node launch, not {n} nodes: serve "
                             "it yourself and configure it as an external endpoint")
        devices = node_devices(env, gpus_per_node)
        per_node = gpus_per_node - server_gpus - llm_gpus
        if per_node < 1:
            raise ValueError(f"--gpus-per-node {gpus_per_node} leaves no GPU to train on: {llm_gpus} for the served "
                             f"LLM endpoint(s) and {server_gpus} for the vLLM server")
        trainer_env = {"CUDA_VISIBLE_DEVICES": ",".join(devices[:per_node])}
        llm_devices = devices[per_node:per_node + llm_gpus]
    if check_server_mode(entry, server_gpus):
        model, output_dir = entry_options(entry, "model", "output_dir")
        log_path = os.path.join(output_dir or ".", SERVER_LOG)
        # data parallel 1, tensor parallel K (one node) or G (the whole last node): see vllm_config
        _, _, tp = vllm_config.server_layout(n, gpus_per_node, server_gpus)
        window = entry_point_block(entry)[1].get("vllm_max_model_length")
        if n == 1:  # the node's last K GPUs serve, the first G-K train; loopback only: nothing else needs it
            devices = node_devices(env, gpus_per_node)
            per_node = gpus_per_node - server_gpus - llm_gpus
            trainer_env = {"CUDA_VISIBLE_DEVICES": ",".join(devices[:per_node])}
            command = serve(serve_command, model, tp, "127.0.0.1", server_port, window)
            server = Server(command, {"CUDA_VISIBLE_DEVICES": ",".join(devices[gpus_per_node - server_gpus:])},
                            "127.0.0.1", server_port, log_path, tp)
        else:  # the whole last node serves, the first N-1 train
            step = [*SRUN, "--nodes", "1", "--ntasks", "1", "--relative", str(n - 1)]
            command = serve(serve_command, model, tp, "0.0.0.0", server_port, window)
            server = Server([*step, *command], {}, hosts[-1], server_port, log_path, tp)
            n -= 1
        entry = with_server_address(entry, server.host, server.port)

    num_processes = n * per_node
    base = [*ACCELERATE, "--config_file", accelerate_config, "--num_processes", str(num_processes)]
    if n == 1:  # also the trainer of a 2-node server plan: this batch step runs on the allocation's first node
        command = [*base, "--num_machines", "1", "--main_process_port", str(main_port), *entry]
        return Plan(command, 1, num_processes, trainer_env, server, llm_devices)

    check_multi_node_config(accelerate_config, n)
    command = per_node_srun(base, entry, hosts[:n], main_port, rendezvous_timeout)  # a server node is not in n
    return Plan(command, n, num_processes, trainer_env, server)


def per_node_srun(launch: Sequence[str], entry: Sequence[str], hosts: Sequence[str], main_port: int,
                  rendezvous_timeout: int) -> list[str]:
    """One ``accelerate launch`` on each of ``hosts``: a nested job step of one task per node, its shape given in
    full and the enclosing step's shape unset. The nodes meet (c10d) at the first host; one that cannot reach
    it fails after ``rendezvous_timeout`` s, a line names the node and the address, and srun ends the other nodes
    (--kill-on-bad-exit); every output line carries its node's task number (--label)."""
    n, timeout = len(hosts), rendezvous_timeout
    per_task = [
        *launch, "--num_machines", str(n), "--machine_rank", "__RANK__", "--main_process_ip", hosts[0],
        "--main_process_port", str(main_port), "--rdzv_backend", "c10d",
        # the first node waits longer for the others (join) than they try to reach it (read): the node that cannot
        # reach it is the one that fails and says so
        "--rdzv_conf", f"join_timeout={2 * timeout},read_timeout={timeout}", *entry,
    ]
    # every argument quoted for bash, except the rank, which each task's bash expands to its own $SLURM_PROCID
    launch_line = shlex.join(per_task).replace("__RANK__", '"$SLURM_PROCID"')
    failed = (f'launch: node $(hostname) (machine rank $SLURM_PROCID of {n}) exited with status $status; '
              f'rendezvous host {hosts[0]}:{main_port}, timeout {timeout} s')
    script = f'{launch_line} || {{ status=$?; echo "{failed}" >&2; exit $status; }}'
    unset = [f"--unset={name}" for name in STEP_SHAPE]
    return ["env", *unset, *SRUN, "--nodes", str(n), "--ntasks", str(n), "--ntasks-per-node", "1", "--relative", "0",
            "--kill-on-bad-exit=1", "--label", "bash", "-c", script]


def check_multi_node_config(accelerate_config: str, nodes: int) -> None:
    """Several nodes need a config that accelerate launches through torchrun: with distributed_type NO (or MULTI_CPU,
    which expects mpirun) it starts one plain process per node, and every node would train alone."""
    import yaml

    with open(accelerate_config) as f:
        kind = str((yaml.safe_load(f) or {}).get("distributed_type", "NO"))
    if kind in ("NO", "MULTI_CPU"):
        raise ValueError(f"--nodes {nodes} with {accelerate_config} (distributed_type {kind}): each node would train "
                         "alone; use accelerate/cpu_multinode.yaml on CPUs, zero2.yaml or zero3.yaml on GPUs")


def serve(serve_command: Sequence[str], model: str | None, tp: int, host: str, port: int,
          max_model_len: int | None) -> list[str]:
    """The server command: data parallel 1 (vLLM refuses more for dense models), the trainer's context window."""
    if not model:
        raise ValueError("the vLLM server serves the trainer's --model, but the entry point has no --model")
    window = [] if max_model_len is None else ["--max-model-len", str(max_model_len)]
    return [*serve_command, "--model", model, "--tensor-parallel-size", str(tp), "--data-parallel-size", "1",
            "--host", host, "--port", str(port), *window]


def node_devices(env: Mapping[str, str], gpus: int) -> list[str]:
    """This node's first ``gpus`` CUDA devices as CUDA_VISIBLE_DEVICES names them (SLURM may set '4,5,6,7')."""
    listed = [d for d in (env.get("CUDA_VISIBLE_DEVICES") or "").split(",") if d.strip()]
    if not listed:
        return [str(i) for i in range(gpus)]
    if len(listed) < gpus:
        raise ValueError(f"--gpus-per-node {gpus} but CUDA_VISIBLE_DEVICES lists {len(listed)}: {listed}")
    return listed[:gpus]


def check_server_mode(entry: Sequence[str], server_gpus: int) -> bool:
    """Whether this launcher runs a vLLM server; a mismatch between --vllm-server-gpus and the block is an error."""
    if server_gpus < 0:
        raise ValueError(f"--vllm-server-gpus must be >= 0, got {server_gpus}")
    _, block = entry_point_block(entry)
    wants = bool(block.get("use_vllm")) and block.get("vllm_mode") == "server"
    named = [k for k in SERVER_ADDRESS_KEYS if block.get(k) is not None]
    if server_gpus and not wants:
        raise ValueError(f"--vllm-server-gpus {server_gpus} but the trainer block is not vLLM server mode: set "
                         "use_vllm: true and vllm_mode: server, or launch vllm_server_gpus: 0 (colocate)")
    if server_gpus and named:
        raise ValueError(f"the trainer block sets {named}, but this launcher runs the server and sets its address: "
                         "remove them, or set launch vllm_server_gpus: 0 to use a server of your own")
    if wants and not server_gpus and not named:
        raise ValueError("the trainer block asks for vllm_mode: server but no server is started: set launch "
                         "vllm_server_gpus (GPUs set aside for it), or name your own server in vllm_server_base_url")
    return bool(server_gpus)


def with_server_address(entry: Sequence[str], host: str, port: int) -> list[str]:
    """The entry's arguments with the server's address added to its (last) --config-json block, or appended as one:
    the trainer merges --config-json over --config-file, so every way of giving the block works."""
    entry = list(entry)
    address = {"vllm_server_host": host, "vllm_server_port": port}

    def merged(text: str) -> str:
        return json.dumps({**json.loads(text), **address})

    for i in reversed(range(len(entry))):
        flag, eq, value = entry[i].partition("=")
        if flag == "--config-json" and (eq or i + 1 < len(entry)):
            if eq:
                entry[i] = f"--config-json={merged(value)}"
            else:
                entry[i + 1] = merged(entry[i + 1])
            return entry
    return [*entry, "--config-json", json.dumps(address)]


# ---------------------------------------------------------------------------------------------- validation
def visible_gpus() -> int:
    try:
        import torch
    except ImportError:
        return 0
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def validate(entry: Sequence[str], plan: Plan, gpus_per_node: int, env: Mapping[str, str], visible: int) -> None:
    """Fail before launching: more GPUs asked than the node has, batch arithmetic the entry point rejects, or a vLLM
    layout vLLM refuses for this model."""
    granted = slurm_gpus_per_node(env)
    if granted is not None and gpus_per_node > granted:
        raise ValueError(f"--gpus-per-node {gpus_per_node} but SLURM granted {granted} GPU(s) per node")
    if visible and gpus_per_node > visible:
        raise ValueError(f"--gpus-per-node {gpus_per_node} but this node has {visible} visible GPU(s)")
    if gpus_per_node and not visible and granted is None:
        log.warning("--gpus-per-node %d on a node with no visible GPU (dry run or login node?)", gpus_per_node)
    module, block = entry_point_block(entry)
    if module is not None and module.startswith("workflow_scripts."):  # only our trainers are imported to check
        check = getattr(importlib.import_module(module), "validate_launch", None)
        if check is not None:
            check(block, plan.num_processes)
    (model,) = entry_options(entry, "model")
    problems = vllm_config.problems(block, processes=plan.num_processes, gpus_per_node=gpus_per_node,
                                    server_tp=plan.server.tensor_parallel if plan.server else None,
                                    model_config=vllm_config.model_config(model))
    if problems:
        raise ValueError(f"vLLM would refuse this launch of {model}: " + "; ".join(problems))


def entry_point_block(entry: Sequence[str]) -> tuple[str | None, dict]:
    """The module after ``-m`` and the config block its --config-json/--config-file arguments describe."""
    from workflow_scripts.train.config import load_block

    module, known = _parse_entry(entry)
    return module, load_block(known.config_json, known.config_file)


def entry_options(entry: Sequence[str], *names: str) -> list[str | None]:
    """Values of the entry point's own options (``model`` for --model), None where not given."""
    _, known = _parse_entry(entry)
    return [getattr(known, name) for name in names]


def _parse_entry(entry: Sequence[str]) -> tuple[str | None, argparse.Namespace]:
    from workflow_scripts.common.cli import json_arg

    entry = list(entry)
    module = entry[1] if len(entry) > 1 and entry[0] == "-m" else None
    p = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    p.add_argument("--config-json", type=json_arg, default=None)
    for option in ("--config-file", "--model", "--output-dir", "--train"):
        p.add_argument(option, default=None)
    known, _ = p.parse_known_args(entry[2:] if module else entry)
    return module, known


# ---------------------------------------------------------------------------------------------- running
def shell_lines(plan: Plan) -> list[str]:
    """The plan as shell lines (environment, command; the server in the background), for --dry-run and the log."""
    def line(command: Sequence[str], env: Mapping[str, str]) -> str:
        return shlex.join([*(f"{k}={v}" for k, v in env.items()), *command])

    lines = [line(plan.command, plan.env)]
    if plan.server:
        s = plan.server
        lines.insert(0, f"{line(s.command, s.env)} > {shlex.quote(s.log)} 2>&1 &")
    return lines


def run_with_server(plan: Plan, ready_timeout: float, grace: float = 30.0, poll: float = 1.0) -> int:
    """Start the server, wait until it is ready, run the trainer, stop the server; the exit status to leave with.

    Each child runs in its own process group, and SIGTERM/SIGINT to this launcher (SLURM preemption, Snakemake,
    Ctrl-C) is forwarded once, as SIGTERM, to each whole group (vLLM's workers, srun's remote tasks): no server
    outlives the run, so a requeued job finds its GPUs and port free.
    """
    server = plan.server
    children: list[subprocess.Popen] = []
    stopped: list[int] = []

    def forward(signum, _frame):
        stopped.append(signum)
        for child in children:
            _signal_group(child, signal.SIGTERM)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        os.makedirs(os.path.dirname(server.log) or ".", exist_ok=True)
        with open(server.log, "ab") as out:  # appended: a requeued job keeps the log of the run before
            out.write(f"==== {time.strftime('%Y-%m-%d %H:%M:%S')} launcher: {shell_lines(plan)[0]}\n".encode())
            out.flush()
            children.append(_start(server.command, server.env, stdout=out, stderr=subprocess.STDOUT))
        log.info("vLLM server starting (log: %s); waiting for %s/health", server.log, server.url)
        wait_ready(server.url, children[0], ready_timeout, server.log, stopped=lambda: bool(stopped))
        if not stopped:
            log.info("vLLM server ready; starting the trainer")
            trainer = _start(plan.command, plan.env)
            children.append(trainer)
            while trainer.poll() is None and not stopped:
                if children[0].poll() is not None:
                    raise RuntimeError(f"the vLLM server exited with status {children[0].returncode} during "
                                       f"training; {log_tail(server.log)}")
                time.sleep(poll)
        if stopped:
            log.warning("signal %d: stopping the trainer and the vLLM server", stopped[0])
            return 128 + stopped[0]
        return trainer.returncode
    finally:
        for child in reversed(children):  # the trainer first: it may be talking to the server
            _stop(child, grace)
        for sig, handler in previous.items():  # only now: a second signal must not kill us mid-cleanup
            signal.signal(sig, handler)


# the shared server machinery (also the LLM endpoints'), under the names this module has always used
wait_ready = functools.partial(server_process.wait_ready, name="the vLLM server",
                               timeout_hint="see --vllm-server-timeout")
log_tail = server_process.log_tail
_start = server_process.start
_signal_group = server_process.signal_group
_stop = server_process.stop


# ---------------------------------------------------------------------------------------------- served LLM endpoints
def served_endpoints(specs: Sequence[str]) -> list:
    """``USE=BLOCK`` arguments as validated endpoints; an external one needs no server and is left out."""
    from workflow_scripts.common.cli import json_arg
    from workflow_scripts.llm.config import endpoint

    endpoints = []
    for spec in specs:
        use, eq, block = spec.partition("=")
        if not eq or not use:
            raise ValueError(f"--serve-llm {spec!r}: expected USE=BLOCK (the llm.endpoints.USE block as JSON)")
        e = endpoint(use, json_arg(block))
        if e.kind != "external":
            endpoints.append(e)
    return endpoints


def endpoint_gpus(e) -> int:
    return e.vllm["gpus"] if e.kind == "vllm" else 0


def serve_endpoints(stack: contextlib.ExitStack, endpoints: Sequence, plan: Plan, output_dir: str) -> None:
    """Start each endpoint's server on its share of ``plan.llm_devices`` (stopped when ``stack`` closes) and tell
    the trainers where it is."""
    from workflow_scripts.llm.endpoints import served_url_env, serving

    devices = list(plan.llm_devices)
    for e in endpoints:
        mine, devices = devices[:endpoint_gpus(e)], devices[endpoint_gpus(e):]
        env = {"CUDA_VISIBLE_DEVICES": ",".join(mine)} if mine else {}
        url = stack.enter_context(serving(e, os.path.join(output_dir, f"llm_{e.use}_server.log"), env))
        plan.env[served_url_env(e.use)] = url


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--" not in argv:
        own, entry = argv, []
    else:
        i = argv.index("--")
        own, entry = argv[:i], argv[i + 1:]
    p = parser(__doc__.splitlines()[0])
    p.usage = "%(prog)s --accelerate-config FILE [options] -- -m workflow_scripts.train.<trainer> ARGS..."
    p.add_argument("--accelerate-config", required=True,
                   help="accelerate config YAML (workflow_scripts/train/accelerate/)")
    p.add_argument("--nodes", type=int, default=None, help="nodes (default: the SLURM allocation's, else 1)")
    p.add_argument("--gpus-per-node", type=int, default=None,
                   help="processes per node (default: GPUs granted by SLURM or visible; 0 = one CPU process)")
    p.add_argument("--main-port", type=int, default=29500)
    p.add_argument("--rendezvous-timeout", type=int, default=300,
                   help="seconds the nodes of a multi-node launch have to meet at the first node; then the job fails")
    p.add_argument("--vllm-server-gpus", type=int, default=0,
                   help="GPUs of a vLLM server for GRPO's vllm_mode server: the last K GPUs of one node, or the "
                        "whole last node (tensor parallel K) of several; 0 = no server")
    p.add_argument("--vllm-server-port", type=int, default=8000, help="port of the vLLM server's HTTP API")
    p.add_argument("--vllm-server-timeout", type=float, default=1200,
                   help="seconds to wait for the server to answer /health")
    p.add_argument("--vllm-serve-command", default=shlex.join(SERVE),
                   help="the server command, given --model/--tensor-parallel-size/--data-parallel-size/--host/--port "
                        "and the trainer's --max-model-len (add vLLM options here, e.g. '... --enforce-eager')")
    p.add_argument("--serve-llm", action="append", default=[], metavar="USE=BLOCK",
                   help="serve the LLM endpoint llm.endpoints.USE (its config block as JSON) beside the trainer, once "
                        "for all ranks (repeatable); the trainers find it in SCITASTE_LLM_<USE>_URL")
    p.add_argument("--wall-time-margin", type=float, default=0,
                   help="seconds before the SLURM time limit at which the trainer saves a checkpoint and stops "
                        "(SIGUSR1 to this process does the same at once); 0 = not before the limit")
    p.add_argument("--dry-run", action="store_true", help="print the command(s) instead of running them")
    args = p.parse_args(own)
    setup_logging(args.verbose)
    if not entry:
        p.error("nothing to launch: give the trainer after '--', e.g. -- -m workflow_scripts.train.grpo ...")
    args.accelerate_config = resolve_shipped(args.accelerate_config)
    if not os.path.exists(args.accelerate_config):
        p.error(f"accelerate config {args.accelerate_config} does not exist")

    env = dict(os.environ)
    gpus = args.gpus_per_node
    visible = visible_gpus() if gpus != 0 else 0  # 0 = CPU: skip importing torch to count GPUs
    if gpus is None:
        gpus = slurm_gpus_per_node(env) or visible
    served = served_endpoints(args.serve_llm)
    plan = build_plan(args.accelerate_config, entry, nodes=args.nodes, gpus_per_node=gpus, main_port=args.main_port,
                      env=env, server_gpus=args.vllm_server_gpus, server_port=args.vllm_server_port,
                      serve_command=shlex.split(args.vllm_serve_command), rendezvous_timeout=args.rendezvous_timeout,
                      llm_gpus=sum(endpoint_gpus(e) for e in served))
    validate(entry, plan, gpus, env, visible)
    if served and plan.num_machines > 1:
        sys.exit(f"launch: --serve-llm needs a one-node launch, not {plan.num_machines} nodes: serve the endpoint "
                 "yourself and configure it as an external endpoint")
    lines = shell_lines(plan)
    log.info("%d machine(s), %d trainer process(es):\n%s", plan.num_machines, plan.num_processes, "\n".join(lines))
    if args.dry_run:
        print("\n".join(lines))
        return
    # once, before any rank starts: checkpoints of another run must not be resumed (see run_dir)
    model, train, output_dir = entry_options(entry, "model", "train", "output_dir")
    identity = fingerprint(model, train, entry_point_block(entry)[1], plan.num_processes, args.accelerate_config)
    try:
        reset_stale_checkpoints(output_dir, identity)
    except LaunchChangedError as exc:
        sys.exit(f"launch: {exc}")
    sys.stdout.flush()
    sys.stderr.flush()
    # this process stays the trainer's parent: it keeps the wall-time deadline and turns SIGUSR1 into a checkpoint
    with contextlib.ExitStack() as servers, walltime.StopRequests(output_dir or ".", args.wall_time_margin, env):
        serve_endpoints(servers, served, plan, output_dir or ".")
        code = run_with_server(plan, args.vllm_server_timeout) if plan.server else walltime.run(plan.command, plan.env)
    sys.exit(walltime.exit_status(code, output_dir or "."))


if __name__ == "__main__":
    main()
