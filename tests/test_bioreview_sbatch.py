"""The production BioReview DAG as SLURM would receive it (see tests/test_sbatch_render.py): its GPU jobs on the GPU
partition with the config's sizes, every other job on the CPU partition."""

import pytest
import yaml

from tests.test_sbatch_render import options, render
from tests.workflow_runner import ROOT


@pytest.fixture(scope="module")
def jobs(tmp_path_factory):
    config = yaml.safe_load((ROOT / "config.production.yaml").read_text())
    return render(tmp_path_factory.mktemp("bioreview_production"), config, "bioreview")


def test_bioreview_gpu_jobs_get_their_size_from_the_config(jobs):
    expected = {  # rule -> (gres, cpus, mem_mb, minutes): the QLoRA run and each model's predictions on one GPU, the
        # extractor's vLLM server on llm.endpoints.extractor.vllm.gpus inside the job that calls it
        "bioreview_sft": ("gpu:1", "8", "96000", "1440"),
        "bioreview_predict": ("gpu:1", "8", "64000", "720"),
        "bioreview_extractor_calls": ("gpu:8", "4", "16000", str(24 * 60)),
    }
    seen = set()
    for job in jobs:
        if job["sbatch"] is None:
            continue
        opts = options(job["sbatch"])
        if job["rule"] in expected:
            seen.add(job["rule"])
            assert opts["-p"] == "h100", job
            assert (opts["--gres"], opts["--cpus-per-task"], opts["--mem"], opts["-t"]) == expected[job["rule"]], job
        else:
            assert opts["-p"] == "cpu" and "--gres" not in opts, job
    assert seen == set(expected)
    sft = next(job for job in jobs if job["rule"] == "bioreview_sft")
    assert "--wall-time-margin 600" in sft["shell"] and "--model Qwen/Qwen3.5-9B" in sft["shell"]
