"""Tiny base models built from scratch (Qwen3, Qwen3.5 or Gemma 4 architecture), and the base-model check every training
entry point runs first.

Tests and the offline demo have no model hub: they train a byte-level BPE tokenizer on the demo corpus, give it the
family's special tokens and chat template, random-init a small model of the family's architecture and
``save_pretrained`` both, so the same ``from_pretrained(path)`` code serves tiny and real base models. The build is
deterministic: same texts, architecture, sizes and seed give the same files byte for byte.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterable, Sequence

from workflow_scripts.common.cli import parser, setup_logging
from workflow_scripts.train.hub_model import HUB_ID

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChatFormat:
    """What a family's instruct tokenizer carries besides its vocabulary."""

    special_tokens: tuple[str, ...]  # get the first ids, in this order
    eos: str  # the tokenizer's eos_token: the end of an assistant turn
    pad: str
    bos: str | None  # prepended by the tokenizer (and by the chat template) when set
    stop_tokens: tuple[str, ...]  # generation_config.eos_token_id
    chat_template: str
    plain_tokens: tuple[str, ...] = ()  # added as non-special: decode(skip_special_tokens=True) keeps them
    single_tokens: tuple[str, ...] = ()  # texts that must encode as exactly one token


IM_START, IM_END, ENDOFTEXT = "<|im_start|>", "<|im_end|>", "<|endoftext|>"

def chatml_template(assistant_open: str = "'<|im_start|>assistant\\n'", preamble: str = "") -> str:
    """ChatML as Qwen writes it; the {% generation %} markers let TRL compute assistant-only masks for full-message
    SFT. ``assistant_open``: the Jinja expression that opens an assistant turn (written and generation prompt alike)."""
    return (
        preamble
        + "{%- for message in messages %}"
        "{%- if message['role'] == 'assistant' %}"
        "{{- " + assistant_open + " }}"
        "{%- generation %}{{- message['content'] + '<|im_end|>' }}{%- endgeneration %}"
        "{{- '\\n' }}"
        "{%- else %}"
        "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
        "{%- endif %}"
        "{%- endfor %}"
        "{%- if add_generation_prompt %}{{- " + assistant_open + " }}{%- endif %}"
    )


QWEN3_CHAT_TEMPLATE = chatml_template()

QWEN3 = ChatFormat(
    special_tokens=(ENDOFTEXT, IM_START, IM_END),
    eos=IM_END,
    pad=ENDOFTEXT,
    bos=None,
    stop_tokens=(IM_END, ENDOFTEXT),
    chat_template=QWEN3_CHAT_TEMPLATE,
    # SciJudge: the reward parses these tags from decoded text, and the answer letters are single tokens
    plain_tokens=("<reason>", "</reason>", "<answer>", "</answer>"),
    single_tokens=("A", "B"),
)

GEMMA_PAD, GEMMA_EOS, GEMMA_BOS, TURN_START, TURN_END = "<pad>", "<eos>", "<bos>", "<|turn>", "<turn|>"

# The text-only core of the chat template shipped with google/gemma-4-*-it (copies of each revision in TRL:
# trl/chat_templates/gemma4*.jinja): <bos>, a native system turn (a first 'system' or 'developer' message), turns
# <|turn>{role}\n{content | trim}<turn|>\n with the assistant's role written 'model', and <|turn>model\n as the
# generation prompt. Tools, reasoning channels and images are left out. Added here: {% generation %} around what the
# model must produce, its turn end included (as TRL's gemma3_training.jinja), for assistant-only loss.
GEMMA4_CHAT_TEMPLATE = (
    "{{- bos_token -}}"
    "{%- set loop_messages = messages -%}"
    "{%- if messages and messages[0]['role'] in ['system', 'developer'] -%}"
    "{{- '<|turn>system\\n' + messages[0]['content'] | trim + '<turn|>\\n' -}}"
    "{%- set loop_messages = messages[1:] -%}"
    "{%- endif -%}"
    "{%- for message in loop_messages -%}"
    "{%- if message['role'] == 'assistant' -%}"
    "{{- '<|turn>model\\n' -}}"
    "{%- generation -%}{{- message['content'] | trim + '<turn|>\\n' -}}{%- endgeneration -%}"
    "{%- else -%}"
    "{{- '<|turn>' + message['role'] + '\\n' + message['content'] | trim + '<turn|>\\n' -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|turn>model\\n' -}}{%- endif -%}"
)

GEMMA4 = ChatFormat(
    # ids 0, 1, 2 as in the real vocabulary (and Gemma4TextConfig's pad/eos/bos defaults)
    special_tokens=(GEMMA_PAD, GEMMA_EOS, GEMMA_BOS, TURN_START, TURN_END),
    eos=TURN_END,  # the instruct tokenizers' eos_token; generation also stops on <eos>
    pad=GEMMA_PAD,
    bos=GEMMA_BOS,
    stop_tokens=(GEMMA_EOS, TURN_END),
    chat_template=GEMMA4_CHAT_TEMPLATE,
)

# Qwen3.5's ChatML. With enable_thinking false the real template opens the assistant turn with an empty think
# block, in the generation prompt and in a written assistant turn alike, so the prompt stays a prefix of prompt +
# completion (TRL's completion mask) and training sees what inference sends. The block stays outside
# {% generation %}: the model is not trained to write it.
QWEN3_5_CHAT_TEMPLATE = chatml_template(
    "'<|im_start|>assistant\\n' + think",
    "{%- set think = '<think>\\n\\n</think>\\n\\n' if enable_thinking is defined and not enable_thinking else '' %}",
)

# Qwen3's tokens and stops; the SciJudge tags are not BioReview's
QWEN3_5 = replace(QWEN3, chat_template=QWEN3_5_CHAT_TEMPLATE, plain_tokens=("<think>", "</think>"), single_tokens=())

CHAT_FORMATS = {"qwen3": QWEN3, "gemma4": GEMMA4, "qwen3_5": QWEN3_5}
ARCHITECTURES = tuple(CHAT_FORMATS)

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
GEMMA4_SLIDING_WINDOW = 64  # short, so that test prompts of a few hundred tokens cross it (E4B: 512)
GEMMA4_SOFTCAP = 30.0  # E4B's final_logit_softcapping


def train_tokenizer(texts: Iterable[str], vocab_size: int, model_max_length: int, chat_format: ChatFormat = QWEN3):
    """Byte-level BPE trained on ``texts``, wrapped as a PreTrainedTokenizerFast with the family's special tokens and
    chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(chat_format.special_tokens),
        # the full byte alphabet: any text (and the answer letters "A"/"B") is encodable whatever the corpus
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(texts), trainer=trainer)
    bos = {"bos_token": chat_format.bos, "add_bos_token": True} if chat_format.bos else {}
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token=chat_format.eos,
        pad_token=chat_format.pad,
        unk_token=None,
        model_max_length=model_max_length,
        padding_side="left",  # decoder-only batched generation pads on the left; saved so evaluation gets it too
        clean_up_tokenization_spaces=False,
        **bos,
    )
    if chat_format.plain_tokens:
        fast.add_tokens(list(chat_format.plain_tokens))
    fast.chat_template = chat_format.chat_template
    for text in chat_format.single_tokens:
        assert len(fast.encode(text, add_special_tokens=False)) == 1, text
    return fast


def build_tiny_model(
    texts: Sequence[str],
    out_dir: str | Path,
    *,
    architecture: str = "qwen3",
    vocab_size: int = DEFAULT_SIZES["vocab_size"],
    hidden_size: int = DEFAULT_SIZES["hidden_size"],
    layers: int = DEFAULT_SIZES["layers"],
    heads: int = DEFAULT_SIZES["heads"],
    kv_heads: int = DEFAULT_SIZES["kv_heads"],
    intermediate_size: int = DEFAULT_SIZES["intermediate_size"],
    max_position: int = DEFAULT_SIZES["max_position"],
    seed: int = DEFAULT_SIZES["seed"],
    kv_shared_layers: int = 0,
    embedding_std: float | None = None,
) -> Path:
    """Train a tokenizer on ``texts``, random-init a causal LM of ``architecture`` with ``seed`` and save both to
    ``out_dir``. ``kv_shared_layers`` (gemma4 only): the last N layers reuse earlier layers' keys and values and have
    no k/v projections, as the last 18 of Gemma 4 E4B's 42 layers do. ``embedding_std``: the standard deviation of
    the (tied) embedding's random init instead of the architecture's 0.02. A LoRA student keeps the embedding frozen,
    and at 0.02 its tied output layer cannot make any token likely (64 dimensions x 0.02 bound the logits near 1, so
    the loss stays above ~6.8 nats over a 4k vocabulary); about 0.2 lets LoRA learn."""
    import torch
    from transformers import GenerationConfig

    if architecture not in CHAT_FORMATS:
        raise ValueError(f"architecture {architecture!r} is not one of {list(ARCHITECTURES)}")
    texts = [t for t in texts if t]
    if not texts:
        raise ValueError("build_tiny_model: no non-empty texts to train the tokenizer on")
    if hidden_size % heads or heads % kv_heads:
        raise ValueError(f"hidden_size {hidden_size} must divide by heads {heads}, heads by kv_heads {kv_heads}")
    if kv_shared_layers and architecture != "gemma4":
        raise ValueError(f"kv_shared_layers is a gemma4 option; architecture is {architecture!r}")
    if kv_shared_layers < 0 or (kv_shared_layers and layers - kv_shared_layers < 2):
        raise ValueError(f"kv_shared_layers {kv_shared_layers} must leave at least 2 of the {layers} layers with "
                         "their own keys and values (a sliding and a full attention one)")
    out_dir = Path(out_dir)
    chat_format = CHAT_FORMATS[architecture]
    tokenizer = train_tokenizer(texts, vocab_size, max_position, chat_format)
    stop_ids = [tokenizer.convert_tokens_to_ids(t) for t in chat_format.stop_tokens]
    pad_id = tokenizer.convert_tokens_to_ids(chat_format.pad)
    bos_id = tokenizer.convert_tokens_to_ids(chat_format.bos) if chat_format.bos else None
    shape = dict(vocab_size=len(tokenizer), hidden_size=hidden_size, intermediate_size=intermediate_size,
                 num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv_heads,
                 head_dim=hidden_size // heads, max_position_embeddings=max_position, tie_word_embeddings=True,
                 bos_token_id=bos_id, pad_token_id=pad_id, dtype="float32")
    torch.manual_seed(seed)
    if architecture == "qwen3":
        from transformers import Qwen3Config, Qwen3ForCausalLM

        model = Qwen3ForCausalLM(Qwen3Config(**shape, eos_token_id=tokenizer.convert_tokens_to_ids(chat_format.eos)))
    elif architecture == "qwen3_5":
        from transformers import Qwen3_5ForCausalLM, Qwen3_5TextConfig

        model = Qwen3_5ForCausalLM(Qwen3_5TextConfig(**shape, **_qwen3_5_fields(shape), eos_token_id=stop_ids))
    else:
        from transformers import Gemma4ForCausalLM, Gemma4TextConfig

        model = Gemma4ForCausalLM(Gemma4TextConfig(**shape, **_gemma4_fields(shape, kv_shared_layers),
                                                   eos_token_id=stop_ids))
    if embedding_std is not None:
        torch.nn.init.normal_(model.get_input_embeddings().weight, 0.0, embedding_std)
    model.generation_config = GenerationConfig(
        eos_token_id=stop_ids, pad_token_id=pad_id, bos_token_id=bos_id, do_sample=True, temperature=1.0, top_p=1.0
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    n_params = sum(p.numel() for p in model.parameters())
    log.info("tiny %s model: %d parameters, vocab %d, saved to %s", architecture, n_params, len(tokenizer), out_dir)
    return out_dir


def _qwen3_5_fields(shape: dict) -> dict:
    """Qwen3.5's hybrid stack at toy scale: Gated DeltaNet (linear attention) layers with full attention every other
    layer (the 9B: every 4th of 32), the last one full; the DeltaNet heads as wide as the attention heads (the 9B's
    128-wide heads would dwarf a 64-wide model)."""
    layers = shape["num_hidden_layers"]
    return dict(
        layer_types=["full_attention" if i % 2 or i == layers - 1 else "linear_attention" for i in range(layers)],
        linear_key_head_dim=shape["head_dim"],
        linear_value_head_dim=shape["head_dim"],
        linear_num_key_heads=shape["num_key_value_heads"],
        linear_num_value_heads=shape["num_attention_heads"],
    )


def _gemma4_fields(shape: dict, kv_shared_layers: int) -> dict:
    """Gemma 4's own config fields at toy scale. Left at their full-size defaults they would dominate a tiny model:
    a per-layer embedding table of vocab_size_per_layer_input x layers x hidden_size_per_layer_input (262144 x layers
    x 256) and 512-wide heads on the full-attention layers (global_head_dim)."""
    layers = shape["num_hidden_layers"]
    return dict(
        vocab_size_per_layer_input=shape["vocab_size"],  # the whole vocabulary, as in E4B
        hidden_size_per_layer_input=max(shape["hidden_size"] // 8, 1),
        global_head_dim=2 * shape["head_dim"],  # full-attention heads twice as wide as sliding ones, as in E4B
        # E4B has one full-attention layer in six, the last one full; a tiny model alternates to have both kinds
        layer_types=["full_attention" if i % 2 or i == layers - 1 else "sliding_attention" for i in range(layers)],
        sliding_window=GEMMA4_SLIDING_WINDOW,
        num_kv_shared_layers=kv_shared_layers,
        final_logit_softcapping=GEMMA4_SOFTCAP,
    )


def corpus_texts(path: str | Path, columns: Sequence[str]) -> list[str]:
    """Texts from a parquet file: string columns as they are; list columns of ``messages``-like structs (a
    ``content`` field) or of sections and concerns (a ``text`` field) item by item."""
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
                texts.extend(m.get("content") or m.get("text") for m in value
                             if isinstance(m, dict) and (m.get("content") or m.get("text")))
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
    b.add_argument("--architecture", choices=ARCHITECTURES, default="qwen3",
                   help="model family: its architecture, special tokens and chat template")
    for key, value in DEFAULT_SIZES.items():
        b.add_argument("--" + key.replace("_", "-"), type=int, default=value)
    b.add_argument("--kv-shared-layers", type=int, default=0,
                   help="gemma4: the last N layers reuse earlier layers' keys and values (E4B: 18 of 42)")
    b.add_argument("--embedding-std", type=float, default=None,
                   help="std of the embedding's random init (default: the architecture's); ~0.2 for a LoRA student")
    args = p.parse_args(argv)
    setup_logging(args.verbose)
    texts = corpus_texts(args.corpus, [c.strip() for c in args.text_columns.split(",") if c.strip()])
    build_tiny_model(texts, args.out_dir, architecture=args.architecture, kv_shared_layers=args.kv_shared_layers,
                     embedding_std=args.embedding_std, **{k: getattr(args, k) for k in DEFAULT_SIZES})


if __name__ == "__main__":
    main()
