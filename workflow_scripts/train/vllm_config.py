"""What vLLM (through TRL's GRPO) accepts, checked before anything starts: while the DAG is built
(workflow_scripts.common.config) and again by the launcher, which also sees the base model's config.json.

- colocate (``vllm_mode: colocate``): every training process runs a vLLM engine; TRL groups
  ``vllm_tensor_parallel_size`` consecutive ranks into one engine, so that size must divide the processes and fit
  on one node.
- server (``vllm_mode: server``, the launcher's ``vllm_server_gpus`` K): one ``vllm serve`` with data parallel 1,
  since vLLM refuses data parallelism for dense models (``trl vllm-serve --data-parallel-size`` help). On one node of
  G GPUs it gets the last K (tensor parallel K) and the trainer the first G - K; on N > 1 nodes it gets the whole
  last node (K = G, tensor parallel G) and the trainer the first N - 1 nodes.
- both: vLLM needs GPUs, a context window (``vllm_max_model_length`` = prompt budget + ``max_completion_length``) no
  longer than the model's ``max_position_embeddings``, and a tensor-parallel size that divides the model's attention
  heads and key/value heads (or is a multiple of the key/value heads).

Kept free of torch and vllm imports: the DAG check runs where neither is installed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Mapping

CONFIG_JSON = "config.json"


def server_layout(nodes: int, gpus_per_node: int, server_gpus: int) -> tuple[int, int, int]:
    """(trainer nodes, trainer processes, server tensor-parallel size) of server mode, or ValueError with the
    arithmetic that does not work."""
    if server_gpus < 1:
        raise ValueError(f"vllm_server_gpus must be >= 1 in server mode, got {server_gpus}")
    if nodes == 1:
        if server_gpus >= gpus_per_node:
            raise ValueError(f"vllm_server_gpus {server_gpus} leaves none of the {gpus_per_node} GPU(s) of one node "
                             "to the trainer: give more GPUs, fewer to the server, or more nodes")
        return 1, gpus_per_node - server_gpus, server_gpus
    if server_gpus != gpus_per_node:
        raise ValueError(
            f"vllm_server_gpus {server_gpus} on {nodes} nodes: the server takes the whole last node, all "
            f"{gpus_per_node} GPUs as tensor parallel {gpus_per_node} with data parallel 1 (vLLM serves a dense model "
            f"with one data-parallel rank): set vllm_server_gpus {gpus_per_node}, or use one node with the last "
            f"{server_gpus} GPUs serving")
    return nodes - 1, (nodes - 1) * gpus_per_node, gpus_per_node


def problems(block: Mapping, *, processes: int, gpus_per_node: int, server_tp: int | None,
             model_config: Mapping | None = None) -> list[str]:
    """What vLLM would refuse in a trainer ``block`` (empty when ``use_vllm`` is off). ``processes``: the trainer's
    processes; ``server_tp``: the server's tensor-parallel size (server mode); ``model_config``: the base model's
    config.json when it can be read."""
    if not block.get("use_vllm"):
        return []
    out: list[str] = []
    if gpus_per_node < 1:
        out.append("use_vllm needs GPUs, but launch.gpus_per_node is 0: set use_vllm: false to generate with "
                   "transformers, or give the job GPUs")
        return out
    mode = block.get("vllm_mode", "colocate")
    if mode == "colocate":
        tp = int(block.get("vllm_tensor_parallel_size") or 1)
        if processes % tp:
            out.append(f"vllm_tensor_parallel_size {tp} does not divide the {processes} training processes (TRL "
                       "groups that many consecutive ranks into one vLLM engine)")
        if tp > gpus_per_node:
            out.append(f"vllm_tensor_parallel_size {tp} is more than the {gpus_per_node} GPUs of a node")
        share = block.get("vllm_gpu_memory_utilization", 0.3)
        if not 0 < share <= 1:
            out.append(f"vllm_gpu_memory_utilization {share} is not a share of GPU memory in (0, 1]")
    else:
        tp = server_tp or 1
    window = block.get("vllm_max_model_length")
    completion = block.get("max_completion_length")
    if window is not None and completion is not None and window <= completion:
        out.append(f"vllm_max_model_length {window} leaves no prompt budget: it must exceed max_completion_length "
                   f"{completion} by the longest prompt ({window} - {completion} = {window - completion} tokens)")
    if model_config:
        out.extend(_model_problems(model_config, tp, window))
    return out


def _model_problems(model_config: Mapping, tp: int, window: int | None) -> list[str]:
    text = model_config.get("text_config") or model_config  # multimodal configs nest the language model's
    out = []
    heads, kv_heads = text.get("num_attention_heads"), text.get("num_key_value_heads")
    if heads and heads % tp:
        out.append(f"tensor parallel {tp} does not divide the model's {heads} attention heads")
    if kv_heads and (kv_heads % tp if tp < kv_heads else tp % kv_heads):
        out.append(f"tensor parallel {tp} neither divides nor is a multiple of the model's {kv_heads} key/value heads")
    longest = text.get("max_position_embeddings")
    if window and longest and window > longest:
        out.append(f"vllm_max_model_length {window} is longer than the model's context (max_position_embeddings "
                   f"{longest})")
    return out


def model_config(name: str | None, hub_cache: str | None = None) -> dict | None:
    """The config.json of a local model directory, or of a hub id already in the hub cache (``hub_cache``, default
    the environment's); None otherwise."""
    if not name:
        return None
    path = Path(name) / CONFIG_JSON
    if not path.is_file():
        if os.path.exists(name):
            return None
        try:
            from huggingface_hub import try_to_load_from_cache

            cached = try_to_load_from_cache(name, CONFIG_JSON, cache_dir=hub_cache)
        except Exception:  # noqa: BLE001 - not a valid repo id, or no cache: nothing to check against
            return None
        if not isinstance(cached, str):
            return None
        path = Path(cached)
    return json.loads(path.read_text())
