"""The training-run contract: which checkpoints a run may resume, and when a run is finished.

A run is identified by everything that changes its weights: the base model (its name, and the content of its files
when it is a local directory), the training data (content), and every trainer key, budget keys (max_steps,
num_train_epochs) included, since the learning-rate schedule depends on the budget. Keys that change nothing in the
weights (logging, checkpoint and evaluation cadence, trackers, where a vLLM server listens) are left out.

- Same identity, interrupted: resume from the last complete checkpoint; the run ends exactly at its budget.
- Same identity, a checkpoint already at the budget (a rerun after --forcerun, a logging change, --rerun-incomplete
  on a finished job): the checkpoint is finalized as it is, never trained further.
- Another identity: the old checkpoints are removed (logged with what changed) and training starts at step 0.

How the run is launched is recorded too: the number of training processes (the global batch is per device x
processes, so it changes the weights) and the accelerate config (its content: DeepSpeed stage, precision). A change
of either is a change of identity, with one exception: checkpoints with DeepSpeed ZeRO state (``global_step*/``)
hold the optimizer partitioned per rank and cannot be loaded at another world size or stage, and they are often days
of GPU time. Resuming one under another launch is refused before training, naming what changed and how to proceed
(launch as before, or remove the checkpoints to start at step 0); they are never removed silently.
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
from workflow_scripts.train import checkpoint_models

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


class LaunchChangedError(ValueError):
    """Resuming DeepSpeed ZeRO checkpoints under another launch (process count, accelerate config)."""


def fingerprint(model: str | None, train: str | None, block: Mapping, processes: int | None = None,
                accelerate_config: str | None = None) -> dict:
    """The identity of a run (see the module docstring); ``processes`` and ``accelerate_config`` (a YAML file,
    recorded by content) describe the launch."""
    identity = {
        "model": model,
        "model_content": _content_hash(model),
        "train_content": _content_hash(train),
        "config": {k: v for k, v in sorted(block.items()) if k not in NOT_DEFINING},
    }
    if processes is not None:
        identity["launch"] = {"num_processes": processes, "accelerate_config": _yaml_content(accelerate_config)}
    return identity


def _yaml_content(path: str | None) -> dict | None:
    if not path:
        return None
    import yaml

    return yaml.safe_load(Path(path).read_text())


def _changed(previous: Mapping, current: Mapping) -> list[str]:
    """Dotted names of the identity parts that differ (the keys inside config and launch one by one)."""
    out = []
    for key in sorted(set(previous) | set(current)):
        before, now = previous.get(key), current.get(key)
        if isinstance(before, dict) or isinstance(now, dict):
            out += [f"{key}.{k}" for k in _differing(before or {}, now or {})]
        elif before != now:
            out.append(key)
    return out


def _differing(before: Mapping, now: Mapping) -> list[str]:
    return [k for k in sorted(set(before) | set(now)) if before.get(k) != now.get(k)]


def _without_launch(identity: Mapping) -> dict:
    return {k: v for k, v in identity.items() if k != "launch"}


def reset_stale_checkpoints(output_dir: str | None, current: dict) -> list[str]:
    """Remove the checkpoints of ``output_dir`` written under another identity; record the current one."""
    if not output_dir:
        return []
    out = Path(output_dir)
    path = out / FINGERPRINT
    removed: list[str] = []
    previous = json.loads(path.read_text()) if path.exists() else None
    checkpoints = sorted(out.glob("checkpoint-*"))
    kept = out / checkpoint_models.KEPT_DIR  # the models kept of earlier checkpoints belong to the same run
    if previous is not None and "launch" not in previous:  # recorded before launches were: judge the rest only
        previous = {**previous, **({"launch": current["launch"]} if "launch" in current else {})}
    if (checkpoints or kept.exists()) and previous != current:
        if previous is None:
            changed = [f"no {FINGERPRINT} beside the checkpoints"]
        else:
            changed = _changed(previous, current)
            if _without_launch(previous) == _without_launch(current):
                _refuse_zero_relaunch(out, checkpoints, previous.get("launch"), current.get("launch"))
        for ckpt in checkpoints:
            shutil.rmtree(ckpt)
            removed.append(ckpt.name)
        models = " and its kept models" if checkpoint_models.remove_kept(out) else ""
        log.warning("%s: another run (%s): removed %d checkpoint(s)%s of the old one, training starts at step 0",
                    out, ", ".join(changed), len(removed), models)
    write_json_atomic(path, current)
    return removed


def _refuse_zero_relaunch(out: Path, checkpoints: list[Path], before: Mapping | None, now: Mapping | None) -> None:
    """Only the launch changed: fine for plain checkpoints (another identity, restarted by the caller), refused for
    DeepSpeed ZeRO ones (see the module docstring)."""
    zero = [c.name for c in checkpoints if any(c.glob("global_step*"))]
    if not zero:
        return
    before, now = before or {}, now or {}
    what = []
    if before.get("num_processes") != now.get("num_processes"):
        what.append(f"written by {before.get('num_processes')} training processes, launched now with "
                    f"{now.get('num_processes')}")
    if before.get("accelerate_config") != now.get("accelerate_config"):
        keys = _differing(before.get("accelerate_config") or {}, now.get("accelerate_config") or {})
        what.append(f"the accelerate config differs in {keys}")
    raise LaunchChangedError(
        f"{out}: cannot resume {', '.join(zero)} under this launch: {'; '.join(what)}. These checkpoints hold "
        "DeepSpeed ZeRO optimizer state partitioned per process, which loads only at the world size and ZeRO stage "
        "that wrote it. To go on: launch as before (the same nodes x gpus_per_node and accelerate_config as when "
        f"they were written), or remove {out}/checkpoint-* to start this run again at step 0 (or convert the last "
        "one with its zero_to_fp32.py and train from the converted weights as a new base model)."
    )


def at_budget(checkpoint: str | Path) -> tuple[bool, int, int]:
    """(finished, global step, budget) of a checkpoint, from the trainer state the Trainer writes last in it."""
    state = json.loads((Path(checkpoint) / "trainer_state.json").read_text())
    step, budget = int(state["global_step"]), int(state.get("max_steps") or 0)
    return budget > 0 and step >= budget, step, budget
