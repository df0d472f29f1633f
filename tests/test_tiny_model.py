import hashlib

import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer

from workflow_scripts.train.tiny_model import build_tiny_model, check_base_model, corpus_texts, main

MESSAGES = [{"role": "system", "content": "sys"}, {"role": "user", "content": "Which paper, A or B?"}]


def _digests(d):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(d.iterdir())}


def test_loads_and_chats(tiny_model_dir):
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    assert model.config.model_type == "qwen3"
    assert (tok.eos_token, tok.pad_token, tok.padding_side) == ("<|im_end|>", "<|endoftext|>", "left")
    text = tok.apply_chat_template(MESSAGES, tokenize=False, add_generation_prompt=True)
    assert text == ("<|im_start|>system\nsys<|im_end|>\n<|im_start|>user\nWhich paper, A or B?<|im_end|>\n"
                    "<|im_start|>assistant\n")
    assert not tok.apply_chat_template(MESSAGES, tokenize=False).endswith("assistant\n")
    for t in ["<reason>", "</reason>", "<answer>", "</answer>", "A", "B"]:
        assert len(tok.encode(t, add_special_tokens=False)) == 1, t
    # tags survive skip_special_tokens (the reward parses decoded text)
    ids = tok.encode("<answer>A</answer>", add_special_tokens=False)
    assert tok.decode(ids, skip_special_tokens=True) == "<answer>A</answer>"
    inputs = tok(text, return_tensors="pt")
    out = model.generate(**inputs, max_new_tokens=4, do_sample=False)
    assert out.shape[1] <= inputs["input_ids"].shape[1] + 4


@pytest.mark.parametrize("architecture", ["qwen3", "gemma4"])
def test_deterministic_bytes(tmp_path, scijudge_pairs_parquet, architecture):
    texts = corpus_texts(scijudge_pairs_parquet, ["messages"])
    a = build_tiny_model(texts, tmp_path / "a", architecture=architecture, vocab_size=300, seed=7)
    b = build_tiny_model(texts, tmp_path / "b", architecture=architecture, vocab_size=300, seed=7)
    c = build_tiny_model(texts, tmp_path / "c", architecture=architecture, vocab_size=300, seed=8)
    assert _digests(a) == _digests(b)
    assert _digests(a)["model.safetensors"] != _digests(c)["model.safetensors"]


def test_cli_build(tmp_path, scijudge_pairs_parquet):
    out = tmp_path / "m"
    main(["build", "--corpus", str(scijudge_pairs_parquet), "--text-columns", "paper_a_title,paper_a_abstract",
          "--out-dir", str(out), "--vocab-size", "300", "--hidden-size", "32", "--layers", "1"])
    model = AutoModelForCausalLM.from_pretrained(out)
    assert (model.config.hidden_size, model.config.num_hidden_layers) == (32, 1)

    main(["build", "--architecture", "gemma4", "--corpus", str(scijudge_pairs_parquet), "--text-columns",
          "paper_a_title,paper_a_abstract", "--out-dir", str(tmp_path / "g"), "--vocab-size", "300", "--layers", "4",
          "--kv-shared-layers", "2"])
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "g")
    assert (model.config.model_type, model.config.num_hidden_layers, model.config.num_kv_shared_layers) == (
        "gemma4_text", 4, 2)
    assert AutoTokenizer.from_pretrained(tmp_path / "g").eos_token == "<turn|>"


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"architecture": "llama"}, r"architecture 'llama' is not one of \['qwen3', 'gemma4', 'qwen3_5'\]"),
        ({"kv_shared_layers": 1}, "kv_shared_layers is a gemma4 option"),
        ({"architecture": "gemma4", "layers": 3, "kv_shared_layers": 2}, "must leave at least 2 of the 3 layers"),
    ],
)
def test_bad_build_options(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        build_tiny_model(["a text"], tmp_path / "m", **kwargs)


def test_corpus_missing_column(scijudge_pairs_parquet):
    with pytest.raises(ValueError, match="nonexistent"):
        corpus_texts(scijudge_pairs_parquet, ["nonexistent"])


def test_check_base_model_errors(tmp_path, tiny_model_dir):
    assert check_base_model(tiny_model_dir) == str(tiny_model_dir)
    with pytest.raises(FileNotFoundError, match="no such directory"):
        check_base_model(tmp_path / "missing" / "model")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no config.json"):
        check_base_model(tmp_path / "empty")
    # same model, tokenizer stripped of its chat template
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    tok.chat_template = None
    bare = tmp_path / "bare"
    AutoModelForCausalLM.from_pretrained(tiny_model_dir).save_pretrained(bare)
    tok.save_pretrained(bare)
    (bare / "chat_template.jinja").unlink(missing_ok=True)
    with pytest.raises(ValueError, match="no chat template"):
        check_base_model(bare)
