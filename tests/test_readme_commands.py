"""Every command in the README's shell blocks runs as written: extracted and dry-run (snakemake -n, make -n,
scripts --help) in a scratch directory that holds the workflow, as a user's checkout does."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ["Snakefile", "rules", "workflow_scripts", "envs", "profiles", "slurm", "config.yaml",
            "config.production.yaml", "Makefile", "pyproject.toml", "benchmarks"]


def readme_commands(text: str) -> list[str]:
    """The commands of the ```bash blocks: comments dropped, one command per line."""
    commands = []
    for block in re.findall(r"^```bash\n(.*?)^```", text, re.S | re.M):
        for line in block.splitlines():
            command = line.split(" #", 1)[0].strip()
            if command and not command.startswith("#"):
                commands.append(command)
    return commands


COMMANDS = readme_commands((ROOT / "README.md").read_text())


def test_the_readme_has_commands():
    assert any(c.startswith("snakemake ") for c in COMMANDS) and any(c.startswith("make ") for c in COMMANDS)


@pytest.fixture(scope="module")
def checkout(tmp_path_factory):
    """A directory laid out like the repository root (symlinks), so profiles and relative paths resolve as there."""
    work = tmp_path_factory.mktemp("checkout")
    for name in WORKFLOW:
        (work / name).symlink_to(ROOT / name)
    return work


def _dry(command: str) -> list[str]:
    """The dry-run form of a README command, or None for shell set-up (export)."""
    head = command.split("|", 1)[0].split(">", 1)[0]  # a pipe or redirect only post-processes the output
    argv = shlex.split(head)
    tool = Path(argv[0]).name
    if tool == "snakemake":
        dry = [] if {"-n", "--dry-run", "--rulegraph", "--dag", "--summary"} & set(argv) else ["-n"]
        return [sys.executable, "-m", "snakemake", *argv[1:], *dry]
    if tool == "make":
        return ["make", "-n", *argv[1:]]
    if tool.startswith("python"):
        return [sys.executable, argv[1], "--help"]
    raise AssertionError(f"README command {command!r}: no dry-run form known; add one to this test")


@pytest.mark.parametrize("command", [c for c in COMMANDS if not c.startswith("export ")])
def test_readme_command_dry_runs(command, checkout):
    env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1")
    for export in (c for c in COMMANDS if c.startswith("export ")):  # the README's set-up, as a user pastes it
        for assignment in shlex.split(export)[1:]:
            name, _, value = assignment.partition("=")
            env[name] = value
    proc = subprocess.run(_dry(command), cwd=checkout, env=env, capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{command}\n{out[-4000:]}"
    assert "Traceback" not in out, out[-4000:]
