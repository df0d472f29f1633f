"""The three kinds of endpoint, and the server the job runs for two of them.

- ``external``: a server someone else runs; nothing is started.
- ``vllm``: ``vllm serve MODEL`` on loopback inside the job that needs it (the job's GPUs: tensor parallel size,
  maximum model length and memory share from config), used once ``/health`` answers, stopped when the job's work
  ends, fails or the job is preempted (SIGTERM) - and, on Linux, when the step dies without a chance to clean up.
- ``demo``: the same lifecycle for :mod:`workflow_scripts.llm.demo_server` and the endpoint's stand-in policy.

The server's output is appended to ``<cache_dir>/<use>/server.log`` (kept when a job fails, unlike its outputs).
Start and stop are the launcher's (:mod:`workflow_scripts.common.server_process`).

A training job whose reward calls an endpoint (the Refiner's judge) must not start one server per rank: the training
launcher (``workflow_scripts.train.launch --serve-llm USE=BLOCK``) starts it once, on GPUs of its own, and puts its
URL in the trainers' environment as ``SCITASTE_LLM_<USE>_URL`` (:func:`served_url_env`); :func:`serving` then uses
that server instead of starting another.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator, Mapping

from workflow_scripts.common import server_process
from workflow_scripts.llm.cache import ResponseCache
from workflow_scripts.llm.client import EndpointError, LLMClient
from workflow_scripts.llm.config import Endpoint, endpoint

log = logging.getLogger(__name__)

STOP_GRACE_S = 30.0


def server_command(e: Endpoint, port: int) -> list[str] | None:
    """The command of the endpoint's own server; None for an external endpoint."""
    if e.kind == "vllm":
        v = e.vllm
        command = [*shlex.split(v["command"]), "serve", e.model, "--host", "127.0.0.1", "--port", str(port),
                   "--tensor-parallel-size", str(v["tensor_parallel_size"] or v["gpus"]),
                   "--gpu-memory-utilization", str(v["gpu_memory_utilization"])]
        if v["max_model_len"]:
            command += ["--max-model-len", str(v["max_model_len"])]
        return command + list(v["extra_args"])
    if e.kind == "demo":
        d = e.demo
        return [sys.executable, "-m", "workflow_scripts.llm.demo_server", "--policy", d["policy"],
                "--host", "127.0.0.1", "--port", str(port), "--latency-ms", str(d["latency_ms"]),
                *(["--think"] if d["think"] else [])]
    return None


def served_url_env(use: str) -> str:
    """The variable that holds the base URL of ``use``'s server when a launcher already runs it for this process."""
    return f"SCITASTE_LLM_{use.upper()}_URL"


@contextlib.contextmanager
def serving(e: Endpoint, log_path: str | Path, env: Mapping[str, str] | None = None) -> Iterator[str]:
    """The endpoint's base URL (``.../v1``), its server running for as long as the block runs."""
    if e.kind == "external":
        yield e.base_url
        return
    served = os.environ.get(served_url_env(e.use))
    if served:  # the launcher of this training job runs it
        log.info("%s: the server the launcher runs, at %s", e.label, served)
        yield served
        return
    port = (e.vllm["port"] if e.kind == "vllm" else None) or server_process.free_port()
    command = server_command(e, port)
    url = f"http://127.0.0.1:{port}"
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as out:  # appended: the log of an earlier attempt stays
        out.write(f"==== {time.strftime('%Y-%m-%d %H:%M:%S')} {shlex.join(command)}\n".encode())
        out.flush()
        proc = server_process.start(command, dict(env or {}), stdout=out, stderr=subprocess.STDOUT,
                                    die_with_parent=True)
    name = f"the {e.kind} server of {e.label}"
    try:
        log.info("%s starting (log: %s)", name, log_path)
        server_process.wait_ready(url, proc, e.vllm["ready_timeout_s"] if e.kind == "vllm" else 60.0, str(log_path),
                                  interval=2.0 if e.kind == "vllm" else 0.1, name=name,
                                  timeout_hint=f"llm.endpoints.{e.use}.vllm.ready_timeout_s")
        log.info("%s ready at %s", name, url)
        yield f"{url}/v1"
    except EndpointError as exc:
        if proc.poll() is not None:  # the server died under the client: say so, with its last words
            raise EndpointError(f"{exc}; {name} exited with status {proc.returncode}; "
                                f"{server_process.log_tail(str(log_path))}") from None
        raise
    finally:
        server_process.stop(proc, STOP_GRACE_S)


@contextlib.contextmanager
def open_client(use: str, block: Mapping[str, Any] | None, cache_dir: str | Path, *,
                server_log: str | Path | None = None) -> Iterator[LLMClient]:
    """A client of ``llm.endpoints.<use>``, its server (vllm, demo) running while the block runs."""
    e = endpoint(use, block)
    directory = Path(cache_dir) / use
    with serving(e, server_log or directory / "server.log") as base_url:
        client = LLMClient(e, base_url, ResponseCache(directory))
        try:
            yield client
        finally:
            client.close()
