"""Generation backends for every evaluation: `hf` (transformers ``generate``) and `vllm` (offline batch engine).

Both backends render prompts the same way (the tokenizer's chat template with ``add_generation_prompt``, tokenized by
the HF tokenizer of the model directory) and sample with the same knobs, so switching backend changes speed, not the
prompt. `hf` runs anywhere (CPU included) and samples each prompt from its own seed, so its output depends on
``seed`` but not on ``batch_size`` (a speed and memory setting only); `vllm` needs a CUDA GPU and the ``vllm`` package
and is asked for explicitly, never substituted silently.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import logging
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from workflow_scripts.common.cli import json_arg, parser, setup_logging

log = logging.getLogger(__name__)

BACKENDS = ("hf", "vllm")
DTYPES = ("auto", "float32", "bfloat16", "float16")
Conversation = Sequence[Mapping[str, str]]


class BackendUnavailableError(RuntimeError):
    """The requested generation backend cannot run here (package missing); raised before any model is loaded."""


@dataclass
class GenConfig:
    """Every generation knob; config passes it as JSON (``--gen-json``), unknown keys are an error."""

    backend: str = "hf"
    temperature: float = 0.7  # 0 means greedy decoding
    top_p: float = 0.8
    top_k: int | None = 20  # None or 0 disables top-k
    max_new_tokens: int = 2048
    repetition_penalty: float = 1.0  # explicit so neither backend inherits a hidden default from generation_config
    batch_size: int = 8  # hf: prompts per generate() call; vllm schedules its own batches
    seed: int = 1234
    dtype: str = "auto"  # auto = the checkpoint's dtype
    device: str = "auto"  # hf only: auto = cuda when available, else cpu
    chat_template_kwargs: dict = field(default_factory=dict)  # e.g. {"enable_thinking": false} for hybrid Qwen3
    # vllm engine options
    tensor_parallel_size: int = 1
    gpu_memory_utilization: float = 0.9
    max_model_len: int | None = None

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"generation backend {self.backend!r} unknown; choose one of {', '.join(BACKENDS)}")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype {self.dtype!r} unknown; choose one of {', '.join(DTYPES)}")
        if self.temperature < 0 or not 0 < self.top_p <= 1 or self.max_new_tokens < 1 or self.batch_size < 1:
            raise ValueError(f"invalid generation settings: {self}")

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None) -> "GenConfig":
        values = dict(values or {})
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown generation setting(s) {unknown}; known: {sorted(known)}")
        return cls(**values)

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


@dataclass
class Generation:
    text: str  # the new tokens only, decoded without special tokens
    num_tokens: int  # generated tokens including the end-of-sequence token
    finished: bool  # False when max_new_tokens cut the generation off


def require_backend(backend: str) -> None:
    """Fail at once, naming the backend and the fix, when its package is not installed."""
    if backend == "vllm" and importlib.util.find_spec("vllm") is None:
        raise BackendUnavailableError(
            "generation backend 'vllm' was requested but the vllm package is not installed in this environment; "
            "install it with `pip install vllm` or the project's extra `pip install -e '.[vllm]'` (Linux with a "
            "CUDA GPU), or set the generation backend to 'hf'"
        )


def load_tokenizer(model_path: str):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError(f"model {model_path}: the tokenizer has no chat template; the prompts are conversations")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"  # decoder-only batches: the prompts must end where generation starts
    return tokenizer


def render_prompts(tokenizer, conversations: Sequence[Conversation], chat_template_kwargs: Mapping) -> list[list[int]]:
    """Token ids of each conversation with the assistant turn opened; shared by both backends."""
    texts = [
        tokenizer.apply_chat_template(
            list(conv), tokenize=False, add_generation_prompt=True, **dict(chat_template_kwargs)
        )
        for conv in conversations
    ]
    # the template already wrote any BOS token: adding special tokens again would double it
    return [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]


class HFGenerator:
    def __init__(self, model_path: str, cfg: GenConfig):
        import torch
        from transformers import AutoModelForCausalLM

        self.cfg = cfg
        self.tokenizer = load_tokenizer(model_path)
        device = cfg.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        dtype = cfg.dtype if cfg.dtype == "auto" else getattr(torch, cfg.dtype)
        self.model = AutoModelForCausalLM.from_pretrained(model_path, dtype=dtype).to(device).eval()
        self.device = device
        eos = self.model.generation_config.eos_token_id
        eos = [eos] if isinstance(eos, int) else list(eos or [])
        self.eos_ids = {i for i in [*eos, self.tokenizer.eos_token_id] if i is not None}
        log.info("hf backend: %s on %s (%s)", model_path, device, self.model.dtype)

    def _sampling_kwargs(self) -> dict:
        cfg = self.cfg
        kw: dict[str, Any] = dict(
            max_new_tokens=cfg.max_new_tokens,
            repetition_penalty=cfg.repetition_penalty,
            pad_token_id=self.tokenizer.pad_token_id,
            eos_token_id=sorted(self.eos_ids),
        )
        # greedy decoding over scores that PerPromptSampler perturbs: sampling without generate()'s batch-wide RNG;
        # explicit neutral values, otherwise generate() warns about sampling settings from generation_config
        kw.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        return kw

    def generate(self, conversations: Sequence[Conversation]) -> list[Generation]:
        import torch

        prompts = render_prompts(self.tokenizer, conversations, self.cfg.chat_template_kwargs)
        # batching prompts of similar length wastes less compute on padding; the order is deterministic
        order = sorted(range(len(prompts)), key=lambda i: (len(prompts[i]), i))
        results: list[Generation | None] = [None] * len(prompts)
        bs = self.cfg.batch_size
        kwargs = self._sampling_kwargs()
        for b, start in enumerate(range(0, len(order), bs)):
            idx = order[start : start + bs]
            batch = self.tokenizer.pad({"input_ids": [prompts[i] for i in idx]}, return_tensors="pt").to(self.device)
            processors = [] if self.cfg.greedy else [PerPromptSampler(self.cfg, [self.cfg.seed * 1_000_003 + i for i in idx])]
            with torch.inference_mode():
                out = self.model.generate(**batch, **kwargs, logits_processor=processors)
            new = out[:, batch["input_ids"].shape[1] :].tolist()
            for i, ids in zip(idx, new):
                results[i] = self._finish(ids)
            log.info("hf backend: batch %d, %d/%d prompts done", b + 1, min(start + bs, len(order)), len(order))
        return results  # type: ignore[return-value]

    def _finish(self, ids: list[int]) -> Generation:
        end = next((k for k, t in enumerate(ids) if t in self.eos_ids), None)
        kept = ids if end is None else ids[:end]
        text = self.tokenizer.decode(kept, skip_special_tokens=True)
        return Generation(text=text, num_tokens=len(ids) if end is None else end + 1, finished=end is not None)


class PerPromptSampler:
    """Samples each row from its own generator (Gumbel-max: argmax of log-probabilities plus Gumbel noise draws from
    softmax), after temperature, top-k and top-p; generate() then decodes greedily. A row's tokens depend on its own
    seed only, not on which prompts share its batch, as vLLM's per-request seeds do."""

    def __init__(self, cfg: GenConfig, seeds: Sequence[int]):
        import torch

        self.cfg = cfg
        self.generators = [torch.Generator().manual_seed(s % 2**63) for s in seeds]

    def __call__(self, input_ids, scores):
        import torch

        cfg = self.cfg
        scores = scores.float() / cfg.temperature
        if cfg.top_k:
            kth = torch.topk(scores, min(cfg.top_k, scores.shape[-1]), dim=-1).values[..., -1:]
            scores = scores.masked_fill(scores < kth, float("-inf"))
        if cfg.top_p < 1:  # keep the smallest set of tokens whose probability reaches top_p (the top token always)
            ordered, order = torch.sort(scores, descending=True, dim=-1)
            before = ordered.softmax(-1).cumsum(-1) - ordered.softmax(-1)
            drop = torch.zeros_like(scores, dtype=torch.bool).scatter(-1, order, before >= cfg.top_p)
            scores = scores.masked_fill(drop, float("-inf"))
        uniform = torch.stack([torch.rand(scores.shape[-1], generator=g) for g in self.generators]).to(scores.device)
        gumbel = -torch.log(-torch.log(uniform.clamp(1e-20, 1.0 - 1e-7)))
        return scores.log_softmax(-1) + gumbel


class VLLMGenerator:
    def __init__(self, model_path: str, cfg: GenConfig):
        from vllm import LLM

        self.cfg = cfg
        self.tokenizer = load_tokenizer(model_path)
        self.llm = LLM(
            model=model_path,
            seed=cfg.seed,
            dtype=cfg.dtype,
            tensor_parallel_size=cfg.tensor_parallel_size,
            gpu_memory_utilization=cfg.gpu_memory_utilization,
            max_model_len=cfg.max_model_len,
        )
        log.info("vllm backend: %s, tensor parallel %d", model_path, cfg.tensor_parallel_size)

    def generate(self, conversations: Sequence[Conversation]) -> list[Generation]:
        from vllm import SamplingParams

        cfg = self.cfg
        # a complete SamplingParams: nothing comes from the checkpoint's generation_config, as in the hf backend
        params = SamplingParams(
            n=1,
            temperature=cfg.temperature,
            top_p=1.0 if cfg.greedy else cfg.top_p,
            top_k=-1 if cfg.greedy or not cfg.top_k else cfg.top_k,  # -1 disables top-k in every vllm version
            max_tokens=cfg.max_new_tokens,
            repetition_penalty=cfg.repetition_penalty,
            seed=cfg.seed,  # per-request seed: outputs do not depend on how vllm batches the requests
        )
        prompts = render_prompts(self.tokenizer, conversations, cfg.chat_template_kwargs)
        outputs = self.llm.generate([{"prompt_token_ids": ids} for ids in prompts], params)
        results = []
        for out in outputs:
            c = out.outputs[0]
            results.append(Generation(text=c.text, num_tokens=len(c.token_ids), finished=c.finish_reason != "length"))
        return results


def load_generator(model_path: str, cfg: GenConfig | Mapping[str, Any]):
    """A loaded backend with ``.generate(conversations) -> list[Generation]``."""
    if not isinstance(cfg, GenConfig):
        cfg = GenConfig.from_dict(cfg)
    require_backend(cfg.backend)
    return {"hf": HFGenerator, "vllm": VLLMGenerator}[cfg.backend](str(model_path), cfg)


def main(argv: Sequence[str] | None = None) -> None:
    import polars as pl

    from workflow_scripts.common.io import write_parquet_atomic

    p = parser(__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="save_pretrained directory (or hub id where a hub is reachable)")
    p.add_argument("--input", required=True, help="parquet file with a conversation column")
    p.add_argument("--messages-column", default="messages", help="column of [{role, content}] conversations")
    p.add_argument("--out", required=True, help="parquet: the input columns plus generation, num_tokens, finished")
    p.add_argument("--gen-json", type=json_arg, default={}, help="GenConfig settings as JSON")
    args = p.parse_args(argv)
    setup_logging(args.verbose)
    generator = load_generator(args.model, args.gen_json)
    df = pl.read_parquet(args.input)
    if args.messages_column not in df.columns:
        raise SystemExit(f"{args.input}: no column {args.messages_column!r}; columns are {df.columns}")
    gens = generator.generate(df[args.messages_column].to_list())
    df = df.with_columns(
        pl.Series("generation", [g.text for g in gens], dtype=pl.String),
        pl.Series("num_tokens", [g.num_tokens for g in gens], dtype=pl.Int32),
        pl.Series("finished", [g.finished for g in gens], dtype=pl.Boolean),
    )
    write_parquet_atomic(df, args.out)
    log.info("wrote %d generations to %s", df.height, args.out)


if __name__ == "__main__":
    main()
