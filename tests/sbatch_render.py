"""The sbatch calls snakemake-executor-plugin-slurm would make for a workflow, without SLURM: Snakemake's own command
line, profile included, as a user types it, in dry-run mode; every job the dry run schedules goes through the
plugin's own builders of the sbatch command line (``get_submit_command`` + ``set_gres_string``, with its
``get_partition_arg`` and ``get_account_arg``, as its ``run_job`` does). Nothing is submitted.

    python -m tests.sbatch_render OUT.jsonl -n --profile slurm --configfile ... [targets]

OUT.jsonl: one line per job: rule, wildcards, whether it is a local rule, its shell command, its input files and,
for a cluster job, the sbatch command line (without the ``--wrap`` of the job's own Snakemake call).
"""

from __future__ import annotations

import json
import logging
import sys

from snakemake import cli
from snakemake.executors import dryrun
from snakemake_executor_plugin_slurm import Executor as SlurmExecutor
from snakemake_executor_plugin_slurm.submit_string import get_submit_command
from snakemake_executor_plugin_slurm.utils import set_gres_string
from snakemake_interface_executor_plugins.registry import ExecutorPluginRegistry


class _Submitter:
    """The state of the plugin's Executor that its partition and account builders read."""

    _partitions = None  # no partition file: the job's slurm_partition, or none
    _fallback_partition = ""  # a job without slurm_partition gets none (the plugin would ask sinfo for the default)
    _fallback_account_arg = ""  # a job without slurm_account gets none (the plugin would guess from sacct)
    logger = logging.getLogger("sbatch_render")


def sbatch_call(job, settings) -> str:
    submitter = _Submitter()
    params = {
        "run_uuid": "RUN",
        "slurm_logfile": f".snakemake/slurm_logs/rule_{job.name}/%j.log",
        "comment_str": f"rule_{job.name}",
        "account": next(SlurmExecutor.get_account_arg(submitter, job)),
        "partition": SlurmExecutor.get_partition_arg(submitter, job),
        "workdir": "WORKDIR",
    }
    return get_submit_command(job, params, settings=settings) + set_gres_string(job)


def main(argv: list[str]) -> None:
    out, snakemake_args = argv[0], argv[1:]
    parser, args = cli.parse_args(snakemake_args)
    settings = ExecutorPluginRegistry().get_plugin("slurm").get_settings(args)
    records = []
    schedule = dryrun.Executor.run_job

    def run_job(self, job):
        # what the SLURM executor runs on the submitting host (a dry run counts every job as local)
        local = job.rule.name in job.dag.workflow._localrules or job.rule.norun
        records.append({
            "rule": job.name, "wildcards": dict(job.wildcards), "local": local, "shell": job.shellcmd or "",
            "input": [str(f) for f in job.input], "sbatch": None if local else sbatch_call(job, settings),
        })
        return schedule(self, job)

    dryrun.Executor.run_job = run_job
    ok = cli.args_to_api(args, parser)
    with open(out, "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in records)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main(sys.argv[1:])
