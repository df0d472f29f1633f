"""The endpoints' servers and the batch step as real processes: the demo server, `vllm serve` (a fake `vllm`
executable that records its arguments and serves the demo server, since vLLM needs GPUs), their start, readiness,
stop on exit, failure, SIGTERM and SIGKILL; and a batch killed mid-way then rerun."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.llm_loopback import CHAT, answer, block
from tests.loopback import LoopbackServer
from workflow_scripts.common.server_process import free_port
from workflow_scripts.llm.client import EndpointError
from workflow_scripts.llm.config import endpoint
from workflow_scripts.llm.endpoints import open_client, serving
from workflow_scripts.llm.request import ChatRequest, request_key

ROOT = Path(__file__).resolve().parents[1]

# `vllm serve MODEL --host H --port P ...`: records its argv and pid, "loads the model" for LOAD_S seconds (nothing
# listens meanwhile), then becomes the demo server serving MODEL - a real process speaking the real protocol
FAKE_VLLM = textwrap.dedent("""\
    #!{python}
    import json, os, sys, time
    argv = sys.argv[1:]
    with open(os.environ["FAKE_VLLM_RECORD"], "a") as f:
        gpus = os.environ.get("CUDA_VISIBLE_DEVICES")
        f.write(json.dumps({{"argv": argv, "pid": os.getpid(), "gpus": gpus}}) + "\\n")
    if os.environ.get("FAKE_VLLM_CRASH"):
        print("CUDA out of memory (stand-in)", flush=True)
        sys.exit(3)
    time.sleep(float(os.environ.get("FAKE_VLLM_LOAD_S", "0.5")))
    opts = dict(zip(argv[2::2], argv[3::2]))
    os.execv(sys.executable, [sys.executable, "-m", "workflow_scripts.llm.demo_server", "--model", argv[1],
                              "--host", opts["--host"], "--port", opts["--port"],
                              "--latency-ms", os.environ.get("FAKE_VLLM_LATENCY_MS", "0")])
""")


@pytest.fixture
def fake_vllm(tmp_path, monkeypatch):
    exe = tmp_path / "bin" / "vllm"
    exe.parent.mkdir()
    exe.write_text(FAKE_VLLM.format(python=sys.executable))
    exe.chmod(0o755)
    record = tmp_path / "vllm_calls.jsonl"
    monkeypatch.setenv("FAKE_VLLM_RECORD", str(record))
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    monkeypatch.chdir(tmp_path)
    return exe, record


def calls(record: Path) -> list[dict]:
    return [json.loads(line) for line in record.read_text().splitlines()] if record.exists() else []


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def wait_for(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def vllm_block(exe: Path, **vllm) -> dict:
    return {"kind": "vllm", "model": "org/judge-7b", "limits": {"max_retries": 1, "backoff_base_s": 0.01},
            "vllm": {"command": str(exe), "gpus": 2, "max_model_len": 4096, "extra_args": ["--max-logprobs", "5"],
                     "ready_timeout_s": 30, **vllm}}


def question(i: int) -> ChatRequest:
    return ChatRequest([{"role": "user", "content": f"question {i}"}], {"max_tokens": 32})


def test_vllm_endpoint_starts_the_server_waits_for_health_and_stops_it(fake_vllm, tmp_path):
    exe, record = fake_vllm
    with open_client("judge", vllm_block(exe), tmp_path / "cache") as client:
        [call] = calls(record)
        assert alive(call["pid"])  # the demo server now, under the same pid
        answers = client.complete_many([question(1), question(2)])
    assert all(a.ok for a in answers) and client.summary()["endpoint"]["model"] == "org/judge-7b"
    port = call["argv"][call["argv"].index("--port") + 1]
    assert call["argv"] == ["serve", "org/judge-7b", "--host", "127.0.0.1", "--port", port,
                            "--tensor-parallel-size", "2", "--gpu-memory-utilization", "0.9",
                            "--max-model-len", "4096", "--max-logprobs", "5"]
    wait_for(lambda: not alive(call["pid"]), timeout=10)
    log = (tmp_path / "cache" / "judge" / "server.log").read_text()
    assert log.startswith("==== ") and f"{exe} serve org/judge-7b" in log and "demo endpoint" in log

    # a fixed port and a tensor-parallel size below the GPU count; the cache makes the rerun free
    fixed = free_port()
    with open_client("judge", vllm_block(exe, port=fixed, tensor_parallel_size=1), tmp_path / "cache") as client:
        again = client.complete_many([question(1), question(2)])
    argv = calls(record)[-1]["argv"]
    assert argv[argv.index("--port") + 1] == str(fixed) and argv[argv.index("--tensor-parallel-size") + 1] == "1"
    assert all(a.cached for a in again) and client.stats.requests == 0


def test_a_judge_server_beside_the_trainer_gets_the_devices_it_is_given(fake_vllm, tmp_path):
    exe, record = fake_vllm
    judge = endpoint("judge", vllm_block(exe))
    with serving(judge, tmp_path / "judge.log", env={"CUDA_VISIBLE_DEVICES": "6,7"}) as url:
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
    assert calls(record)[0]["gpus"] == "6,7"


def test_the_server_is_stopped_when_the_work_fails(fake_vllm, tmp_path):
    exe, record = fake_vllm
    with pytest.raises(ZeroDivisionError):
        with open_client("judge", vllm_block(exe), tmp_path / "cache"):
            1 / 0
    wait_for(lambda: not alive(calls(record)[0]["pid"]), timeout=10)


def test_a_server_that_dies_under_the_client_is_named_with_its_log(fake_vllm, tmp_path):
    exe, record = fake_vllm
    with pytest.raises(EndpointError, match=r"unreachable(.|\n)*exited with status -9(.|\n)*demo endpoint generic"):
        with open_client("judge", vllm_block(exe), tmp_path / "cache") as client:
            os.kill(calls(record)[0]["pid"], signal.SIGKILL)  # an out-of-memory kill, say
            client.complete_many([question(1)])


def test_a_server_that_dies_before_it_is_ready_is_reported_with_its_log(fake_vllm, tmp_path, monkeypatch):
    exe, _ = fake_vllm
    monkeypatch.setenv("FAKE_VLLM_CRASH", "1")
    with pytest.raises(RuntimeError, match=r"exited with status 3 before it was ready(.|\n)*CUDA out of memory"):
        with open_client("judge", vllm_block(exe), tmp_path / "cache"):
            pass


def test_a_server_that_never_gets_ready_times_out(fake_vllm, tmp_path, monkeypatch):
    exe, record = fake_vllm
    monkeypatch.setenv("FAKE_VLLM_LOAD_S", "60")
    with pytest.raises(TimeoutError, match=r"within 1 s \(llm.endpoints.judge.vllm.ready_timeout_s\)"):
        with open_client("judge", vllm_block(exe, ready_timeout_s=1), tmp_path / "cache"):
            pass
    wait_for(lambda: not alive(calls(record)[0]["pid"]), timeout=10)


def test_the_demo_endpoint_speaks_the_openai_protocol(tmp_path):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "workflow_scripts.llm.demo_server", "--port", str(port)],
                            cwd=ROOT, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"

    def call(path: str, body: dict | None = None) -> tuple[int, dict]:
        data = None if body is None else json.dumps(body).encode()
        try:
            with urllib.request.urlopen(urllib.request.Request(url + path, data=data), timeout=10) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    try:
        wait_for(lambda: _answers(url))
        assert call("/v1/models") == (200, {"object": "list", "data": [
            {"id": "demo/generic@1", "object": "model", "owned_by": "scitaste-demo"}]})
        question = {"model": "demo/generic@1", "messages": [{"role": "user", "content": "one two three"}]}
        status, completion = call(CHAT, {**question, "max_tokens": 6})
        choice = completion["choices"][0]
        assert status == 200 and completion["object"] == "chat.completion" and completion["model"] == "demo/generic@1"
        assert choice["message"]["role"] == "assistant" and choice["finish_reason"] == "stop"
        assert choice["message"]["content"].startswith("Demo answer ") and choice["message"]["content"].endswith(
            ": one two three")
        assert completion["usage"] == {"prompt_tokens": 3, "completion_tokens": 6, "total_tokens": 9}
        status, cut = call(CHAT, {**question, "max_tokens": 2})
        assert cut["choices"][0] == {**choice, "message": {"role": "assistant", "content": "Demo answer"},
                                     "finish_reason": "length"}
        assert call(CHAT, {"model": "gpt-x", "messages": []})[0] == 404
        assert call(CHAT, {"model": "demo/generic@1"})[1]["error"]["type"] == "invalid_request_error"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM and "interrupted (SIGTERM)" in err


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


# ---------------------------------------------------------------------------------------------- the batch step
def write_requests(path: Path, n: int) -> Path:
    path.write_text("".join(json.dumps({"id": f"r{i}", "messages": [{"role": "user", "content": f"question {i}"}],
                                        "params": {"max_tokens": 32}}) + "\n" for i in range(n)))
    return path


def batch_argv(tmp_path: Path, endpoint: dict, requests: Path) -> list[str]:
    return [sys.executable, "-m", "workflow_scripts.llm.batch", "--use", "judge", "--endpoint", json.dumps(endpoint),
            "--cache-dir", str(tmp_path / "cache"), "--requests", str(requests),
            "--answers", str(tmp_path / "answers.jsonl"), "--summary", str(tmp_path / "summary.json"),
            "--rejects", str(tmp_path / "rejects.jsonl")]


def cached_records(directory: Path) -> list[dict]:
    return [json.loads(line) for seg in sorted(directory.glob("seg-*.jsonl"))
            for line in seg.read_text().splitlines() if line.endswith("}")]


def test_a_batch_killed_mid_way_resumes_without_a_duplicate_or_a_lost_answer(tmp_path):
    requests = write_requests(tmp_path / "requests.jsonl", 48)

    def slow_answer(req):
        time.sleep(0.2)
        return answer(req)

    with LoopbackServer() as server:
        server.route(CHAT, slow_answer)
        endpoint = block(server.url, limits={"max_concurrency": 4})
        proc = subprocess.Popen(batch_argv(tmp_path, endpoint, requests), cwd=ROOT, stderr=subprocess.PIPE)
        try:
            wait_for(lambda: len(cached_records(tmp_path / "cache" / "judge")) >= 12)
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        finally:
            proc.kill()
        before = {r["key"] for r in cached_records(tmp_path / "cache" / "judge")}
        asked_before = len(server.requests)
        assert 12 <= len(before) < 48 and not (tmp_path / "answers.jsonl").exists()

        rerun = subprocess.run(batch_argv(tmp_path, endpoint, requests), cwd=ROOT, capture_output=True, text=True,
                               timeout=120)
        assert rerun.returncode == 0, rerun.stderr[-3000:]
        asked_again = [request_key(json.loads(r.body)) for r in server.requests[asked_before:]]

    assert not before & set(asked_again)  # nothing answered before the kill is asked again
    assert len(asked_again) == len(set(asked_again)) == 48 - len(before)
    keys = [r["key"] for r in cached_records(tmp_path / "cache" / "judge")]
    assert len(keys) == len(set(keys)) == 48  # every answer once
    rows = [json.loads(line) for line in (tmp_path / "answers.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == [f"r{i}" for i in range(48)] and all(r["status"] == "ok" for r in rows)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert (summary["cache_hits"], summary["requests"]) == (len(before), 48 - len(before))
    assert (tmp_path / "rejects.jsonl").read_text() == ""


def test_sigterm_stops_the_step_and_its_vllm_server(fake_vllm, tmp_path, monkeypatch):
    exe, record = fake_vllm
    monkeypatch.setenv("FAKE_VLLM_LATENCY_MS", "500")
    requests = write_requests(tmp_path / "requests.jsonl", 20)
    proc = subprocess.Popen(batch_argv(tmp_path, {**vllm_block(exe), "limits": {"max_concurrency": 2}}, requests),
                            stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: len(cached_records(tmp_path / "cache" / "judge")) >= 2)
        proc.send_signal(signal.SIGTERM)  # what SLURM sends on preemption, and Snakemake on Ctrl-C
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM and "interrupted (SIGTERM)" in err and "Traceback" not in err
    wait_for(lambda: not alive(calls(record)[0]["pid"]), timeout=10)


def test_a_killed_step_takes_its_server_along(tmp_path):
    requests = write_requests(tmp_path / "requests.jsonl", 20)
    endpoint = {"kind": "demo", "demo": {"latency_ms": 500}, "limits": {"max_concurrency": 1}}
    proc = subprocess.Popen(batch_argv(tmp_path, endpoint, requests), cwd=ROOT, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: len(cached_records(tmp_path / "cache" / "judge")) >= 1)
        server = _children(proc.pid)
        assert len(server) == 1
        proc.send_signal(signal.SIGKILL)  # no chance to clean up: the kernel tells the server
        proc.wait(10)
    finally:
        proc.kill()
    wait_for(lambda: not alive(server[0]), timeout=10)


def _children(pid: int) -> list[int]:
    return [int(c) for task in Path(f"/proc/{pid}/task").iterdir()
            for c in (task / "children").read_text().split()]
