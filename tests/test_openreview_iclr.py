"""OpenReview for the SciJudge ICLR test: API v1 and v2 note pages in their native shapes (v2 content wrapped as
{"value": ...}, invitation lists, venueid), page files of any name and shape, bad pages rejected with their reason,
and the harvester's API v2 path against a loopback API."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from tests.loopback import LoopbackServer
from tests.openreview_loopback import PASSWORD, USER, FakeOpenReview
from workflow_scripts.common.config import schema_defaults
from workflow_scripts.common.io import Rejects
from workflow_scripts.demo import iclr_reviews as demo
from workflow_scripts.sources.bad_input import BadInput
from workflow_scripts.sources.errors import BadFileError, RecordError
from workflow_scripts.sources.reviews import openreview_scores
from workflow_scripts.sources.reviews.openreview import Venue
from workflow_scripts.sources.reviews.openreview_scores import ReviewForm

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests/fixtures/openreview"
ICLR = schema_defaults()["scijudge"]["ood"]["iclr"]
BLOCKS = {v["venue"]: v for v in ICLR["venues"]}
VENUES = [Venue.from_config(BLOCKS[name]) for name in ("iclr_2018", "iclr_2024")]
FORMS = {venue: ReviewForm.from_config(block) for venue, block in ICLR["review_fields"].items()}
DEMO_SIZES = {"submissions": {"iclr_2018": 24, "iclr_2024": 24}, "page_size": 10}
NATIVE_LAYOUT = {  # fixture -> where a harvest puts it: ours for API v1, another tool's raw answer for API v2
    "iclr2018_v1_blind_submission.json": "notes/ICLR.cc+2018+Conference+-+Blind_Submission/page-00001.json",
    "iclr2018_v1_withdrawn_submission.json": "notes/ICLR.cc+2018+Conference+-+Withdrawn_Submission/page-00001.json",
    "iclr2024_v2_notes_answer.json": "api2/answer-0.json",
}


def write(root: Path, files: dict[str, bytes | str]) -> Path:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data.encode() if isinstance(data, str) else data)
    return root


def native_snapshot(root: Path) -> Path:
    return write(root, {rel: (FIXTURES / name).read_bytes() for name, rel in NATIVE_LAYOUT.items()})


def collect(root: Path, venues=VENUES, quarantine: bool = True):
    bad = BadInput(Rejects(), quarantine=quarantine, max_lost_fraction=1.0)
    scores, summary, lost = openreview_scores.collect([(root, venues)], FORMS, bad)
    return scores, summary, lost, bad


def by_id(scores: pl.DataFrame) -> dict[str, dict]:
    return {r["paper_id"]: r for r in scores.iter_rows(named=True)}


def test_v1_and_v2_notes_give_each_submission_its_review_scores(tmp_path):
    scores, summary, lost, bad = collect(native_snapshot(tmp_path))
    rows = by_id(scores)
    assert set(rows) == {"B1ZvaaeAZ", "HkCnm-bAb", "aBcDeF1234", "Qr5tUv6789"}
    v1 = rows["B1ZvaaeAZ"]
    assert (v1["key"], v1["year"], v1["api"]) == ("openreview:iclr_2018:B1ZvaaeAZ", 2018, "v1")
    assert v1["title"] == "Learning Sparse Networks with Gates"  # whitespace as one space
    assert v1["abstract"] == "We prune networks with learned gates."
    # official reviews in the API's order; the comment and the decision are no reviews; a review without confidence
    assert v1["ratings"] == [7.0, 8.0, 6.0] and v1["confidences"] == [4.0, 5.0, None]
    assert v1["date"] == dt.date(2017, 10, 27)  # no cdate on these v1 notes: tcdate
    # API v2: {"value": ...} unwrapped, "8: accept, good paper" and a bare 6 both read as numbers, the decision ignored
    v2 = rows["aBcDeF1234"]
    assert (v2["title"], v2["api"], v2["year"]) == ("Gated Sparse Transformers", "v2", 2024)
    assert v2["ratings"] == [8.0, 6.0] and v2["confidences"] == [4.0, 3.0] and v2["date"] == dt.date(2023, 9, 21)
    assert rows["Qr5tUv6789"]["ratings"] == [3.0, 1.0]  # rejected, authors hidden ({"readers": ...} without value)
    # withdrawn: in the v1 withdrawn invitation, and by venueid under the v2 submission invitation (reviews and all)
    assert summary["withdrawn"] == {"iclr_2018": 1, "iclr_2024": 1}
    assert summary["submissions"] == {"iclr_2018": 2, "iclr_2024": 2}
    assert summary["reviews"] == 8 and summary["reviews_without_confidence"] == 1
    # an unreadable rating is a rejected review, named with its reason; the paper keeps its other review
    assert [(r["record"], r["reason"]) for r in bad.rejects.rows] == [("rq2", "bad score: rating='reject, clearly'")]
    assert rows["HkCnm-bAb"]["ratings"] == [3.0] and lost == 0 and not bad.files


def test_each_years_review_form_reads_its_own_fields():
    # ICLR 2020 asked for an experience assessment instead of a confidence; ICLR 2023 called its rating recommendation
    experienced = {"rating": "6: Weak Accept",
                   "experience_assessment": "I have published in this field for several years."}
    assert FORMS["iclr_2020"].read(experienced) == (6.0, 4.0)
    assert FORMS["iclr_2023"].read({"recommendation": "8: accept, good paper", "confidence": "3: fairly"}) == (8.0, 3.0)
    with pytest.raises(RecordError, match="no rating: no 'rating'"):
        ReviewForm().read({"confidence": "3: fairly"})
    with pytest.raises(RecordError, match="bad score: experience_assessment="):
        FORMS["iclr_2020"].read({"rating": "3: Weak Reject", "experience_assessment": "Somewhat."})


def test_page_files_are_read_whatever_their_names_and_shapes(tmp_path):
    expected, *_ = collect(native_snapshot(tmp_path / "native"))
    blind = json.loads((FIXTURES / "iclr2018_v1_blind_submission.json").read_text())
    answer = (FIXTURES / "iclr2024_v2_notes_answer.json").read_bytes()
    withdrawn = json.loads((FIXTURES / "iclr2018_v1_withdrawn_submission.json").read_text())["notes"][0]
    root = write(tmp_path / "other", {
        "export/ICLR 2018 (all).json": json.dumps(blind["notes"]),  # a bare list of notes
        "by-forum/SJ3dBGZ0Z.json": json.dumps(withdrawn),  # one note a file
        "v2.json.gz": gzip.compress(answer),  # the API's answer, gzipped
        "state.json": json.dumps({"request": {}, "invitations": {}}),  # the harvester's own state: not a page
        "notes/.page-00002.json.tmp.json": "{trunc",  # an atomic write's hidden temporary: not a page
    })
    scores, summary, _, bad = collect(root)
    assert scores.drop("file").equals(expected.drop("file")) and summary["pages"] == 3 and not bad.files
    assert summary["withdrawn"] == {"iclr_2018": 1, "iclr_2024": 1}


def test_malformed_and_truncated_pages_are_rejected_with_their_reason(tmp_path):
    page = (FIXTURES / "iclr2018_v1_blind_submission.json").read_bytes()
    bad_note = {"notes": [{"id": "NoContent1", "invitation": "ICLR.cc/2018/Conference/-/Blind_Submission"}]}
    root = write(native_snapshot(tmp_path / "snap"), {
        "notes/ICLR.cc+2018+Conference+-+Blind_Submission/page-00002.json": page[:700],  # cut mid-download
        "notes/ICLR.cc+2018+Conference+-+Blind_Submission/page-00003.json": "",
        "notes/ICLR.cc+2018+Conference+-+Blind_Submission/page-00004.json": json.dumps(bad_note),
        "api2/answer-1.json": '{"name": "RateLimitError", "message": "Too many requests", "status": 429}',
        "api2/answer-2.json": "<!DOCTYPE html><html><head><title>Just a moment...</title></head></html>",
    })
    scores, summary, lost, bad = collect(root)
    kinds = {Path(f.file).name: f.kind for f in bad.files}
    assert kinds == {"page-00002.json": "malformed", "page-00003.json": "empty", "answer-1.json": "error response",
                     "answer-2.json": "html"}
    reasons = {r["reason"].split(":")[0] for r in bad.rejects.rows}
    assert {"bad file (malformed)", "bad file (empty)", "bad file (error response)", "bad file (html)",
            "malformed note"} <= reasons
    assert any(r["record"] == "NoContent1" and r["reason"] == "malformed note: no content" for r in bad.rejects.rows)
    assert "not JSON (truncated?)" in next(f.detail for f in bad.files if f.kind == "malformed")
    assert scores.height == 4 and lost == 4 * 3  # the good pages still count; the loss is estimated, never zero
    # without quarantine the step stops, naming every bad file, and writes nothing
    out = tmp_path / "out"
    args = ["--input", str(root), json.dumps([BLOCKS["iclr_2018"], BLOCKS["iclr_2024"]]),
            "--out", str(out / "scores.parquet"), "--rejects", str(out / "rejects.jsonl"),
            "--summary", str(out / "summary.json")]
    with pytest.raises(BadFileError, match=r"4 bad input file\(s\)[\s\S]*page-00002.json \(malformed"):
        openreview_scores.main(args)
    assert not out.exists()
    openreview_scores.main([*args, "--quarantine-bad-files", "--max-lost-fraction", "0.9"])
    assert json.loads((out / "summary.json").read_text())["rejects"]["bad file (malformed)"] == 1


@pytest.fixture(scope="module")
def demo_snapshot(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("iclr_demo")
    files, _ = demo.render(7, ICLR["venues"], DEMO_SIZES)
    return write(root, files) / demo.OUT


def harvest(server_url: str, out: Path, *extra: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "workflow_scripts.sources.reviews.openreview", "harvest", "--out-dir", str(out),
           "--base-url", server_url, "--base-url-v2", server_url, "--venues",
           json.dumps([BLOCKS["iclr_2018"], BLOCKS["iclr_2024"]]), "--page-size", "7", "--username-env",
           "LOOP_OR_USER", "--password-env", "LOOP_OR_PASS", "--min-interval-s", "0", "--backoff-base-s", "0.05",
           "--done", str(out.parent / "harvest.done.json"), *extra]
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENREVIEW_")}
    # the v1 client logs in at its API v2 address: on a loopback base URL, the one this variable names
    env.update(OPENREVIEW_API_V2_URL=server_url, PYTHONPATH=str(ROOT), LOOP_OR_USER=USER, LOOP_OR_PASS=PASSWORD)
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)


def test_harvest_pages_api_v2_notes_with_its_own_client(demo_snapshot, tmp_path):
    with LoopbackServer() as server:
        api = FakeOpenReview(server)
        api.load_snapshot(demo_snapshot)
        proc = harvest(server.url, tmp_path / "harvest", "--notes-only")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(api.requests("/login")) == 2  # one client per API version, each logged in
    v2 = [r for r in api.requests("/notes") if r.arg("invitation") == BLOCKS["iclr_2024"]["submission"]]
    assert all(r.arg("details") == "directReplies" and r.arg("sort") == "id" and r.arg("limit") == "7" for r in v2)
    assert [r.arg("after") is None for r in v2] == [True, False, False, False]  # 27 notes, paged by id
    assert not api.requests("/pdf") and not api.requests("/attachment")
    # saved as the API sent them: invitation lists, wrapped content, and the fields Note.to_json leaves out
    page = json.loads((tmp_path / "harvest/notes/ICLR.cc+2024+Conference+-+Submission/page-00001.json").read_text())
    note = page["notes"][0]
    assert isinstance(note["invitations"], list) and set(note["content"]["title"]) == {"value"}
    assert note["number"] and note["tcdate"] and note["details"]["directReplies"]
    harvested, summary, _, bad = collect(tmp_path / "harvest")
    expected, *_ = collect(demo_snapshot)
    assert harvested.drop("file").equals(expected.drop("file")) and not bad.files
    assert json.loads((tmp_path / "harvest.done.json").read_text())["pdfs"] is None


def test_api_v2_venues_are_harvested_notes_only(tmp_path):
    proc = harvest("http://127.0.0.1:9", tmp_path / "harvest")  # refused before any request
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "--notes-only" in proc.stderr.strip().splitlines()[-1]


def test_the_demo_plants_its_quirks_and_is_reproducible(demo_snapshot):
    files, truth = demo.render(7, ICLR["venues"], DEMO_SIZES)
    assert files == demo.render(7, ICLR["venues"], DEMO_SIZES)[0]  # the same arguments, the same bytes
    assert any(rel.startswith(f"{demo.OUT}/api2/") for rel in files)  # v2 pages as another tool names them
    scores, summary, _, bad = collect(demo_snapshot)
    assert summary["withdrawn"] == {"iclr_2018": 2, "iclr_2024": 2} and summary["desk_rejected"] == {"iclr_2024": 1}
    assert summary["reviews_without_confidence"] == 2 and not bad.rejects.rows
    assert sorted(scores.filter(pl.col("ratings").list.len() == 1)["venue"]) == ["iclr_2018", "iclr_2024"]
    assert set(truth.filter(pl.col("status") == "ok")["paper_id"]) == set(scores["paper_id"])

