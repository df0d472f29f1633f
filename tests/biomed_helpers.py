"""What the tests of the biomedical sources share: running a source's ``parse`` command as the workflow runs it,
its ``--help``, a Crossref work-list answer, and killing a harvester process while it waits for an answer."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path
from types import ModuleType
from typing import Iterable

import polars as pl

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "biomed"
TABLES = ("articles", "reports", "responses")
QUARANTINE = ("--quarantine-bad-files", "--max-lost-fraction", "1")  # every bad file a counted reject


def parse_cli(module: ModuleType, out: Path, inputs: dict[str, Iterable[Path]], extra: Iterable[str] = (),
              tables: tuple[str, ...] = TABLES) -> tuple[dict[str, pl.DataFrame], list[dict], dict]:
    """(tables, rejects rows, summary) of ``module``'s parse command on ``inputs`` (option -> directories), its
    outputs written into ``out``."""
    outputs = {name: out / f"{name}.parquet" for name in tables}
    rejects, summary = out / "rejects.jsonl", out / "summary.json"
    argv = ["parse", *(a for option, dirs in inputs.items() for a in (option, *map(str, dirs)))]
    argv += [a for name, path in outputs.items() for a in (f"--{name}", str(path))]
    module.main([*argv, "--rejects", str(rejects), "--summary", str(summary), *extra])
    return ({name: pl.read_parquet(path) for name, path in outputs.items()},
            [json.loads(line) for line in rejects.read_text().splitlines()], json.loads(summary.read_text()))


def help_text(module: str, command: str) -> str:
    """The ``--help`` of a source module's sub-command, run as ``python -m``."""
    proc = subprocess.run([sys.executable, "-m", f"workflow_scripts.sources.biomed.{module}", command, "--help"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def work_list(items: list, next_cursor: str | None, total: int, rows: int) -> dict:
    """A Crossref /works answer as the API writes it (next-cursor left out when None)."""
    message = {"facets": {}, "total-results": total, "items": items, "items-per-page": rows,
               "query": {"start-index": 0, "search-terms": None}}
    if next_cursor is not None:
        message["next-cursor"] = next_cursor
    return {"status": "ok", "message-type": "work-list", "message-version": "1.0.0", "message": message}


class Hang:
    """A loopback hook that holds the request it answers until :meth:`release`, then lets the route answer it as
    usual (returns None): the harvester is killed while it waits there."""

    def __init__(self):
        self._gate = threading.Event()

    def __call__(self, req) -> None:
        self._gate.wait(30)

    def release(self) -> None:
        self._gate.set()


def run_to_completion(argv: list[str], env: dict | None = None) -> None:
    rerun = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert rerun.returncode == 0, rerun.stderr
