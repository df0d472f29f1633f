"""Tiny Gemma 4 (the Reviewer's base architecture): tokenizer and chat template, the Reviewer's LoRA target modules on
the real module names of both Gemma 4 classes, and the Reviewer's LoRA SFT recipe at toy scale."""

import json
import random
import re

import polars as pl
import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

from workflow_scripts.common.config import schema_defaults
from workflow_scripts.train import sft
from workflow_scripts.train.tiny_model import build_tiny_model

REVIEWER = schema_defaults()["reviewer"]
# the production value, exactly as config hands it to PEFT (a string: PEFT full-matches it against module names)
LORA_TARGETS = REVIEWER["sft"]["trainer"]["lora_target_modules"]
PROJECTIONS = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
_WORDS = ("graph neural network sparse attention convex bound kernel estimator diffusion protein lattice "
          "entropy transformer benchmark ablation baseline dataset theorem").split()
DECISIONS = ("I recommend this paper for ACCEPTANCE.", "I recommend this paper for REJECTION.")


def _sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(n)).capitalize() + "."


def _reviews(n: int, seed: int = 0) -> pl.DataFrame:
    """Reviewer SFT rows in TRL's conversational prompt/completion form: [system, user] -> [assistant]."""
    rng = random.Random(seed)
    prompts, completions = [], []
    for i in range(n):
        user = REVIEWER["user_template"].format(title=_sentence(rng, 5), abstract=_sentence(rng, 12),
                                                body=_sentence(rng, 20))
        review = f"## Summary\n{_sentence(rng, 10)}\n\n## Final Recommendation\n{DECISIONS[i % 2]}"
        prompts.append([{"role": "system", "content": REVIEWER["system_prompt"]}, {"role": "user", "content": user}])
        completions.append([{"role": "assistant", "content": review}])
    return pl.DataFrame({"prompt": prompts, "completion": completions})


def _language_model_projections(model) -> set[str]:
    """Full names of the projections in the decoder layers of the language model (alone, or inside the multimodal
    model)."""
    inner = model.model
    language_model, prefix = ((inner.language_model, "model.language_model.") if hasattr(inner, "language_model")
                              else (inner, "model."))
    return {prefix + name for name, module in language_model.layers.named_modules(prefix="layers")
            if isinstance(module, torch.nn.Linear) and name.rsplit(".", 1)[-1] in PROJECTIONS}


@pytest.fixture(scope="module")
def gemma_dir(tmp_path_factory):
    """4 layers, the last 2 reusing the others' keys and values (no k/v projections), as E4B's last 18 of 42."""
    rng = random.Random(1)
    texts = [_sentence(rng, 8) for _ in range(300)] + [REVIEWER["system_prompt"], REVIEWER["user_template"], *DECISIONS]
    return build_tiny_model(texts, tmp_path_factory.mktemp("gemma") / "model", architecture="gemma4",
                            vocab_size=512, layers=4, kv_shared_layers=2)


def test_tokenizer_and_chat_template(gemma_dir):
    tok = AutoTokenizer.from_pretrained(gemma_dir)
    assert (tok.bos_token, tok.eos_token, tok.pad_token, tok.padding_side) == ("<bos>", "<turn|>", "<pad>", "left")
    assert tok.convert_tokens_to_ids(["<pad>", "<eos>", "<bos>"]) == [0, 1, 2]  # the real vocabulary's ids
    assert tok("Review it.")["input_ids"][0] == tok.bos_token_id  # Gemma's tokenizer prepends <bos>
    system, user = {"role": "system", "content": " Be fair. "}, {"role": "user", "content": "Review it."}
    assert tok.apply_chat_template([system, user], tokenize=False, add_generation_prompt=True) == (
        "<bos><|turn>system\nBe fair.<turn|>\n<|turn>user\nReview it.<turn|>\n<|turn>model\n")
    assert tok.apply_chat_template([user], tokenize=False) == "<bos><|turn>user\nReview it.<turn|>\n"
    chat = tok.apply_chat_template([system, user, {"role": "assistant", "content": DECISIONS[0]}], tokenize=True,
                                   return_dict=True, return_assistant_tokens_mask=True)
    ids = chat["input_ids"]
    assert ids.count(tok.bos_token_id) == 1
    assert tok.decode([t for t, m in zip(ids, chat["assistant_masks"]) if m]) == DECISIONS[0] + "<turn|>\n"
    for marker in ("<|turn>", "<turn|>"):
        assert len(tok.encode(marker, add_special_tokens=False)) == 1, marker

    model = AutoModelForCausalLM.from_pretrained(gemma_dir)
    assert type(model).__name__ == "Gemma4ForCausalLM"
    assert model.generation_config.eos_token_id == tok.convert_tokens_to_ids(["<eos>", "<turn|>"])
    assert model.config.layer_types == ["sliding_attention", "full_attention"] * 2
    assert [hasattr(layer.self_attn, "k_proj") for layer in model.model.layers] == [True, True, False, False]


def test_lora_targets_select_language_model_projections_only(gemma_dir):
    """The same tiny language model inside the multimodal class (what AutoModelForCausalLM gives for a gemma4
    config, i.e. for google/gemma-4-E4B-it), with tiny vision and audio towers whose layers also have q/k/v/o and
    gate/up/down projections: LoRA goes to the language model's projections only, in both classes."""
    from peft import LoraConfig, get_peft_model
    from transformers import Gemma4AudioConfig, Gemma4Config, Gemma4VisionConfig

    config = Gemma4Config(
        text_config=AutoConfig.from_pretrained(gemma_dir).to_dict(),
        vision_config=Gemma4VisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                         num_attention_heads=2, num_key_value_heads=2, head_dim=16,
                                         position_embedding_size=64),
        audio_config=Gemma4AudioConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                       subsampling_conv_channels=[8, 4], output_proj_dims=32),
    )
    multimodal = AutoModelForCausalLM.from_config(config)
    assert type(multimodal).__name__ == "Gemma4ForConditionalGeneration"
    names = [name for name, _ in multimodal.named_modules()]
    for tower in ("model.vision_tower.", "model.audio_tower."):  # towers the target must not reach
        assert any(n.startswith(tower) and n.endswith(".q_proj") for n in names), tower
    causal = AutoModelForCausalLM.from_pretrained(gemma_dir)
    for model, prefix in ((multimodal, "model.language_model.layers."), (causal, "model.layers.")):
        expected = _language_model_projections(model)
        # 4 layers x 7 projections, less k/v in the 2 KV-sharing layers
        assert len(expected) == 24 and all(n.startswith(prefix) for n in expected)
        assert {n for n, _ in model.named_modules() if re.fullmatch(LORA_TARGETS, n)} == expected
        peft_model = get_peft_model(model, LoraConfig(r=4, target_modules=LORA_TARGETS))
        adapted = {n.removeprefix("base_model.model.") for n, m in peft_model.named_modules() if hasattr(m, "lora_A")}
        assert adapted == expected


@pytest.mark.usefixtures("isolated_training_env")
def test_reviewer_lora_sft_recipe(tmp_path, gemma_dir, monkeypatch):
    """The card's LoRA recipe (r 32, alpha 64, dropout 0, cosine, warmup 3%, batch 1 x accumulation, merged) for 2
    steps: loss on the completion only, adapter on the target projections only, merged model loads and generates."""
    import trl

    train = tmp_path / "train.parquet"
    _reviews(8).write_parquet(train)
    trainers = []

    class RecordingSFTTrainer(trl.SFTTrainer):  # the real trainer, kept for a look at its prepared data
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            trainers.append(self)

    monkeypatch.setattr(trl, "SFTTrainer", RecordingSFTTrainer)
    block = {"use_peft": True, "lora_r": 32, "lora_alpha": 64, "lora_dropout": 0.0, "lora_target_modules": LORA_TARGETS,
             "max_steps": 2, "learning_rate": 2e-4, "lr_scheduler_type": "cosine", "warmup_ratio": 0.03,
             "per_device_train_batch_size": 1, "gradient_accumulation_steps": 4, "max_length": 1024,
             "logging_steps": 1, "seed": 42, "bf16": False, "use_cpu": True, "report_to": ["none"],
             "merge_and_save": True, "merge_dtype": "bfloat16"}
    out = tmp_path / "run"
    sft.main(["--model", str(gemma_dir), "--train", str(train), "--output-dir", str(out),
              "--config-json", json.dumps(block)])

    # labels: -100 over the whole prompt (its generation prompt included), the review and its turn end after it
    (trainer,) = trainers
    tok = trainer.processing_class
    example = _reviews(8).row(0, named=True)
    prompt_ids = tok.apply_chat_template(example["prompt"], tokenize=True, add_generation_prompt=True)["input_ids"]
    labels = trainer.data_collator([trainer.train_dataset[0]])["labels"][0].tolist()
    assert labels[:len(prompt_ids)] == [-100] * len(prompt_ids)
    assert -100 not in labels[len(prompt_ids):]
    assert tok.decode(labels[len(prompt_ids):]) == example["completion"][0]["content"] + "<turn|>\n"
    assert json.loads((out / "trainer_state.json").read_text())["global_step"] == 2

    # the adapter: LoRA A/B on exactly the language model's projections
    adapter_config = json.loads((out / "adapter" / "adapter_config.json").read_text())
    assert adapter_config["target_modules"] == LORA_TARGETS and adapter_config["r"] == 32
    adapted = {re.sub(r"^base_model\.model\.|\.lora_[AB]\.weight$", "", k)
               for k in load_file(out / "adapter" / "adapter_model.safetensors")}
    base = AutoModelForCausalLM.from_pretrained(gemma_dir)
    assert adapted == _language_model_projections(base)

    # final/: the merged model, loaded as a causal LM, generates from a chat prompt
    assert not (out / "final" / "adapter_config.json").exists()
    merged = AutoModelForCausalLM.from_pretrained(out / "final")
    assert type(merged).__name__ == "Gemma4ForCausalLM" and merged.dtype == torch.bfloat16
    q = "model.layers.0.self_attn.q_proj.weight"
    assert not torch.equal(merged.state_dict()[q], base.state_dict()[q].to(torch.bfloat16))
    final_tok = AutoTokenizer.from_pretrained(out / "final")
    text = final_tok.apply_chat_template(example["prompt"], tokenize=False, add_generation_prompt=True)
    inputs = final_tok(text, add_special_tokens=False, return_tensors="pt")
    generated = merged.generate(**inputs, max_new_tokens=8, do_sample=False)
    assert inputs["input_ids"].shape[1] < generated.shape[1] <= inputs["input_ids"].shape[1] + 8
