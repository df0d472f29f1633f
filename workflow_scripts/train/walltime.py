"""Stop a training run with a checkpoint before SLURM's time limit (or on SIGUSR1), so a TIMEOUT loses at most the
margin and the resubmitted job resumes from that checkpoint.

Why not SLURM's ``--signal=B:USR1@margin``: under snakemake-executor-plugin-slurm no process between SLURM and the
trainer survives it. ``B:`` signals the batch shell only, and that is the plugin's ``/bin/sh`` wrapper around
Snakemake, which dies of an unhandled SIGUSR1 and ends the job at once; without ``B:`` SLURM signals each job step's
task, the jobstep's inner Snakemake, which dies of it as well. So the launcher keeps the deadline itself:

- launcher side (:class:`StopRequests`, :func:`run`): it asks SLURM how long the job has left (``SLURM_JOB_END_TIME``,
  else ``squeue -o %L``) and, ``margin`` seconds before the end, or as soon as it receives SIGUSR1, writes
  ``stop_requested.json`` into the run directory. It stays the parent of ``accelerate launch`` (or of the multi-node
  ``srun``), forwarding SIGTERM/SIGINT as an exec'd process would have received them.
- trainer side (``train.stop_callback.StopOnRequest``, added by ``train.common.run``): after every optimizer step
  the main process looks for that file and every rank for a SIGUSR1 of its own; the ranks agree (all-reduce), save a
  checkpoint and stop. ``train.common.run`` then exits with :data:`EXIT_STOPPED` instead of writing ``final/``.

Kept free of torch and transformers imports: the launcher imports it.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Mapping, Sequence

from workflow_scripts.common.io import write_json_atomic

log = logging.getLogger(__name__)

STOP_REQUEST = "stop_requested.json"  # in the run directory (the trainer's --output-dir)
EXIT_STOPPED = 75  # EX_TEMPFAIL: stopped with a checkpoint; running the job again resumes from it


# ---------------------------------------------------------------------------------------------- the request file
def request_stop(run_dir: str | os.PathLike, reason: str) -> None:
    write_json_atomic(Path(run_dir) / STOP_REQUEST, {"reason": reason, "time": time.time()})
    log.warning("stop requested (%s): the trainer saves a checkpoint after its current step and exits", reason)


def stop_request(run_dir: str | os.PathLike) -> dict | None:
    path = Path(run_dir) / STOP_REQUEST
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None


def clear_stop_request(run_dir: str | os.PathLike) -> None:
    """Before the trainer starts: a request left by the job before this one must not stop this one."""
    Path(run_dir, STOP_REQUEST).unlink(missing_ok=True)


# ---------------------------------------------------------------------------------------------- the SLURM deadline
def parse_time_left(text: str) -> float | None:
    """Seconds in squeue's ``%L`` ("[days-][hours:]minutes:seconds"); None for UNLIMITED, NOT_SET, INVALID."""
    m = re.fullmatch(r"(?:(\d+)-)?(?:(\d+):)?(\d+):(\d+)", text.strip())
    if not m:
        return None
    days, hours, minutes, seconds = (int(g or 0) for g in m.groups())
    return float(((days * 24 + hours) * 60 + minutes) * 60 + seconds)


def slurm_time_left(env: Mapping[str, str]) -> float | None:
    """Seconds until this SLURM job's time limit, None outside SLURM or without a limit."""
    job = env.get("SLURM_JOB_ID")
    if not job:
        return None
    if env.get("SLURM_JOB_END_TIME", "").isdigit():  # Slurm >= 23.02 exports the projected end
        return int(env["SLURM_JOB_END_TIME"]) - time.time()
    squeue = shutil.which("squeue", path=env.get("PATH"))
    if squeue is None:
        log.warning("SLURM job %s but no squeue on PATH: no checkpoint before the time limit", job)
        return None
    try:
        out = subprocess.run([squeue, "-h", "-j", job, "-o", "%L"], capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        log.warning("squeue did not answer within 60 s: no checkpoint before the time limit")
        return None
    left = parse_time_left(out.stdout) if out.returncode == 0 else None
    if left is None:
        log.warning("SLURM job %s: no time limit known (squeue: %r %s), so no checkpoint before one", job,
                    out.stdout.strip(), out.stderr.strip())
    return left


class StopRequests:
    """While the trainer runs: a stop request on SIGUSR1, and ``margin`` seconds before the SLURM time limit."""

    def __init__(self, run_dir: str | os.PathLike, margin: float, env: Mapping[str, str]):
        self.run_dir, self.margin, self.env = run_dir, margin, env
        self._timer: threading.Timer | None = None
        self._previous = None

    def __enter__(self) -> "StopRequests":
        clear_stop_request(self.run_dir)
        self._previous = signal.signal(signal.SIGUSR1, lambda *_: request_stop(self.run_dir, "SIGUSR1"))
        left = slurm_time_left(self.env) if self.margin > 0 else None
        if left is not None:
            delay = max(left - self.margin, 0.0)
            reason = f"{self.margin:g} s before the SLURM time limit"
            self._timer = threading.Timer(delay, request_stop, (self.run_dir, reason))
            self._timer.daemon = True
            self._timer.start()
            log.info("SLURM time left %.0f s: a checkpoint is requested in %.0f s (margin %g s)", left, delay,
                     self.margin)
        return self

    def __exit__(self, *exc) -> None:
        if self._timer:
            self._timer.cancel()
        signal.signal(signal.SIGUSR1, self._previous)


# ---------------------------------------------------------------------------------------------- the launcher's child
def run(command: Sequence[str], env: Mapping[str, str]) -> int:
    """Run the trainer (``accelerate launch``, or the multi-node ``srun``) as a child and return its exit status
    (128 + N when signal N ended it).

    The child stays in this process group, so whatever stops the whole group (Ctrl-C, a job killed by its process
    group) stops it as it stopped the exec'd trainer before; SIGTERM, SIGINT and SIGHUP sent to this process alone go
    on to it; and it gets SIGTERM if this process dies first. SIGUSR1 stays here (a stop request): the child starts
    with it ignored, so that no launcher process between here and the ranks dies of one.
    """
    parent = os.getpid()
    prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None  # looked up here:
    # the child between fork and exec should take no lock another thread of this process might hold

    def in_child() -> None:
        signal.signal(signal.SIGUSR1, signal.SIG_IGN)  # ignored dispositions survive exec
        if prctl is not None:
            prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
            if os.getppid() != parent:  # this process died before prctl took effect
                os.kill(os.getpid(), signal.SIGTERM)

    child = subprocess.Popen(command, env={**os.environ, **env}, preexec_fn=in_child)
    forwarded = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
    previous = {sig: signal.signal(sig, lambda signum, _f: _signal(child, signum)) for sig in forwarded}
    try:
        code = child.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 128 - code if code < 0 else code


_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _signal(child: subprocess.Popen, signum: int) -> None:
    if child.poll() is None:
        child.send_signal(signum)


def exit_status(code: int, run_dir: str | os.PathLike) -> int:
    """The launcher's exit status: :data:`EXIT_STOPPED` when the trainer stopped on a request (accelerate reports
    any failed rank as 1), the trainer's own otherwise."""
    request = stop_request(run_dir)
    if code == 0 or request is None:
        return code
    log.warning("the trainer stopped on request (%s) with status %d: run the job again to resume from the last "
                "complete checkpoint in %s", request["reason"], code, run_dir)
    return EXIT_STOPPED
