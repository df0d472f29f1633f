"""The training-run contract: which checkpoints a run may resume, and when a run is finished.

A run is identified by everything that changes its weights: the base model (its name, and the content of its files
when it is a local directory), the training data (content), and every trainer key, budget keys (max_steps,
num_train_epochs) included, since the learning-rate schedule depends on the budget. Keys that change nothing in the
weights (logging, checkpoint and evaluation cadence, trackers, where a vLLM server listens) are left out.

- Same identity, interrupted: resume from the last complete checkpoint; the run ends exactly at its budget.
- Same identity, a checkpoint already at the budget (a rerun after --forcerun, a logging change, --rerun-incomplete
  on a finished job): the checkpoint is finalized as it is, never trained further.
- Another identity: the old checkpoints are removed (logged with what changed) and training starts at step 0.
The launcher records the identity in ``run_fingerprint.json`` once, before any rank starts.
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
# cadence, bookkeeping and addresses: none of them changes a weight (the checkpoint at the budget is always written)
NOT_DEFINING = {
    "logging_steps", "logging_strategy", "logging_first_step", "logging_dir", "log_completions", "report_to",
    "run_name", "save_steps", "save_strategy", "save_total_limit", "save_only_model", "eval_steps", "eval_strategy",
    "eval_on_start", "per_device_eval_batch_size", "dataloader_num_workers", "vllm_server_host", "vllm_server_port",
    "vllm_server_base_url", "vllm_server_timeout", "push_to_hub", "hub_model_id",
}
_CHUNK = 1 << 20


def _content_hash(path: str | None) -> str | None:
    """sha256 over the relative names and bytes of a local file or directory; None for a hub id."""
    if not path or not Path(path).exists():
        return None  # a hub id: its name (and model_revision, a trainer key) identifies it
    root = Path(path)
    digest = hashlib.sha256()
    for f in sorted(f for f in (root.rglob("*") if root.is_dir() else [root]) if f.is_file()):
        digest.update(f"{f.relative_to(root) if root.is_dir() else f.name}\0".encode())
        with open(f, "rb") as fh:
            while chunk := fh.read(_CHUNK):
                digest.update(chunk)
    return digest.hexdigest()


def fingerprint(model: str | None, train: str | None, block: Mapping) -> dict:
    """The identity of a run (see the module docstring)."""
    return {
        "model": model,
        "model_content": _content_hash(model),
        "train_content": _content_hash(train),
        "config": {k: v for k, v in sorted(block.items()) if k not in NOT_DEFINING},
    }


def reset_stale_checkpoints(output_dir: str | None, current: dict) -> list[str]:
    """Remove the checkpoints of ``output_dir`` written under another identity; record the current one."""
    if not output_dir:
        return []
    out = Path(output_dir)
    path = out / FINGERPRINT
    removed: list[str] = []
    previous = json.loads(path.read_text()) if path.exists() else None
    checkpoints = sorted(out.glob("checkpoint-*"))
    if checkpoints and previous != current:
        if previous is None:
            changed = [f"no {FINGERPRINT} beside the checkpoints"]
        else:
            before, now = previous.get("config", {}), current["config"]
            changed = [k for k in current if k != "config" and previous.get(k) != current[k]]
            changed += [f"config.{k}" for k in sorted(set(before) | set(now)) if before.get(k) != now.get(k)]
        for ckpt in checkpoints:
            shutil.rmtree(ckpt)
            removed.append(ckpt.name)
        log.warning("%s: another run (%s): removed %d checkpoint(s) of the old one, training starts at step 0",
                    out, ", ".join(changed), len(removed))
    write_json_atomic(path, current)
    return removed


def at_budget(checkpoint: str | Path) -> tuple[bool, int, int]:
    """(finished, global step, budget) of a checkpoint, from the trainer state the Trainer writes last in it."""
    state = json.loads((Path(checkpoint) / "trainer_state.json").read_text())
    step, budget = int(state["global_step"]), int(state.get("max_steps") or 0)
    return budget > 0 and step >= budget, step, budget
