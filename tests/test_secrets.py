"""Secrets never leak: not into the console, logs, errors or files of a step, nor of a Snakemake run; Ctrl-C and
SIGTERM end a step with one line instead of a traceback.

The loopback servers here echo the request (URL and headers, so the credentials) into their error and success
bodies, the worst case of a real API.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import quote, urlencode

import polars as pl
import pytest
import yaml

from tests.loopback import LoopbackServer, Reply
from tests.workflow_runner import ROOT, snakemake, write_config
from workflow_scripts.common.cli import RedactingFilter
from workflow_scripts.common.redact import active_var_names, excerpt, redact, redact_bytes, secret_var_names


def planted(kind: str = "key") -> str:
    return f"planted-{kind}-{uuid.uuid4().hex}"


def echo(status: int):
    """A handler answering ``status`` with the request's URL and headers, as a misbehaving server would."""

    def handle(req):
        url = req.path + ("?" + urlencode(req.query, doseq=True) if req.query else "")
        body = {"url": url, "x-api-key": req.headers.get("x-api-key"), "headers": req.headers}
        return Reply(status, json.dumps(body), content_type="application/json")

    return handle


def leaks(secret: str, *texts: str) -> bool:
    return any(form in text for text in texts for form in (secret, quote(secret, safe="")))


def files_holding(secret: str, *roots: Path) -> list[Path]:
    forms = [secret.encode(), quote(secret, safe="").encode()]
    return [
        path for root in roots if root.exists() for path in root.rglob("*")
        if path.is_file() and any(form in path.read_bytes() for form in forms)
    ]


# --- the redaction itself ------------------------------------------------------------------------------------------


def test_secret_variables_are_every_config_key_ending_in_env():
    production = yaml.safe_load((ROOT / "config.production.yaml").read_text())
    from workflow_scripts.common.config import with_defaults

    names = secret_var_names(with_defaults(production))
    assert {"S2_API_KEY", "OPENALEX_API_KEY", "OPENALEX_MAILTO", "KAGGLE_USERNAME", "KAGGLE_KEY", "WANDB_API_KEY"} <= set(names)
    assert secret_var_names({"citations": {"openalex": {"api_key_env": "MY_KEY"}}, "list": [{"x_env": "Y"}]}) == [
        "MY_KEY", "WANDB_API_KEY", "Y"]
    # names exported by Snakemake win over the defaults of a step run by hand
    assert active_var_names({"SCITASTE_SECRET_VARS": "MY_KEY,OTHER"}) == ["MY_KEY", "OTHER", "WANDB_API_KEY"]
    assert "S2_API_KEY" in active_var_names({})


def test_redact_values_in_every_form_and_credential_patterns_whatever_their_value():
    key, mail = planted(), "someone.planted@example.org"
    env = {"SCITASTE_SECRET_VARS": "K,M,SHORT", "K": key, "M": mail, "SHORT": "abc"}
    text = (f"GET /works?mailto={quote(mail, safe='')}&page=2 -> {{\"x\": \"{key}\"}} from {mail}; "
            "abc stays: a short value would shred ordinary words")
    out = redact(text, env)
    assert not leaks(key, out) and mail not in out and quote(mail, safe="") not in out
    assert "abc stays" in out and "page=2" in out and out.count("***") == 3

    for raw, kept in [
        ("https://api.openalex.org/works?filter=doi:x&api_key=zz9&per-page=50", "per-page=50"),
        ("https://example.org/data?token=tt1&sort=asc", "sort=asc"),
        ('{"x-api-key": "hh2", "host": "127.0.0.1"}', '"host": "127.0.0.1"'),
        ("{'authorization': 'Bearer bb3', 'accept': '*/*'}", "'accept': '*/*'"),
        ("Authorization: Basic cc4", "Authorization: ***"),
        ("https://user:pw5@www.kaggle.com/api/v1", "https://***@www.kaggle.com/api/v1"),
    ]:
        out = redact(raw, {})
        assert kept in out and "***" in out, out
        assert not any(v in out for v in ("zz9", "tt1", "hh2", "bb3", "cc4", "pw5")), out
    for harmless in ("http://127.0.0.1:8080/x?a=1", "sort_key=3 monkey=5", "batch 2: 500 ids"):
        assert redact(harmless, {}) == harmless


def test_saved_bodies_lose_only_the_secret_values_and_excerpts_are_short():
    key = planted()
    env = {"SCITASTE_SECRET_VARS": "K", "K": key}
    body = json.dumps({"api_key": key, "abstract": "uses api_key=demo in its examples"}).encode()
    clean = redact_bytes(body, env)
    assert key.encode() not in clean and b"api_key=demo" in clean  # data is not pattern-redacted, only secrets
    untouched = b'{"ok": true}'
    assert redact_bytes(untouched, env) is untouched
    long_body = "x-api-key: " + "y" * 50 + "\n" + "lorem ipsum " * 100
    short = excerpt(long_body)
    assert len(short) <= 203 and "\n" not in short and "y" * 10 not in short


def test_log_records_are_redacted_with_their_args_and_exceptions(monkeypatch):
    key = planted()
    monkeypatch.setenv("RT_SECRET", key)
    monkeypatch.setenv("SCITASTE_SECRET_VARS", "RT_SECRET")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger("test_secrets.records")
    monkeypatch.setattr(logger, "propagate", False)
    logger.addHandler(handler)
    try:
        logger.warning("request %s failed: %d", f"https://h/x?k={key}", 400)
        try:
            raise ValueError(f"echoed {key}")
        except ValueError:
            logger.exception("while fetching")
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert key not in text and "request https://h/x?k=*** failed: 400" in text
    assert "ValueError: echoed ***" in text


# --- a real step against an echoing server -------------------------------------------------------------------------


def write_papers(path: Path) -> Path:
    pl.DataFrame({"arxiv_id": ["2101.00001", "2101.00002"]}).write_parquet(path)
    return path


def run_fetch(source: str, tmp_path: Path, base_url: str, env: dict, timeout: int = 60, **popen) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", f"workflow_scripts.sources.{source}", "fetch", "--papers",
           str(write_papers(tmp_path / "papers.parquet")), "--out-dir", str(tmp_path / "raw"), "--base-url", base_url,
           "--min-interval-s", "0", "--max-retries", "1", "--backoff-base-s", "0", "--done", str(tmp_path / "done.json")]
    clean = {k: v for k, v in os.environ.items() if k != "SCITASTE_SECRET_VARS"}  # a step run by hand
    return subprocess.run(cmd, cwd=ROOT, env={**clean, **env}, capture_output=True, text=True, timeout=timeout, **popen)


@pytest.mark.parametrize("status, expected", [
    (400, "HTTP 400"),  # a final error quoting the body
    (500, "HTTP 500"),  # retried: the warning and the final error both quote the body
    (200, "expected a JSON array"),  # accepted, saved as evidence, then found wrong
])
def test_semantic_scholar_step_never_shows_the_key(tmp_path, status, expected):
    key = planted()
    with LoopbackServer() as server:
        server.route("/graph/v1/paper/batch", echo(status))
        proc = run_fetch("semantic_scholar", tmp_path, f"{server.url}/graph/v1", {"S2_API_KEY": key})
    assert server.requests, proc.stderr[-3000:]
    assert server.requests[0].headers["x-api-key"] == key  # the key was really sent
    assert proc.returncode == 1 and expected in proc.stderr, proc.stderr[-3000:]
    assert '"x-api-key": "***"' in proc.stderr or status == 200
    assert not leaks(key, proc.stdout, proc.stderr)
    assert files_holding(key, tmp_path) == []
    if status == 200:
        saved = json.loads((tmp_path / "raw" / "batch-000001.json").read_text())
        assert saved["headers"]["x-api-key"] == "***"


def test_openalex_step_never_shows_the_key_or_mailto_of_its_query_string(tmp_path):
    key, mail = planted(), f"{uuid.uuid4().hex}@example.org"
    with LoopbackServer() as server:
        server.route("/works", echo(400))
        proc = run_fetch("openalex", tmp_path, server.url, {"OPENALEX_API_KEY": key, "OPENALEX_MAILTO": mail})
    assert server.requests[0].arg("api_key") == key and server.requests[0].arg("mailto") == mail
    assert proc.returncode == 1 and "HTTP 400" in proc.stderr and "api_key=***" in proc.stderr, proc.stderr[-3000:]
    assert not leaks(key, proc.stdout, proc.stderr) and not leaks(mail, proc.stdout, proc.stderr)
    assert files_holding(key, tmp_path) == files_holding(mail, tmp_path) == []


# --- the same through Snakemake --------------------------------------------------------------------------------------


def test_snakemake_run_keeps_the_key_out_of_console_logs_and_metadata(tmp_path, monkeypatch):
    key = planted()
    replies = iter([echo(500), echo(200)])  # a retried server error, then a wrong body that is saved as evidence

    with LoopbackServer() as server:
        server.route("/graph/v1/paper/batch", lambda req: next(replies)(req))
        write_config(
            tmp_path,
            demo={"n_papers": 100},
            arxiv={"readers": ["dump"]},
            citations={"mode": "harvest", "semantic_scholar": {
                "base_url": f"{server.url}/graph/v1",
                "http": {"min_interval_s": 0, "max_retries": 1, "backoff_base_s": 0, "timeout_s": 10}}},
        )
        monkeypatch.setenv("S2_API_KEY", key)
        proc = snakemake(tmp_path, "--cores", "1", "--show-failed-logs", "citations", check=False, timeout=300)
    assert [r.headers.get("x-api-key") for r in server.requests] == [key, key]
    console = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "citations_fetch" in console, console[-4000:]
    step_log = (tmp_path / "results/logs/citations_fetch.log").read_text()
    assert "HTTP 500" in step_log and "expected a JSON array" in step_log and '"x-api-key": "***"' in step_log
    assert not leaks(key, console)
    assert files_holding(key, tmp_path / "results", tmp_path / ".snakemake") == []
    assert (tmp_path / "results/raw/citations/semantic_scholar/batch-000001.json").exists()  # the scrubbed evidence


# --- Ctrl-C and SIGTERM --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_ends_a_step_with_one_line(tmp_path, signum):
    release = threading.Event()

    def never_answers(req):
        release.wait(30)
        return Reply(503)

    with LoopbackServer() as server:
        server.route("/graph/v1/paper/batch", never_answers)
        cmd = [sys.executable, "-m", "workflow_scripts.sources.semantic_scholar", "fetch",
               "--papers", str(write_papers(tmp_path / "papers.parquet")), "--out-dir", str(tmp_path / "raw"),
               "--base-url", f"{server.url}/graph/v1", "--min-interval-s", "0"]
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 30
            while not server.requests and time.monotonic() < deadline:  # the step is now blocked in the request
                time.sleep(0.05)
            assert server.requests, "the step never sent its request"
            proc.send_signal(signum)
            out, err = proc.communicate(timeout=30)
        finally:
            release.set()
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 128 + signum, err
    assert "Traceback" not in err and "Traceback" not in out
    lines = [line for line in err.splitlines() if "interrupted" in line]
    assert len(lines) == 1 and err.rstrip().endswith(lines[0]), err
    # the step, and where in its own code it was
    assert re.fullmatch(rf"interrupted \({signal.Signals(signum).name}\): workflow_scripts\.sources\.semantic_scholar, "
                        r"in PoliteClient\.request \(workflow_scripts/sources/http\.py:\d+\)", lines[0]), lines[0]
