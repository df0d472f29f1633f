"""Supervised fine-tuning (TRL SFTTrainer): full, LoRA or QLoRA, on a conversational dataset; shared by every line.

The dataset is either ``prompt`` + ``completion`` columns (loss on the completion only) or one column of full
conversations (``messages_column``, default ``messages``; set ``assistant_only_loss: true`` to train on the assistant
turns only). Other columns are dropped; ``chat_template_kwargs`` (e.g. ``{enable_thinking: false}`` for Qwen3.5,
as the BioReview line trains) goes to every row's chat template. Config block keys: SFTScriptArgs below, ModelArgs
(LoRA: use_peft, lora_r, lora_alpha, lora_dropout, lora_target_modules; QLoRA: load_in_4bit, bnb_4bit_quant_type,
bnb_4bit_compute_dtype; merge_and_save, merge_dtype) and any trl.SFTConfig field. Production defaults live in
config.schema.yaml. A PEFT run ends by checking that the saved adapter fits the base model (train.adapter_check).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Sequence

from workflow_scripts.common.cli import setup_logging
from workflow_scripts.train import config
from workflow_scripts.train.hub_model import local_model
from workflow_scripts.train.tiny_model import check_base_model

log = logging.getLogger(__name__)


@dataclass
class SFTScriptArgs:
    messages_column: str = "messages"  # full conversations, used when there are no prompt/completion columns
    chat_template_kwargs: dict = field(default_factory=dict)  # passed to the chat template of every row


def load_sft_dataset(path, script: SFTScriptArgs):
    """The parquet as a datasets.Dataset with TRL's column names, or a clear error naming the file."""
    import polars as pl
    from datasets import load_dataset

    columns = pl.scan_parquet(path).collect_schema().names()
    if {"prompt", "completion"} <= set(columns):
        keep, rename = ["prompt", "completion"], {}
    elif script.messages_column in columns:
        keep, rename = [script.messages_column], {script.messages_column: "messages"}
    else:
        raise ValueError(
            f"{path}: needs 'prompt' + 'completion' columns or a {script.messages_column!r} column; has {columns}"
        )
    dataset = load_dataset("parquet", data_files=str(path), split="train")
    dataset = dataset.remove_columns([c for c in dataset.column_names if c not in keep])
    if len(dataset) == 0:
        raise ValueError(f"{path}: no rows")
    if script.chat_template_kwargs:  # TRL reads them per row, from this column
        dataset = dataset.map(lambda _: {"chat_template_kwargs": dict(script.chat_template_kwargs)})
    return dataset.rename_columns(rename) if rename else dataset


def main(argv: Sequence[str] | None = None) -> None:
    p = config.base_parser(__doc__.splitlines()[0])
    p.add_argument("--eval", default=None, help="evaluation parquet (same format); evaluated every eval_steps")
    args = p.parse_args(argv)
    setup_logging(args.verbose)

    from trl import SFTConfig, SFTTrainer

    from workflow_scripts.train import common

    script_kw, model_kw, trl_kw = config.split_block(
        config.load_block(args.config_json, args.config_file), SFTScriptArgs, common.ModelArgs, SFTConfig
    )
    script = SFTScriptArgs(**script_kw)
    model = local_model(args.model, model_kw.get("model_revision"))
    margs = common.ModelArgs(model_name_or_path=model, **model_kw)
    check_base_model(model)
    if args.eval:
        trl_kw.setdefault("eval_strategy", "steps")
    targs = SFTConfig(**common.training_kwargs(trl_kw, args.output_dir))
    # SFTTrainer tokenizes main-process-first itself; reading the parquet into the datasets cache goes the same way
    with common.main_process_first(targs, "SFT dataset"):
        train = load_sft_dataset(args.train, script)
        evaluation = load_sft_dataset(args.eval, script) if args.eval else None

    from transformers import AutoTokenizer

    trainer = SFTTrainer(
        model=common.load_model(model, margs, targs),
        args=targs,
        train_dataset=train,
        eval_dataset=evaluation,
        processing_class=AutoTokenizer.from_pretrained(model),
        peft_config=common.peft_config(margs),
    )
    final = common.run(trainer, args.output_dir, margs, args.publish_dir)
    if margs.use_peft and trainer.accelerator.is_main_process:
        from workflow_scripts.train.adapter_check import check_adapter_keys

        adapter = final.parent / common.ADAPTER_DIR if margs.merge_and_save else final
        check_adapter_keys(model, adapter)


if __name__ == "__main__":
    main()
