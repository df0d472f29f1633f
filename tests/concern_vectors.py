"""Hand-made embeddings for the BioReview evaluation tests: each text is given its vector, so a test states the exact
cosine similarities it needs and runs in milliseconds. The real models are loaded in tests/test_concern_embeddings.py.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np


def unit(*xs: float) -> np.ndarray:
    v = np.asarray(xs, dtype=np.float64)
    return v / np.linalg.norm(v)


def at_cosine(c: float) -> np.ndarray:
    """A 3-d unit vector whose cosine with (1, 0, 0) is exactly ``c`` (the first coordinate is ``c`` itself)."""
    return np.array([c, math.sqrt(1 - c * c), 0.0])


class VectorEmbedder:
    """The embedder interface of eval.concern_embeddings over a fixed text -> vector table (float64, unit rows)."""

    def __init__(self, vectors: Mapping[str, Sequence[float]]):
        self.vectors = {t: np.asarray(v, dtype=np.float64) for t, v in vectors.items()}
        dim = len(next(iter(self.vectors.values())))
        self.provenance = {"name": "hand-made", "hub_id": "test vectors", "path": None, "revision": None,
                           "dimension": dim, "max_seq_length": 0, "pooling": None, "normalized": True}
        self.sep_token = " | "

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.provenance["dimension"]))
        return np.stack([self.vectors[t] for t in texts])

    def of(self, texts: Sequence[str]) -> np.ndarray:
        return self.encode(list(texts))


def concern(text: str, category: str = "design_flaw", severity: str = "major") -> dict:
    return {"text": text, "category": category, "severity": severity}
