"""Session fixtures for training and evaluation tests: a tiny SciJudge pairs parquet and a tiny Qwen3 model built on it.

conftest.py imports these; build once per test session (a few seconds), reuse everywhere, never modify in a test.
"""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import polars as pl
import pytest

from workflow_scripts.common.config import schema_defaults
from workflow_scripts.datasets.scijudge_prompt import render_messages
from workflow_scripts.train.tiny_model import build_tiny_model, corpus_texts

# the production prompt (SciJudge template) from the config schema: one source for the wording
_PROMPT = schema_defaults()["scijudge"]
SYSTEM_PROMPT, USER_TEMPLATE, TODAY = _PROMPT["system_prompt"], _PROMPT["user_template"], _PROMPT["today"]
_WORDS = (
    "graph neural network citation quantum lattice spectral bound theorem galaxy survey transformer attention "
    "sparse convex manifold entropy diffusion protein kernel estimator topology boson plasma"
).split()
_CATEGORIES = [("CS", "cs.LG"), ("Math", "math.PR"), ("Physics", "quant-ph"), ("Others", "stat.ML")]  # (field, primary)


def _sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(n)).capitalize() + "."


def make_pairs(n: int = 16, seed: int = 0, split: str = "train") -> pl.DataFrame:
    """``n`` SciJudge pair rows with the columns of the real pairs dataset (short texts keep prompts ~150 tokens)."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        row: dict = {"pair_id": f"{split}-{i:05d}", "split": split}
        cat, sub = rng.choice(_CATEGORIES)  # as in the real pairs: both papers of one subcategory
        for side in ("a", "b"):
            row.update({
                f"paper_{side}_arxiv_id": f"2401.{rng.randrange(10000):05d}",
                f"paper_{side}_title": _sentence(rng, 5),
                f"paper_{side}_abstract": _sentence(rng, 12),
                f"paper_{side}_date": dt.date(2024, 1, 1) + dt.timedelta(days=rng.randrange(300)),
                f"paper_{side}_category": cat,
                f"paper_{side}_subcategory": sub,
                f"paper_{side}_citations": rng.randrange(200),
            })
        row["correct_answer"] = "A" if row["paper_a_citations"] >= row["paper_b_citations"] else "B"
        row["messages"] = render_messages(row, system_prompt=SYSTEM_PROMPT, user_template=USER_TEMPLATE, today=TODAY)
        rows.append(row)
    return pl.DataFrame(rows)


@pytest.fixture(scope="session")
def scijudge_pairs_parquet(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("pairs") / "train.parquet"
    make_pairs(16, seed=0).write_parquet(path)
    return path


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, scijudge_pairs_parquet) -> Path:
    """A tiny random Qwen3 + ChatML tokenizer trained on the pair prompts; treat as read-only."""
    out = tmp_path_factory.mktemp("tiny_model") / "model"
    texts = corpus_texts(scijudge_pairs_parquet, ["messages"])
    texts += ["<reason>The first paper.</reason><answer>A</answer>", "<reason>The second.</reason><answer>B</answer>"]
    build_tiny_model(texts, out, vocab_size=512)
    return out


@pytest.fixture
def isolated_training_env(monkeypatch):
    """Training entry points run in process set TENSORBOARD_LOGGING_DIR per run: restore it after each test."""
    monkeypatch.delenv("TENSORBOARD_LOGGING_DIR", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
