"""Snapshot inputs notice edits: a snapshot directory or file the workflow does not write is represented in the DAG
by a manifest whose mtime moves exactly when a file under it is added, removed or edited; a snapshot the workflow
writes (the demo's) keeps its producer in the DAG; a performance knob reruns nothing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
import yaml

from tests.workflow_runner import ROOT, planned_jobs, snakemake, write_config
from workflow_scripts.common import manifest

OAI_PAGE = "ext/oai_pmh/cs/page-00001.xml"


def test_manifest_is_rewritten_exactly_when_the_listing_changes(tmp_path):
    snap, out = tmp_path / "snap", tmp_path / "manifest.json"
    (snap / "sub").mkdir(parents=True)
    (snap / "sub" / "a.xml").write_text("a")
    (snap / "b.xml").write_text("bb")
    assert manifest.update(out, snap)
    listing = json.loads(out.read_text())
    assert listing["snapshot"] == str(snap)
    assert [(f["name"], f["size"]) for f in listing["files"]] == [("b.xml", 2), ("sub/a.xml", 1)]
    written = out.stat().st_mtime_ns
    assert not manifest.update(out, snap) and out.stat().st_mtime_ns == written
    os.utime(snap / "b.xml", ns=(10**18, 10**18))  # same size, an older mtime: a copy that kept its old time
    assert manifest.update(out, snap)
    (snap / "c.xml").write_text("")
    assert manifest.update(out, snap)
    (snap / "c.xml").unlink()
    assert manifest.update(out, snap) and not manifest.update(out, snap)


def test_manifest_of_a_file_and_of_nothing(tmp_path):
    dump = tmp_path / "dump.json"
    dump.write_text("{}\n")
    manifest.update(tmp_path / "m.json", dump)
    assert [f["name"] for f in json.loads((tmp_path / "m.json").read_text())["files"]] == ["dump.json"]
    with pytest.raises(FileNotFoundError, match="missing"):
        manifest.describe(tmp_path / "missing")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """`papers` built from snapshots outside the workflow (OAI-PMH pages and the dump, as a user downloads them)."""
    workdir = tmp_path_factory.mktemp("snapshots")
    subprocess.run(
        [sys.executable, "-m", "workflow_scripts.demo.generate", "--out-dir", str(workdir / "ext"), "--n-papers", "300",
         "--seed", "1", "--start-date", "2021-01-01", "--end-date", "2025-12-31", "--oai-page-size", "60",
         "--s2-batch-size", "100", "--sets", "cs,math"],
        check=True, capture_output=True, env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    config = {
        "demo": {"enabled": False},
        "arxiv": {
            "readers": ["oai_pmh", "dump"],
            "oai_pmh": {"mode": "snapshot", "snapshot_dir": "ext/oai_pmh", "sets": ["cs", "math"]},
            "dump": {"mode": "snapshot", "path": "ext/arxiv-metadata-oai-snapshot.json", "chunk_lines": 1000},
        },
        "citations": {"mode": "snapshot", "snapshot_dir": "ext/semantic_scholar"},
    }
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    snakemake(workdir, "--cores", "2", "papers")
    return workdir


@pytest.fixture
def workdir(built, tmp_path):
    """A copy of the built tree (times kept) that a test may change."""
    copy = tmp_path / "w"
    shutil.copytree(built, copy, symlinks=True)
    return copy


def planned(workdir, config="config.yaml"):
    """The jobs a dry run of the `papers` target plans, besides the target rule itself."""
    return set(planned_jobs(snakemake(workdir, "-n", "papers", config=workdir / config))) - {"papers"}


@pytest.mark.slow
def test_nothing_touched_nothing_planned(workdir):
    assert sorted(p.name for p in (workdir / "results/manifests").iterdir()) == [
        "arxiv.dump.path.json", "arxiv.oai_pmh.snapshot_dir.json", "citations.snapshot_dir.json"]
    assert planned(workdir) == set()


@pytest.mark.slow
def test_an_edited_file_in_a_snapshot_dir_reruns_its_reader(workdir):
    page = workdir / OAI_PAGE
    page.write_text(page.read_text().replace("<title>", "<title>Revised: ", 1))
    assert planned(workdir) == {"arxiv_oai_parse", "arxiv_papers"}


@pytest.mark.slow
def test_an_added_file_in_a_snapshot_dir_reruns_its_reader(workdir):
    shutil.copy2(workdir / OAI_PAGE, workdir / "ext/oai_pmh/cs/page-00099.xml")  # an old mtime, as cp -p gives
    assert planned(workdir) == {"arxiv_oai_parse", "arxiv_papers"}


@pytest.mark.slow
def test_a_snapshot_file_replaced_by_an_older_copy_reruns_its_reader(workdir):
    dump = workdir / "ext/arxiv-metadata-oai-snapshot.json"
    lines = dump.read_text().splitlines(keepends=True)
    dump.write_text("".join(lines[:-1]))
    os.utime(dump, (1_600_000_000, 1_600_000_000))  # 2020: older than every output, Snakemake alone sees nothing
    assert planned(workdir) == {"arxiv_dump_import", "arxiv_papers"}


@pytest.mark.slow
def test_a_changed_chunk_size_reruns_nothing(workdir):
    config = yaml.safe_load((workdir / "config.yaml").read_text())
    config["arxiv"]["dump"]["chunk_lines"] = 5000
    (workdir / "chunks.yaml").write_text(yaml.safe_dump(config))
    assert planned(workdir, "chunks.yaml") == set()


@pytest.mark.slow
def test_a_missing_snapshot_on_an_existing_tree_names_its_key(workdir):
    shutil.rmtree(workdir / "ext/oai_pmh")
    proc = snakemake(workdir, "-n", "papers", check=False)
    assert proc.returncode != 0
    assert "config key arxiv.oai_pmh.snapshot_dir: ext/oai_pmh does not exist" in proc.stdout + proc.stderr


@pytest.mark.slow
def test_a_snapshot_the_workflow_writes_keeps_its_producer(tmp_path):
    planned_here = planned_jobs(snakemake(tmp_path, "-n", "papers", config=write_config(tmp_path)))
    assert {"demo_snapshots", "arxiv_oai_parse", "arxiv_dump_import", "arxiv_api_parse"} <= set(planned_here)
    assert not (tmp_path / "results/manifests").exists()
