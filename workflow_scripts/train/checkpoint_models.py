"""The model of every saved checkpoint, kept for evaluation (accuracy against training step).

``save_total_limit`` deletes old checkpoints, whose optimizer state is several times the size of the model, so the
run keeps the model files of each checkpoint apart as it is saved (workflow_scripts.train.keep_callback):
``<run dir>/kept_models/step-N`` holds hard links to the checkpoint's model, config and tokenizer files, without the
resume state. A link costs no space while the checkpoint exists and keeps the file when the Trainer deletes it (a
copy where the file system has no hard links). Like the checkpoints they live in the run directory, which survives a
kill or preemption, so a resumed run still has the models of the steps before the kill. At the end of the run they
are published (linked again) to ``<publish dir>/checkpoint_models/step-N``, the output Snakemake tracks and deletes
when the job fails. The final step is not kept here: ``final/`` is that model.

Kept in a module of its own, free of torch and transformers: the workflow lists the published steps while it builds
the DAG.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from pathlib import Path

log = logging.getLogger(__name__)

KEPT_DIR = "kept_models"  # in the run directory, never a declared output (it must survive a failed job)
PUBLISHED_DIR = "checkpoint_models"  # in the publish directory: the declared output
# what a checkpoint holds beyond what save_model writes: the state to resume training from
RESUME_ONLY = ("optimizer.pt", "scheduler.pt", "scaler.pt", "rng_state*.pth", "trainer_state.json", "latest",
               "global_step*", "zero_to_fp32.py")
_STEP = re.compile(r"^step-(\d+)$")


def step_dir(root: str | os.PathLike, step: int) -> Path:
    return Path(root) / f"step-{step}"


def steps(root: str | os.PathLike) -> list[int]:
    """The steps with a model under ``root`` (a kept or published directory), ascending; none when it is absent."""
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(int(m.group(1)) for p in root.iterdir() if p.is_dir() and (m := _STEP.match(p.name)))


def _link_tree(src: Path, dst: Path, ignore=None) -> None:
    """``src`` recreated at ``dst`` with hard links to its files (copies across file systems)."""
    def link(s, d):
        try:
            os.link(s, d)
        except OSError:  # another file system, or one without hard links
            shutil.copy2(s, d)

    shutil.copytree(src, dst, ignore=ignore, copy_function=link)


def _replace_dir(staging: Path, target: Path) -> None:
    """``target`` appears complete or not at all."""
    if target.exists():
        shutil.rmtree(target)
    os.replace(staging, target)


def keep(checkpoint: str | os.PathLike, run_dir: str | os.PathLike, step: int) -> Path:
    """Link the model files of a complete checkpoint into ``<run_dir>/kept_models/step-<step>``, replacing an older
    one of that step (a step saved again after a resume from an earlier checkpoint)."""
    target = step_dir(Path(run_dir) / KEPT_DIR, step)
    staging = target.with_name(f".{target.name}.tmp")
    if staging.exists():
        shutil.rmtree(staging)
    _link_tree(Path(checkpoint), staging, ignore=shutil.ignore_patterns(*RESUME_ONLY))
    _replace_dir(staging, target)
    return target


def publish(run_dir: str | os.PathLike, publish_dir: str | os.PathLike) -> list[int]:
    """Publish every kept model to ``<publish_dir>/checkpoint_models`` (created even when none was kept, since it is a
    declared output) and return their steps."""
    kept = Path(run_dir) / KEPT_DIR
    target = Path(publish_dir) / PUBLISHED_DIR
    staging = target.with_name(f".{target.name}.tmp")
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    found = steps(kept)
    for step in found:
        _link_tree(step_dir(kept, step), step_dir(staging, step))
    _replace_dir(staging, target)
    log.info("published the models of %d saved checkpoint(s) to %s: steps %s", len(found), target, found)
    return found


def remove_kept(run_dir: str | os.PathLike) -> bool:
    """Remove the kept models of a run (another run starts in this directory); whether there were any."""
    kept = Path(run_dir) / KEPT_DIR
    if not kept.exists():
        return False
    shutil.rmtree(kept)
    return True
