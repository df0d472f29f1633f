"""Tiny Qwen3-architecture model built from scratch, and the base-model check every training entry point runs first.

Tests and the offline demo have no model hub: they train a byte-level BPE tokenizer on the demo corpus, random-init a
small Qwen3ForCausalLM and ``save_pretrained`` both, so the same ``from_pretrained(path)`` code serves tiny and real
base models. The build is deterministic: same texts, sizes and seed give the same files byte for byte.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterable, Sequence

from workflow_scripts.common.cli import parser, setup_logging
from workflow_scripts.train.hub_model import HUB_ID

log = logging.getLogger(__name__)

IM_START, IM_END, ENDOFTEXT = "<|im_start|>", "<|im_end|>", "<|endoftext|>"
SPECIAL_TOKENS = [ENDOFTEXT, IM_START, IM_END]
# Plain (non-special) added tokens: decode(skip_special_tokens=True) must keep them, since rewards parse them.
TAG_TOKENS = ["<reason>", "</reason>", "<answer>", "</answer>"]

# ChatML as Qwen writes it; the {% generation %} markers let TRL compute assistant-only masks for full-message SFT.
CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{%- if message['role'] == 'assistant' %}"
    "{{- '<|im_start|>assistant\\n' }}"
    "{%- generation %}{{- message['content'] + '<|im_end|>' }}{%- endgeneration %}"
    "{{- '\\n' }}"
    "{%- else %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)

DEFAULT_SIZES = dict(
    vocab_size=4096,
    hidden_size=64,
    layers=2,
    heads=4,
    kv_heads=2,
    intermediate_size=128,
    max_position=4096,
    seed=1234,
)



def train_tokenizer(texts: Iterable[str], vocab_size: int, model_max_length: int):
    """Byte-level BPE (as Qwen) trained on ``texts``, wrapped as a PreTrainedTokenizerFast with the ChatML template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        # the full byte alphabet: any text (and the answer letters "A"/"B") is encodable whatever the corpus
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(texts), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token=IM_END,
        pad_token=ENDOFTEXT,
        unk_token=None,
        model_max_length=model_max_length,
        padding_side="left",  # decoder-only batched generation pads on the left; saved so evaluation gets it too
        clean_up_tokenization_spaces=False,
    )
    fast.add_tokens(TAG_TOKENS)
    fast.chat_template = CHAT_TEMPLATE
    for letter in ("A", "B"):
        assert len(fast.encode(letter, add_special_tokens=False)) == 1, letter
    return fast


def build_tiny_model(
    texts: Sequence[str],
    out_dir: str | Path,
    *,
    vocab_size: int = DEFAULT_SIZES["vocab_size"],
    hidden_size: int = DEFAULT_SIZES["hidden_size"],
    layers: int = DEFAULT_SIZES["layers"],
    heads: int = DEFAULT_SIZES["heads"],
    kv_heads: int = DEFAULT_SIZES["kv_heads"],
    intermediate_size: int = DEFAULT_SIZES["intermediate_size"],
    max_position: int = DEFAULT_SIZES["max_position"],
    seed: int = DEFAULT_SIZES["seed"],
) -> Path:
    """Train a tokenizer on ``texts``, random-init a Qwen3ForCausalLM with ``seed`` and save both to ``out_dir``."""
    import torch
    from transformers import GenerationConfig, Qwen3Config, Qwen3ForCausalLM

    texts = [t for t in texts if t]
    if not texts:
        raise ValueError("build_tiny_model: no non-empty texts to train the tokenizer on")
    if hidden_size % heads or heads % kv_heads:
        raise ValueError(f"hidden_size {hidden_size} must divide by heads {heads}, heads by kv_heads {kv_heads}")
    out_dir = Path(out_dir)
    tokenizer = train_tokenizer(texts, vocab_size, max_position)
    eos_id = tokenizer.convert_tokens_to_ids(IM_END)
    pad_id = tokenizer.convert_tokens_to_ids(ENDOFTEXT)
    config = Qwen3Config(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        head_dim=hidden_size // heads,
        max_position_embeddings=max_position,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=eos_id,
        pad_token_id=pad_id,
        dtype="float32",
    )
    torch.manual_seed(seed)
    model = Qwen3ForCausalLM(config)
    model.generation_config = GenerationConfig(
        eos_token_id=[eos_id, pad_id], pad_token_id=pad_id, do_sample=True, temperature=1.0, top_p=1.0
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    n_params = sum(p.numel() for p in model.parameters())
    log.info("tiny model: %d parameters, vocab %d, saved to %s", n_params, len(tokenizer), out_dir)
    return out_dir


def corpus_texts(path: str | Path, columns: Sequence[str]) -> list[str]:
    """Texts from a parquet file: string columns as they are, ``messages``-like columns as their contents joined."""
    import polars as pl

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"corpus {path} does not exist")
    df = pl.read_parquet(path)
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"corpus {path}: no column(s) {missing}; columns are {df.columns}")
    texts: list[str] = []
    for row in df.select(columns).iter_rows():
        for value in row:
            if isinstance(value, list):
                texts.extend(m["content"] for m in value if isinstance(m, dict) and m.get("content"))
            elif value is not None:
                texts.append(str(value))
    return texts


def check_base_model(path: str | Path) -> str:
    """Fail before training when the base model cannot work: missing path, or a tokenizer without a chat template.

    A string of the hub form ``org/name`` that is not a local path is passed on to ``from_pretrained`` (cache/hub).
    """
    from transformers import AutoTokenizer

    name = str(path)
    local = Path(name)
    if local.exists():
        if not local.is_dir() or not (local / "config.json").exists():
            raise FileNotFoundError(f"base model {name}: not a save_pretrained directory (no config.json)")
    elif not HUB_ID.match(name):
        raise FileNotFoundError(f"base model {name}: no such directory, and not a hub id of the form 'org/name'")
    try:
        tokenizer = AutoTokenizer.from_pretrained(name)
    except Exception as exc:  # noqa: BLE001 - re-raised with the path in the message
        raise ValueError(f"base model {name}: cannot load its tokenizer: {exc}") from exc
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError(
            f"base model {name}: the tokenizer has no chat template; the conversational prompts need one "
            "(use an instruct model or set tokenizer.chat_template and save it)"
        )
    return name


def main(argv: Sequence[str] | None = None) -> None:
    p = parser(__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="build a tiny model from a parquet corpus")
    b.add_argument("--corpus", required=True, help="parquet file with the text columns")
    b.add_argument("--text-columns", default="title,abstract", help="comma-separated columns to train the tokenizer on")
    b.add_argument("--out-dir", required=True)
    for key, value in DEFAULT_SIZES.items():
        b.add_argument("--" + key.replace("_", "-"), type=int, default=value)
    args = p.parse_args(argv)
    setup_logging(args.verbose)
    texts = corpus_texts(args.corpus, [c.strip() for c in args.text_columns.split(",") if c.strip()])
    build_tiny_model(texts, args.out_dir, **{k: getattr(args, k) for k in DEFAULT_SIZES})


if __name__ == "__main__":
    main()
