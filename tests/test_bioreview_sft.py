"""BioReview SFT rows: the card's prompts, the section priority, and the prompt budget holding with a real tokenizer
(a tiny BPE with a ChatML template, as tests/fixtures_models.py builds them) and with the reference's chars/3."""

from __future__ import annotations

import datetime as dt
import json
import random

import polars as pl
import pytest

from workflow_scripts.common.io import Rejects
from workflow_scripts.datasets import bioreview_sft as sft
from workflow_scripts.datasets.bioreview_prompts import SYSTEM_PROMPT, USER_PREFIX
from workflow_scripts.datasets.prompt_tokens import load_tokenizer
from workflow_scripts.train.sft import SFTScriptArgs, load_sft_dataset
from workflow_scripts.train.tiny_model import train_tokenizer

WORDS = ("cells mice protein expression knockout tumour assay antibody western blot sequencing dose receptor "
         "signalling pathway liver neuron mutation cohort patients trial placebo significant").split()


def words(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)) + "."


def article(i: int, section_words: int, rng: random.Random) -> dict:
    sections = [
        {"kind": "introduction", "title": "Introduction", "text": words(rng, section_words)},
        {"kind": "other", "title": "Supplementary information", "text": words(rng, section_words // 4)},
        {"kind": "results", "title": "Results", "text": words(rng, section_words * 2)},
        {"kind": "other", "title": "Acknowledgements", "text": words(rng, 10)},
        {"kind": "methods", "title": "Materials and methods", "text": words(rng, section_words)},
        {"kind": "discussion", "title": "Discussion", "text": words(rng, section_words)},
        {"kind": "other", "title": "Empty", "text": "  "},
    ]
    concerns = [{"text": f"Concern {k} of article {i} about the knockout mice.", "category": "design_flaw",
                 "severity": "major", "report_id": f"a{i}#r1-1", "reviewer": 1, "round": 1} for k in range(3)]
    return {"article_id": f"plos:{i:03d}", "family_id": f"plos:{i:03d}", "source": "plos", "split": "train",
            "title": f"Knockout study {i}", "abstract": words(rng, 40), "sections": sections,
            "published": dt.date(2021, 1, 1), "concerns": concerns, "n_concerns": 3}


@pytest.fixture(scope="module")
def articles() -> list[dict]:
    rng = random.Random(3)
    return [article(i, n, rng) for i, n in enumerate((5, 40, 300, 1200, 3000))]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, articles):
    texts = [SYSTEM_PROMPT, USER_PREFIX] + [json.dumps(a["sections"]) for a in articles]
    out = tmp_path_factory.mktemp("bioreview_tokenizer")
    train_tokenizer(texts, vocab_size=1000, model_max_length=32768).save_pretrained(out)
    return out


def test_the_card_prompts_are_the_cards_strings():
    assert SYSTEM_PROMPT.startswith("You are an expert peer reviewer for biomedical research papers published in "
                                    "high-impact journals.")
    assert "Return only a JSON array of concern strings.\n\nOUTPUT FORMAT: Return a JSON array of concern objects" \
           in SYSTEM_PROMPT and SYSTEM_PROMPT.endswith("Do NOT return a JSON array of strings.")
    assert USER_PREFIX.startswith("Review the following biomedical article.\n\nReturn ONLY a JSON array of objects "
                                  "with keys: `text`, `category`, `severity`.\n")
    assert USER_PREFIX.endswith("Allowed severity values: major, minor, optional.\n\n")
    assert (len(SYSTEM_PROMPT), len(USER_PREFIX)) == (562, 341)


def test_allowances_give_each_section_a_floor_plus_a_proportional_share():
    assert sft.allowances([1000, 100, 10], 300) == [185, 63, 10]  # floor min(128, max(16, 50)) + 150 by length
    assert sft.allowances([5000, 5000], 100000) == [5000, 5000]  # never more than a section has
    assert sft.allowances([400] * 20, 200) == [16] * 20  # the floor of 16 holds (the caller drops sections)


@pytest.mark.parametrize("body_budget", [60, 400, 1500])
@pytest.mark.parametrize("counter_kind", ["tokenizer", "chars3"])
def test_every_prompt_fits_the_budget_with_either_counter(articles, model_dir, body_budget, counter_kind):
    counter = sft.make_counter(str(model_dir), counter_kind)
    headers = [sft.messages(f"{a['title']}\n\n{a['abstract']}", []) for a in articles]
    budget = max(counter.prompt(h) for h in headers) + body_budget  # what the prompt needs without a body, plus
    rejects = Rejects()
    rows = sft.build(pl.DataFrame(articles), counter, budget, rejects, "train.parquet")
    assert len(rows) == len(articles) and not rejects.rows
    tokenizer = load_tokenizer(str(model_dir))
    for row, source in zip(rows, articles):
        if counter_kind == "tokenizer":  # counted independently: the chat template as generation renders it
            rendered = tokenizer.apply_chat_template(row["prompt"], tokenize=False, add_generation_prompt=True)
            assert len(tokenizer(rendered, add_special_tokens=False)["input_ids"]) == row["prompt_tokens"]
        else:
            assert row["prompt_tokens"] == -(-sum(len(m["content"]) for m in row["prompt"]) // 3)
        assert row["prompt_tokens"] <= budget
        user = row["prompt"][1]["content"]
        complete = all(s["text"].strip() in user for s in source["sections"])
        assert row["truncated"] == (not complete) and (complete or sft.MARKER in user or "Supplementary" not in user)
    assert rows[-1]["truncated"] and (body_budget < 400 or not rows[0]["truncated"])
    assert rows[-1]["prompt_tokens"] >= budget - 0.2 * body_budget  # the cut fills the budget, it does not halve it


def test_sections_come_in_priority_order_after_title_and_abstract(articles, model_dir):
    rows = sft.build(pl.DataFrame(articles[:1]), sft.CharCounter(), 15000, Rejects(), "train.parquet")
    user = rows[0]["prompt"][1]["content"]
    header = f"Knockout study 0\n\n{articles[0]['abstract']}\n\n"
    assert user.startswith(USER_PREFIX + header + "Materials and methods\n")
    headings = ["Materials and methods", "Results", "Introduction", "Discussion", "Acknowledgements",
                "Supplementary information"]
    assert [user.index(h) for h in headings] == sorted(user.index(h) for h in headings)
    assert "Empty" not in user and rows[0]["prompt"][0] == {"role": "system", "content": SYSTEM_PROMPT}
    target = json.loads(rows[0]["completion"][0]["content"])
    assert target[0] == {"text": "Concern 0 of article 0 about the knockout mice.", "category": "design_flaw",
                         "severity": "major"} and len(target) == 3


def test_the_step_records_its_counter_and_rejects_an_article_that_cannot_fit(articles, model_dir, tmp_path):
    pl.DataFrame(articles).write_parquet(tmp_path / "train.parquet")
    paths = {name: str(tmp_path / f"sft.{name}") for name in ("out", "meta", "rejects")}
    args = ["--split", str(tmp_path / "train.parquet"), "--model", str(model_dir), "--budget", "1200",
            *[a for name, path in paths.items() for a in (f"--{name}", path)]]
    assert sft.main(args) == 0
    meta = json.loads((tmp_path / "sft.meta").read_text())
    assert meta["counter"] == "tokenizer" and meta["tokenizer"] == str(model_dir) and meta["budget"] == 1200
    assert json.loads(pl.read_parquet_metadata(paths["out"])["bioreview_sft"]) == meta
    assert meta["rows"] == 5 and meta["truncated"] >= 2 and meta["prompt_tokens"]["max"] <= 1200
    dataset = load_sft_dataset(paths["out"], SFTScriptArgs())  # what the shared SFT entry trains on
    assert dataset.column_names == ["prompt", "completion"] and len(dataset) == 5
    assert sft.main([*args[:4], "--counter", "chars3", "--budget", "100", *args[6:]]) == 1  # the system prompt alone
    reject = json.loads(open(paths["rejects"]).readline())
    assert reject["reason"].startswith("over_budget: the prompt without any body") and reject["record"] == "plos:000"
