"""Speed and memory settings never rerun anything: the evaluation's batch size (and the dump's chunk size) reach
their commands through `resources`, which Snakemake never compares, while the settings that define the results stay
`params` and still rerun exactly what depends on them."""

from __future__ import annotations

import pytest

from tests.workflow_runner import planned_jobs, snakemake, write_config

pytestmark = pytest.mark.slow

PREDICTIONS = "results/scijudge/eval/predictions/base.parquet"
GENERATION = {"max_pairs": 2, "max_new_tokens": 4, "batch_size": 16}


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    """The demo up to the base model's predictions: data, pairs, the tiny model and one evaluation, no training."""
    workdir = tmp_path_factory.mktemp("knobs")
    write_config(workdir, scijudge={"eval": {"generation": GENERATION}})
    snakemake(workdir, "--cores", "2", PREDICTIONS)
    return workdir


def planned(workdir, name, **overrides):
    return set(planned_jobs(snakemake(workdir, "-n", PREDICTIONS, config=write_config(workdir, name, **overrides))))


def test_batch_and_chunk_sizes_rerun_nothing(evaluated):
    faster = {"arxiv": {"dump": {"chunk_lines": 5000}},
              "scijudge": {"eval": {"generation": {**GENERATION, "batch_size": 3}}}}
    assert planned(evaluated, "faster.yaml", **faster) == set()


def test_a_sampling_setting_reruns_the_evaluation_only(evaluated):
    hotter = {"scijudge": {"eval": {"generation": {**GENERATION, "temperature": 0.9}}}}
    assert planned(evaluated, "hotter.yaml", **hotter) == {"scijudge_eval_model"}
