# Config validation, paths, and the helpers every rule file uses.

import json
import os
import re
import shlex
import sys

from snakemake.settings.types import DeploymentMethod
from snakemake.utils import validate

from workflow_scripts.common.config import check_config, with_defaults

# friendly messages naming the key and the allowed values first, then Snakemake's own validation filling defaults
check_config(config)
validate(config, "../workflow_scripts/config.schema.yaml", set_default=True)
# snakemake's default filling does not follow $ref; ours does, so the two together leave no key unset
config.update(with_defaults(config))

# `python -m workflow_scripts...` must import the package whatever the working directory of a job is, and, unless
# conda envs are in use, `python` is the interpreter that runs Snakemake (a virtualenv need not be activated)
_conda = DeploymentMethod.CONDA in workflow.deployment_settings.deployment_method
_path = "" if _conda else f'export PATH={shlex.quote(os.path.dirname(sys.executable))}:"$PATH"; '
shell.prefix(f"set -euo pipefail; {_path}export PYTHONPATH={shlex.quote(workflow.basedir)}${{{{PYTHONPATH:+:$PYTHONPATH}}}}; ")

RESULTS = "results"
LOGS = f"{RESULTS}/logs"
BENCH = f"{RESULTS}/benchmarks"


def arg(value):
    """A config value as one shell-quoted JSON argument (params keep the structure, so edits trigger reruns)."""
    return shlex.quote(json.dumps(value, sort_keys=True))


def http_args(block):
    """The polite-HTTP settings of a source as command-line flags."""
    return " ".join(f"--{k.replace('_', '-')} {v}" for k, v in sorted(block.items()))


def opt(flag, value):
    """`--flag value` when value is set, else nothing."""
    return "" if value is None else f"{flag} {shlex.quote(str(value))}"


def slug(name):
    """OAI set names contain ':' (physics:hep-th); paths and wildcards use '+' instead."""
    return name.replace(":", "+")


OAI_SETS = {slug(s): s for s in config["arxiv"]["oai_pmh"]["sets"]}
API_QUERIES = {q["name"]: q for q in config["arxiv"]["api"]["queries"]}


wildcard_constraints:
    oai_set="|".join(map(re.escape, OAI_SETS)) or "NONE",
    split="train|test_id|test_ood",
