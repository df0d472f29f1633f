"""What the SFT and GRPO entry points share: model arguments and loading (LoRA/QLoRA), machine-dependent training
settings, resume from the last checkpoint, the final save (merged or not) and the curves.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import socket
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from trl import ModelConfig

from workflow_scripts.train import checkpoint_models

log = logging.getLogger(__name__)
_USER_TENSORBOARD_DIR = os.environ.get("TENSORBOARD_LOGGING_DIR")

FINAL_DIR = "final"  # the trained model, save_pretrained format (merged weights when merge_and_save)
ADAPTER_DIR = "adapter"  # the LoRA adapter, kept next to the merged model when merge_and_save
CURVES_PNG = "curves.png"
TRAINER_STATE = "trainer_state.json"
RANKS_DIR = "ranks"  # rank-<N>.log per process: where it ran, what it resumed, its weights' checksum after training


@dataclass
class ModelArgs(ModelConfig):
    """TRL's ModelConfig (dtype, attn_implementation, use_peft, lora_*, load_in_4bit, bnb_4bit_quant_type ...) plus
    a compute dtype of its own for 4-bit layers, which TRL ties to ``dtype``."""

    bnb_4bit_compute_dtype: str = "bfloat16"
    # PEFT runs: final/ = the adapter merged into an unquantized base in merge_dtype (the adapter goes to adapter/)
    merge_and_save: bool = False
    merge_dtype: str = "bfloat16"

    def __post_init__(self):
        super().__post_init__()
        if self.merge_and_save and not self.use_peft:
            raise ValueError("merge_and_save merges a LoRA adapter: it needs use_peft: true")


def training_kwargs(trl_kwargs: Mapping[str, Any], output_dir: str | os.PathLike) -> dict[str, Any]:
    """Fill what depends on the machine and environment, not on the recipe: device, precision, loggers."""
    import torch

    kw = dict(trl_kwargs)
    kw["output_dir"] = str(output_dir)
    cuda = torch.cuda.is_available()
    if kw.get("use_cpu") is None:
        kw["use_cpu"] = not cuda
    if kw.get("bf16") is None:  # bf16 mixed precision where the GPU has it; fp32 on CPU (fast and exact there)
        kw["bf16"] = bool(cuda and not kw["use_cpu"] and torch.cuda.is_bf16_supported())
    kw["report_to"] = _report_to(kw.get("report_to", ["tensorboard"]))
    # a fixed directory (not runs/<date>_<host>) so a resumed run appends to the same TensorBoard logs; set per
    # call (not setdefault) so that several runs in one process each log to their own output dir
    os.environ["TENSORBOARD_LOGGING_DIR"] = _USER_TENSORBOARD_DIR or str(Path(output_dir) / "tensorboard")
    return kw


def _report_to(value: str | Sequence[str] | None) -> list[str]:
    targets = [value] if isinstance(value, str) else list(value or [])
    if "none" in targets:
        return []
    if "wandb" in targets and not os.environ.get("WANDB_API_KEY"):
        log.warning("report_to lists wandb but WANDB_API_KEY is not set: not reporting to W&B")
        targets.remove("wandb")
    return targets


def require_vllm(trl_kwargs: Mapping[str, Any]) -> None:
    """use_vllm asked and vLLM absent: fail now, not after the model is loaded and the data tokenized."""
    import importlib.util

    if trl_kwargs.get("use_vllm") and importlib.util.find_spec("vllm") is None:
        raise RuntimeError(
            "use_vllm is true but vllm is not importable in this environment: install vllm (see envs/) "
            "or set use_vllm: false to generate with transformers"
        )


def load_model(model_path: str, margs: ModelArgs, targs):
    """Load the base model after the TRL config exists (so DeepSpeed ZeRO-3 can partition it at load time).

    4-bit/8-bit (QLoRA): bitsandbytes layers, placed on this process's device at load, then PEFT's
    prepare_model_for_kbit_training (fp32 norms/embeddings, input grads for gradient checkpointing).
    """
    import torch
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    kwargs: dict[str, Any] = {"revision": margs.model_revision}
    if margs.dtype:
        kwargs["dtype"] = margs.dtype if margs.dtype == "auto" else getattr(torch, margs.dtype)
    if margs.attn_implementation:
        kwargs["attn_implementation"] = attention_implementation(margs.attn_implementation, targs.use_cpu)
    quantized = margs.load_in_4bit or margs.load_in_8bit
    if quantized:
        if not margs.use_peft:
            raise ValueError("load_in_4bit/load_in_8bit trains adapters only: set use_peft: true (QLoRA)")
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=margs.load_in_4bit,
            load_in_8bit=margs.load_in_8bit,
            bnb_4bit_quant_type=margs.bnb_4bit_quant_type,
            bnb_4bit_compute_dtype=getattr(torch, margs.bnb_4bit_compute_dtype),
            bnb_4bit_use_double_quant=margs.use_bnb_nested_quant,
            bnb_4bit_quant_storage=margs.bnb_4bit_quant_storage,
        )
        if torch.cuda.is_available() and not targs.use_cpu:
            from accelerate import PartialState

            kwargs["device_map"] = {"": PartialState().local_process_index}
    model = AutoModelForCausalLM.from_pretrained(model_path, **kwargs)
    if quantized:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(
            model,
            use_gradient_checkpointing=targs.gradient_checkpointing,
            gradient_checkpointing_kwargs=targs.gradient_checkpointing_kwargs,
        )
    return model


# flash-attention kernels: the package each needs
_FLASH_PACKAGES = {"flash_attention_2": "flash_attn", "flash_attention_3": "flash_attn_interface"}


def attention_implementation(asked: str, use_cpu: bool) -> str:
    """The attention kernel to load with: a flash-attention kernel needs its package and a GPU, else sdpa (PyTorch's
    fused attention, same results up to numerics), said in the log so a slow run is explained."""
    import importlib.util

    import torch

    package = _FLASH_PACKAGES.get(asked)
    if package is None:
        return asked
    if importlib.util.find_spec(package) is None:
        why = f"the {package} package is not installed"
    elif use_cpu or not torch.cuda.is_available():
        why = "it needs a CUDA GPU"
    else:
        return asked
    log.warning("attn_implementation %s: %s; loading with sdpa instead", asked, why)
    return "sdpa"


@contextmanager
def main_process_first(targs, desc: str):
    """Dataset preparation in the global main process first, then in each node's main process, then everywhere:
    each pass after the first reads what the one before wrote to the datasets cache (shared or node-local)."""
    with targs.main_process_first(local=False, desc=desc), targs.main_process_first(local=True, desc=desc):
        yield


def peft_config(margs: ModelArgs):
    from trl import get_peft_config

    return get_peft_config(margs)


_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def last_checkpoint(output_dir: str | os.PathLike) -> str | None:
    """The newest complete checkpoint (as transformers' get_last_checkpoint, but skipping a checkpoint whose save
    was killed midway: the Trainer writes trainer_state.json last, so a checkpoint without it is incomplete)."""
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        return None
    found = sorted(
        (int(m.group(1)), p) for p in output_dir.iterdir() if p.is_dir() and (m := _CHECKPOINT.match(p.name))
    )
    for step, path in reversed(found):
        if (path / TRAINER_STATE).exists():
            return str(path)
        log.warning("ignoring incomplete checkpoint %s (no %s)", path, TRAINER_STATE)
    return None


def run(trainer, output_dir: str | os.PathLike, margs: ModelArgs,
        publish_dir: str | os.PathLike | None = None, keep_checkpoint_models: bool = False) -> Path:
    """Train (resuming from the newest checkpoint in ``output_dir``), then save state, final model and curves into
    ``publish_dir`` (default: ``output_dir``; elsewhere when the run directory lives on scratch).

    ``keep_checkpoint_models``: the model of every saved checkpoint is kept and published to
    ``checkpoint_models/step-N`` for evaluation (workflow_scripts.train.checkpoint_models).

    A checkpoint already at the budget is finalized as it is (the Trainer would otherwise train one more step on
    resume), so a rerun of a finished run reproduces its model. ``final/`` holds what the trainer saves (full
    weights, or the adapter of an unmerged PEFT run); with merge_and_save it holds the adapter merged into the base
    model in merge_dtype, the adapter going to ``adapter/``.

    A stop request (wall-time margin, SIGUSR1: workflow_scripts.train.walltime) saves a checkpoint and ends the
    process with walltime.EXIT_STOPPED before the budget, without a final model; the next run resumes from it.
    """
    from transformers import TrainerState

    from workflow_scripts.train.run_dir import at_budget
    from workflow_scripts.train.stop_callback import StopOnRequest
    from workflow_scripts.train.walltime import EXIT_STOPPED

    output_dir = Path(output_dir)
    publish = Path(publish_dir or output_dir)
    stop = StopOnRequest()
    trainer.add_callback(stop)
    if keep_checkpoint_models:
        from workflow_scripts.train.keep_callback import KeepCheckpointModels

        trainer.add_callback(KeepCheckpointModels(stop))
    resume = last_checkpoint(output_dir)
    finished, step, budget = at_budget(resume) if resume else (False, 0, 0)
    log_rank_event(output_dir, trainer.accelerator, "finalize" if finished else "start",
                   resume_from=resume and Path(resume).name)
    if finished:
        log.info("%s is at the budget (step %d of %d): finalizing it, no further training", resume, step, budget)
        trainer.state = TrainerState.load_from_json(str(Path(resume) / TRAINER_STATE))
    else:
        if resume:
            log.info("resuming from %s (step %d of %d)", resume, step, budget)
        trainer.train(resume_from_checkpoint=resume)
        log_rank_event(output_dir, trainer.accelerator, "trained", global_step=trainer.state.global_step,
                       trainable_sha256=trainable_sha256(trainer.model))
        if stop.reason is not None and trainer.state.global_step < trainer.state.max_steps:
            log.warning("stopped on request (%s) at step %d of %d with a checkpoint in %s: exiting with status %d, "
                        "the next run resumes from it", stop.reason, trainer.state.global_step,
                        trainer.state.max_steps, output_dir, EXIT_STOPPED)
            raise SystemExit(EXIT_STOPPED)
    trainer.save_state()  # output_dir/trainer_state.json (main process)

    staging = publish / ".final.tmp"
    main = trainer.accelerator.is_main_process
    if main and staging.exists():
        shutil.rmtree(staging)
    trainer.accelerator.wait_for_everyone()
    if finished:
        if main:  # the checkpoint's model files are what save_model wrote at that step (ZeRO-3: 16-bit gathered)
            shutil.copytree(resume, staging, ignore=shutil.ignore_patterns(*checkpoint_models.RESUME_ONLY))
    else:
        trainer.save_model(str(staging))  # every rank: ZeRO-3 gathers the 16-bit weights here
    trainer.accelerator.wait_for_everyone()
    final = publish / FINAL_DIR
    if main:
        if margs.merge_and_save:
            _replace_dir(staging, publish / ADAPTER_DIR)
            merge_adapter(margs.model_name_or_path, publish / ADAPTER_DIR, staging, margs.merge_dtype)
        # final/ appears complete or not at all, so a Snakemake directory() output is never half-written
        _replace_dir(staging, final)
        from workflow_scripts.train.curves import plot_log_history

        plot_log_history(trainer.state.log_history, publish / CURVES_PNG)
        if publish != output_dir:
            from workflow_scripts.common.io import write_text_atomic

            write_text_atomic(publish / TRAINER_STATE, (output_dir / TRAINER_STATE).read_text())
        if keep_checkpoint_models:
            checkpoint_models.publish(output_dir, publish)
        log.info("final model in %s (global step %d)", final, trainer.state.global_step)
    trainer.accelerator.wait_for_everyone()
    return final


def log_rank_event(output_dir: str | os.PathLike, accelerator, event: str, **fields) -> None:
    """Append one JSON line to this process's ``ranks/rank-<N>.log`` (host, rank, world size, the event): the record
    of where each rank of a multi-node run ran and what it resumed. Appended, so a resumed run follows the first."""
    record = {"time": time.strftime("%Y-%m-%dT%H:%M:%S"), "event": event, "host": socket.gethostname(),
              "rank": accelerator.process_index, "local_rank": accelerator.local_process_index,
              "world_size": accelerator.num_processes, **fields}
    path = Path(output_dir) / RANKS_DIR / f"rank-{accelerator.process_index}.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")


def trainable_sha256(model) -> str:
    """SHA-256 over the names and bytes of the trainable parameters this process holds. Data parallelism keeps it
    equal on every rank after each optimizer step (under ZeRO-3 a process holds only its shard: not comparable)."""
    import hashlib

    import torch

    digest = hashlib.sha256()
    for name, param in model.named_parameters():
        if param.requires_grad:
            digest.update(name.encode())
            digest.update(param.detach().cpu().contiguous().flatten().view(torch.uint8).numpy())
    return digest.hexdigest()


def merge_adapter(base_model: str, adapter_dir: Path, out_dir: Path, dtype: str) -> None:
    """Merge a LoRA adapter into a fresh unquantized copy of the base (QLoRA adapters too) and save it."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = AutoModelForCausalLM.from_pretrained(base_model, dtype=getattr(torch, dtype))
    merged = PeftModel.from_pretrained(base, str(adapter_dir)).merge_and_unload()
    merged.save_pretrained(out_dir)
    AutoTokenizer.from_pretrained(adapter_dir).save_pretrained(out_dir)


def _replace_dir(src: Path, dst: Path) -> None:
    if dst.exists():
        shutil.rmtree(dst)
    os.replace(src, dst)
