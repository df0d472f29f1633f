"""OpenReview: the harvester (openreview-py against a loopback API v1: login, paged notes with replies, PDFs, 429
with a reset time, the 403 challenge, kill and resume) and the parser of note pages (decisions per year, withdrawn
papers, bad pages and notes)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from tests.loopback import LoopbackServer
from tests.openreview_loopback import PASSWORD, TOKEN, USER, FakeOpenReview
from workflow_scripts.common.config import schema_defaults
from workflow_scripts.common.io import Rejects
from workflow_scripts.demo import reviews as demo
from workflow_scripts.sources.bad_input import BadInput
from workflow_scripts.sources.errors import BadFileError
from workflow_scripts.sources.reviews import openreview, pdf_text
from workflow_scripts.sources.reviews.openreview import Venue

ROOT = Path(__file__).resolve().parents[1]
VENUE_BLOCKS = schema_defaults()["reviewer"]["openreview"]["venues"]
VENUES = [Venue.from_config(v) for v in VENUE_BLOCKS]
DROP_LINES = schema_defaults()["reviewer"]["pdf_text"]["drop_lines"]
SIZES = {**demo.default_sizes(), "openreview": {"iclr_2019": 10, "iclr_2020": 10, "iclr_2021": 10}, "withdrawn": 2,
         "page_size": 4}
PAGE_SIZE = 3  # the harvester's: several pages per invitation, ids continued with `after`


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory) -> Path:
    """The demo's OpenReview snapshot at test size: the notes the loopback API serves and the expected result."""
    root = tmp_path_factory.mktemp("openreview_demo")
    files, _ = demo.openreview_files(7, SIZES)
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root / "openreview"


def parse_dir(root: Path, quarantine: bool = True) -> tuple[pl.DataFrame, pl.DataFrame, dict, BadInput]:
    bad = BadInput(Rejects(), quarantine=quarantine, max_lost_fraction=0.5)
    text, _ = pdf_text.extract_dir(root / "pdfs", DROP_LINES, pdf_text.DEFAULT_MIN_CHARS, 1,
                                   BadInput(Rejects(), quarantine=True, max_lost_fraction=1.0))
    papers, reviews, summary, lost = openreview.parse(root, VENUES, text, bad)
    return papers, reviews, {**summary, "lost": lost}, bad


@pytest.fixture(scope="module")
def expected(snapshot):
    return parse_dir(snapshot)


@pytest.fixture
def api(snapshot):
    with LoopbackServer() as server:
        fake = FakeOpenReview(server)
        fake.load_snapshot(snapshot)
        yield fake


def harvest_cmd(api: FakeOpenReview, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "workflow_scripts.sources.reviews.openreview", "harvest", "--out-dir", str(out),
            "--base-url", api.server.url, "--venues", json.dumps(VENUE_BLOCKS), "--page-size", str(PAGE_SIZE),
            "--username-env", "LOOP_OR_USER", "--password-env", "LOOP_OR_PASS", "--min-interval-s", "0",
            "--backoff-base-s", "0.05", "--done", str(out.parent / f"{out.name}.done.json"), *extra]


def harvest_env(api: FakeOpenReview, logged_in: bool = True, password: str = PASSWORD) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENREVIEW_")}
    # openreview-py logs in at its API v2 address: on a loopback base URL, the one this variable names
    env.update(OPENREVIEW_API_V2_URL=api.server.url, PYTHONPATH=str(ROOT))
    if logged_in:
        env.update(LOOP_OR_USER=USER, LOOP_OR_PASS=password)
    return env


def run_harvest(api: FakeOpenReview, out: Path, *extra: str, logged_in: bool = True, password: str = PASSWORD):
    return subprocess.run(harvest_cmd(api, out, *extra), env=harvest_env(api, logged_in, password),
                          capture_output=True, text=True, timeout=120)


def without_file(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.drop("file") if "file" in frame.columns else frame


def assert_same_tables(harvested: Path, expected) -> None:
    papers, reviews, summary, _ = parse_dir(harvested)
    assert without_file(papers).equals(without_file(expected[0]))
    assert reviews.equals(expected[1])
    assert summary["withdrawn"] == expected[2]["withdrawn"] and summary["duplicates"] == 0


def test_harvest_logs_in_pages_notes_and_fetches_the_submitted_pdfs(api, snapshot, expected, tmp_path):
    out = tmp_path / "openreview"
    proc = run_harvest(api, out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(api.requests("/login")) == 1
    notes = api.requests("/notes")
    assert all(r.headers["authorization"].startswith("Bearer ") for r in notes)
    assert all(r.arg("sort") == "id" and r.arg("limit") == str(PAGE_SIZE) for r in notes)
    blind = [r for r in notes if r.arg("invitation") == VENUES[0].submission]
    assert [r.arg("after") is None for r in blind] == [True] + [False] * (len(blind) - 1)  # paged by id
    assert all(r.arg("details") == "directReplies" for r in blind)
    assert len(blind) == 10 // PAGE_SIZE + 1
    # 2020 notes keep the submitted version in original_pdf: it is fetched, not the camera-ready
    originals = {r.arg("id") for r in api.requests("/attachment")}
    assert originals and all(r.arg("name") == "original_pdf" for r in api.requests("/attachment"))
    assert originals == {k for k, f in api.pdfs if f == "original_pdf"}
    for pdf in snapshot.glob("pdfs/*.pdf"):
        assert (out / "pdfs" / pdf.name).read_bytes() == pdf.read_bytes()
    # the 2019 submission without a PDF answers 404: recorded, the harvest goes on
    failed = [json.loads(line) for line in (out / "pdfs/failed.jsonl").read_text().splitlines()]
    assert len(failed) == 1 and "404 NotFoundError" in failed[0]["reason"]
    # the account's password and session token appear in nothing the harvest prints or writes
    written = b"".join(p.read_bytes() for p in out.rglob("*") if p.is_file())
    assert PASSWORD not in proc.stderr + proc.stdout and PASSWORD.encode() not in written
    assert TOKEN.encode() not in written and TOKEN not in proc.stderr
    done = json.loads((out.parent / "openreview.done.json").read_text())
    assert done["logged_in"] and done["pdfs"]["fetched"] == len(list(snapshot.glob("pdfs/*.pdf")))
    assert_same_tables(out, expected)


def test_a_429_is_waited_out_until_its_reset_time(api, expected, tmp_path):
    api.rate_limit_next("/notes", 1.5)
    proc = run_harvest(api, tmp_path / "openreview")
    assert proc.returncode == 0, proc.stderr[-3000:]
    first, second = api.requests("/notes")[:2]
    # one 429, then the same request once the reset time has passed: no retries that spend the quota meanwhile
    assert second.arg("after") == first.arg("after") and second.arg("invitation") == first.arg("invitation")
    assert second.at - first.at >= 1.4
    assert "rate limited" in proc.stderr
    assert_same_tables(tmp_path / "openreview", expected)


def test_a_reset_time_beyond_the_longest_wait_stops_the_harvest_resumably(api, tmp_path):
    api.rate_limit_next("/notes", 3600)
    proc = run_harvest(api, tmp_path / "openreview", "--max-wait-s", "60")
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert "rate limited until" in last and "rerun" in last and "Traceback" not in proc.stderr
    assert len(api.requests("/notes")) == 1


def test_anonymous_access_gets_the_challenge_and_a_hint_naming_the_variables(api, tmp_path):
    proc = run_harvest(api, tmp_path / "openreview", logged_in=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert "403 ChallengeRequiredError" in last and "LOOP_OR_USER" in last and "LOOP_OR_PASS" in last
    assert not list((tmp_path / "openreview").glob("notes/*/page-*.json"))


def test_a_wrong_password_fails_at_login_without_printing_it(api, tmp_path):
    proc = run_harvest(api, tmp_path / "openreview", password="wrong-password-123")
    assert proc.returncode == 1
    assert "login" in proc.stderr and "InvalidCredentialsError" in proc.stderr
    assert "wrong-password-123" not in proc.stderr + proc.stdout
    assert not api.requests("/notes")


def test_killed_harvest_resumes_without_duplicate_or_lost_notes_and_pdfs(api, expected, tmp_path):
    out = tmp_path / "openreview"
    running: dict[str, subprocess.Popen] = {}
    kill_at = {"/notes": 4, "/pdf": 3}

    def killer(req):
        if req.path in kill_at and len(api.requests(req.path)) == kill_at[req.path]:
            del kill_at[req.path]
            os.kill(running["proc"].pid, signal.SIGKILL)
            time.sleep(0.2)

    api.on_request = killer
    for _ in range(3):  # killed among the notes, killed among the PDFs, then to the end
        running["proc"] = subprocess.Popen(harvest_cmd(api, out), env=harvest_env(api), stdout=subprocess.DEVNULL,
                                           stderr=subprocess.PIPE, text=True)
        _, err = running["proc"].communicate(timeout=120)
    assert running["proc"].returncode == 0, err[-3000:]
    assert not kill_at, "both kills happened"
    # only the request in flight at a kill is repeated: saved pages and PDFs are never requested again
    pages = [(r.arg("invitation"), r.arg("after")) for r in api.requests("/notes")]
    assert len(pages) == len(set(pages)) + 1
    pdfs = [r.arg("id") for r in api.requests("/pdf") + api.requests("/attachment")]
    assert len(pdfs) == len(set(pdfs)) + 1
    assert_same_tables(out, expected)


def test_parse_decisions_per_year_withdrawn_papers_and_missing_decisions(expected):
    papers, reviews, summary, bad = expected
    truth = {r["paper_id"]: r for r in demo.openreview_files(7, SIZES)[1]}
    assert summary["withdrawn"] == {v.venue: 2 for v in VENUES}
    assert summary["desk_rejected"] == {"iclr_2020": 1, "iclr_2021": 1}
    assert not set(papers["paper_id"]) & {k for k, t in truth.items() if t["status"] in ("withdrawn", "desk_rejected")}
    # 2019 decides in the Meta_Review's recommendation, 2020/2021 in Paper<N>/-/Decision's decision
    for row in papers.iter_rows(named=True):
        assert row["decision"] == truth[row["paper_id"]]["decision_in_files"]
        assert row["decision_raw"].startswith("Accept" if row["decision"] == "accept" else "Reject")
    no_decision = [r for r in bad.rejects.rows if r["reason"].startswith("no decision")]
    assert {r["record"] for r in no_decision} == {k for k, t in truth.items() if t["status"] == "no_decision"}
    assert all(r["file"].endswith(".json") for r in no_decision)
    # official reviews with numeric ratings; 2020's reviews have no confidence
    official = reviews.filter(pl.col("kind") == "official")
    assert official["rating"].null_count() == 0
    assert official.filter(pl.col("venue") == "iclr_2020")["confidence"].null_count() == official.filter(
        pl.col("venue") == "iclr_2020").height
    assert set(reviews.filter(pl.col("venue") == "iclr_2019")["kind"]) >= {"official", "meta_review"}
    assert set(reviews.filter(pl.col("venue") == "iclr_2020")["kind"]) >= {"official", "decision"}
    assert (papers["n_reviews"] == 3).all()
    # the submitted PDF: original_pdf in 2020, pdf otherwise; venue headers out of the text
    assert set(papers.filter(pl.col("year") == 2020)["pdf_field"]) == {"original_pdf"}
    body = " ".join(s["text"] for secs in papers["sections"].drop_nulls() for s in secs)
    assert "conference paper at ICLR" not in body and body
    assert summary["without_pdf_text"] == 2  # the encrypted PDF and the one never fetched


def test_parse_bad_pages_and_bad_notes_are_rejects_with_reasons(snapshot, tmp_path):
    root = tmp_path / "openreview"
    for path in snapshot.rglob("*"):
        if path.is_file():
            (root / path.relative_to(snapshot)).parent.mkdir(parents=True, exist_ok=True)
            (root / path.relative_to(snapshot)).write_bytes(path.read_bytes())
    pages = sorted(root.glob("notes/*Blind_Submission/page-*.json"))
    truncated, error = pages[0], root / "notes/extra/page-00001.json"
    error.parent.mkdir()
    error.write_text(json.dumps({"name": "RateLimitError", "message": "Too many requests", "status": 429}))
    edited = json.loads(pages[1].read_text())  # a 2019 page: decisions in Meta_Review replies
    decided = [n for n in edited["notes"] if any(r["invitation"].endswith("/Meta_Review")
                                                 for r in n["details"]["directReplies"])]
    workshop, withdrawn = decided[0], decided[1]
    for reply in workshop["details"]["directReplies"]:
        if reply["invitation"].endswith("/Meta_Review"):
            reply["content"]["recommendation"] = "Invite to Workshop Track"
    withdrawn["details"]["directReplies"].append(
        {"id": "withdrawal1", "invitation": f"ICLR.cc/2019/Conference/-/Paper{withdrawn['number']}/Withdraw",
         "content": {"withdrawal confirmation": "I have read and agree."}, "signatures": ["Authors"]})
    edited["notes"].append(["not", "a", "note"])
    pages[1].write_text(json.dumps(edited))
    truncated.write_bytes(truncated.read_bytes()[:300])
    largest = max(len(json.loads(p.read_text())["notes"]) for p in pages[1:])

    papers, _, summary, bad = parse_dir(root)
    reasons = {r["reason"].split(":")[0] for r in bad.rejects.rows}
    assert {"bad file (malformed)", "bad file (error response)", "unknown decision value", "malformed note",
            "no decision"} <= reasons
    assert {Path(f.file).name for f in bad.files} == {truncated.name, error.name}
    assert summary["lost"] == 2 * largest  # two bad pages, each estimated at the largest readable page
    assert not {workshop["id"], withdrawn["id"]} & set(papers["paper_id"])
    assert sum(summary["withdrawn"].values()) == 3 * 2 + 1
    strict = parse_dir(root, quarantine=False)[3]
    with pytest.raises(BadFileError, match="bad files stop the step unless quarantined") as err:
        strict.enforce("openreview", {})
    assert truncated.name in str(err.value) and error.name in str(err.value)


def test_the_demo_snapshot_is_a_function_of_its_seed():
    small = {**SIZES, "openreview": {"iclr_2020": 10}}
    assert demo.openreview_files(7, small) == demo.openreview_files(7, small)
    assert demo.openreview_files(7, small)[0] != demo.openreview_files(8, small)[0]
    assert demo.size_problems({**small, "openreview": {"iclr_2020": 9}})


def test_venue_templates_and_the_submitted_pdf_field():
    v2019, v2020 = VENUES[0], VENUES[1]
    assert v2019.matches(v2019.decision, "ICLR.cc/2019/Conference/-/Paper12/Meta_Review")
    assert not v2019.matches(v2019.decision, "ICLR.cc/2019/Conference/Paper12/-/Meta_Review")
    assert v2020.matches(v2020.decision, "ICLR.cc/2020/Conference/Paper7/-/Decision")
    assert not v2020.matches(v2020.decision, "ICLR.cc/2020/Conference/Paper7/-/Decision_Comment")
    assert openreview.submitted_pdf_field({"pdf": "/pdf/a.pdf", "original_pdf": "/attachment/b.pdf"}) == "original_pdf"
    assert openreview.submitted_pdf_field({"pdf": "/pdf/a.pdf"}) == "pdf"
    assert openreview.submitted_pdf_field({}) is None
