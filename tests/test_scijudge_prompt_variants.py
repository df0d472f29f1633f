"""The SciJudge prompt variants (config scijudge.prompt): the card's and the paper's template, rendered and parsed
alike by every consumer: the pair messages, the SFT warm-up targets, the GRPO rewards and the evaluation."""

import json

import polars as pl
import pytest

from tests.fixtures_models import make_pairs
from tests.workflow_runner import snakemake, write_config
from workflow_scripts.common.config import load_schema, schema_defaults, with_defaults
from workflow_scripts.datasets import scijudge_sft as ss
from workflow_scripts.datasets.scijudge_prompt import VARIANTS, answer_format, render_messages
from workflow_scripts.eval import scijudge
from workflow_scripts.train.rewards import load_rewards

CARD, PAPER = VARIANTS["card"], VARIANTS["paper"]
THINK = "<think>Both are recent; A is the broader method.</think>\n<answer>A</answer>"
REASON = "<reason>Both are recent; A is the broader method.</reason>\n<answer>A</answer>"


def prompt(variant: str, **overrides) -> dict:
    block = with_defaults({"scijudge": {"prompt": variant, **overrides}})["scijudge"]
    return {k: block[k] for k in ("prompt", "system_prompt", "user_template", "today")}


def test_the_paper_template_is_the_appendix_wording():
    paper = prompt("paper")
    # arXiv 2603.14473, appendix B.4 "Preference Prediction Prompt"
    assert paper["system_prompt"] == ("You are a helpful assistant. You first think about the reasoning process in "
                                      "your mind and then provide the user with the answer.")
    assert paper["user_template"].startswith(
        "Today is {today}. Based on the titles, abstracts, and publication dates of the following two papers A and B, "
        "determine which paper has a higher citation count.\nShow your reasoning process in <think> </think> tags. "
        "And return the final answer in <answer> </answer> tags. The final answer should contain only the letter A "
        "or B.\n\nPaper A (Published: {date_a}):\n")
    assert "Paper B (Published: {date_b}):\n" in paper["user_template"]
    card = prompt("card")
    assert "<reason> </reason>" in card["user_template"] and "Date: {date_a}" in card["user_template"]
    assert schema_defaults()["scijudge"]["user_template"] == card["user_template"]  # the card's is the default


def test_the_variant_selects_the_texts_and_set_texts_stay():
    assert prompt("paper", user_template="Today is {today}. {title_a} or {title_b}?")["user_template"] == (
        "Today is {today}. {title_a} or {title_b}?")
    assert prompt("paper", system_prompt="Be brief.")["system_prompt"] == "Be brief."
    schema = load_schema()["properties"]["scijudge"]["properties"]
    # one list of variants: the schema's choices, its texts and the answer formats
    assert set(schema["prompt"]["enum"]) == set(schema["prompt_variants"]["properties"]) == set(VARIANTS)


def test_both_templates_render_each_order():
    pair = make_pairs(1, seed=3).row(0, named=True)
    a, b = pair["paper_a_title"], pair["paper_b_title"]
    for variant in VARIANTS:
        p = prompt(variant)
        system, user = render_messages(pair, system_prompt=p["system_prompt"], user_template=p["user_template"],
                                       today=p["today"])
        assert system == {"role": "system", "content": p["system_prompt"]} and user["role"] == "user"
        assert user["content"].startswith(f"Today is {p['today']}.") and "{" not in user["content"]
    paper = prompt("paper")
    orders = scijudge.conversations(make_pairs(1, seed=3), paper)
    date_a, date_b = pair["paper_a_date"].isoformat(), pair["paper_b_date"].isoformat()
    assert f"Paper A (Published: {date_a}):\nTitle: {a}\nAbstract: " in orders["orig"][0][1]["content"]
    assert f"Paper A (Published: {date_b}):\nTitle: {b}\nAbstract: " in orders["swap"][0][1]["content"]


@pytest.mark.parametrize(
    "text, answer, paper_ok, card_ok",
    [
        (THINK, "A", True, False),
        (REASON, "A", False, True),
        ("<think>x</think><answer> B </answer>", "B", True, False),
        ("<think></think><answer>B</answer>", "B", False, False),  # empty reasoning
        ("<answer>B</answer><think>x</think>", "B", False, False),  # wrong order
        ("<think>x <answer>A</answer></think><answer>A</answer>", None, False, False),  # two answers
        ("<think>x</think><reason>y</reason><answer>A</answer>", "A", False, False),
    ],
)
def test_each_format_parses_its_answer(text, answer, paper_ok, card_ok):
    for answers in (PAPER, CARD):
        assert answers.parse(text) == answer  # both ask for one <answer>X</answer>
    assert PAPER.is_well_formatted(text) is paper_ok
    assert CARD.is_well_formatted(text) is card_ok


def test_rewards_follow_the_configured_variant():
    completions = [THINK, [{"role": "assistant", "content": THINK}], REASON, "<think>x</think>"]
    gold = ["A", "A", "A", "A"]
    for variant, formats in (("paper", [1.0, 1.0, 0.0, 0.0]), ("card", [0.0, 0.0, 1.0, 0.0])):
        funcs, weights, _ = load_rewards("scijudge", {"correctness": 1.0, "format": 0.5}, {"prompt": variant})
        correctness, fmt = funcs
        assert correctness(completions, correct_answer=gold, pair_id=list("abcd")) == [1.0, 1.0, 1.0, 0.0]
        assert fmt(completions, correct_answer=gold) == formats
        # TRL logs a reward under its function's name
        assert [f.__name__ for f in funcs] == ["correctness_reward", "format_reward"] and weights == [1.0, 0.5]
    with pytest.raises(ValueError, match="prompt variant 'papr' unknown"):
        load_rewards("scijudge", {"correctness": 1.0}, {"prompt": "papr"})
    with pytest.raises(ValueError, match="bad reward_options"):
        load_rewards("scijudge", {"correctness": 1.0}, {"template": "paper"})


def test_sft_targets_teach_the_variants_format(tmp_path):
    pairs = make_pairs(12, seed=4)
    paper = ss.build(pairs, variant="paper")
    assert paper["prompt"].to_list() == pairs["messages"].to_list()
    for row in paper.iter_rows(named=True):
        (message,) = row["completion"]
        assert message["content"].startswith("<think>Paper ") and PAPER.is_well_formatted(message["content"])
        assert PAPER.parse(row["completion"]) == row["correct_answer"]
    src, out = tmp_path / "train.parquet", tmp_path / "sft.parquet"
    pairs.write_parquet(src)
    ss.main(["--pairs", str(src), "--out", str(out), "--seed", "1", "--prompt-variant", "paper"])
    assert pl.read_parquet(out).equals(paper)
    with pytest.raises(SystemExit):
        ss.main(["--pairs", str(src), "--out", str(out), "--seed", "1", "--prompt-variant", "papr"])


def test_predict_refuses_a_prompt_without_its_variant(tmp_path):
    base = ["predict", "--model", str(tmp_path / "m"), "--pairs", str(tmp_path / "p.parquet"), "--out",
            str(tmp_path / "o.parquet")]
    no_variant = {k: v for k, v in prompt("card").items() if k != "prompt"}
    with pytest.raises(SystemExit, match=r"--prompt-json must be an object with the keys \['prompt'"):
        scijudge.main([*base, "--prompt-json", json.dumps(no_variant)])
    with pytest.raises(SystemExit, match="prompt variant 'chat' unknown"):
        scijudge.main([*base, "--prompt-json", json.dumps({**no_variant, "prompt": "chat"})])
    assert answer_format("paper") is PAPER


@pytest.mark.slow
def test_every_consumer_rule_gets_the_variant(tmp_path):
    # a dry run of the demo with the paper's prompt: each step that renders, teaches or parses answers is told the
    # variant (in its params, so that changing it reruns the step)
    write_config(tmp_path, scijudge={"prompt": "paper"})
    proc = snakemake(tmp_path, "-n", "-p", "results/scijudge/eval/metrics.json")
    out = proc.stdout + proc.stderr
    commands = [line for line in out.splitlines() if "python -m workflow_scripts." in line]

    def command(module):
        found = [c for c in commands if f"-m {module} " in c]
        assert found, module
        return found[0]

    assert "Paper A (Published: {date_a})" in command("workflow_scripts.datasets.scijudge_pairs")
    assert "--prompt-variant paper" in command("workflow_scripts.datasets.scijudge_sft")
    assert '"reward_options": {"prompt": "paper"}' in command("workflow_scripts.train.grpo")
    assert '{"prompt": "paper", "system_prompt"' in command("workflow_scripts.eval.scijudge predict")
