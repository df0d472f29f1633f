"""The trainer's side of a stop request (see workflow_scripts.train.walltime): save a checkpoint after the current
optimizer step and stop, on every rank at once."""

from __future__ import annotations

import logging
import signal
import threading

from transformers import TrainerCallback

from workflow_scripts.train.walltime import stop_request

log = logging.getLogger(__name__)


class StopOnRequest(TrainerCallback):
    """Stops when the launcher wrote its request file into the run directory (checked by the main process) or when
    any rank received SIGUSR1; ``reason`` says which, None while no stop was requested."""

    def __init__(self):
        self.reason: str | None = None
        self._signalled = False

    def on_train_begin(self, args, state, control, **kwargs):
        if threading.current_thread() is threading.main_thread():  # handlers can only be set there
            signal.signal(signal.SIGUSR1, self._on_signal)

    def _on_signal(self, signum, _frame) -> None:
        self._signalled = True

    def on_step_end(self, args, state, control, **kwargs):
        request = stop_request(args.output_dir) if state.is_world_process_zero else None
        if request is not None:
            self.reason = request["reason"]
        elif self._signalled:
            self.reason = "SIGUSR1 to a training process"
        if _on_any_rank(self.reason is not None, args):
            self.reason = self.reason or "requested on another rank"
            control.should_save = True
            control.should_training_stop = True
            if state.is_world_process_zero:
                log.warning("stop requested (%s): saving checkpoint-%d (step %d of %d) and stopping", self.reason,
                            state.global_step, state.global_step, state.max_steps)
        return control


def _on_any_rank(flag: bool, args) -> bool:
    """Whether ``flag`` is set on any process: every rank must save (ZeRO checkpoints are collective) and stop."""
    import torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
        return flag
    value = torch.tensor([int(flag)], device=args.device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())
