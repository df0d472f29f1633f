"""Server processes that live exactly as long as the job using them: started in their own process group, ready when
their ``/health`` answers 200, stopped (the whole group) on exit, failure or signal.

Used by the training launcher (GRPO's ``trl vllm-serve``) and by the LLM endpoints (``vllm serve``, the demo server).
"""

from __future__ import annotations

import collections
import ctypes
import http.client
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from typing import Callable, Mapping, Sequence

_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def start(command: Sequence[str], env: Mapping[str, str], *, die_with_parent: bool = False,
          **kwargs) -> subprocess.Popen:
    """Start ``command`` in a new process group (so that stopping it reaches its workers too).

    ``die_with_parent``: the kernel sends the child SIGTERM when this process dies, even by SIGKILL, so no server
    outlives a killed step on a workstation (Linux; under SLURM the job's end cleans up anyway).
    """
    if die_with_parent and sys.platform.startswith("linux"):
        kwargs["preexec_fn"] = _terminate_with(os.getpid())
    return subprocess.Popen(command, env={**os.environ, **env}, start_new_session=True, **kwargs)


def _terminate_with(parent: int) -> Callable[[], None]:
    def set_parent_death_signal() -> None:  # runs in the child, between fork and exec
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os.kill(os.getpid(), signal.SIGTERM)

    return set_parent_death_signal


def signal_group(proc: subprocess.Popen, signum: int) -> None:
    try:
        os.killpg(proc.pid, signum)
    except (ProcessLookupError, PermissionError):  # the group is gone already
        pass


def stop(proc: subprocess.Popen, grace: float) -> None:
    """SIGTERM to the child's process group, then SIGKILL to whatever of it is left after ``grace`` seconds."""
    signal_group(proc, signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        pass
    signal_group(proc, signal.SIGKILL)
    proc.wait()


def wait_ready(url: str, proc: subprocess.Popen, timeout: float, log_path: str,
               stopped: Callable[[], bool] = lambda: False, interval: float = 2.0, *,
               name: str = "the server", timeout_hint: str = "") -> None:
    """Poll ``url``/health (vLLM's readiness endpoint, the one TRL's client checks) until it answers 200.

    Raises naming ``name`` with the tail of its log when the process exits first or ``timeout`` seconds pass; returns
    at once when ``stopped()`` (a signal arrived).
    """
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # a cluster's HTTP proxy: not for nodes
    deadline = time.monotonic() + timeout
    while not stopped():
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with status {proc.returncode} before it was ready; "
                               f"{log_tail(log_path)}")
        try:
            with opener.open(f"{url}/health", timeout=10) as response:
                if response.status == 200:
                    return
        except (OSError, http.client.HTTPException):
            pass  # not listening yet, or not ready (503)
        if time.monotonic() > deadline:
            hint = f" ({timeout_hint})" if timeout_hint else ""
            raise TimeoutError(f"{name} did not answer {url}/health within {timeout:g} s{hint}; {log_tail(log_path)}")
        time.sleep(interval)


def log_tail(path: str, lines: int = 30) -> str:
    try:
        with open(path, errors="replace") as f:
            tail = collections.deque(f, maxlen=lines)
    except OSError as exc:
        return f"no log: {exc}"
    return f"last lines of {path}:\n" + "".join(tail)


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now (the OS's pick; another process could take it before the server binds it)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]
