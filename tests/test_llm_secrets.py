"""A planted API key never reaches a file: a real Snakemake run of a one-rule workflow calling the LLM layer against a
loopback endpoint that echoes the Authorization header into its error bodies, its answers and an invalid answer.
The key travels only in the request header; results/ and .snakemake/ (params, shell commands, logs) never hold it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from urllib.parse import quote

from tests.llm_loopback import CHAT, answer, block
from tests.loopback import LoopbackServer, Reply

ROOT = Path(__file__).resolve().parents[1]

SNAKEFILE = textwrap.dedent("""\
    import json, shlex

    rule ask:
        input: "requests.jsonl"
        output:
            answers="results/judge/answers.jsonl",
            summary="results/judge/llm_summary.json",
            rejects="results/judge/llm_rejects.jsonl",
        params:
            endpoint=shlex.quote(json.dumps(config["endpoint"], sort_keys=True)),
        log: "results/logs/ask.log"
        shell:
            "{python} -m workflow_scripts.llm.batch --use judge --endpoint {{params.endpoint}} "
            "--cache-dir results/llm_cache --requests {{input}} --answers {{output.answers}} "
            "--summary {{output.summary}} --rejects {{output.rejects}} 2> {{log}}"
""")
SCORE = {"type": "object", "properties": {"score": {"type": "integer"}}, "required": ["score"]}


def echoing(req):
    """Answers that carry the request's Authorization header back: an error, a plain answer, an invalid answer."""
    body = json.loads(req.body)
    auth = req.headers.get("authorization", "")
    text = body["messages"][-1]["content"]
    if text == "fails first" and not getattr(echoing, "failed", False):
        echoing.failed = True
        return Reply(500, json.dumps({"error": "overloaded", "echo": {"authorization": auth}}))
    if text == "score it":  # first not an integer (invalid), then, asked again with a seed, the stand-in's answer
        return answer(req, content=json.dumps({"score": auth})) if body.get("seed") is None else answer(req)
    return answer(req, content=f"echo of {auth}")


def files_holding(secret: str, *roots: Path) -> list[Path]:
    forms = [secret.encode(), quote(secret, safe="").encode()]
    return [p for root in roots for p in root.rglob("*") if p.is_file() and any(f in p.read_bytes() for f in forms)]


def test_snakemake_run_keeps_the_planted_key_out_of_results_and_metadata(tmp_path):
    key = f"planted-llm-key-{uuid.uuid4().hex}"
    (tmp_path / "Snakefile").write_text(SNAKEFILE.format(python=sys.executable))
    (tmp_path / "requests.jsonl").write_text("".join(json.dumps(row) + "\n" for row in [
        {"id": "a", "messages": [{"role": "user", "content": "fails first"}], "params": {"max_tokens": 32}},
        {"id": "b", "messages": [{"role": "user", "content": "score it"}], "params": {"max_tokens": 32},
         "schema": SCORE},
        {"id": "c", "messages": [{"role": "user", "content": "plain"}], "params": {"max_tokens": 32}},
    ]))
    with LoopbackServer() as server:
        server.route(CHAT, echoing)
        endpoint = block(server.url, api_key_env="PLANTED_LLM_KEY", limits={"max_concurrency": 1})
        (tmp_path / "config.yaml").write_text(json.dumps({"endpoint": endpoint}))
        env = {k: v for k, v in os.environ.items() if k != "SCITASTE_SECRET_VARS"}
        proc = subprocess.run([sys.executable, "-m", "snakemake", "--snakefile", str(tmp_path / "Snakefile"),
                               "--directory", str(tmp_path), "--configfile", str(tmp_path / "config.yaml"),
                               "--cores", "1"], env={**env, "PYTHONPATH": str(ROOT), "PLANTED_LLM_KEY": key},
                              capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    assert {r.headers["authorization"] for r in server.requests} == {f"Bearer {key}"}  # the key was really sent
    assert len(server.requests) == 5  # a 500 retried, an invalid answer asked again with a new seed

    log = (tmp_path / "results/logs/ask.log").read_text()
    assert "http_500" in log and '"authorization": "***"' in log
    answers = [json.loads(line) for line in (tmp_path / "results/judge/answers.jsonl").read_text().splitlines()]
    assert answers[0]["text"] == "echo of Bearer ***" and answers[1]["json"] == {"score": 0}
    rejects = [json.loads(line) for line in (tmp_path / "results/judge/llm_rejects.jsonl").read_text().splitlines()]
    assert rejects[0]["raw"] == '{"score": "Bearer ***"}'
    assert files_holding(key, tmp_path / "results", tmp_path / ".snakemake") == []
    assert key not in proc.stdout + proc.stderr
    assert (tmp_path / ".snakemake" / "metadata").is_dir()  # there was metadata to search
