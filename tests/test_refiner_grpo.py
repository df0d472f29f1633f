"""A tiny end-to-end GRPO run with the Refiner's composite reward: workflow_scripts.train.grpo with --reward refiner,
TRL's GRPOTrainer, the judge a demo endpoint that the reward starts itself.

A random tiny model never writes an answer block, so the judge would never be asked. The policy here is a real
Qwen3 whose weights make it a scripted writer: attention and MLP outputs zeroed, each step's logits depend on the
current token only, and the embedding and output rows send the generation prompt to
``<answer> <snippet id=S1|S7> CLAIM </snippet> </answer> <|im_end|>``, S1 (in the tool output) or S7 (invented) with
equal odds. So some completions pass the format gate and are judged, others are gated to 0, and groups have a
reward spread to learn from. Its tags are tokens of their own, so decoding gives the text back."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
import torch
from transformers import AutoConfig, AutoTokenizer, GenerationConfig, Qwen3ForCausalLM

from workflow_scripts.train import grpo
from workflow_scripts.train.rewards.refiner import close_judges

pytestmark = pytest.mark.usefixtures("isolated_training_env")

CLAIM = "Ruthenium reached an ammonia yield of twelve percent."
VALID, INVENTED, CLOSE = "<snippet id=S1>", "<snippet id=S7>", "</snippet>"
TOOL_OUTPUT = ("<tool_output>\n<snippet id=S1>Ruthenium catalysts reached an ammonia yield of twelve percent at ten "
               "bar.</snippet>\n<snippet id=S2>Iron catalysts need pressures above one hundred bar.</snippet>\n"
               "</tool_output>")
LOGIT = 32.0  # of each scripted next token; every other token's is 0


def scripted_policy(base: Path, out: Path) -> Path:
    tok = AutoTokenizer.from_pretrained(base)
    tok.add_tokens([VALID, INVENTED, CLOSE, CLAIM])
    config = AutoConfig.from_pretrained(base)
    config.vocab_size, config.tie_word_embeddings = len(tok), False
    torch.manual_seed(0)
    model = Qwen3ForCausalLM(config)
    prompt_end = tok.apply_chat_template([{"role": "user", "content": "q"}], add_generation_prompt=True,
                                         tokenize=True)["input_ids"][-1]
    t = {name: tok.convert_tokens_to_ids(name) for name in ("<answer>", VALID, INVENTED, CLAIM, CLOSE, "</answer>",
                                                           tok.eos_token)}
    script = {prompt_end: [t["<answer>"]], t["<answer>"]: [t[VALID], t[INVENTED]], t[VALID]: [t[CLAIM]],
              t[INVENTED]: [t[CLAIM]], t[CLAIM]: [t[CLOSE]], t[CLOSE]: [t["</answer>"]],
              t["</answer>"]: [t[tok.eos_token]]}
    scale = config.hidden_size ** 0.5  # RMSNorm of a one-hot row multiplies it by sqrt(hidden_size)
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        embed, head = model.model.embed_tokens.weight, model.lm_head.weight
        assert embed.data_ptr() != head.data_ptr()
        head.zero_()
        for k, token in enumerate(script):
            embed[token] = 0.0
            embed[token, k] = 1.0
            for successor in script[token]:
                head[successor, k] = LOGIT / scale
    model.generation_config = GenerationConfig.from_pretrained(base)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def tasks(path: Path) -> Path:
    rows = []
    for i, question in enumerate(["Which catalyst gives the highest ammonia yield?",
                                  "How much ammonia does ruthenium yield at ten bar?"]):
        rows.append({
            "task_id": f"task-{i}", "question": question, "reasoning": "The search found two sources.",
            "tool_output": TOOL_OUTPUT,
            "positive_rubrics": [{"title": "Yield", "description": "Reports the ammonia yield of ruthenium"}],
            "negative_rubrics": [{"title": "Enzymes", "description": "Speculates about nitrogenase enzymes"}],
            "messages": [{"role": "system", "content": "Refine the answer with citations."},
                         {"role": "user", "content": f"{question}\n{TOOL_OUTPUT}"}],
        })
    pl.DataFrame(rows).write_parquet(path)
    return path


@pytest.mark.slow
def test_grpo_with_the_refiner_reward(tmp_path, tiny_model_dir):
    model = scripted_policy(tiny_model_dir, tmp_path / "policy")
    train = tasks(tmp_path / "tasks.parquet")
    cache = tmp_path / "llm_cache"
    block = {
        "num_generations": 4, "per_device_train_batch_size": 4, "gradient_accumulation_steps": 1,
        "max_completion_length": 8, "temperature": 1.0, "learning_rate": 1e-5, "max_steps": 2, "save_steps": 2,
        "logging_steps": 1, "seed": 1234, "use_cpu": True, "bf16": False, "gradient_checkpointing": False,
        "report_to": "none", "log_completions": False,
        "rewards": {"refiner": 1.0},
        "reward_options": {"judge": {"kind": "demo", "demo": {"policy": "refiner_judge"}}, "cache_dir": str(cache)},
    }
    try:
        grpo.main(["--model", str(model), "--train", str(train), "--output-dir", str(tmp_path / "run"),
                   "--reward", "refiner", "--config-json", json.dumps(block)])
    finally:
        close_judges()
    history = json.loads((tmp_path / "run" / "trainer_state.json").read_text())["log_history"]
    steps = [e for e in history if "loss" in e]
    assert len(steps) == 2
    for e in steps:
        assert {"rewards/refiner_reward/mean", "frac_reward_zero_std", "refiner/format_ok", "refiner/unscored",
                "refiner/judge_failure_rate"} <= set(e), sorted(e)
        assert e["refiner/unscored"] == 0.0 and e["refiner/judge_failure_rate"] == 0.0
    format_ok = [e["refiner/format_ok"] for e in steps]
    assert 0 < sum(format_ok) / 2 < 1  # S1 and S7 both drawn (all 8 alike: 1 in 128)
    assert all(e["grad_norm"] > 0 for e in steps if e["frac_reward_zero_std"] < 1)  # a spread moves the policy
    judged = [e for e in steps if "refiner/rubric_score" in e]
    assert judged and all(e["rewards/refiner_reward/mean"] > 0 for e in judged)
    assert {"refiner/citation_f1", "refiner/id_validity", "refiner/static/citation_discipline"} <= set(judged[0])
    assert judged[0]["refiner/citation_f1"] == 1.0  # the claim is fully supported by S1 and relevant
    assert list((cache / "judge").glob("seg-*.jsonl")) and (cache / "judge" / "server.log").exists()


def test_refiner_dataset_checks(tmp_path, tiny_model_dir):
    train = tasks(tmp_path / "tasks.parquet")
    bad = tmp_path / "bad.parquet"
    pl.read_parquet(train).with_columns(pl.lit("  ").alias("tool_output")).write_parquet(bad)
    args = ["--model", str(tiny_model_dir), "--train", str(bad), "--output-dir", str(tmp_path / "o"),
            "--reward", "refiner", "--config-json",
            json.dumps({"rewards": {"refiner": 1.0}, "use_cpu": True, "num_generations": 2, "max_steps": 1,
                        "per_device_train_batch_size": 2,
                        "reward_options": {"judge": {"kind": "demo"}, "cache_dir": str(tmp_path / "c")}})]
    with pytest.raises(ValueError, match=r"bad.parquet: tool_output is empty in record\(s\) \[\(0, 'task-0'\)"):
        grpo.main(args)
    pl.read_parquet(train).drop("negative_rubrics").write_parquet(bad)
    with pytest.raises(ValueError, match=r"missing column\(s\) \['negative_rubrics'\]"):
        grpo.main(args)
    assert not (tmp_path / "c" / "judge").exists()  # no judge was started for a run that failed its checks
