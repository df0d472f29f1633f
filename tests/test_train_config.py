"""The trainer config block: routing of keys to dataclasses, aliases, reserved and unknown keys, file + JSON."""

import json
from dataclasses import dataclass

import pytest

from workflow_scripts.train.config import load_block, split_block


@dataclass
class Script:
    rewards: dict | None = None


@dataclass
class Trainer:
    learning_rate: float = 1e-6
    warmup_steps: float = 0
    output_dir: str | None = None


def test_routing_and_alias():
    script, trainer = split_block({"rewards": {"x": 1}, "learning_rate": 8e-7, "warmup_ratio": 0.05}, Script, Trainer)
    assert script == {"rewards": {"x": 1}}
    assert trainer == {"learning_rate": 8e-7, "warmup_steps": 0.05}  # transformers 5: a ratio is a float < 1


@pytest.mark.parametrize(
    "block, match",
    [
        ({"warmup_ratio": 0.1, "warmup_steps": 10}, "set the same thing"),
        ({"warmup_ratio": 5}, r"\[0, 1\)"),
        ({"output_dir": "x"}, "--output-dir"),
        ({"learnig_rate": 1.0}, r"unknown config key 'learnig_rate'; did you mean \['learning_rate'\]"),
        ({"zzz": 1}, r"unknown config key 'zzz' \(known keys: fields of \['Script', 'Trainer'\]\)"),
    ],
)
def test_bad_keys(block, match):
    with pytest.raises(ValueError, match=match):
        split_block(block, Script, Trainer)


def test_load_block_file_then_json(tmp_path):
    (tmp_path / "b.yaml").write_text("learning_rate: 1.0e-5\nseed: 3\n")
    (tmp_path / "b.json").write_text(json.dumps({"seed": 4}))
    assert load_block({"seed": 5}, tmp_path / "b.yaml") == {"learning_rate": 1e-5, "seed": 5}
    assert load_block(None, tmp_path / "b.json") == {"seed": 4}
    assert load_block() == {}
    (tmp_path / "list.yaml").write_text("- 1\n")
    with pytest.raises(ValueError, match="expected a mapping"):
        load_block(None, tmp_path / "list.yaml")
    with pytest.raises(ValueError, match="expected a JSON object"):
        load_block([1])
