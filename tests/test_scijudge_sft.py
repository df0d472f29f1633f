"""SciJudge SFT format warm-up set: completions parse, answers are the labels, prompts untouched, train split only,
deterministic output, and the prompt/completion pair is what TRL's SFTTrainer masks correctly with the tiny model."""

import datetime as dt
import hashlib

import polars as pl
import pytest

from tests.fixtures_models import make_pairs
from workflow_scripts.common.answers import is_well_formatted, parse_answer
from workflow_scripts.datasets import scijudge_sft as ss


@pytest.fixture(scope="module")
def pairs():
    return make_pairs(40, seed=5)


def _write(df, path):
    df.write_parquet(path)
    return str(path)


def test_completions_parse_and_answer_the_label(pairs):
    out = ss.build(pairs)
    assert out.columns == ["pair_id", "prompt", "completion", "correct_answer"]
    assert out["pair_id"].to_list() == pairs["pair_id"].to_list()
    assert set(out["correct_answer"]) == {"A", "B"}  # both letters are taught
    for row in out.iter_rows(named=True):
        (message,) = row["completion"]
        assert message["role"] == "assistant"
        assert parse_answer(message["content"]) == row["correct_answer"]
        # as the reward sees a conversational completion
        assert parse_answer(row["completion"]) == row["correct_answer"]
        assert is_well_formatted(message["content"])


def test_prompt_is_the_pair_prompt_unaltered(pairs):
    out = ss.build(pairs)
    assert out["prompt"].to_list() == pairs["messages"].to_list()
    assert out.schema["prompt"] == pairs.schema["messages"] == out.schema["completion"]


def test_reason_comes_from_dates_never_from_citation_counts(pairs):
    base = ss.build(pairs)
    other_counts = pairs.with_columns(pl.col("paper_a_citations") * 7 + 1, pl.col("paper_b_citations") * 3 + 2)
    assert ss.build(other_counts).equals(base)
    row = pairs.row(0, named=True)
    day = dt.date(2024, 5, 1)
    older = {**row, "correct_answer": "B", "paper_a_date": day, "paper_b_date": day - dt.timedelta(days=3)}
    assert ss.completion_text(older) == "<reason>Paper B is older than paper A.</reason>\n<answer>B</answer>"
    same = {**row, "correct_answer": "A", "paper_a_date": day, "paper_b_date": day}
    assert ss.reason_text(same) == "Paper A is as old as paper B."


def test_rerun_is_byte_identical_and_max_pairs_is_a_nested_seeded_sample(pairs, tmp_path):
    src = _write(pairs, tmp_path / "train.parquet")
    digests = []
    for k in range(2):
        ss.main(["--pairs", src, "--out", str(tmp_path / f"all{k}.parquet"), "--seed", "3", "--prompt-variant", "card"])
        digests.append(hashlib.sha256((tmp_path / f"all{k}.parquet").read_bytes()).hexdigest())
    assert digests[0] == digests[1]

    def ids(n, seed, df=pairs):
        return ss.build(df, max_pairs=n, seed=seed)["pair_id"].to_list()

    assert len(ids(10, 3)) == 10 and ids(10, 3) == ids(10, 3)
    assert set(ids(10, 3)) < set(ids(20, 3))  # a larger N keeps the smaller sample
    assert ids(10, 3) != ids(10, 4)
    assert set(ids(10, 3, pairs.reverse())) == set(ids(10, 3))  # independent of row order
    assert ids(10, 3) == [p for p in pairs["pair_id"] if p in set(ids(10, 3))]  # file order kept
    assert len(ids(1000, 3)) == pairs.height


@pytest.mark.parametrize(
    "change, message",
    [
        (pl.when(pl.int_range(pl.len()) == 2).then(pl.lit("test_id")).otherwise("split").alias("split"),
         r"split is not 'train'.*train-00002"),
        (pl.when(pl.int_range(pl.len()) == 1).then(pl.lit("C")).otherwise("correct_answer").alias("correct_answer"),
         r"correct_answer not in.*train-00001"),
        (pl.col("messages").list.concat(pl.lit([{"role": "assistant", "content": "x"}])),
         "prompt ends with an assistant turn"),
        (pl.when(pl.int_range(pl.len()) == 0).then(None).otherwise("paper_b_date").alias("paper_b_date"),
         r"missing date.*train-00000"),
    ],
)
def test_bad_pairs_are_refused_naming_file_and_pair(pairs, change, message):
    with pytest.raises(ValueError, match=message) as err:
        ss.build(pairs.with_columns(change), "train.parquet")
    assert "train.parquet" in str(err.value)


def test_test_split_file_is_refused_by_the_cli(tmp_path):
    src = _write(make_pairs(4, seed=1, split="test_id"), tmp_path / "test_id.parquet")
    with pytest.raises(ValueError, match="only train pairs"):
        ss.main(["--pairs", src, "--out", str(tmp_path / "out.parquet"), "--seed", "1", "--prompt-variant", "card"])
    assert not (tmp_path / "out.parquet").exists()


def test_sft_loader_keeps_prompt_completion_and_the_template_masks_the_answer(pairs, tmp_path, tiny_model_dir):
    from transformers import AutoTokenizer

    from workflow_scripts.train.sft import SFTScriptArgs, load_sft_dataset

    path = _write(ss.build(pairs), tmp_path / "sft.parquet")
    ds = load_sft_dataset(path, SFTScriptArgs())
    assert ds.column_names == ["prompt", "completion"]
    # TRL trains on the completion only: the full conversation must extend the prompt rendered with the generation
    # prompt, so the loss covers exactly the assistant text and its end-of-turn token
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    row = ds[0]
    prompt = tok.apply_chat_template(row["prompt"], tokenize=False, add_generation_prompt=True)
    full = tok.apply_chat_template(row["prompt"] + row["completion"], tokenize=False)
    assert full.startswith(prompt)
    assert full[len(prompt):].startswith(row["completion"][0]["content"] + tok.eos_token)
