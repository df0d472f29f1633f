"""The trainer's side of workflow_scripts.train.checkpoint_models: keep the model of each checkpoint as it is saved."""

from __future__ import annotations

import logging
from pathlib import Path

from transformers import TrainerCallback

from workflow_scripts.train import checkpoint_models
from workflow_scripts.train.stop_callback import StopOnRequest

log = logging.getLogger(__name__)


class KeepCheckpointModels(TrainerCallback):
    """After each save (the checkpoint is complete, and older ones are already rotated out), the main process links
    the new checkpoint's model into the run's kept models.

    Left out: the final step (``final/`` is that model), and a checkpoint saved off the save cadence because a stop
    was requested (wall time, SIGUSR1), so that which steps a curve shows does not depend on when a job was stopped.
    """

    def __init__(self, stop: StopOnRequest):
        self.stop = stop

    def on_save(self, args, state, control, **kwargs):
        step = state.global_step
        if not state.is_world_process_zero or step >= state.max_steps:
            return
        on_cadence = args.save_strategy == "steps" and state.save_steps and step % state.save_steps == 0
        if self.stop.reason is not None and not on_cadence:
            log.info("checkpoint-%d was saved on a stop request, off the save cadence: its model is not kept", step)
            return
        kept = checkpoint_models.keep(Path(args.output_dir) / f"checkpoint-{step}", args.output_dir, step)
        log.info("kept the model of checkpoint-%d for evaluation in %s", step, kept)
