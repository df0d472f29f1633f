"""The conda envs per step family and pyproject.toml name the same packages with the same version ranges."""

from __future__ import annotations

import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW_ONLY = {"snakemake", "snakemake-executor-plugin-slurm"}  # the driver's own needs, not a job's


ENV_EXTRAS = ("vllm",)  # extras an env installs: the GPU-only vllm extra is envs/train-vllm.yaml


def pyproject_requirements() -> dict[str, Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = [r for name in ENV_EXTRAS for r in project["optional-dependencies"][name]]
    return {r.name: r for r in map(Requirement, project["dependencies"] + extras)}


def env_requirements(path: Path) -> dict[str, Requirement]:
    env = yaml.safe_load(path.read_text())
    pips = [d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d]
    reqs = [Requirement(r) for block in pips for r in block]
    names = [r.name for r in reqs]
    assert len(names) == len(set(names)), f"{path.name} lists a package twice"
    return {r.name: r for r in reqs}


def test_every_env_pin_matches_pyproject():
    project = pyproject_requirements()
    envs = sorted((ROOT / "envs").glob("*.yaml"))
    assert envs, "no conda envs"
    for path in envs:
        for name, req in env_requirements(path).items():
            assert name in project, f"{path.name}: {name} is not a dependency in pyproject.toml"
            assert req.specifier == project[name].specifier, (
                f"{path.name}: {name}{req.specifier} differs from pyproject.toml {name}{project[name].specifier}"
            )


def test_every_pyproject_dependency_is_in_an_env():
    in_envs = {name for path in (ROOT / "envs").glob("*.yaml") for name in env_requirements(path)}
    missing = set(pyproject_requirements()) - in_envs - WORKFLOW_ONLY
    assert not missing, f"pyproject dependencies in no env: {sorted(missing)}"


def test_every_rule_env_exists():
    for smk in (ROOT / "rules").glob("*.smk"):
        for line in smk.read_text().splitlines():
            if line.strip().startswith('"../envs/'):
                assert (ROOT / "rules" / line.strip().strip('",')).resolve().exists(), f"{smk.name}: {line.strip()}"
