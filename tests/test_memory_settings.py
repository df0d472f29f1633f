"""The pair builder's allocator setting reaches polars' jemalloc even where a parent process passed polars' own
defaults down (a parent that imported polars does), and is never applied once polars is loaded."""

from __future__ import annotations

import os
import subprocess
import sys

from workflow_scripts.common.memory import POLARS_ALLOCATOR_ENV, POLARS_KEEP_FREED

PROBE = (
    "import os, sys; from workflow_scripts.common.memory import keep_polars_freed_memory; "
    "applied = keep_polars_freed_memory(); import polars; "
    f"print(applied, os.environ.get({POLARS_ALLOCATOR_ENV!r}))"
)


def run_probe(env_value: str | None, preload_polars: bool = False) -> tuple[bool, str]:
    env = {k: v for k, v in os.environ.items() if k != POLARS_ALLOCATOR_ENV}
    if env_value is not None:
        env[POLARS_ALLOCATOR_ENV] = env_value
    code = ("import polars; " if preload_polars else "") + PROBE
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    applied, value = out.strip().split(" ", 1)
    return applied == "True", value


def test_the_setting_is_appended_so_that_it_wins_over_inherited_defaults():
    inherited = "dirty_decay_ms:500,muzzy_decay_ms:1000"
    applied, value = run_probe(inherited)
    assert applied and value.startswith(inherited) and value.endswith(POLARS_KEEP_FREED)


def test_a_process_without_the_variable_gets_the_setting():
    applied, value = run_probe(None)
    assert applied and value.endswith(POLARS_KEEP_FREED)


def test_nothing_is_claimed_once_polars_is_loaded():
    applied, value = run_probe(None, preload_polars=True)
    assert not applied and not value.endswith(POLARS_KEEP_FREED)
