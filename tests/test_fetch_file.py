"""Resumable large-file download (the arXiv dump) against a loopback server that speaks HTTP Range."""

from __future__ import annotations

import base64
import io
import zipfile

import pytest

from tests.loopback import LoopbackServer, Reply
from workflow_scripts.sources import fetch_file
from workflow_scripts.sources.http import PoliteClient, RetryPolicy

BODY = bytes(range(256)) * 400  # 100 kB

FAST = RetryPolicy(min_interval_s=0.0, max_retries=3, backoff_base_s=0.01, timeout_s=10)


def ranged(body: bytes, fail_first: int = 0):
    """Serve ``body`` with Range support; the first ``fail_first`` requests get a 503."""
    calls = {"n": 0}

    def handler(req):
        calls["n"] += 1
        if calls["n"] <= fail_first:
            return Reply(503, b"busy", {"Retry-After": "0"})
        rng = req.headers.get("range")
        if rng:
            start = int(rng.split("=")[1].rstrip("-"))
            if start >= len(body):
                return Reply(416, b"")
            return Reply(206, body[start:], {"Content-Range": f"bytes {start}-{len(body) - 1}/{len(body)}"})
        return Reply(200, body)

    return handler


def test_download_resumes_from_a_partial_file_with_a_range_request(tmp_path):
    with LoopbackServer() as srv:
        srv.route("/dump", ranged(BODY, fail_first=1))
        target = tmp_path / "dump.bin"
        (tmp_path / "dump.bin.part").write_bytes(BODY[:30_000])  # what a killed run left behind
        with PoliteClient(FAST) as client:
            assert client.download(f"{srv.url}/dump", target) == len(BODY)
        assert target.read_bytes() == BODY and not (tmp_path / "dump.bin.part").exists()
        ranges = [r.headers.get("range") for r in srv.requests]
        assert ranges == ["bytes=30000-", "bytes=30000-"]  # the 503, then the resumed request


def test_fetch_file_extracts_the_zip_member_with_basic_auth_from_the_environment(tmp_path, monkeypatch):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("arxiv-metadata-oai-snapshot.json", b'{"id": "2101.00001"}\n')
    seen = []

    def handler(req):
        seen.append(req.headers.get("authorization"))
        return Reply(200, buf.getvalue())

    monkeypatch.setenv("T_USER", "alice")
    monkeypatch.setenv("T_KEY", "s3cret")
    with LoopbackServer() as srv:
        srv.route("/dl", handler)
        out = tmp_path / "dump.json"
        fetch_file.main(["--url", f"{srv.url}/dl", "--out", str(out), "--zip-member", "arxiv-metadata-oai-snapshot.json",
                         "--user-env", "T_USER", "--key-env", "T_KEY", "--min-interval-s", "0"])
    assert out.read_bytes() == b'{"id": "2101.00001"}\n'
    assert seen == ["Basic " + base64.b64encode(b"alice:s3cret").decode()]
    assert not list(tmp_path.glob("*.zip*"))


def test_fetch_file_without_credentials_names_the_variables(tmp_path, monkeypatch):
    monkeypatch.delenv("T_USER", raising=False)
    with pytest.raises(SystemExit, match="T_USER"):
        fetch_file.main(["--url", "http://127.0.0.1:9/x", "--out", str(tmp_path / "o"), "--user-env", "T_USER", "--key-env", "T_KEY"])
