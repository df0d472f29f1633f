"""Keep a run directory's checkpoints from outliving the run they belong to.

Resuming from the newest checkpoint is what makes a killed or preempted job continue. But when the rule reruns
because its inputs or settings changed (a new base model, other data, another learning rate), an old checkpoint
would silently continue the *old* run. The launcher therefore records a fingerprint of what defines the run and
removes checkpoints that were written under another one. Budget and bookkeeping keys (max_steps, save_steps, ...)
are left out: raising max_steps is meant to continue a run, not restart it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path
from typing import Mapping

from workflow_scripts.common.io import write_json_atomic

log = logging.getLogger(__name__)

FINGERPRINT = "run_fingerprint.json"
NOT_DEFINING = {
    "max_steps", "num_train_epochs", "save_steps", "save_strategy", "save_total_limit", "logging_steps",
    "report_to", "vllm_server_host", "vllm_server_port",
}


def _files_stamp(path: str | None) -> str | None:
    """Names, sizes and mtimes of a local input (file or directory): changes when it is rebuilt."""
    if not path or not Path(path).exists():
        return None  # a hub id, or absent: its name is the fingerprint
    p = Path(path)
    files = sorted(f for f in (p.rglob("*") if p.is_dir() else [p]) if f.is_file())
    stamp = "\n".join(f"{f.relative_to(p) if p.is_dir() else f.name} {f.stat().st_size} {f.stat().st_mtime_ns}" for f in files)
    return hashlib.sha256(stamp.encode()).hexdigest()


def fingerprint(model: str | None, train: str | None, block: Mapping) -> dict:
    return {
        "model": model,
        "model_files": _files_stamp(model),
        "train": train,
        "train_files": _files_stamp(train),
        "config": {k: v for k, v in sorted(block.items()) if k not in NOT_DEFINING},
    }


def reset_stale_checkpoints(output_dir: str | None, current: dict) -> list[str]:
    """Remove the checkpoints of ``output_dir`` written under another fingerprint; record the current one."""
    if not output_dir:
        return []
    out = Path(output_dir)
    path = out / FINGERPRINT
    removed: list[str] = []
    if path.exists():
        previous = json.loads(path.read_text())
        if previous != current:
            before, now = previous.get("config", {}), current["config"]
            changed = [k for k in current if k != "config" and previous.get(k) != current[k]]
            changed += [f"config.{k}" for k in sorted(set(before) | set(now)) if before.get(k) != now.get(k)]
            for ckpt in sorted(out.glob("checkpoint-*")):
                shutil.rmtree(ckpt)
                removed.append(ckpt.name)
            if removed:
                log.warning("%s: the run changed (%s): removed %d stale checkpoint(s), training starts over",
                            out, ", ".join(changed), len(removed))
    write_json_atomic(path, current)
    return removed
