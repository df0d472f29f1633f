"""The check that a saved LoRA adapter fits its base model: every LoRA weight the adapter's config asks for on the
base is in the file, and the file has none for a module the base lacks.

PEFT loads an adapter whose keys do not match with a warning only, leaving those LoRA layers at their init (B = 0:
no effect), so a mismatch would pass silently. It happens when the adapter was trained on one class of a family and
is loaded onto another: Qwen3.5's multimodal Qwen3_5ForConditionalGeneration names the language model's layers
``model.language_model.layers.*``, its text-only Qwen3_5ForCausalLM ``model.layers.*``. The base is built on the meta
device, so the check costs no weights or memory, whatever the model's size.
"""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)


class AdapterMismatch(ValueError):
    """The adapter's saved keys differ from what its config makes on the base model."""


def expected_keys(base_model: str, adapter_dir: str | Path) -> set[str]:
    """The adapter state-dict keys PEFT makes when the adapter's config is applied to ``base_model``."""
    import torch
    from peft import LoraConfig, get_peft_model, get_peft_model_state_dict
    from transformers import AutoConfig, AutoModelForCausalLM

    with torch.device("meta"):
        base = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(base_model))
    peft_model = get_peft_model(base, LoraConfig.from_pretrained(str(adapter_dir)))
    return set(get_peft_model_state_dict(peft_model))


def check_adapter_keys(base_model: str, adapter_dir: str | Path) -> int:
    """Raise AdapterMismatch naming the missing and unexpected keys; return the number of adapter tensors."""
    from safetensors import safe_open

    path = Path(adapter_dir) / "adapter_model.safetensors"
    if not path.is_file():
        raise AdapterMismatch(f"{adapter_dir}: no adapter_model.safetensors")
    with safe_open(str(path), "pt") as f:
        saved = set(f.keys())
    expected = expected_keys(base_model, adapter_dir)
    missing, unexpected = sorted(expected - saved), sorted(saved - expected)
    if missing or unexpected:
        raise AdapterMismatch(f"{path} does not fit base model {base_model}: {len(missing)} missing key(s) "
                              f"{missing[:5]}, {len(unexpected)} unexpected key(s) {unexpected[:5]}")
    log.info("adapter %s: all %d LoRA tensors match base model %s", adapter_dir, len(saved), base_model)
    return len(saved)
