"""The one launcher every training rule uses: ``accelerate launch`` on this machine, or one per node under SLURM.

    python -m workflow_scripts.train.launch --accelerate-config FILE [--nodes N] [--gpus-per-node G] \\
        [--main-port 29500] [--dry-run] -- -m workflow_scripts.train.grpo ARGS...

One node (or no SLURM allocation): ``accelerate launch --config_file FILE --num_processes max(G,1) --num_machines 1``.
Inside a SLURM allocation with N > 1 nodes: ``srun --nodes N --ntasks-per-node 1 bash -c '<accelerate launch ...>'``,
one launch per node, rank from $SLURM_PROCID, rendezvous (c10d) at the first host of the allocation. Before anything
starts, the GPU count and the entry point's batch arithmetic are checked (``validate_launch(block, processes)``).
"""

from __future__ import annotations

import argparse
import importlib
import itertools
import logging
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from typing import Mapping, Sequence

from workflow_scripts.common.cli import parser, setup_logging

log = logging.getLogger(__name__)

ACCELERATE = [sys.executable, "-m", "accelerate.commands.accelerate_cli", "launch"]


REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def resolve_shipped(path: str) -> str:
    """A relative path that is not in the working directory is one of the files shipped with the workflow (the
    accelerate configs): Snakemake may run in another working directory than the repository."""
    if os.path.isabs(path) or os.path.exists(path):
        return path
    shipped = os.path.join(REPO_ROOT, path)
    return shipped if os.path.exists(shipped) else path


# ---------------------------------------------------------------------------------------------- SLURM node lists
def expand_nodelist(nodelist: str, use_scontrol: bool = True) -> list[str]:
    """Host names of a SLURM node list ("gpu[01-03,07],cpu5"); ``scontrol show hostnames`` when available."""
    if use_scontrol and shutil.which("scontrol"):
        out = subprocess.run(["scontrol", "show", "hostnames", nodelist], check=True, capture_output=True, text=True)
        return out.stdout.split()
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
class Plan:
    command: list[str]  # what is exec'd
    num_machines: int
    num_processes: int


def slurm_nodes_allocated(env: Mapping[str, str]) -> int | None:
    """Nodes of the surrounding SLURM allocation, None outside SLURM."""
    if not env.get("SLURM_JOB_ID"):
        return None
    return int(env.get("SLURM_JOB_NUM_NODES") or env.get("SLURM_NNODES") or 1)


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
) -> Plan:
    """The command to exec; ``entry`` is what follows ``accelerate launch`` options (``-m module ARGS``)."""
    allocated = slurm_nodes_allocated(env)
    n = nodes if nodes is not None else (allocated or 1)
    if n < 1:
        raise ValueError(f"--nodes must be >= 1, got {n}")
    if n > 1 and allocated is None:
        raise ValueError(f"--nodes {n} needs a SLURM allocation (SLURM_JOB_ID is not set): run under sbatch/salloc")
    if allocated is not None and n > allocated:
        raise ValueError(f"--nodes {n} but the SLURM allocation has only {allocated} node(s)")
    per_node = max(gpus_per_node, 1)
    num_processes = n * per_node
    base = [*ACCELERATE, "--config_file", accelerate_config, "--num_processes", str(num_processes)]
    if n == 1:
        return Plan([*base, "--num_machines", "1", "--main_process_port", str(main_port), *entry], 1, num_processes)

    nodelist = env.get("SLURM_JOB_NODELIST") or env.get("SLURM_NODELIST")
    if not nodelist:
        raise ValueError("SLURM allocation without SLURM_JOB_NODELIST: cannot find the main node")
    main_host = expand_nodelist(nodelist, use_scontrol=use_scontrol)[0]
    per_task = [
        *base, "--num_machines", str(n), "--machine_rank", "__RANK__", "--main_process_ip", main_host,
        "--main_process_port", str(main_port), "--rdzv_backend", "c10d", *entry,
    ]
    # every argument quoted for bash, except the rank, which each task's bash expands to its own $SLURM_PROCID
    script = "exec " + shlex.join(per_task).replace("__RANK__", '"$SLURM_PROCID"')
    srun = ["srun", "--nodes", str(n), "--ntasks-per-node", "1", "--kill-on-bad-exit=1", "bash", "-c", script]
    return Plan(srun, n, num_processes)


# ---------------------------------------------------------------------------------------------- validation
def visible_gpus() -> int:
    try:
        import torch
    except ImportError:
        return 0
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def validate(entry: Sequence[str], plan: Plan, gpus_per_node: int, env: Mapping[str, str], visible: int) -> None:
    """Fail before launching: more GPUs asked than the node has, or batch arithmetic the entry point rejects."""
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


def entry_point_block(entry: Sequence[str]) -> tuple[str | None, dict]:
    """The module after ``-m`` and the config block its --config-json/--config-file arguments describe."""
    from workflow_scripts.common.cli import json_arg
    from workflow_scripts.train.config import load_block

    entry = list(entry)
    module = entry[1] if len(entry) > 1 and entry[0] == "-m" else None
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--config-json", type=json_arg, default=None)
    p.add_argument("--config-file", default=None)
    known, _ = p.parse_known_args(entry[2:] if module else entry)
    return module, load_block(known.config_json, known.config_file)


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
    p.add_argument("--dry-run", action="store_true", help="print the command instead of running it")
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
    plan = build_plan(args.accelerate_config, entry, nodes=args.nodes, gpus_per_node=gpus, main_port=args.main_port,
                      env=env)
    validate(entry, plan, gpus, env, visible)
    log.info("%d machine(s), %d process(es): %s", plan.num_machines, plan.num_processes, shlex.join(plan.command))
    if args.dry_run:
        print(shlex.join(plan.command))
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvp(plan.command[0], plan.command)  # replace this process: signals (Snakemake, SLURM) reach the job


if __name__ == "__main__":
    main()
