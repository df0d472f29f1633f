"""Copy job-submission errors (e.g. sbatch refusing a GPU request) from Snakemake's main log into each rule's log.

A job that SLURM refuses never runs, so its rule log stays empty and the reason sits only in the main log among
everything else. The Snakefile's ``onerror`` hook calls :func:`copy_submit_errors`, so that the rule's own log says
plainly why it did not run: e.g. "sbatch: error: Invalid generic resource (gres) specification".
"""

from __future__ import annotations

import re
from pathlib import Path

_BLOCK = re.compile(r"^Error in rule (?P<rule>\S+):\n(?P<body>(?:[ \t].*\n|For further.*\n)+)", re.M)
_MESSAGE = re.compile(r"^\s+message: (?P<msg>.*(?:sbatch|submi).*)$", re.M | re.I)
_CALL = re.compile(r"^\s+sbatch call:\n\s+(?P<call>.*)$", re.M)
_LOG = re.compile(r"^\s+log: (?P<log>\S+)", re.M)


def submit_errors(main_log_text: str) -> list[dict]:
    """The failed submissions in a Snakemake main log: rule, message, the sbatch call and the rule's log path."""
    found = []
    for block in _BLOCK.finditer(main_log_text):
        body = block.group("body")
        msg, log = _MESSAGE.search(body), _LOG.search(body)
        if msg and log:
            call = _CALL.search(body)
            found.append({"rule": block.group("rule"), "message": msg.group("msg"), "log": log.group("log"),
                          "call": call.group("call") if call else None})
    return found


def copy_submit_errors(main_logs: str | Path | list) -> list[dict]:
    """``main_logs``: what Snakemake hands an ``onerror`` hook (a list of main log files in Snakemake 9)."""
    paths = [main_logs] if isinstance(main_logs, (str, Path)) else list(main_logs or [])
    errors = [e for p in paths for e in submit_errors(Path(p).read_text(errors="replace"))]
    for err in errors:
        path = Path(err["log"])
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(f"job of rule {err['rule']} was not submitted: {err['message']}\n")
            if err["call"]:
                fh.write(f"submission command: {err['call']}\n")
    return errors
