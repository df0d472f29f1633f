"""SFT on the tiny model, in process: LoRA + merge_and_save with eval, QLoRA (4-bit NF4 on CPU), bad inputs."""

import json
import shutil
from pathlib import Path

import polars as pl
import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from workflow_scripts.train import sft

pytestmark = pytest.mark.usefixtures("isolated_training_env")
CPU_BLOCK = {"max_steps": 2, "save_steps": 2, "per_device_train_batch_size": 2, "logging_steps": 1,
             "max_length": 256, "learning_rate": 1e-2, "seed": 1234, "gradient_checkpointing": False,
             "use_cpu": True, "bf16": False, "report_to": ["tensorboard"]}
LORA = {"use_peft": True, "lora_r": 4, "lora_alpha": 8, "lora_dropout": 0.0,
        "lora_target_modules": ["q_proj", "v_proj"]}


@pytest.fixture(scope="module")
def sft_data(tmp_path_factory, scijudge_pairs_parquet):
    """The pairs as full conversations (messages + assistant answer) and as prompt/completion."""
    d = tmp_path_factory.mktemp("sft")
    df = pl.read_parquet(scijudge_pairs_parquet)
    answers = [[{"role": "assistant", "content": f"<reason>Cited more.</reason><answer>{a}</answer>"}]
               for a in df["correct_answer"]]
    full = df.select("pair_id", pl.Series("messages", [m + a for m, a in zip(df["messages"].to_list(), answers)]))
    full.write_parquet(d / "messages.parquet")
    pl.DataFrame({"prompt": df["messages"].to_list(), "completion": answers}).write_parquet(d / "pc.parquet")
    return d


def _args(model, train, out, block, *extra):
    return ["--model", str(model), "--train", str(train), "--output-dir", str(out),
            "--config-json", json.dumps(block), *extra]


def test_lora_merge_and_eval(tmp_path, tiny_model_dir, sft_data):
    out = tmp_path / "lora"
    block = {**CPU_BLOCK, **LORA, "merge_and_save": True, "merge_dtype": "bfloat16", "assistant_only_loss": True,
             "eval_steps": 2}
    sft.main(_args(tiny_model_dir, sft_data / "messages.parquet", out, block, "--eval", str(sft_data / "pc.parquet")))
    state = json.loads((out / "trainer_state.json").read_text())
    assert state["global_step"] == 2
    assert any("eval_loss" in e for e in state["log_history"])
    assert (out / "checkpoint-2").is_dir() and (out / "curves.png").exists()
    assert (out / "adapter" / "adapter_config.json").exists()
    assert not (out / "final" / "adapter_config.json").exists()  # merged: a plain model
    merged = AutoModelForCausalLM.from_pretrained(out / "final")
    assert merged.dtype == torch.bfloat16
    base, new = load_file(tiny_model_dir / "model.safetensors"), load_file(out / "final" / "model.safetensors")
    assert not any("lora" in k for k in new)
    q = "model.layers.0.self_attn.q_proj.weight"
    assert not torch.equal(base[q].to(torch.bfloat16), new[q])  # the adapter was merged into the weights
    k = "model.layers.0.self_attn.k_proj.weight"  # not a LoRA target: unchanged up to the dtype
    assert torch.equal(base[k].to(torch.bfloat16), new[k])

    # rerun of the finished run (Snakemake deleted its outputs: forcerun, a changed logging key): the checkpoint at
    # the budget is finalized and merged as it is, not trained one step further
    adapter = load_file(out / "adapter" / "adapter_model.safetensors")
    for name in ("final", "adapter"):
        shutil.rmtree(out / name)
    sft.main(_args(tiny_model_dir, sft_data / "messages.parquet", out, {**block, "logging_steps": 2},
                   "--eval", str(sft_data / "pc.parquet")))
    assert json.loads((out / "trainer_state.json").read_text())["global_step"] == 2
    assert not (out / "checkpoint-3").exists()
    again = load_file(out / "adapter" / "adapter_model.safetensors")
    assert adapter.keys() == again.keys() and all(torch.equal(adapter[k], again[k]) for k in adapter)
    assert torch.equal(load_file(out / "final" / "model.safetensors")[q], new[q])


def test_qlora_4bit(tmp_path, tiny_model_dir, sft_data):
    out = tmp_path / "qlora"
    block = {**CPU_BLOCK, **LORA, "lora_target_modules": "all-linear", "load_in_4bit": True,
             "bnb_4bit_quant_type": "nf4", "bnb_4bit_compute_dtype": "bfloat16"}
    config_file = tmp_path / "block.yaml"  # also covers --config-file (YAML), with --config-json on top
    config_file.write_text("max_steps: 5\nlora_r: 4\n")
    sft.main(_args(tiny_model_dir, sft_data / "pc.parquet", out, block, "--config-file", str(config_file)))
    assert json.loads((out / "trainer_state.json").read_text())["global_step"] == 2  # JSON wins over the file
    assert (out / "final" / "adapter_config.json").exists()  # no merge: final/ is the adapter

    from peft import PeftModel

    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir), out / "final")
    assert sum("lora_A" in n for n, _ in model.named_parameters()) > 0


def test_load_model_4bit_is_quantized(tiny_model_dir):
    import bitsandbytes as bnb
    from trl import SFTConfig

    from workflow_scripts.train.common import ModelArgs, load_model

    margs = ModelArgs(model_name_or_path=str(tiny_model_dir), use_peft=True, load_in_4bit=True)
    targs = SFTConfig(output_dir="unused", use_cpu=True, bf16=False, report_to=[])
    model = load_model(str(tiny_model_dir), margs, targs)
    layer = model.model.layers[0].self_attn.q_proj
    assert isinstance(layer, bnb.nn.Linear4bit) and layer.weight.quant_type == "nf4"


@pytest.mark.parametrize(
    "block, match",
    [
        ({"load_in_4bit": True}, "set use_peft: true"),
        ({"merge_and_save": True}, "needs use_peft: true"),
        ({"lora_rank": 8}, r"unknown config key 'lora_rank'"),
    ],
)
def test_bad_config(tmp_path, tiny_model_dir, sft_data, block, match):
    with pytest.raises(ValueError, match=match):
        sft.main(_args(tiny_model_dir, sft_data / "messages.parquet", tmp_path / "o", {**CPU_BLOCK, **block}))


def test_bad_dataset(tmp_path, tiny_model_dir, scijudge_pairs_parquet):
    bad = tmp_path / "bad.parquet"
    pl.read_parquet(scijudge_pairs_parquet).drop("messages").write_parquet(bad)
    with pytest.raises(ValueError, match="bad.parquet: needs 'prompt' \\+ 'completion' columns"):
        sft.main(_args(tiny_model_dir, bad, tmp_path / "o", CPU_BLOCK))


def test_missing_model(tmp_path, sft_data):
    with pytest.raises(FileNotFoundError, match="no such directory"):
        sft.main(_args(Path("missing/deeper/model"), sft_data / "messages.parquet", tmp_path / "o", CPU_BLOCK))
