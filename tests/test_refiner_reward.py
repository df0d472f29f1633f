"""The Refiner reward on hand-made completions, judged by the refiner_judge stand-in through the real LLM client over
loopback HTTP: a perfect answer, an uncited one, an invented id, two answer blocks, wrong citations, and the judge's
faults (HTTP 500, malformed JSON, <think>-wrapped JSON, a score outside the scale, timeouts, every call failing)."""

from __future__ import annotations

import json
import threading

import polars as pl
import pytest

from tests.llm_loopback import CHAT, block
from tests.loopback import LoopbackServer, Reply
from workflow_scripts.common.config import ConfigError
from workflow_scripts.demo.refiner_judge import JUDGE
from workflow_scripts.llm.demo_server import chat_completion
from workflow_scripts.llm.endpoints import open_client, served_url_env
from workflow_scripts.llm.stand_in import model_id
from workflow_scripts.train.rewards import load_rewards
from workflow_scripts.train.rewards.refiner import JudgeClient, batch_metrics
from workflow_scripts.train.rewards.refiner_score import RewardOptions, ScoringItem, score_batch

MODEL = model_id(JUDGE)
QUESTION = "Which catalyst gives the highest ammonia yield at low pressure?"
RU = "Ruthenium catalysts on barium oxide reached an ammonia yield of twelve percent at ten bar."
FE = "Iron catalysts need pressures above one hundred bar for comparable ammonia yield."
TOOL_OUTPUT = (f"<tool_output>\n<snippet id=S1>{RU}</snippet>\n<snippet id=S2>{FE}</snippet>\n"
               "<snippet id=S3>Cobalt nitride shows moderate activity at low pressure.</snippet>\n</tool_output>")
POSITIVE = [
    # 5 of its 8 terms are in the perfect answer: score 2
    {"title": "Names ruthenium", "description": "Names ruthenium on barium oxide as the catalyst with the highest "
                                                "ammonia yield"},
    # 2 of 7 (iron, catalysts): score 1
    {"title": "Pressure", "description": "Compares the pressure needed by iron and cobalt nitride catalysts"},
]
NEGATIVE = [{"title": "Enzymes", "description": "Speculates about biological nitrogenase enzymes in soil bacteria"}]
PERFECT = f"<answer><snippet id=S1>{RU}</snippet> <snippet id=S2>{FE}</snippet></answer>"
UNCITED = f"<answer>{RU}</answer>"
INVENTED = f"<answer><snippet id=S1>{RU}</snippet> <snippet id=S7>{FE}</snippet></answer>"
TWO_ANSWERS = f"<answer><snippet id=S1>{RU}</snippet></answer><answer><snippet id=S2>{FE}</snippet></answer>"
MISCITED = f"<answer><snippet id=S3>{RU}</snippet> <snippet id=S2>{FE}</snippet></answer>"
ONLY_INSTANCE = {"instance_rubrics_only": True}


def item(completion: str, **kw) -> ScoringItem:
    return ScoringItem.from_row(completion, QUESTION, TOOL_OUTPUT, kw.get("positive", POSITIVE),
                                kw.get("negative", NEGATIVE), task_id="t1")


def judged(req) -> Reply:
    return Reply(200, json.dumps(chat_completion(JUDGE, json.loads(req.body))), content_type="application/json")


def replaced(req, content: str) -> Reply:
    completion = chat_completion(JUDGE, json.loads(req.body))
    completion["choices"][0]["message"]["content"] = content
    return Reply(200, json.dumps(completion), content_type="application/json")


def asks(req, text: str) -> bool:
    return text in json.loads(req.body)["messages"][-1]["content"]


@pytest.fixture
def server():
    with LoopbackServer() as s:
        s.route(CHAT, judged)
        yield s


def score(server, tmp_path, completions, reward=None, **endpoint):
    options = RewardOptions.from_config({**ONLY_INSTANCE, **(reward or {})})
    limits = {"max_retries": 1, **endpoint.pop("limits", {})}
    with open_client("judge", block(server.url, model=MODEL, limits=limits, **endpoint), tmp_path / "cache") as c:
        return score_batch([item(x) for x in completions], c, options)


def test_perfect_answer(server, tmp_path):
    [s] = score(server, tmp_path, [PERFECT])
    assert s.format_ok and s.format_problem is None and s.n_claims == 2 and s.cited_share == 1.0
    assert [(r.title, r.score, r.credit) for r in s.rubrics] == [
        ("Names ruthenium", 1.0, 1.0), ("Pressure", 0.5, 0.5), ("Enzymes", 0.0, 1.0)]
    assert s.rubric_score == pytest.approx(2.5 / 3)
    assert (s.citation_recall, s.citation_precision, s.citation_f1, s.id_validity) == (1.0, 1.0, 1.0, 1.0)
    assert s.citation_score == pytest.approx(1.0)
    assert s.judge_calls == 3 + 2 * 2 and s.judge_failures == 0
    assert s.reward == pytest.approx(10 * (0.8 * 2.5 / 3 + 0.2 * 1.0))
    additive = score(server, tmp_path, [PERFECT], {"combine": "additive"})[0]
    assert additive.reward == pytest.approx(10 * (2.5 / 3 + 0.2 * 1.0))


def test_uncited_answer(server, tmp_path):
    [s] = score(server, tmp_path, [UNCITED])
    assert s.format_ok and s.n_claims == 1 and s.n_cited_claims == 0 and s.cited_share == 0.0
    assert s.id_validity is None  # nothing cited: enters the citation score as 0
    # the judge says the span needs a citation: recall 0, precision 1, F1 0
    assert (s.citation_recall, s.citation_precision, s.citation_f1, s.citation_score) == (0.0, 1.0, 0.0, 0.0)
    assert s.rubric_score == pytest.approx((1.0 + 0.0 + 1.0) / 3)  # no iron: the pressure rubric scores 0
    assert s.reward == pytest.approx(10 * 0.8 * 2 / 3)


def test_invented_id_and_two_answers_fail_the_gate_without_judge_calls(server, tmp_path):
    invented, two, empty = score(server, tmp_path, [INVENTED, TWO_ANSWERS, "I cannot answer."])
    assert not server.requests
    assert invented.format_problem.startswith("invalid_ids") and invented.invalid_ids == ["S7"]
    assert invented.id_validity == 0.5 and invented.reward == 0.0 and invented.judge_calls == 0
    assert two.format_problem.startswith("several_answers") and two.reward == 0.0 and not two.has_answer
    assert empty.format_problem.startswith("no_answer") and empty.reward == 0.0


def test_invented_id_is_judged_with_the_gate_off(server, tmp_path):
    [s] = score(server, tmp_path, [INVENTED], {"format_gate": False})
    assert not s.format_ok and s.judge_calls == 3 + 2  # the claim citing only S7 has no source to be judged on
    # S1's claim is fully supported and relevant (F1 1), S7's has nothing behind it (F1 0)
    assert s.citation_f1 == 0.5 and s.id_validity == 0.5
    assert s.citation_score == pytest.approx(0.6 * 0.5 + 0.4 * 0.5)
    assert s.reward == pytest.approx(10 * (0.8 * s.rubric_score + 0.2 * 0.5))


def test_miscited_claim_lowers_citation_f1(server, tmp_path):
    [s] = score(server, tmp_path, [MISCITED])
    assert s.format_ok and s.id_validity == 1.0
    # S3 says nothing about ruthenium: support none (recall 0), shares no term with the claim (not relevant)
    assert (s.citation_recall, s.citation_precision, s.citation_f1) == (0.5, 0.5, 0.5)


def test_static_rubrics_are_judged_unless_instance_only(server, tmp_path):
    [s] = score(server, tmp_path, [PERFECT], {"instance_rubrics_only": False})
    titles = ["Citation Discipline", "Off-Query Padding", "Wrong-Entity Confabulation"]
    assert [r.title for r in s.rubrics if r.static] == titles and list(s.static_scores) == titles
    assert s.judge_calls == 6 + 4
    assert s.rubric_score == pytest.approx(sum(r.credit for r in s.rubrics) / 6)
    assert [r.kind for r in s.rubrics if r.static] == ["positive", "negative", "negative"]


def test_failed_negative_rubric_is_left_out_not_full_credit(tmp_path):
    with LoopbackServer() as server:
        server.route(CHAT, lambda req: Reply(500, '{"error": "down"}') if asks(req, "nitrogenase") else judged(req))
        [s] = score(server, tmp_path, [PERFECT])
    enzymes = s.rubrics[2]
    assert (enzymes.score, enzymes.credit, enzymes.problem) == (None, None, "http_500")
    assert s.rubric_score == pytest.approx((1.0 + 0.5) / 2)  # not (1 + 0.5 + 1) / 3, nor (1 + 0.5 + 0) / 3
    assert s.judge_failures == 1 and s.failure_kinds == {"http_500": 1}
    assert s.reward == pytest.approx(10 * (0.8 * 0.75 + 0.2 * 1.0))
    assert len([r for r in server.requests if asks(r, "nitrogenase")]) == 2  # retried once (max_retries 1)


def test_score_outside_the_scale_is_a_counted_failure(tmp_path):
    with LoopbackServer() as server:
        server.route(CHAT, lambda req: replaced(req, '{"score": 3}') if asks(req, "Names ruthenium") else judged(req))
        [s] = score(server, tmp_path, [PERFECT])
        asked = [r for r in server.requests if asks(r, "Names ruthenium")]
    assert s.rubrics[0].problem == "schema" and s.rubrics[0].score is None
    assert s.rubric_score == pytest.approx((0.5 + 1.0) / 2)
    assert len(asked) == 3  # asked again with seeds 1 and 2 (invalid_retries 2), then a failure
    assert [json.loads(r.body)["seed"] for r in asked] == [0, 1, 2]


def test_malformed_json_is_asked_again_then_counted(tmp_path):
    seen: dict[str, int] = {}
    lock = threading.Lock()

    def once_malformed(req):  # the first answer to the ruthenium rubric is prose, the retry is fine
        if asks(req, "Names ruthenium"):
            with lock:
                seen["n"] = seen.get("n", 0) + 1
                if seen["n"] == 1:
                    return replaced(req, "The score is two out of two.")
        return judged(req)

    with LoopbackServer() as server:
        server.route(CHAT, once_malformed)
        [recovered] = score(server, tmp_path / "a", [PERFECT])
        server.route(CHAT, lambda req: replaced(req, "{score: 2") if asks(req, "Names ruthenium") else judged(req))
        [failed] = score(server, tmp_path / "b", [PERFECT])
    assert recovered.judge_failures == 0 and recovered.rubrics[0].score == 1.0
    assert failed.failure_kinds == {"not_json": 1} and failed.rubric_score == pytest.approx(0.75)


def test_think_wrapped_answers_are_read(tmp_path):
    with LoopbackServer() as server:
        server.route(CHAT, lambda req: Reply(200, json.dumps(chat_completion(JUDGE, json.loads(req.body), think=True)),
                                             content_type="application/json"))
        [thinking] = score(server, tmp_path / "think", [PERFECT])
    with LoopbackServer() as server:
        server.route(CHAT, judged)
        [plain] = score(server, tmp_path / "plain", [PERFECT])
    assert thinking.judge_failures == 0 and thinking.reward == plain.reward


def test_timeouts_are_retried_then_counted(tmp_path):
    release = threading.Event()

    def slow_for_one(req):
        if asks(req, "Names ruthenium"):
            release.wait(3)
        return judged(req)

    with LoopbackServer() as server:
        server.route(CHAT, slow_for_one)
        try:
            [s] = score(server, tmp_path, [PERFECT], limits={"timeout_s": 0.4, "max_retries": 1,
                                                             "backoff_base_s": 0.01, "backoff_max_s": 0.02})
        finally:
            release.set()
    assert s.rubrics[0].problem == "timeout" and s.failure_kinds == {"timeout": 1}
    assert s.reward == pytest.approx(10 * (0.8 * 0.75 + 0.2 * 1.0))


def test_every_call_failing_gives_no_reward(tmp_path):
    with LoopbackServer() as server:
        server.route(CHAT, lambda req: Reply(503, '{"error": "overloaded"}'))
        perfect, invented = score(server, tmp_path, [PERFECT, INVENTED])
    assert perfect.reward is None and perfect.rubric_score is None and perfect.citation_score is None
    assert perfect.judge_failures == perfect.judge_calls == 7 and perfect.failure_kinds == {"http_503": 7}
    assert perfect.unscored_reason == "rubric: every rubric judge call failed (http_503 7)"
    assert invented.reward == 0.0  # gated before any call
    metrics = batch_metrics([perfect, invented])
    assert metrics["refiner/unscored"] == 0.5 and metrics["refiner/judge_failure_rate"] == 1.0
    assert "refiner/rubric_score" not in metrics  # no completion has one: not logged as 0


def test_claim_calls_all_failing_gives_no_reward(tmp_path):
    with LoopbackServer() as server:
        server.route(CHAT, lambda req: Reply(500, "{}") if asks(req, "<claim>") else judged(req))
        [s] = score(server, tmp_path, [PERFECT])
    assert s.rubric_score == pytest.approx(2.5 / 3) and s.citation_score is None and s.reward is None
    assert s.unscored_reason == "citation: every claim judge call failed (http_500 4)"


def test_rows_for_parquet(server, tmp_path):
    scores = score(server, tmp_path, [PERFECT, UNCITED, TWO_ANSWERS], {"instance_rubrics_only": False})
    frame = pl.DataFrame([s.as_row() for s in scores])
    assert frame.height == 3 and frame["reward"][2] == 0.0
    assert frame["rubrics"][0].to_list()[3]["title"] == "Citation Discipline"


def test_reward_function_as_trl_calls_it(tmp_path):
    """Through load_rewards with the demo endpoint (its own server process), conversational completions, TRL's
    keyword arguments and its per-step metric logging."""
    demo = {"kind": "demo", "demo": {"policy": "refiner_judge"}}
    [fn], weights, columns = load_rewards("refiner", {"refiner": 1.0}, {"judge": demo, "cache_dir": str(tmp_path)})
    assert fn.__name__ == "refiner_reward" and weights == [1.0]
    assert columns == ("tool_output", "question", "positive_rubrics", "negative_rubrics")
    metrics, extra = {}, {}
    completions = [[{"role": "assistant", "content": c}] for c in (PERFECT, UNCITED, TWO_ANSWERS)]
    n = len(completions)
    try:
        rewards = fn(prompts=[[{"role": "user", "content": QUESTION}]] * n, completions=completions,
                     completion_ids=[[1]] * n, tool_output=[TOOL_OUTPUT] * n, question=[QUESTION] * n,
                     positive_rubrics=[POSITIVE] * n, negative_rubrics=[NEGATIVE] * n, task_id=["t1"] * n,
                     trainer_state=None, log_metric=metrics.__setitem__, log_extra=extra.__setitem__)
    finally:
        fn.keywords["judge"].close()
    assert rewards[0] > rewards[1] > rewards[2] == 0.0
    assert metrics["refiner/format_ok"] == pytest.approx(2 / 3) and metrics["refiner/judge_failure_rate"] == 0.0
    assert {"refiner/rubric_score", "refiner/citation_f1", "refiner/id_validity", "refiner/cited_share",
            "refiner/static/citation_discipline", "refiner/rubric_negative", "refiner/unscored"} <= set(metrics)
    assert extra["format"] == ["ok", "ok", "several_answers"]
    assert (tmp_path / "judge" / "server.log").exists()  # the demo server ran, started by the reward itself


def test_judge_server_from_the_launcher(server, tmp_path, monkeypatch):
    monkeypatch.setenv(served_url_env("judge"), f"{server.url}/v1")
    judge = JudgeClient({"kind": "vllm", "model": MODEL}, tmp_path)  # nothing started: the launcher's server
    try:
        [s] = score_batch([item(PERFECT)], judge, RewardOptions.from_config(ONLY_INSTANCE))
    finally:
        judge.close()
    assert s.judge_failures == 0 and len(server.requests) == 7
    monkeypatch.delenv(served_url_env("judge"))
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(RuntimeError, match="2 training processes would each start a vLLM judge; let the launcher"):
        JudgeClient({"kind": "vllm", "model": MODEL}, tmp_path).client()


@pytest.mark.parametrize("options, match", [
    ({"reward": {"combine": "sum"}}, r"refiner\.reward\.combine"),
    ({"reward": {"citation_weigth": 0.2}}, "citation_weigth"),
    ({"judge_prompts": {"rubric": "Score {answer}"}}, r"refiner\.judge\.rubric.*answer"),
    ({"static_rubrics": [{"title": "X", "description": "Y", "kind": "neutral"}]}, "neutral"),
])
def test_bad_options(tmp_path, options, match):
    with pytest.raises(ConfigError, match=match):
        load_rewards("refiner", {"refiner": 1.0}, {"judge": {"kind": "demo"}, "cache_dir": str(tmp_path), **options})


def test_missing_options_and_bad_rows(tmp_path):
    with pytest.raises(ValueError, match="'judge'.*'cache_dir'"):
        load_rewards("refiner", {"refiner": 1.0}, {})
    with pytest.raises(ValueError, match="task t9: tool_output: id_conflict"):
        ScoringItem.from_row(PERFECT, QUESTION, "<snippet id=A>x</snippet><snippet id=A>y</snippet>", [], [], "t9")
    with pytest.raises(ValueError, match=r"task t1: positive_rubrics\[0\] has no description"):
        item(PERFECT, positive=[{"title": "empty", "description": " "}]).rubrics(RewardOptions.from_config())
