"""GRPO training (TRL GRPOTrainer) on a conversational prompt dataset with a named reward set, e.g. SciJudge.

Run through the launcher (``python -m workflow_scripts.train.launch ... -- -m workflow_scripts.train.grpo ...``) or
directly for one process. Config block keys: GRPOScriptArgs below, ModelArgs (workflow_scripts.train.common) and any
trl.GRPOConfig field; production defaults live in workflow_scripts/config.schema.yaml, not here. Beside the trainer
state it writes reward_trend.json: the mean reward of the last quarter of steps minus the first, with its interval.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Mapping, Sequence

from workflow_scripts.common.cli import setup_logging
from workflow_scripts.common.io import write_json_atomic
from workflow_scripts.train import config
from workflow_scripts.train.hub_model import local_model
from workflow_scripts.train.tiny_model import check_base_model
from workflow_scripts.train.reward_trend import reward_trend
from workflow_scripts.train.rewards import REWARD_SETS, load_rewards

log = logging.getLogger(__name__)

TREND_JSON = "reward_trend.json"  # beside trainer_state.json: did the reward rise (workflow_scripts.train.reward_trend)


@dataclass
class GRPOScriptArgs:
    # reward name -> weight (TRL reward_weights); names from the --reward set, weight 0 = logged only
    rewards: dict[str, float] = field(default_factory=lambda: {"correctness": 1.0})
    # options of the --reward set's reward functions, e.g. SciJudge's {"prompt": "paper"} (the answer format they parse)
    reward_options: dict = field(default_factory=dict)
    prompt_column: str = "messages"  # conversational prompt (system + user), renamed to TRL's "prompt"


BATCH_KEYS = ("per_device_train_batch_size", "gradient_accumulation_steps", "num_generations",
              "generation_batch_size", "steps_per_generation")


def validate_launch(block: Mapping, num_processes: int) -> None:
    """Batch arithmetic GRPOConfig checks only once every rank is up: check it before launching (launcher)."""
    # TRL derives either of generation_batch_size and steps_per_generation from the other (both default to None)
    values = {"generation_batch_size": None, "steps_per_generation": None,
              **{k: block[k] for k in BATCH_KEYS if k in block}}
    if len(values) < len(BATCH_KEYS):  # TRL's defaults for the rest (importing trl costs seconds: only when needed)
        from trl import GRPOConfig

        defaults = {f.name: f.default for f in dataclasses.fields(GRPOConfig)}
        values = {k: values.get(k, defaults[k]) for k in BATCH_KEYS}
    per_device, accum, n_gen, gen_batch, steps_per_gen = (values[k] for k in BATCH_KEYS)
    global_batch = per_device * num_processes
    if gen_batch is None:
        gen_batch = global_batch * (steps_per_gen or accum)
    elif gen_batch % global_batch:
        raise ValueError(
            f"generation_batch_size {gen_batch} is not a multiple of per_device_train_batch_size {per_device} x "
            f"{num_processes} processes = {global_batch}"
        )
    if gen_batch % n_gen:
        raise ValueError(
            f"the generation batch (per_device_train_batch_size {per_device} x {num_processes} processes x "
            f"{steps_per_gen or accum} steps per generation = {gen_batch}) does not divide into groups of "
            f"num_generations {n_gen}: change the batch, gradient_accumulation_steps or the number of GPUs"
        )


def check_prompt_budget(dataset, tokenizer, budget: int, path) -> None:
    """vLLM refuses a prompt longer than its context minus the completion: fail now, naming the longest prompt,
    rather than at the batch that holds it. The prompt budget is vllm_max_model_length - max_completion_length."""
    def lengths(batch):
        ids = tokenizer.apply_chat_template(batch["prompt"], tokenize=True, add_generation_prompt=True)["input_ids"]
        return {"prompt_tokens": [len(i) for i in ids]}

    counted = dataset.map(lengths, batched=True, remove_columns=dataset.column_names, desc="prompt tokens")
    tokens = counted["prompt_tokens"]
    longest = max(range(len(tokens)), key=tokens.__getitem__)
    if tokens[longest] > budget:
        over = sum(t > budget for t in tokens)
        raise ValueError(
            f"{path}: {over} prompt(s) exceed the prompt budget of {budget} tokens (vllm_max_model_length - "
            f"max_completion_length); the longest, row {longest}, has {tokens[longest]}: raise "
            "vllm_max_model_length or shorten the prompts")
    log.info("prompts: at most %d tokens, within the budget of %d", tokens[longest], budget)


def validate_dataset(path, prompt_column: str, required: Sequence[str]) -> None:
    """Fail on a dataset the rewards cannot score, naming the file and the first bad records."""
    import polars as pl

    lf = pl.scan_parquet(path)
    columns = lf.collect_schema().names()
    missing = [c for c in (prompt_column, *required) if c not in columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}; columns are {columns}")
    ident = next((c for c in ("pair_id", "task_id") if c in columns), None)
    prompt = pl.col(prompt_column)
    bad_prompt = (prompt.list.len() == 0) | (prompt.list.last().struct.field("role") == "assistant")
    checks = [(bad_prompt, "prompt is empty or ends with an assistant turn")]
    if "correct_answer" in required:
        checks.append((~pl.col("correct_answer").is_in(["A", "B"]) | pl.col("correct_answer").is_null(),
                       "correct_answer not in {A, B}"))
    for text in ("tool_output", "question"):  # the Refiner's judge needs both
        if text in required:
            checks.append((pl.col(text).is_null() | (pl.col(text).str.strip_chars() == ""), f"{text} is empty"))
    for bad, why in checks:
        rows = lf.with_row_index("row").filter(bad).select(["row"] + ([ident] if ident else [])).head(5).collect()
        if rows.height:
            raise ValueError(f"{path}: {why} in record(s) {rows.rows()}")


def main(argv: Sequence[str] | None = None) -> None:
    p = config.base_parser(__doc__.splitlines()[0])
    p.add_argument("--reward", required=True, choices=sorted(REWARD_SETS), help="reward set")
    p.add_argument("--keep-checkpoint-models", action="store_true",
                   help="keep the model of every saved checkpoint and publish them to checkpoint_models/step-N for "
                        "evaluation (workflow_scripts.train.checkpoint_models)")
    args = p.parse_args(argv)
    setup_logging(args.verbose)

    from trl import GRPOConfig, GRPOTrainer

    from workflow_scripts.train import common

    script_kw, model_kw, trl_kw = config.split_block(
        config.load_block(args.config_json, args.config_file), GRPOScriptArgs, common.ModelArgs, GRPOConfig
    )
    if "reward_weights" in trl_kw:
        raise ValueError("config key 'reward_weights' is not allowed here: give weights by name in 'rewards'")
    script = GRPOScriptArgs(**script_kw)
    model = local_model(args.model, model_kw.get("model_revision"))
    margs = common.ModelArgs(model_name_or_path=model, **model_kw)
    reward_funcs, weights, columns = load_rewards(args.reward, script.rewards, script.reward_options)
    check_base_model(model)
    validate_dataset(args.train, script.prompt_column, columns)
    common.require_vllm(trl_kw)
    targs = GRPOConfig(**common.training_kwargs({**trl_kw, "reward_weights": weights}, args.output_dir))

    from datasets import load_dataset
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model)
    with common.main_process_first(targs, "GRPO dataset"):  # the others read what it cached
        dataset = load_dataset("parquet", data_files=str(args.train), split="train")
        if script.prompt_column != "prompt":
            dataset = dataset.rename_column(script.prompt_column, "prompt")
        if targs.use_vllm and targs.vllm_max_model_length:
            check_prompt_budget(dataset, tokenizer, targs.vllm_max_model_length - targs.max_completion_length,
                                args.train)
    trainer = GRPOTrainer(
        model=common.load_model(model, margs, targs),
        reward_funcs=reward_funcs,
        args=targs,
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=common.peft_config(margs),
    )
    final = common.run(trainer, args.output_dir, margs, args.publish_dir,
                       keep_checkpoint_models=args.keep_checkpoint_models)
    if trainer.accelerator.is_main_process:
        trend = reward_trend(trainer.state.log_history)
        write_json_atomic(final.parent / TREND_JSON, trend)
        log.info("reward %s", trend["summary"])


if __name__ == "__main__":
    main()
