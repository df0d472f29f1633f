import pytest

from workflow_scripts.common.answers import completion_text, is_well_formatted, parse_answer
from workflow_scripts.train.rewards import load_rewards
from workflow_scripts.train.rewards.scijudge import correctness_reward, format_reward


@pytest.mark.parametrize(
    "text, expected",
    [
        ("<answer>A</answer>", "A"),
        ("<reason>B is newer</reason>\n<answer>B</answer>", "B"),
        ("<answer> \n A\t</answer>", "A"),
        ("reasoning first, then <answer>B</answer> trailing words", "B"),
        ("", None),
        ("A", None),  # missing tag
        ("<answer></answer>", None),
        ("<answer>A or B</answer>", None),  # both letters
        ("<answer>AB</answer>", None),
        ("<answer>A</answer><answer>B</answer>", None),  # two answer tags
        ("<answer>A</answer><answer>A</answer>", None),
        ("<answer>Paper A</answer>", None),  # extra text inside
        ("<answer>A.</answer>", None),
        ("<answer>a</answer>", None),
        ("<ans>A</ans>", None),  # wrong tag
        ("<Answer>A</Answer>", None),
        ("<answer>A</answers>", None),
        ("<answer>A", None),  # unclosed
        ("<answer>A</answer></answer>", None),  # stray closing tag
        ("<answer><answer>A</answer>", None),
    ],
)
def test_parse_answer(text, expected):
    assert parse_answer(text) == expected


def test_completion_text_conversational():
    msgs = [{"role": "assistant", "content": "<answer>B</answer>"}]
    assert completion_text(msgs) == "<answer>B</answer>"
    assert parse_answer(msgs) == "B"
    assert parse_answer([{"role": "assistant", "content": [{"type": "text", "text": "<answer>A</answer>"}]}]) == "A"
    assert parse_answer([{"role": "user", "content": "<answer>A</answer>"}]) is None  # only the model's turns count


def test_correctness_reward_strings_and_messages():
    completions = ["<answer>A</answer>", "<answer>B</answer>", "<answer>A B</answer>", "no answer"]
    assert correctness_reward(completions, correct_answer=["A", "A", "A", "A"]) == [1.0, 0.0, 0.0, 0.0]
    conv = [[{"role": "assistant", "content": c}] for c in completions]
    assert correctness_reward(conv, correct_answer=["B", "B", "B", "B"], prompts=None, pair_id=list("abcd")) == [
        0.0, 1.0, 0.0, 0.0]
    with pytest.raises(ValueError):  # misaligned columns must not be scored silently
        correctness_reward(completions, correct_answer=["A"])


@pytest.mark.parametrize(
    "text, ok",
    [
        ("<reason>older, cited more</reason><answer>A</answer>", True),
        ("  <reason>x</reason>\n\n<answer> B </answer>\n", True),
        ("<answer>A</answer>", False),  # no reason
        ("<answer>A</answer><reason>x</reason>", False),  # wrong order
        ("<reason></reason><answer>A</answer>", False),  # empty reason
        ("preamble <reason>x</reason><answer>A</answer>", False),
        ("<reason>x</reason><answer>A</answer> postscript", False),
        ("<reason>x</reason><reason>y</reason><answer>A</answer>", False),
        ("<reason>x <answer>A</answer></reason><answer>A</answer>", False),
        ("<reason>x</reason><answer>C</answer>", False),
    ],
)
def test_format(text, ok):
    assert is_well_formatted(text) is ok
    assert format_reward([text, [{"role": "assistant", "content": text}]]) == [float(ok)] * 2


def test_load_rewards():
    funcs, weights, cols = load_rewards("scijudge", {"format": 0.0, "correctness": 1.0})
    assert [f.__name__ for f in funcs] == ["correctness_reward", "format_reward"] and weights == [1.0, 0.0]
    assert cols == ("correct_answer",)
    with pytest.raises(ValueError, match="lenght"):
        load_rewards("scijudge", {"lenght": 1.0})
    with pytest.raises(ValueError, match="unknown reward set"):
        load_rewards("nope", {"correctness": 1.0})
    with pytest.raises(ValueError, match="all reward weights are 0"):
        load_rewards("scijudge", {"correctness": 0.0})
