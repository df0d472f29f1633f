"""Tiny Qwen3.5 (the BioReview base architecture): hybrid layers, the chat template with thinking off, and the card's
QLoRA recipe at toy scale through the shared SFT entry (NF4 on CPU), with the adapter checked against the base."""

import json
import random

import polars as pl
import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from workflow_scripts.common.config import schema_defaults
from workflow_scripts.train import sft
from workflow_scripts.train.adapter_check import AdapterMismatch, check_adapter_keys
from workflow_scripts.train.tiny_model import build_tiny_model

RECIPE = schema_defaults()["bioreview"]["sft"]["trainer"]
_WORDS = "mouse cohort knockout western blot antibody replicate power analysis confounder tissue gene".split()
SYSTEM, USER = {"role": "system", "content": "List the concerns."}, {"role": "user", "content": "Article: n = 3."}
THINK_OFF = "<|im_start|>assistant\n<think>\n\n</think>\n\n"


def _sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(n)).capitalize() + "."


def _rows(n: int) -> pl.DataFrame:
    """BioReview SFT rows: [system, user] -> one assistant message holding the JSON concern list."""
    rng = random.Random(0)
    concerns = [[{"text": _sentence(rng, 8), "category": "design_flaw", "severity": "major"}] for _ in range(n)]
    return pl.DataFrame({
        "prompt": [[SYSTEM, {"role": "user", "content": "Article: " + _sentence(rng, 40)}] for _ in range(n)],
        "completion": [[{"role": "assistant", "content": json.dumps(c, indent=2)}] for c in concerns],
    })


@pytest.fixture(scope="module")
def qwen_dir(tmp_path_factory):
    rng = random.Random(1)
    texts = [_sentence(rng, 30) for _ in range(40)]
    return build_tiny_model(texts, tmp_path_factory.mktemp("qwen3_5") / "m", architecture="qwen3_5",
                            vocab_size=400, layers=2, seed=3)


def test_builds_saves_and_loads_a_hybrid_model(qwen_dir):
    model = AutoModelForCausalLM.from_pretrained(qwen_dir)
    assert type(model).__name__ == "Qwen3_5ForCausalLM" and model.config.model_type == "qwen3_5_text"
    assert model.config.layer_types == ["linear_attention", "full_attention"]
    # q/k/v/o only in the full-attention layer; the Gated DeltaNet layer has in_proj_* / out_proj instead
    linear, full = model.model.layers
    assert not hasattr(linear, "self_attn") and hasattr(linear.linear_attn, "in_proj_qkv")
    assert hasattr(full.self_attn, "q_proj")
    tok = AutoTokenizer.from_pretrained(qwen_dir)
    assert model.generation_config.eos_token_id == tok.convert_tokens_to_ids(["<|im_end|>", "<|endoftext|>"])
    inputs = tok(tok.apply_chat_template([SYSTEM, USER], tokenize=False, add_generation_prompt=True,
                                         enable_thinking=False), return_tensors="pt")
    out = model.generate(**inputs, max_new_tokens=4, do_sample=False)
    assert inputs["input_ids"].shape[1] < out.shape[1] <= inputs["input_ids"].shape[1] + 4


def test_chat_template_with_thinking_off(qwen_dir):
    tok = AutoTokenizer.from_pretrained(qwen_dir)
    assert (tok.eos_token, tok.pad_token, tok.padding_side) == ("<|im_end|>", "<|endoftext|>", "left")
    prompt = tok.apply_chat_template([SYSTEM, USER], tokenize=False, add_generation_prompt=True, enable_thinking=False)
    assert prompt == ("<|im_start|>system\nList the concerns.<|im_end|>\n<|im_start|>user\nArticle: n = 3.<|im_end|>\n"
                      + THINK_OFF)
    # thinking on (the template's default) opens a bare assistant turn, as Qwen3.5's own template does
    assert tok.apply_chat_template([SYSTEM, USER], tokenize=False, add_generation_prompt=True).endswith(
        "<|im_start|>assistant\n")
    answer = {"role": "assistant", "content": "[]"}
    full = tok.apply_chat_template([SYSTEM, USER, answer], tokenize=True, return_dict=True,
                                   return_assistant_tokens_mask=True, enable_thinking=False)
    assert tok.decode(full["input_ids"]).startswith(prompt)  # the prompt is a prefix: the completion mask holds
    trained = [t for t, m in zip(full["input_ids"], full["assistant_masks"]) if m]
    assert tok.decode(trained) == "[]<|im_end|>"  # the empty think block is context, not a target


@pytest.mark.usefixtures("isolated_training_env")
def test_card_qlora_recipe_trains_on_cpu(tmp_path, qwen_dir, monkeypatch):
    """The production recipe (NF4, double quant, r 16, alpha 32, dropout 0.05, the seven projections, cosine, warmup,
    weight decay, thinking off) for 2 steps on CPU: 4-bit layers, loss on the completion only, an adapter that fits
    the base, merged into an unquantized model."""
    import bitsandbytes as bnb
    import trl

    trainers = []

    class RecordingSFTTrainer(trl.SFTTrainer):  # the real trainer, kept for a look at its model and data
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            trainers.append(self)

    monkeypatch.setattr(trl, "SFTTrainer", RecordingSFTTrainer)
    train = tmp_path / "train.parquet"
    _rows(6).write_parquet(train)
    machine = {"bnb_4bit_compute_dtype": "float32", "bf16": False, "use_cpu": True, "optim": "adamw_torch",
               "gradient_checkpointing": False, "max_steps": 2, "gradient_accumulation_steps": 2, "max_length": 512,
               "save_strategy": "no", "eval_strategy": "no", "logging_steps": 1, "report_to": ["none"],
               "merge_dtype": "float32"}
    block = {**RECIPE, **machine}
    out = tmp_path / "run"
    sft.main(["--model", str(qwen_dir), "--train", str(train), "--output-dir", str(out),
              "--config-json", json.dumps(block)])

    (trainer,) = trainers
    layers = trainer.model.base_model.model.model.layers
    assert isinstance(layers[1].self_attn.q_proj.base_layer, bnb.nn.Linear4bit)
    assert layers[1].self_attn.q_proj.base_layer.weight.quant_type == "nf4"
    tok = trainer.processing_class
    example = _rows(6).row(0, named=True)
    prompt_ids = tok.apply_chat_template(example["prompt"], tokenize=True, add_generation_prompt=True,
                                         enable_thinking=False)["input_ids"]
    labels = trainer.data_collator([trainer.train_dataset[0]])["labels"][0].tolist()
    assert labels[:len(prompt_ids)] == [-100] * len(prompt_ids)
    assert tok.decode([t for t in labels if t != -100]) == example["completion"][0]["content"] + "<|im_end|>\n"

    adapter = out / "adapter"
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert (config["r"], config["lora_alpha"], config["lora_dropout"]) == (16, 32, 0.05)
    assert sorted(config["target_modules"]) == sorted(RECIPE["lora_target_modules"])
    # 1 full-attention layer x 4 + 2 layers x 3 MLP projections, A and B each; no DeltaNet projection
    assert check_adapter_keys(str(qwen_dir), adapter) == 20
    assert not any("linear_attn" in k for k in load_file(adapter / "adapter_model.safetensors"))
    merged = AutoModelForCausalLM.from_pretrained(out / "final")
    assert type(merged).__name__ == "Qwen3_5ForCausalLM" and merged.dtype == torch.float32


def test_adapter_check_names_missing_and_unexpected_keys(tmp_path, qwen_dir):
    """An adapter saved under another class's module names (the multimodal model's language_model prefix) is
    refused, where PEFT would load it with a warning and leave the LoRA layers at zero."""
    from peft import LoraConfig, get_peft_model, get_peft_model_state_dict

    model = get_peft_model(AutoModelForCausalLM.from_pretrained(qwen_dir),
                           LoraConfig(r=4, target_modules=["q_proj", "down_proj"]))
    adapter = tmp_path / "adapter"
    model.save_pretrained(adapter)
    assert check_adapter_keys(str(qwen_dir), adapter) == 6
    renamed = {k.replace(".model.layers.", ".model.language_model.layers."): v
               for k, v in get_peft_model_state_dict(model).items()}
    save_file({k: v.contiguous() for k, v in renamed.items()}, adapter / "adapter_model.safetensors")
    with pytest.raises(AdapterMismatch, match=r"6 missing key\(s\).*6 unexpected key\(s\).*language_model"):
        check_adapter_keys(str(qwen_dir), adapter)
