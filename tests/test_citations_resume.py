"""Kill a real Semantic Scholar harvest while a batch is in flight, rerun it, and check that nothing is lost or doubled."""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.loopback import LoopbackServer, Reply
from tests.test_citations import count_of, parse, s2_record, write_papers

ROOT = Path(__file__).resolve().parents[1]


def run_fetch(papers: Path, out: Path, base_url: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "workflow_scripts.sources.semantic_scholar", "fetch", "--papers", str(papers),
           "--out-dir", str(out), "--base-url", base_url, "--batch-size", "2", "--min-interval-s", "0", "--done", str(out.parent / "done.json")]
    env = {k: v for k, v in os.environ.items() if k != "S2_API_KEY"}
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def wait_for(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_kill_during_third_batch_then_resume(tmp_path):
    ids = [f"2101.{n:05d}" for n in range(7)]  # batches of 2: [0,1] [2,3] [4,5] [6]
    papers = write_papers(tmp_path / "papers.parquet", ids)
    out = tmp_path / "raw"
    release = threading.Event()
    hang = {"on": True}

    def handle(req):
        requested = [x.removeprefix("ARXIV:") for x in json.loads(req.body)["ids"]]
        if hang["on"] and requested == ids[4:6]:
            release.wait(30)  # the third batch never answers while the first process lives
        return Reply(200, json.dumps([s2_record(i) for i in requested]), content_type="application/json")

    with LoopbackServer() as server:
        server.route("/graph/v1/paper/batch", handle)
        proc = run_fetch(papers, out, server.url + "/graph/v1")
        try:
            wait_for(lambda: (out / "batch-000002.json").exists() and len(server.requests) == 3)
        finally:
            proc.kill()
            proc.wait()
            hang["on"] = False
            release.set()
        assert not (out.parent / "done.json").exists()
        assert sorted(p.name for p in out.iterdir()) == ["batch-000001.json", "batch-000002.json", "manifest.jsonl"]

        proc = run_fetch(papers, out, server.url + "/graph/v1")
        log, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0, log.decode()

    requested = collections.Counter(x.removeprefix("ARXIV:") for r in server.requests for x in json.loads(r.body)["ids"])
    assert set(requested) == set(ids)
    assert {i for i, n in requested.items() if n > 1} == set(ids[4:6])  # only the batch in flight at the kill
    assert max(requested.values()) == 2
    assert json.loads((out.parent / "done.json").read_text())["requested"] == 3

    frame, report, rejects = parse(tmp_path, "semantic_scholar", out, papers)
    assert frame["arxiv_id"].to_list() == ids
    assert frame["citation_count"].to_list() == [count_of(i) for i in ids]
    assert (report["with_count"], report["without_count"], report["duplicates"], rejects) == (7, 0, 0, [])
