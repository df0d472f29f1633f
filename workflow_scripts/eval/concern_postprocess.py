"""Postprocessing of a model's concern list before matching, both versions the reference describes, and the union
ensemble of two models.

- ``exact_dedup_cap`` (what produced the card's 0.621, the reference's postprocess script with ``dedup_exact``):
  drop a concern whose lowercased, whitespace-normalized text was seen before, keep the first ``cap`` (20).
- ``embedding_dedup_cap`` (what the card's snippet shows): walk the list in order and keep a concern only while its
  cosine similarity to every concern kept so far is below ``threshold`` (0.95; the card's "> 0.95" is, in its code,
  ">= 0.95 is a duplicate"), then keep the first ``cap``.
- ``union_ensemble``: the two models' postprocessed lists of an article pooled, concerns joined into groups by
  union-find over every pair at cosine >= ``threshold`` (0.98), within and across the models; each group yields one
  concern: the longest text among model A's members (A is the preferred model, the reference's Qwen3-8B), or among
  B's when A has none, the first on equal length. Groups come in the order of their first member (A's list, then
  B's). No cap afterwards, as in the reference (13,583 concerns on 981 articles).

The thresholds are on SPECTER2's cosine scale; another embedding model moves them (the metrics say so).
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from workflow_scripts.eval.concern_tables import normalized_text

VectorsOf = Callable[[list[str]], np.ndarray]
POSTPROCESSINGS = ("raw", "exact_dedup_cap", "embedding_dedup_cap")


def exact_dedup_cap(concerns: Sequence[dict], cap: int) -> list[dict]:
    seen: set[str] = set()
    kept = []
    for concern in concerns:
        key = normalized_text(concern["text"])
        if key not in seen:
            seen.add(key)
            kept.append(concern)
    return kept[:cap]


def embedding_dedup_cap(concerns: Sequence[dict], vectors_of: VectorsOf, threshold: float, cap: int) -> list[dict]:
    if len(concerns) <= 1:
        return list(concerns[:cap])
    vectors = vectors_of([c["text"] for c in concerns]).astype(np.float64)
    sim = vectors @ vectors.T
    keep: list[int] = []
    for i in range(len(concerns)):
        if len(keep) == cap:  # later concerns could only be dropped by the cap
            break
        if not keep or sim[i, keep].max() < threshold:
            keep.append(i)
    return [concerns[i] for i in keep]


def postprocess(name: str, concerns: Sequence[dict], vectors_of: VectorsOf, *, dedup_threshold: float,
                cap: int) -> list[dict]:
    if name == "raw":
        return list(concerns)
    if name == "exact_dedup_cap":
        return exact_dedup_cap(concerns, cap)
    if name == "embedding_dedup_cap":
        return embedding_dedup_cap(concerns, vectors_of, dedup_threshold, cap)
    raise ValueError(f"unknown postprocessing {name!r}; choose one of {list(POSTPROCESSINGS)}")


def _groups(sim: np.ndarray, threshold: float) -> list[list[int]]:
    """Connected components of the graph "similarity >= threshold", each sorted, in the order of their first node."""
    parent = list(range(len(sim)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in zip(*np.nonzero(np.triu(sim >= threshold, k=1))):
        ri, rj = root(int(i)), root(int(j))
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)
    members: dict[int, list[int]] = {}
    for i in range(len(sim)):
        members.setdefault(root(i), []).append(i)
    return sorted(members.values(), key=lambda g: g[0])


def union_ensemble(a: Sequence[dict], b: Sequence[dict], vectors_of: VectorsOf, threshold: float) -> list[dict]:
    pooled = [*a, *b]
    if not pooled:
        return []
    vectors = vectors_of([c["text"] for c in pooled]).astype(np.float64)
    merged = []
    for group in _groups(vectors @ vectors.T, threshold):
        from_a = [i for i in group if i < len(a)]
        candidates = from_a or group
        merged.append(pooled[max(candidates, key=lambda i: (len(pooled[i]["text"]), -i))])
    return merged
