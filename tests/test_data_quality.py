"""The data-quality table of the report and the bad_input config, through the real workflow on a small demo."""

from __future__ import annotations

import json

import pytest

from tests.workflow_runner import planned_jobs, snakemake, write_config
from workflow_scripts.sources.quality_table import render

TABLE = "results/arxiv/data_quality.md"
SMALL_DEMO = {"demo": {"n_papers": 150, "s2_batch_size": 10}}  # 15 batch files of 10 papers


@pytest.fixture(scope="module")
def small_demo(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("quality")
    write_config(workdir, **SMALL_DEMO)
    snakemake(workdir, "--cores", "2", TABLE)
    return workdir


def test_table_gathers_every_reader_and_the_citations(small_demo):
    table = (small_demo / TABLE).read_text()
    per_step = table.split("## Rejects")[0]
    steps = {line.split(" | ")[0].strip("| ") for line in per_step.splitlines() if line.startswith("| ")}
    assert steps == {"step", "oai_pmh", "dump", "api", "papers.parquet (merge)", "citations (semantic_scholar)"}
    dump = json.loads((small_demo / "results/interim/arxiv/dump.summary.json").read_text())
    assert (f"| dump | 1 | {dump['records']} | {dump['papers']} | 0 | {dump['rejected']} | 0 | 0 | "
            f"{dump['duplicates']} | {dump['duplicates_conflicting']} |") in per_step
    assert "| dump | missing abstract |" in table and "No bad files." in table
    report = json.loads((small_demo / "results/arxiv/citations.report.json").read_text())
    for year, v in report["missing_by_year"].items():
        assert f"| {year} | {v['papers']} | {v['missing']} | {v['share']:.2%} |" in table

    html = small_demo / "report.html"
    snakemake(small_demo, "--report", str(html), TABLE)
    assert "data_quality.md" in html.read_text(errors="replace")


def test_bad_batch_file_fails_the_step_until_quarantined_through_config(small_demo):
    bad = small_demo / "resources/demo/semantic_scholar/batch-000007.json"
    bad.write_text('{"message":"Too Many Requests"}')
    proc = snakemake(small_demo, "--cores", "2", "--forcerun", "citations_table", TABLE, check=False)
    assert proc.returncode != 0
    log = (small_demo / "results/logs/citations_table.log").read_text()
    assert "1 bad file(s): resources/demo/semantic_scholar/batch-000007.json (error response); 10 paper(s)" in log
    assert "ERROR" in log and "Too Many Requests" in log.split("ERROR", 1)[1]

    config = write_config(small_demo, "quarantine.yaml", **SMALL_DEMO, bad_input={"quarantine": True, "max_lost_fraction": 0.1})
    # a bad_input change reruns the steps that read input files, and what follows them
    assert {"citations_table", "data_quality", "arxiv_oai_parse"} <= set(planned_jobs(snakemake(small_demo, "-n", TABLE, config=config)))
    snakemake(small_demo, "--cores", "2", TABLE, config=config)
    table = (small_demo / TABLE).read_text()
    assert "| citations (semantic_scholar) | resources/demo/semantic_scholar/batch-000007.json | error response |" in table
    assert "| citations (semantic_scholar) | bad file (error response) | 1 |" in table
    citations_row = next(line for line in table.splitlines() if line.startswith("| citations (semantic_scholar) | 15 |"))
    assert citations_row.split(" | ")[6:8] == ["1", "10"]  # bad files, papers lost


def test_render_marks_estimated_and_uncountable_losses():
    reader = {"source": "oai_pmh", "pages": 3, "records": 10, "papers": 8, "outside_sets": 1, "rejected": 1,
              "rejects": {"bad file (empty)": 1}, "bad_files": [{"file": "p/page-2.xml", "kind": "empty", "detail": "0 bytes"}],
              "papers_lost": 5, "papers_lost_estimated": True, "duplicates": 0, "duplicates_conflicting": 0}
    dump = {**reader, "source": "dump", "papers_lost": None, "bad_files": [], "rejects": {}}
    merge = {"inputs": {"a": 8}, "papers": 8, "duplicates_across_readers": 0, "duplicates_conflicting": 0}
    citations = {"source": "openalex", "files_read": 0, "records_with_count": 0, "unknown_ids": 0, "with_count": 0,
                 "rejected": 0, "rejects": {}, "bad_files": [], "papers_lost": 0, "duplicates": 0,
                 "duplicates_conflicting": 0, "missing_by_year": {}}
    table = render([reader, dump], merge, citations)
    assert "| oai_pmh | 3 | 10 | 8 | 1 | 1 | 1 | ~5 | 0 | 0 |" in table
    assert "| dump | 3 | 10 | 8 | 1 | 1 | 0 | unknown | 0 | 0 |" in table
    assert "| oai_pmh | p/page-2.xml | empty | 0 bytes |" in table and "No papers." in table
