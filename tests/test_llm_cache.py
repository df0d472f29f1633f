"""The response cache and the request key: append-only segments, torn records, one record per key; and the parsing
of answers (think blocks, JSON in prose, schemas)."""

from __future__ import annotations

import json
import logging

import pytest

from workflow_scripts.llm.answers import interpret, parse_json, strip_think
from workflow_scripts.llm.cache import ResponseCache
from workflow_scripts.llm.limits import Pacer
from workflow_scripts.llm.request import ChatRequest, request_body, request_key

RECORD = {"content": "an answer with \"quotes\"\nand a newline, ünïcode", "finish_reason": "stop",
          "usage": {"prompt_tokens": 3, "completion_tokens": 9}}
KEYS = [f"{i:064x}" for i in range(1, 6)]


def segments(directory):
    return sorted(directory.glob("seg-*.jsonl"))


def test_records_survive_a_reopen_and_each_key_is_written_once(tmp_path):
    with ResponseCache(tmp_path) as cache:
        for key in KEYS[:3]:
            cache.put(key, RECORD)
        cache.put(KEYS[0], {**RECORD, "content": "a second answer to the same request"})
        assert cache.get(KEYS[0]) == {"key": KEYS[0], **RECORD}
    with ResponseCache(tmp_path) as cache:
        assert len(cache) == 3 and KEYS[1] in cache and KEYS[4] not in cache
        assert cache.get(KEYS[2])["content"] == RECORD["content"]
        cache.put(KEYS[3], RECORD)  # a new process appends to a segment of its own
    assert len(segments(tmp_path)) == 2
    assert sum(len(p.read_text().splitlines()) for p in segments(tmp_path)) == 4


def test_a_torn_last_record_is_skipped_and_asked_again(tmp_path, caplog):
    with ResponseCache(tmp_path) as cache:
        cache.put(KEYS[0], RECORD)
        cache.put(KEYS[1], RECORD)
    segment = segments(tmp_path)[0]
    data = segment.read_bytes()
    segment.write_bytes(data[: len(data) - 17])  # a kill in the middle of the second write
    with caplog.at_level(logging.WARNING), ResponseCache(tmp_path) as cache:
        assert KEYS[0] in cache and KEYS[1] not in cache and cache.torn == 1
        cache.put(KEYS[1], RECORD)
        assert cache.get(KEYS[1])["content"] == RECORD["content"]
    assert "1 torn or unreadable cache line(s) skipped" in caplog.text
    with ResponseCache(tmp_path) as cache:  # the torn line stays where it was, and stays skipped
        assert len(cache) == 2 and cache.torn == 1


def test_two_processes_writing_one_key_leave_one_answer(tmp_path):
    first, second = ResponseCache(tmp_path), ResponseCache(tmp_path)  # opened at the same time: neither sees the other
    first.put(KEYS[0], {**RECORD, "content": "first"})
    second.put(KEYS[0], {**RECORD, "content": "second"})
    first.close(), second.close()
    with ResponseCache(tmp_path) as cache:
        assert len(cache) == 1 and cache.get(KEYS[0])["content"] in ("first", "second")


def test_the_key_covers_what_the_model_sees_and_nothing_else():
    messages = [{"role": "system", "content": "judge"}, {"role": "user", "content": "rate"}]
    base = request_key(request_body(ChatRequest(messages, {"temperature": 1.0, "max_tokens": 8}), "m"))
    same = [
        ChatRequest(messages, {"max_tokens": 8, "temperature": 1}),  # order of params; 1 == 1.0
        ChatRequest([{"content": "judge", "role": "system"}, {"content": "rate", "role": "user"}],
                    {"temperature": 1.0, "max_tokens": 8.0}),
    ]
    assert {request_key(request_body(r, "m")) for r in same} == {base}
    different = [
        request_body(ChatRequest(messages, {"temperature": 0.7, "max_tokens": 8}), "m"),
        request_body(ChatRequest(messages, {"temperature": 1.0, "max_tokens": 8}), "other-model"),
        request_body(ChatRequest(messages[1:], {"temperature": 1.0, "max_tokens": 8}), "m"),
        request_body(ChatRequest(messages, {"temperature": 1.0, "max_tokens": 8}, schema={"type": "object"}), "m"),
        request_body(ChatRequest(messages, {"temperature": 1.0, "max_tokens": 8}, top_logprobs=0), "m"),
        request_body(ChatRequest(messages, {"temperature": 1.0, "max_tokens": 8}), "m",
                     extra_body={"chat_template_kwargs": {"enable_thinking": False}}),
    ]
    keys = {request_key(b) for b in different}
    assert len(keys) == len(different) and base not in keys


def test_requests_reject_what_the_client_sets():
    with pytest.raises(ValueError, match=r"\['response_format'\] are set by the client"):
        ChatRequest([{"role": "user", "content": "x"}], {"response_format": {"type": "json_object"}})
    with pytest.raises(ValueError, match="at least one message"):
        ChatRequest([])


@pytest.mark.parametrize("text, expected", [
    ("<think>\nplan\n</think>\n\nanswer", ("answer", None)),
    ("plan without opening tag</think> answer", ("answer", None)),
    ("<think>a</think><think>b</think>final", ("final", None)),
    ("<think>cut in the middle", ("", "think_unterminated")),
    ("  no thinking  ", ("no thinking", None)),
])
def test_strip_think(text, expected):
    stripped, problem = strip_think(text)
    assert (stripped, problem and problem.split(":")[0]) == expected


@pytest.mark.parametrize("text, value", [
    ('{"score": 2}', {"score": 2}),
    ('```json\n[{"text": "a concern"}]\n```', [{"text": "a concern"}]),
    ('Here it is: {"score": 1}. Hope it helps', {"score": 1}),
    ('Concerns:\n[{"text": "x", "severity": "minor"}]', [{"text": "x", "severity": "minor"}]),
])
def test_parse_json_finds_the_answer(text, value):
    assert parse_json(text) == value


def test_parse_json_refuses_what_is_not_json():
    with pytest.raises(ValueError, match="not JSON"):
        parse_json("score: two {maybe")


def test_interpret_checks_the_schema_locally():
    schema = {"type": "array", "items": {"type": "object", "required": ["text", "severity"], "properties": {
        "severity": {"enum": ["major", "minor", "optional"]}}}}
    record = {"content": json.dumps([{"text": "t", "severity": "fatal"}]), "finish_reason": "stop"}
    answer = interpret("k", record, schema=schema, strip=True, cached=False)
    assert answer.status == "invalid" and answer.json is None
    assert answer.problem.startswith("schema: at 0/severity: 'fatal' is not one of")
    empty = interpret("k", {"content": "  ", "finish_reason": "stop"}, schema=None, strip=True, cached=False)
    assert empty.status == "invalid" and empty.problem_kind == "empty"


def test_pacer_spreads_a_per_minute_limit():
    pacer = Pacer(per_minute=60)  # one a second, one second's worth at once
    assert [pacer.reserve(1, now=0.0) for _ in range(4)] == [0.0, 0.0, 1.0, 2.0]
    pacer.adjust(-2)  # two units came back: the next waits less
    assert pacer.reserve(1, now=0.0) == 1.0
    big = Pacer(per_minute=600)  # a request larger than a second's worth goes, the next pays it off
    assert big.reserve(50, now=0.0) == 0.0 and big.reserve(1, now=0.0) == pytest.approx(4.0)
