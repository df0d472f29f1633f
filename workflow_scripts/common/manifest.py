"""Manifests of snapshot inputs: one small JSON file that stands for a snapshot directory (or file) in the DAG.

Snakemake judges a directory input by the directory's own timestamp, which an edit of a file inside it does not
move, and a file input by its mtime, which a copy that preserves times (``cp -p``, ``rsync -t``, ``tar x``) can move
backwards. A manifest lists every file under the snapshot with its size and mtime and is rewritten, atomically,
only when that listing changes: its own mtime moves exactly when a file is added, removed or edited, and the rules
that read the snapshot take the manifest as their input. File contents are not hashed: that would read gigabytes
at every DAG build; an edit that keeps both the size and the mtime of a file goes unnoticed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from workflow_scripts.common.io import write_text_atomic


def describe(snapshot: str | os.PathLike) -> dict:
    """The path and, for each file under it (or the file itself), its relative name, size and mtime in ns."""
    root = Path(snapshot)
    if root.is_file():
        files = [root]
    elif root.is_dir():
        files = sorted(p for p in root.rglob("*") if p.is_file())
    else:
        raise FileNotFoundError(f"snapshot {root} does not exist")
    listing = []
    for path in files:
        st = path.stat()
        name = path.name if path == root else path.relative_to(root).as_posix()
        listing.append({"name": name, "size": st.st_size, "mtime_ns": st.st_mtime_ns})
    return {"snapshot": str(snapshot), "files": listing}


def update(manifest: str | os.PathLike, snapshot: str | os.PathLike) -> bool:
    """Write the manifest of ``snapshot`` to ``manifest`` unless the file there already says the same.

    Returns whether it was (re)written.
    """
    text = json.dumps(describe(snapshot), indent=1, sort_keys=True) + "\n"
    target = Path(manifest)
    if target.is_file() and target.read_text(encoding="utf-8") == text:
        return False
    write_text_atomic(target, text)
    return True
