"""PeerRead: the parser on files in PeerRead's own layout with the quirks of the real data, bad files and records,
and the resumable, checksum-verified download of the data/ tree (GitHub's trees API and raw files on loopback)."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from tests.loopback import LoopbackServer, Reply
from workflow_scripts.common.config import schema_defaults
from workflow_scripts.common.io import Rejects
from workflow_scripts.demo import reviews as demo
from workflow_scripts.sources.bad_input import BadInput
from workflow_scripts.sources.errors import BadFileError
from workflow_scripts.sources.http import HarvestError, RetryPolicy
from workflow_scripts.sources.reviews import peerread

VENUES = ["iclr_2017", "acl_2017", "conll_2016"]
SPLITS = ["train", "dev", "test"]
DROP_LINES = schema_defaults()["reviewer"]["pdf_text"]["drop_lines"]
SIZES = {"iclr_2017": {"train": 6, "dev": 2, "test": 2}, "acl_2017": {"train": 3, "dev": 1, "test": 1},
         "conll_2016": {"train": 3, "dev": 1, "test": 1}}
# an excerpt of data/acl_2017/test/reviews/148.json of PeerRead, as the repository has it (one line, scores as strings)
ACL_148 = {"reviews": [{"IMPACT": "2", "SUBSTANCE": "4", "APPROPRIATENESS": "4", "MEANINGFUL_COMPARISON": "3",
                        "PRESENTATION_FORMAT": "Oral Presentation", "comments": "- Strengths:\n\n- this article puts two "
                        "fields together", "SOUNDNESS_CORRECTNESS": "4", "ORIGINALITY": "3", "is_meta_review": None,
                        "RECOMMENDATION": "4", "CLARITY": "2", "REVIEWER_CONFIDENCE": "3"}],
           "abstract": "Knowing the quality of reading comprehension (RC) datasets is important.", "histories": [],
           "id": "148", "title": "Evaluation Metrics for Machine Reading Comprehension"}


@pytest.fixture(scope="module")
def demo_files():
    return demo.peerread_files(11, SIZES)


@pytest.fixture(scope="module")
def snapshot(demo_files, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("peerread_demo")
    for rel, data in demo_files[0].items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root / "peerread"


def parse(root: Path, quarantine: bool = True, venues=VENUES):
    bad = BadInput(Rejects(), quarantine=quarantine, max_lost_fraction=0.5)
    papers, reviews, summary, lost = peerread.parse(root, venues, SPLITS, bad, DROP_LINES)
    return papers, reviews, {**summary, "lost": lost}, bad


def write(root: Path, rel: str, obj) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return path


def test_the_real_quirks_are_handled(snapshot, demo_files):
    papers, reviews, summary, bad = parse(snapshot)
    truth = {(t["venue"], t["paper_id"]): t for t in demo_files[1]}
    assert papers.height == len(truth) and not bad.rejects.rows and not bad.files
    # ids: strings, ints, and empty ones replaced by the file name
    assert summary["id_forms"] == {"str": 16, "int": 1, "empty (file name used)": 3}
    assert set(zip(papers["venue"], papers["paper_id"])) == set(truth)
    for row in papers.iter_rows(named=True):
        t = truth[(row["venue"], row["paper_id"])]
        assert row["split"] == t["split"] and row["year"] == int(row["venue"][-4:])
        # ICLR decides with `accepted`; ACL 2017 and CoNLL 2016 carry no decision
        assert row["decision"] == t["decision_in_files"]
        assert (row["decision_raw"] is None) == (row["venue"] != "iclr_2017")
        assert row["n_reviews"] == 3 and all(r["rating"] is not None for r in row["reviews"])
        assert row["authors"] == ([] if row["venue"] != "iclr_2017" else row["authors"])
    # scores as numbers whether the file has ints (ICLR) or strings (ACL/CoNLL)
    acl = reviews.filter((pl.col("venue") == "acl_2017") & (pl.col("kind") == "official"))
    assert acl["rating"].dtype == pl.Float64 and acl["rating"].is_between(1, 5).all()
    assert {s["name"] for s in acl["scores"][0]} >= {"recommendation", "reviewer_confidence", "clarity", "impact"}
    # ICLR's mixed list: kept apart by kind; IS_META_REVIEW copies and verbatim repeats dropped and counted
    iclr = reviews.filter(pl.col("venue") == "iclr_2017")
    per_paper = iclr.group_by("paper_id", "kind").len()
    assert set(per_paper["kind"]) == {"official", "decision", "comment", "question"}
    assert (per_paper.filter(pl.col("kind") == "official")["len"] == 3).all()
    assert (per_paper.filter(pl.col("kind") == "decision")["len"] == 1).all()
    assert (per_paper.filter(pl.col("kind") == "comment")["len"] == 2).all()
    assert summary["meta_review_copies"] > 0 and summary["repeated_entries"] > 0
    assert (iclr.filter(pl.col("kind") == "question")["text"] == "").all()
    assert iclr.filter(pl.col("kind") == "decision")["reviewer"].unique().to_list() == ["ICLR 2017 pcs"]


def test_parsed_pdf_quirks(snapshot):
    papers, _, summary, _ = parse(snapshot)
    assert summary["without_parsed_pdf"] == 1 and summary["sections_null"] == 3
    assert papers["sections"].null_count() == 4 and papers["text_source"].null_count() == 4
    acl = papers.filter((pl.col("venue") != "iclr_2017") & pl.col("sections").is_not_null())
    for sections in acl["sections"]:
        assert sections[0]["heading"] is None  # science-parse's untitled first section
        for s in sections:
            # margin line numbers gone, and the paragraph they cut joined again
            assert not any(line.strip().isdigit() or line.strip()[:2] == "1 " for line in s["text"].splitlines())
    text = " ".join(s["text"] for secs in papers["sections"].drop_nulls() for s in secs)
    assert "conference paper at ICLR" not in text


def test_bad_review_files_are_rejects_and_stop_a_strict_step(tmp_path):
    root = tmp_path / "data"
    for i, (venue, split) in enumerate((v, s) for v in VENUES for s in SPLITS):
        write(root, f"{venue}/{split}/reviews/{100 + i}.json", dict(ACL_148, id=100 + i))
    truncated = write(root, "acl_2017/test/reviews/149.json", json.dumps(ACL_148)[:120])
    other = write(root, "acl_2017/dev/reviews/150.json", {"name": "150.pdf", "metadata": {"sections": []}})
    html = write(root, "conll_2016/dev/reviews/151.json", "<!DOCTYPE html><html><title>Rate limit</title></html>")
    bad_score = dict(ACL_148, id="152", reviews=[dict(ACL_148["reviews"][0], RECOMMENDATION="four"),
                                                 ACL_148["reviews"][0]])
    write(root, "conll_2016/test/reviews/152.json", bad_score)
    write(root, "iclr_2017/test/reviews/153.json", dict(ACL_148, id="153", accepted="maybe"))
    write(root, "iclr_2017/dev/parsed_pdfs/101.pdf.json", "{\"name\": ")

    papers, reviews, summary, bad = parse(root)
    reasons = {(Path(r["file"]).name, r["record"], r["reason"].split(":")[0]) for r in bad.rejects.rows}
    assert reasons == {
        ("149.json", "*", "bad file (malformed)"), ("150.json", "*", "bad file (unknown schema)"),
        ("151.json", "*", "bad file (html)"), ("152.json", "152#0", "bad score"),
        ("153.json", "153", "bad accepted value"), ("101.pdf.json", "*", "bad file (malformed)")}
    assert summary["lost"] == 3  # the three bad review files; the bad parsed PDF costs text, not the paper
    assert papers.height == 9 + 1  # a good paper per venue and split, and 152 with its good review
    assert papers.filter(pl.col("paper_id") == "152")["n_reviews"].item() == 1
    strict = parse(root, quarantine=False)[3]
    with pytest.raises(BadFileError, match="bad files stop the step unless quarantined") as err:
        strict.enforce("peerread", {})
    for path in (truncated, other, html):
        assert str(path) in str(err.value)


def test_a_configured_venue_missing_from_the_snapshot_names_the_directory(snapshot):
    with pytest.raises(BadFileError, match="nips_2013/train/reviews"):
        parse(snapshot, venues=["iclr_2017", "nips_2013"])


def test_a_paper_seen_twice_keeps_the_copy_read_later(tmp_path):
    root = tmp_path / "data"
    write(root, "acl_2017/train/reviews/148.json", ACL_148)
    write(root, "acl_2017/test/reviews/148.json", dict(ACL_148, title="Revised title"))
    for split in ("dev",):
        (root / f"acl_2017/{split}/reviews").mkdir(parents=True)
    papers, _, summary, _ = parse(root, venues=["acl_2017"])
    assert papers["title"].to_list() == ["Revised title"]  # splits are read train, dev, test
    assert summary["duplicates"] == 1 and summary["duplicates_conflicting"] == 1


# --- harvest: GitHub's trees API and raw files on loopback -----------------------------------------------------------


class FakeGitHub:
    """The three calls of the harvest: commits/{ref}, git/trees/{sha}[?recursive=1], and raw files at the commit."""

    COMMIT = "c0ffee" * 6 + "abcd"

    def __init__(self, server: LoopbackServer, files: dict[str, bytes]):
        self.server, self.files = server, dict(files)  # "{venue}/{split}/{kind}/{name}" -> content
        api = "/repos/allenai/PeerRead"
        server.route(f"{api}/commits/master", lambda r: self._json({"sha": self.COMMIT, "commit": {"tree": {"sha": "root"}}}))
        server.route(f"{api}/git/trees/root", lambda r: self._json({"tree": [
            {"path": "code", "type": "tree", "sha": "code"}, {"path": "data", "type": "tree", "sha": "data"}]}))
        venues = sorted({rel.split("/")[0] for rel in files})
        server.route(f"{api}/git/trees/data", lambda r: self._json({"tree": [
            {"path": v, "type": "tree", "sha": f"tree-{v}"} for v in venues]}))
        for venue in venues:
            server.route(f"{api}/git/trees/tree-{venue}", self._venue_tree(venue))
        for rel in files:
            server.route(f"/allenai/PeerRead/{self.COMMIT}/data/{rel}", self._raw(rel))

    @staticmethod
    def _json(obj) -> Reply:
        return Reply(200, json.dumps(obj), content_type="application/json")

    def _venue_tree(self, venue):
        def handler(req):
            assert req.arg("recursive") == "1"
            blobs = [{"path": rel.split("/", 1)[1], "type": "blob", "sha": peerread.git_blob_sha(data), "size": len(data)}
                     for rel, data in sorted(self.files.items()) if rel.startswith(f"{venue}/")]
            blobs.append({"path": "test/pdfs/1.pdf", "type": "blob", "sha": "0" * 40, "size": 10})  # never fetched
            return self._json({"sha": f"tree-{venue}", "tree": blobs, "truncated": False})
        return handler

    def _raw(self, rel):
        return lambda req: Reply(200, self.served.get(rel, self.files[rel]))

    served: dict[str, bytes] = {}

    def raw_requests(self) -> list[str]:
        return [r.path for r in self.server.requests if "/data/" in r.path]


@pytest.fixture
def github(demo_files):
    files = {rel.removeprefix("peerread/"): data for rel, data in demo_files[0].items() if rel.endswith(".json")}
    with LoopbackServer() as server:
        yield FakeGitHub(server, files)


def harvest(github: FakeGitHub, out: Path) -> dict:
    policy = RetryPolicy(min_interval_s=0, max_retries=0, backoff_base_s=0, backoff_max_s=0, timeout_s=10)
    return peerread.harvest(out, "allenai/PeerRead", "master", VENUES, SPLITS, github.server.url, github.server.url,
                            policy)


def test_harvest_fetches_the_data_tree_verified_and_resumes_without_refetching(github, snapshot, tmp_path):
    out = tmp_path / "peerread"
    summary = harvest(github, out)
    assert summary["commit"] == FakeGitHub.COMMIT and summary["fetched"] == len(github.files)
    assert not list(out.rglob("*.pdf"))  # science-parse's output is fetched, not the PDFs
    listing = json.loads((out / "listing.json").read_text())
    assert {f["path"] for f in listing["files"]} == set(github.files) and listing["commit"] == FakeGitHub.COMMIT
    assert parse(out)[0].equals(parse(snapshot)[0])
    # a rerun keeps verified files and the commit it started on; a damaged file is fetched again
    first = len(github.raw_requests())
    damaged = out / sorted(github.files)[0]
    damaged.write_bytes(damaged.read_bytes()[:-5])
    again = harvest(github, out)
    assert again["fetched"] == 1 and again["already_present"] == len(github.files) - 1
    assert len(github.raw_requests()) == first + 1
    assert len([r for r in github.server.requests if r.path.endswith("/commits/master")]) == 1


def test_a_file_whose_checksum_differs_from_the_listing_stops_the_harvest(github, tmp_path):
    rel = sorted(github.files)[3]
    github.served = {rel: b"{}"}
    with pytest.raises(HarvestError, match="checksum") as err:
        harvest(github, tmp_path / "peerread")
    assert rel in str(err.value) and not (tmp_path / "peerread" / rel).exists()
    github.served = {}
