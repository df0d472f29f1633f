"""The LLM client against loopback endpoints: cache, retries, Retry-After, timeouts, malformed bodies, think blocks,
truncation, schemas, budget, rate limits, logprobs and the run summary. Real HTTP; the answers are the generic
stand-in's."""

from __future__ import annotations

import json
import threading
import time

import pytest

from tests.llm_loopback import CHAT, MODEL, answer, block, chat_bodies, scripted, status
from tests.loopback import LoopbackServer, Reply
from workflow_scripts.common.config import ConfigError
from workflow_scripts.llm import summary as run_summary
from workflow_scripts.llm.client import EndpointError
from workflow_scripts.llm.endpoints import open_client
from workflow_scripts.llm.request import ChatRequest
from workflow_scripts.llm.config import endpoint

SCORE = {"type": "object", "properties": {"score": {"type": "integer", "minimum": 0, "maximum": 2}},
         "required": ["score"], "additionalProperties": False}


def ask(text: str, **params) -> ChatRequest:
    return ChatRequest([{"role": "user", "content": text}], {"max_tokens": 64, **params})


def judge(text: str, **params) -> ChatRequest:
    return ChatRequest([{"role": "user", "content": text}], {"max_tokens": 64, **params}, schema=SCORE)


@pytest.fixture
def server():
    with LoopbackServer() as s:
        s.route(CHAT, answer)
        yield s


def run(server, tmp_path, requests, **overrides):
    with open_client("judge", block(server.url, **overrides), tmp_path / "cache") as client:
        return client.complete_many(requests), client.summary(), client.rejects.rows


def test_cache_hits_misses_and_identical_requests(server, tmp_path):
    batch = [ask("alpha"), ask("beta"), ask("alpha"), ask("gamma", temperature=1.0)]
    answers, summary, _ = run(server, tmp_path, batch)
    assert [a.status for a in answers] == ["ok"] * 4 and answers[0].text.endswith("alpha")
    assert len(server.requests) == 3  # the repeated request is asked once
    assert [a.cached for a in answers] == [False, False, True, False]
    assert (summary["requests"], summary["cache_hits"]) == (3, 1)

    # a rerun (a new process would do the same) sends nothing; temperature 1 is the same request as 1.0
    again, summary, _ = run(server, tmp_path, [*batch, ask("gamma", temperature=1)])
    assert len(server.requests) == 3 and all(a.cached for a in again)
    assert [a.text for a in again[:4]] == [a.text for a in answers]
    assert (summary["requests"], summary["cache_hits"]) == (0, 5)
    assert summary["cached_tokens_out"] > 0 and summary["tokens_out"] == 0

    # any change to what the model sees is a new request
    run(server, tmp_path, [ask("gamma", temperature=0.5), ask("alpha", seed=7)])
    assert len(server.requests) == 5


def test_429_retry_after_holds_back_the_request(tmp_path):
    with LoopbackServer() as server:
        server.route(CHAT, scripted(status(429, headers={"Retry-After": "1"})))
        answers, summary, _ = run(server, tmp_path, [ask("one"), ask("two")], limits={"max_concurrency": 1})
    assert all(a.ok for a in answers)
    first, retried = server.requests[:2]
    assert retried.at - first.at >= 1.0  # honoured, not the 10 ms backoff
    assert summary["retries"] == {"http_429": 1} and summary["http_attempts"] == 3 and summary["failures"] == {}


def test_retry_after_ms_holds_back_every_request_to_the_endpoint(tmp_path):
    def answer_late(req):
        time.sleep(0.2)  # this worker's next request goes out after the 503 arrived

    with LoopbackServer() as server:
        server.route(CHAT, scripted(status(503, headers={"retry-after-ms": "600"}), answer_late))
        answers, summary, _ = run(server, tmp_path, [ask(f"q{i}") for i in range(3)], limits={"max_concurrency": 2})
    assert all(a.ok for a in answers) and summary["retries"] == {"http_503": 1}
    arrivals = [r.at for r in server.requests]
    first, later = arrivals[0], arrivals[2:]  # the retry, and the third request, which was not refused but came after the 503
    assert len(later) == 2 and all(t - first >= 0.59 for t in later)


def test_server_errors_are_retried_then_reported_per_request(tmp_path):
    with LoopbackServer() as server:
        server.route(CHAT, scripted(status(500), status(502)))
        answers, summary, _ = run(server, tmp_path, [ask("fine after two errors")], limits={"max_concurrency": 1})
        assert answers[0].ok and summary["retries"] == {"http_500": 1, "http_502": 1}

        def always_500_for_doomed(req):
            doomed = "doomed" in json.dumps(json.loads(req.body)["messages"])
            return Reply(500, '{"error": "internal"}') if doomed else answer(req)

        server.route(CHAT, always_500_for_doomed)
        answers, summary, _ = run(server, tmp_path, [ask("doomed"), ask("fine")], limits={"max_retries": 2})
    doomed, fine = answers
    assert fine.ok and doomed.status == "failed" and doomed.problem.startswith("http_500:")
    assert "after 3 attempts" in doomed.problem
    assert summary["failures"] == {"http_500": 1} and summary["retries"] == {"http_500": 2}
    # a failed request leaves nothing in the cache: the next run asks it again
    with LoopbackServer() as server:
        server.route(CHAT, answer)
        answers, _, _ = run(server, tmp_path, [ask("doomed"), ask("fine")])
    assert [a.cached for a in answers] == [False, True] and len(server.requests) == 1


def test_a_final_4xx_is_not_retried(tmp_path):
    with LoopbackServer() as server:
        server.route(CHAT, status(400, '{"error": {"message": "prompt longer than max_model_len"}}'))
        answers, summary, _ = run(server, tmp_path, [ask("too long")])
    assert answers[0].status == "failed" and "max_model_len" in answers[0].problem
    assert len(server.requests) == 1 and summary["failures"] == {"http_400": 1}


def test_timeouts_are_retried(tmp_path):
    release = threading.Event()

    def slow(req):
        release.wait(5)
        return None

    with LoopbackServer() as server:
        server.route(CHAT, scripted(slow))
        answers, summary, _ = run(server, tmp_path, [ask("slow")], limits={"timeout_s": 1.0})
        release.set()
    assert answers[0].ok and summary["retries"] == {"timeout": 1} and len(server.requests) == 2


def test_malformed_bodies_are_retried(tmp_path):
    with LoopbackServer() as server:
        server.route(CHAT, scripted(status(200, "{not json"), status(200, '{"choices": []}'),
                                    status(200, '{"choices": [{"message": {"content": 42}}]}')))
        answers, summary, _ = run(server, tmp_path, [ask("x")], limits={"max_retries": 3})
    assert answers[0].ok and summary["retries"] == {"malformed_response": 3}


def test_think_blocks_are_stripped_before_parsing(tmp_path):
    with LoopbackServer() as server:
        server.route(CHAT, lambda req: answer(req, think=True))
        answers, _, _ = run(server, tmp_path, [judge("rate this"), ask("plain")])
    assert answers[0].ok and answers[0].json == {"score": 0} and "<think>" not in answers[0].text
    assert answers[1].text.startswith("Demo answer")
    # a server that drops the opening tag (the chat template added it), and thinking that never ends
    with LoopbackServer() as server:
        server.route(CHAT, scripted(lambda req: answer(req, content='reasoning first</think>\n{"score": 2}'),
                                    lambda req: answer(req, content="<think>still thinking")))
        answers, summary, rejects = run(server, tmp_path, [judge("a"), judge("b")],
                                        limits={"max_concurrency": 1}, invalid_retries=0)
    assert answers[0].json == {"score": 2}
    assert answers[1].status == "invalid" and answers[1].problem_kind == "think_unterminated"
    assert summary["invalid"] == {"think_unterminated": 1} and rejects[0]["raw"] == "<think>still thinking"


def test_truncated_answers_are_reported_as_such(server, tmp_path):
    answers, summary, rejects = run(server, tmp_path, [ask("one two three four five six", max_tokens=3)])
    cut = answers[0]
    assert cut.status == "truncated" and cut.finish_reason == "length" and len(cut.text.split()) == 3
    assert "finish_reason length after 3 completion tokens" in cut.problem
    assert summary["finish_reasons"] == {"length": 1} and summary["invalid"] == {}
    assert len(server.requests) == 1  # not asked again: the same cap would cut it again
    assert rejects == [{"file": "llm:judge", "record": cut.key, "reason": cut.problem, "raw": cut.raw}]


def test_schema_failures_are_asked_again_with_new_seeds_and_kept_as_rejects(tmp_path):
    def by_seed(req):
        seed = json.loads(req.body).get("seed")
        return answer(req, content={None: "not json at all", 1: '{"score": 7}'}.get(seed, '```json\n{"score": 1}\n```'))

    with LoopbackServer() as server:
        server.route(CHAT, by_seed)
        answers, summary, rejects = run(server, tmp_path, [judge("rate")])
        bodies = chat_bodies(server.requests)
    final = answers[0]
    assert final.ok and final.json == {"score": 1} and final.attempts == 3
    assert [b.get("seed") for b in bodies] == [None, 1, 2]
    assert bodies[0]["response_format"]["json_schema"]["schema"] == SCORE  # structured output where supported
    assert summary["invalid"] == {"not_json": 1, "schema": 1}
    assert [r["reason"].split(":")[0] for r in rejects] == ["not_json", "schema"]
    assert all(len(r["record"]) == 64 for r in rejects) and rejects[1]["raw"] == '{"score": 7}'
    assert "at score" in rejects[1]["reason"]

    # the limit is the caller's: with none, the first verdict stands; and a server without structured output
    with LoopbackServer() as server:
        server.route(CHAT, by_seed)
        answers, _, _ = run(server, tmp_path / "other", [judge("rate")], invalid_retries=0, structured_output=False)
        assert "response_format" not in chat_bodies(server.requests)[0]
    assert answers[0].status == "invalid" and answers[0].problem_kind == "not_json"


def test_logprobs_are_requested_and_cached(server, tmp_path):
    request = ChatRequest([{"role": "user", "content": "a b c"}], {"max_tokens": 16}, top_logprobs=2)
    answers, _, _ = run(server, tmp_path, [request])
    body = chat_bodies(server.requests)[0]
    assert body["logprobs"] is True and body["top_logprobs"] == 2
    tokens = answers[0].logprobs
    assert len(tokens) == answers[0].usage["completion_tokens"] and len(tokens[0]["top_logprobs"]) == 2
    again, _, _ = run(server, tmp_path, [request])
    assert again[0].cached and again[0].logprobs == tokens


def test_budget_stops_cleanly_and_keeps_what_is_done(server, tmp_path):
    batch = [ask(f"q{i}") for i in range(6)]
    answers, summary, _ = run(server, tmp_path, batch, budget={"max_requests": 3}, limits={"max_concurrency": 2})
    assert [a.status for a in answers].count("ok") == 3 and [a.status for a in answers].count("not_asked") == 3
    assert len(server.requests) == 3 and summary["not_asked"] == 3
    assert summary["budget_stop"] == "budget: max_requests 3 reached"
    assert all(a.problem == "budget: max_requests 3 reached" for a in answers if a.status == "not_asked")
    # the next run (same budget) takes the 3 answers from the cache and asks the 3 others
    answers, summary, _ = run(server, tmp_path, batch, budget={"max_requests": 3})
    assert all(a.ok for a in answers) and (summary["cache_hits"], summary["requests"]) == (3, 3)
    # a token budget: the tokens used (5 an answer here) plus the worst case of the next one (1 + 64) must fit
    answers, summary, _ = run(server, tmp_path, [ask(f"t{i}") for i in range(4)], budget={"max_tokens": 70},
                              limits={"max_concurrency": 1})
    assert [a.status for a in answers] == ["ok", "ok", "not_asked", "not_asked"]
    assert summary["budget_stop"].startswith("budget: max_tokens 70 reached (10 used, 0 in flight, 65 more needed)")


def test_requests_per_minute_are_paced(server, tmp_path):
    started = time.monotonic()
    answers, _, _ = run(server, tmp_path, [ask(f"r{i}") for i in range(25)],
                        limits={"max_concurrency": 8, "requests_per_minute": 600})
    assert all(a.ok for a in answers)
    offsets = sorted(r.at - started for r in server.requests)
    # 10 a second, one second's worth at once: 11 at the start, then one every 100 ms
    assert offsets[-1] >= 1.3
    assert sum(o < offsets[0] + 0.5 for o in offsets) <= 16


def test_an_endpoint_that_is_down_is_named_without_its_key(tmp_path, monkeypatch):
    monkeypatch.setenv("JUDGE_KEY", "planted-key-0123456789")
    with LoopbackServer() as server:
        url = server.url  # closed on exit: nothing listens there any more
    with pytest.raises(EndpointError) as info:
        run(type("S", (), {"url": url})(), tmp_path, [ask("a"), ask("b")], api_key_env="JUDGE_KEY",
            limits={"max_retries": 2})
    message = str(info.value)
    assert f"LLM endpoint judge (external {url}/v1, model {MODEL})" in message and "unreachable" in message
    assert "3 attempts" in message and "0 answered" in message and "planted-key" not in message


def test_a_refused_key_stops_the_batch_at_once(tmp_path, monkeypatch):
    monkeypatch.setenv("JUDGE_KEY", "planted-key-0123456789")
    with LoopbackServer() as server:
        server.route(CHAT, lambda req: Reply(401, json.dumps({"error": f"bad key {req.headers['authorization']}"})))
        with pytest.raises(EndpointError) as info:
            run(server, tmp_path, [ask(f"q{i}") for i in range(5)], api_key_env="JUDGE_KEY",
                limits={"max_concurrency": 1})
    assert server.requests[0].headers["authorization"] == "Bearer planted-key-0123456789"
    assert len(server.requests) == 1
    assert "refused the API key (from $JUDGE_KEY)" in str(info.value) and "planted-key" not in str(info.value)
    monkeypatch.delenv("JUDGE_KEY")
    with LoopbackServer() as server:
        server.route(CHAT, status(401, '{"error": "no key"}'))
        with pytest.raises(EndpointError, match=r"wants an API key \(\$JUDGE_KEY is not set\)"):
            run(server, tmp_path, [ask("q")], api_key_env="JUDGE_KEY")
    assert "authorization" not in server.requests[0].headers


def test_the_pipelines_own_servers_get_no_key(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "planted-key-0123456789")
    assert endpoint("judge", {"kind": "demo"}).api_key() is None
    assert endpoint("judge", {"kind": "external", "model": "m", "base_url": "http://h/v1"}).api_key() == \
        "planted-key-0123456789"


@pytest.mark.parametrize("block_, message", [
    ({"kind": "external", "model": "m"}, "llm.endpoints.judge.base_url: required when kind is 'external'"),
    ({"kind": "vllm"}, "llm.endpoints.judge.model: required when kind is 'vllm'"),
    ({"kind": "vllm", "model": "m", "vllm": {"gpus": 2, "tensor_parallel_size": 4}}, "more than the 2 GPU(s)"),
    ({"kind": "demo", "demo": {"policy": "oracle"}}, "unknown demo stand-in 'oracle'"),
    ({"kind": "demo", "limits": {"max_concurency": 2}}, "config key llm.endpoints.judge.limits: Additional"),
    ({"kind": "hosted"}, "config key llm.endpoints.judge.kind: 'hosted' is not one of"),
])
def test_endpoint_config_errors_name_the_key(block_, message):
    with pytest.raises(ConfigError, match="invalid config") as info:
        endpoint("judge", block_)
    assert message in str(info.value)


def test_summary_json_and_markdown(server, tmp_path):
    prices = {"input_per_million": 2.0, "output_per_million": 8.0, "currency": "EUR"}
    _, summary, _ = run(server, tmp_path, [ask("x"), ask("y", max_tokens=2)], prices=prices)
    assert summary["endpoint"] == {"use": "judge", "kind": "external", "model": MODEL,
                                   "base_url": f"{server.url}/v1", "stand_in": None}
    expected = (summary["tokens_in"] * 2.0 + summary["tokens_out"] * 8.0) / 1e6
    assert summary["cost"] == {"amount": round(expected, 6), "currency": "EUR"} and expected > 0
    assert summary["latency_s"]["p50"] > 0 and summary["finish_reasons"] == {"length": 1, "stop": 1}
    demo = {**summary, "endpoint": {**summary["endpoint"], "kind": "demo", "stand_in": {
        "name": "generic", "version": "1", "doc": "Deterministic."}}, "retries": {"http_429": 2}}
    path = tmp_path / "summary.json"
    run_summary.write(path, demo)
    run_summary.main([str(path), "--out", str(tmp_path / "llm.md")])
    table = (tmp_path / "llm.md").read_text().splitlines()
    assert table[0].startswith("| use | endpoint | model | requests |") and table[1].count("---") == 13
    assert table[2].startswith(f"| judge | demo | `{MODEL}` | 2 | 0 |") and "| 2 (http_429 2) |" in table[2]
    assert "| 1 |" in table[2] and " EUR |" in table[2]  # one truncated answer; the cost
    assert table[-1] == ("- **judge** answered by the demo stand-in `generic` (version 1), a deterministic "
                         "simulation, not a language model: Deterministic.")
