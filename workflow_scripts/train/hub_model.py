"""Base models named by hub id: downloaded once on a host with internet, then used offline by every job.

    python -m workflow_scripts.train.hub_model download --repo Qwen/Qwen3-4B-Instruct-2507 --out MARKER.json

``download`` (rule hub_model_download, a localrule: compute nodes often have no internet) fills the hub cache of
``$HF_HOME`` (config ``models.hf_home``, a directory every node sees) with ``huggingface_hub.snapshot_download`` and
records the snapshot in a small JSON marker, the rule's output. Training and evaluation jobs run with
``HF_HUB_OFFLINE=1``: :func:`local_model` turns the hub id into that local snapshot directory, or fails at once
naming the model and the cache when it is not there, instead of a job waiting on a hub it cannot reach.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Sequence

from workflow_scripts.common.cli import parser, setup_logging
from workflow_scripts.common.io import write_json_atomic

log = logging.getLogger(__name__)

HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")
DEFAULT_REVISION = "main"  # what from_pretrained and TRL's model_revision use when none is given


def is_hub_id(name: str) -> bool:
    """``org/name`` that is not a local path."""
    return bool(HUB_ID.match(name)) and not os.path.exists(name)


def slug(repo_id: str) -> str:
    """A file name for a hub id; reversible, since the hub forbids '--' in repo ids (its own cache does the same)."""
    return repo_id.replace("/", "--")


def repo_of(slug_: str) -> str:
    return slug_.replace("--", "/", 1)


def offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def local_model(name: str, revision: str | None = None) -> str:
    """``name`` itself, except a hub id while the hub is offline: the snapshot directory in the local hub cache."""
    if not offline() or not is_hub_id(name):
        return name
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        path = snapshot_download(name, revision=revision or DEFAULT_REVISION, local_files_only=True)
    except LocalEntryNotFoundError as exc:
        raise FileNotFoundError(
            f"base model {name} (revision {revision or DEFAULT_REVISION}) is not in the hub cache "
            f"{constants.HF_HUB_CACHE} and HF_HUB_OFFLINE is set: download it on a host with internet "
            f"(rule hub_model_download, or python -m workflow_scripts.train.hub_model download --repo {name}) into "
            "the same HF_HOME"
        ) from exc
    log.info("base model %s: local snapshot %s", name, path)
    return path


def download(repo_id: str, revision: str, out: str | os.PathLike) -> dict:
    """Fetch a snapshot into the hub cache (resumable: files already there are kept) and write the marker."""
    from huggingface_hub import constants, snapshot_download

    path = snapshot_download(repo_id, revision=revision)
    record = {"repo_id": repo_id, "revision": revision, "commit": Path(path).name, "snapshot": path,
              "hub_cache": constants.HF_HUB_CACHE}
    write_json_atomic(out, record)
    log.info("%s@%s: snapshot %s", repo_id, revision, path)
    return record


def main(argv: Sequence[str] | None = None) -> None:
    p = parser(__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser("download", help="download a hub model into $HF_HOME and write its marker")
    d.add_argument("--repo", required=True, help="hub id org/name")
    d.add_argument("--revision", default=DEFAULT_REVISION)
    d.add_argument("--out", required=True, help="marker JSON: repo, revision, commit, snapshot path")
    args = p.parse_args(argv)
    setup_logging(args.verbose)
    if not HUB_ID.match(args.repo):
        p.error(f"--repo {args.repo!r} is not a hub id of the form org/name")
    download(args.repo, args.revision, args.out)


if __name__ == "__main__":
    main()
