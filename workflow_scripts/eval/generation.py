"""Generation backends for every evaluation: `hf` (transformers ``generate``) and `vllm` (offline batch engine).

Both backends render prompts the same way (the tokenizer's chat template with ``add_generation_prompt``, tokenized by
the HF tokenizer of the model directory) and sample with the same knobs, so switching backend changes speed, not the
prompt. Both sample each request from its own seed: derived from ``seed`` and the request's position, or given per
request (``generate(..., seeds=)``, e.g. :func:`request_seed` of what the request is), so that the output depends on
the seeds but not on ``batch_size`` (a speed and memory setting only) nor on which requests run together. `hf` runs
anywhere (CPU included); `vllm` needs a CUDA GPU and the ``vllm`` package and is asked for explicitly, never
substituted silently.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import logging
import math
import os
import time
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
    # k > 0: each Generation also carries its tokens' text and the k most likely tokens per step under the model's
    # own distribution (raw logits, before penalties, temperature, top-k/top-p). hf keeps every step's logits of a
    # batch until it ends: batch_size x max_new_tokens x vocabulary x 4 bytes on the device
    top_logprobs: int = 0
    # vllm engine options
    tensor_parallel_size: int = 1
    gpu_memory_utilization: float = 0.9
    max_model_len: int | None = None

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"generation backend {self.backend!r} unknown; choose one of {', '.join(BACKENDS)}")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype {self.dtype!r} unknown; choose one of {', '.join(DTYPES)}")
        if (self.temperature < 0 or not 0 < self.top_p <= 1 or self.max_new_tokens < 1 or self.batch_size < 1
                or self.top_logprobs < 0):
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
    # with top_logprobs > 0, one entry per generated token before the end-of-sequence token: its text
    # ("".join(tokens) == text) and {text of each of the k most likely tokens (the chosen one always): log-probability}
    tokens: list[str] | None = None
    top_logprobs: list[dict[str, float]] | None = None
    # wall time of the generate call that produced it divided by the prompts in that call; not part of the result
    latency_s: float | None = field(default=None, compare=False)


def request_seed(seed: int, *keys: object) -> int:
    """A sampling seed for one request, from the run's ``seed`` and what the request is (e.g. pair id, order, draw):
    the same on every run and machine, whatever else is generated with it, and distinct per request (63 bits)."""
    digest = hashlib.sha256(":".join(map(str, (seed, *keys))).encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def _seeds(cfg: GenConfig, n: int, seeds: Sequence[int] | None) -> list[int]:
    """Per-request seeds: as given, or derived from the configured seed and the request's position."""
    if seeds is None:
        return [cfg.seed * 1_000_003 + i for i in range(n)]
    if len(seeds) != n:
        raise ValueError(f"{len(seeds)} seeds for {n} conversations: give one seed per conversation")
    return list(seeds)


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

    def generate(self, conversations: Sequence[Conversation], seeds: Sequence[int] | None = None) -> list[Generation]:
        import torch

        prompts = render_prompts(self.tokenizer, conversations, self.cfg.chat_template_kwargs)
        seeds = _seeds(self.cfg, len(prompts), seeds)
        # batching prompts of similar length wastes less compute on padding; the order is deterministic
        order = sorted(range(len(prompts)), key=lambda i: (len(prompts[i]), i))
        results: list[Generation | None] = [None] * len(prompts)
        bs = self.cfg.batch_size
        k = self.cfg.top_logprobs
        kwargs = self._sampling_kwargs()
        if k:
            # generate() records each step's logits before any logits processor (repetition penalty, the sampler)
            kwargs.update(output_logits=True, return_dict_in_generate=True)
        for b, start in enumerate(range(0, len(order), bs)):
            started = time.perf_counter()
            idx = order[start : start + bs]
            batch = self.tokenizer.pad({"input_ids": [prompts[i] for i in idx]}, return_tensors="pt").to(self.device)
            processors = [] if self.cfg.greedy else [PerPromptSampler(self.cfg, [seeds[i] for i in idx])]
            with torch.inference_mode():
                out = self.model.generate(**batch, **kwargs, logits_processor=processors)
            sequences = out.sequences if k else out
            new = sequences[:, batch["input_ids"].shape[1] :]
            steps = _top_candidates(out.logits, new, k) if k else [None] * len(idx)
            latency = (time.perf_counter() - started) / len(idx)
            for i, ids, candidates in zip(idx, new.tolist(), steps):
                results[i] = self._finish(ids, candidates, latency)
            log.info("hf backend: batch %d, %d/%d prompts done", b + 1, min(start + bs, len(order)), len(order))
        return results  # type: ignore[return-value]

    def _finish(self, ids: list[int], candidates: list[dict[int, float]] | None, latency: float) -> Generation:
        end = next((k for k, t in enumerate(ids) if t in self.eos_ids), None)
        kept = ids if end is None else ids[:end]
        text = self.tokenizer.decode(kept, skip_special_tokens=True)
        gen = Generation(text=text, num_tokens=len(ids) if end is None else end + 1, finished=end is not None,
                         latency_s=latency)
        if candidates is not None:
            gen.tokens, gen.top_logprobs = token_logprobs(self.tokenizer, kept, candidates[: len(kept)])
        return gen


def _top_candidates(logits, new, k: int) -> list[list[dict[int, float]]]:
    """Per row, per step: {token id: log-probability} of the k most likely tokens and of the chosen one, from the raw
    logits generate() returned (a tuple of (batch, vocabulary) tensors, one per step)."""
    rows: list[list[dict[int, float]]] = [[] for _ in range(new.shape[0])]
    for step, step_logits in enumerate(logits):
        logprobs = step_logits.float().log_softmax(-1)
        values, ids = logprobs.topk(min(k, logprobs.shape[-1]), dim=-1)
        chosen = new[:, step : step + 1].to(logprobs.device)
        chosen_values = logprobs.gather(-1, chosen)
        for row, (v, i, c, cv) in enumerate(zip(values.tolist(), ids.tolist(), chosen.tolist(),
                                                chosen_values.tolist())):
            rows[row].append({**dict(zip(i, v)), c[0]: cv[0]})
    return rows


def token_texts(tokenizer, ids: Sequence[int]) -> list[str]:
    """The text each token adds to the decoded output, so that ``"".join(...) == decode(ids)``. Decoding growing
    prefixes (not tokens one by one) keeps the leading spaces SentencePiece drops at the start of a text; a character
    whose bytes span several tokens goes to the token that completes it."""
    pieces: list[str] = []
    shown = ""
    for end in range(1, len(ids) + 1):
        prefix = tokenizer.decode(ids[:end], skip_special_tokens=True)
        if prefix.endswith("\ufffd") and end < len(ids):
            pieces.append("")  # an incomplete character: its remaining bytes come with the next token
            continue
        keep = len(os.path.commonprefix([shown, prefix]))
        excess = len(shown) - keep  # decoding may rewrite the end of what is shown (space clean-up): take it back
        for j in range(len(pieces) - 1, -1, -1):
            if not excess:
                break
            cut = min(excess, len(pieces[j]))
            pieces[j] = pieces[j][: len(pieces[j]) - cut]
            excess -= cut
        pieces.append(prefix[keep:])
        shown = prefix
    return pieces


def candidate_texts(tokenizer, previous: int | None, ids: Sequence[int]) -> list[str]:
    """The text each candidate token would add after the ``previous`` generated token: decoded behind it, so a
    leading space is kept as a space (SentencePiece drops it from a token decoded alone)."""
    if previous is None:
        return tokenizer.batch_decode([[i] for i in ids], skip_special_tokens=True)
    before = tokenizer.decode([previous], skip_special_tokens=True)
    after = tokenizer.batch_decode([[previous, i] for i in ids], skip_special_tokens=True)
    return [a[len(before):] if a.startswith(before) else tokenizer.decode([i], skip_special_tokens=True)
            for a, i in zip(after, ids)]


def token_logprobs(tokenizer, kept: Sequence[int], candidates: Sequence[Mapping[int, float]]
                   ) -> tuple[list[str], list[dict[str, float]]]:
    """``Generation.tokens`` and ``.top_logprobs`` from the kept token ids and each step's {token id: logprob}.
    Candidates with the same text (special tokens all decode to "") share one entry, their probabilities added."""
    tops: list[dict[str, float]] = []
    for step, options in enumerate(candidates):
        ids = list(options)
        top: dict[str, float] = {}
        for text, token_id in zip(candidate_texts(tokenizer, kept[step - 1] if step else None, ids), ids):
            lp = float(options[token_id])
            top[text] = _logaddexp(top[text], lp) if text in top else lp
        tops.append(top)
    return token_texts(tokenizer, kept), tops


def _logaddexp(a: float, b: float) -> float:
    hi, lo = max(a, b), min(a, b)
    return hi if lo == -math.inf else hi + math.log1p(math.exp(lo - hi))


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
        logprob_options = {}
        if cfg.top_logprobs:
            # the model's own distribution, as the hf backend gives it; the engine caps the alternatives a request
            # may ask for (max_logprobs, 20 by default)
            logprob_options = {"logprobs_mode": "raw_logprobs", "max_logprobs": max(20, cfg.top_logprobs)}
        self.llm = LLM(
            model=model_path,
            seed=cfg.seed,
            dtype=cfg.dtype,
            tensor_parallel_size=cfg.tensor_parallel_size,
            gpu_memory_utilization=cfg.gpu_memory_utilization,
            max_model_len=cfg.max_model_len,
            **logprob_options,
        )
        log.info("vllm backend: %s, tensor parallel %d", model_path, cfg.tensor_parallel_size)

    def generate(self, conversations: Sequence[Conversation], seeds: Sequence[int] | None = None) -> list[Generation]:
        from vllm import SamplingParams

        cfg = self.cfg
        prompts = render_prompts(self.tokenizer, conversations, cfg.chat_template_kwargs)
        # a complete SamplingParams: nothing comes from the checkpoint's generation_config, as in the hf backend
        params = [
            SamplingParams(
                n=1,
                temperature=cfg.temperature,
                top_p=1.0 if cfg.greedy else cfg.top_p,
                top_k=-1 if cfg.greedy or not cfg.top_k else cfg.top_k,  # -1 disables top-k in every vllm version
                max_tokens=cfg.max_new_tokens,
                repetition_penalty=cfg.repetition_penalty,
                seed=seed,  # per-request seed: outputs do not depend on how vllm batches the requests
                logprobs=cfg.top_logprobs or None,  # per step: the k most likely tokens plus the sampled one
            )
            for seed in _seeds(cfg, len(prompts), seeds)
        ]
        started = time.perf_counter()
        outputs = self.llm.generate([{"prompt_token_ids": ids} for ids in prompts], params)
        latency = (time.perf_counter() - started) / max(len(prompts), 1)  # vllm schedules one batch of them all
        results = []
        for out in outputs:
            c = out.outputs[0]
            gen = Generation(text=c.text, num_tokens=len(c.token_ids), finished=c.finish_reason != "length",
                             latency_s=latency)
            if cfg.top_logprobs:
                kept = list(c.token_ids)
                if c.finish_reason == "stop" and kept and kept[-1] in self.tokenizer.all_special_ids:
                    kept.pop()  # the end-of-sequence token, which the text leaves out
                # c.logprobs: per step {token id: Logprob(logprob, rank, decoded_token)}; the texts are decoded here
                # with the model's tokenizer, as for hf, so that the tokens add up to the text
                candidates = [{tid: lp.logprob for tid, lp in step.items()} for step in c.logprobs[: len(kept)]]
                gen.tokens, gen.top_logprobs = token_logprobs(self.tokenizer, kept, candidates)
            results.append(gen)
        return results


def load_generator(model_path: str, cfg: GenConfig | Mapping[str, Any]):
    """A loaded backend with ``.generate(conversations, seeds=None) -> list[Generation]``."""
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
