"""Answer a file of chat requests through one endpoint: the LLM layer as a step.

    python -m workflow_scripts.llm.batch --use judge --endpoint '{"kind": "demo"}' --cache-dir results/llm_cache \\
        --requests requests.jsonl --answers answers.jsonl --summary llm_summary.json --rejects llm_rejects.jsonl

Each request line: ``{"id": ..., "messages": [...], "params": {...}, "schema": {...}, "top_logprobs": k}`` (only
``messages`` required). Each answer line, in the same order: ``id`` plus the fields of
:class:`workflow_scripts.llm.answers.Answer`. Killed at any point, the step loses at most the answers in flight:
the rerun takes every other one from the cache.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any, Iterable, Mapping

from workflow_scripts.common.cli import json_arg, parser, setup_logging
from workflow_scripts.common.io import write_text_atomic
from workflow_scripts.llm import summary as run_summary
from workflow_scripts.llm.client import EndpointError
from workflow_scripts.llm.endpoints import open_client
from workflow_scripts.llm.request import ChatRequest

log = logging.getLogger(__name__)


def read_requests(path: str | Path) -> list[tuple[object, ChatRequest]]:
    """(id, request) per line; a line that is not a request stops the step naming the file and line."""
    out = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            request = ChatRequest(row["messages"], row.get("params") or {}, row.get("schema"), row.get("top_logprobs"))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}: line {number} is not a chat request ({type(exc).__name__}: {exc})") from None
        out.append((row.get("id", number), request))
    return out


def request_lines(rows: Iterable[tuple[str, list]], params: Mapping[str, Any], top_logprobs: int | None = None) -> str:
    """(id, messages) rows as the request lines this step reads, each checked as a request (params the client sets
    itself, such as ``model``, are refused)."""
    lines = []
    for rid, messages in rows:
        ChatRequest(messages, params, None, top_logprobs)
        line = {"id": rid, "messages": messages, "params": dict(params)}
        if top_logprobs:
            line["top_logprobs"] = top_logprobs
        lines.append(json.dumps(line, ensure_ascii=False) + "\n")
    return "".join(lines)


def read_answer_rows(path: str | Path, expected: Iterable[str], *, complete: bool) -> dict[str, dict]:
    """id -> answer row of an answers file this step wrote. An id twice or one not in ``expected`` means the file
    belongs to other requests: an error naming them; with ``complete``, so does an expected id without an answer."""
    answers: dict[str, dict] = {}
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            rid, _ = str(row["id"]), row["status"]
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}: line {number} is not an answer row ({type(exc).__name__}: {exc})") from None
        if rid in answers:
            raise ValueError(f"{path}: line {number}: a second answer for {rid}")
        answers[rid] = row
    expected = list(expected)
    foreign = sorted(set(answers) - set(expected))
    missing = [k for k in expected if k not in answers] if complete else []
    if foreign or missing:
        raise ValueError(f"{path}: the answers are not those of these requests: {len(missing)} without an answer "
                         f"(e.g. {missing[:5]}), {len(foreign)} answer(s) for other ids (e.g. {foreign[:5]})")
    return answers


def main(argv: list[str] | None = None) -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--use", required=True, help="teacher, extractor, writer or judge")
    p.add_argument("--endpoint", type=json_arg, default={}, help="the llm.endpoints.<use> block as JSON")
    p.add_argument("--cache-dir", required=True, help="llm.cache_dir (the use's sub-directory is added)")
    p.add_argument("--requests", required=True)
    p.add_argument("--answers", required=True)
    p.add_argument("--summary", required=True, help="run summary (JSON)")
    p.add_argument("--rejects", required=True, help="invalid and truncated answers with their request keys")
    p.add_argument("--server-log", default=None, help="log of a vllm/demo server (default: in the cache directory)")
    args = p.parse_args(argv)
    setup_logging(args.verbose)
    requests = read_requests(args.requests)
    try:
        with open_client(args.use, args.endpoint, args.cache_dir, server_log=args.server_log) as client:
            answers = client.complete_many([r for _, r in requests])
            result = client.summary()
            client.rejects.write(args.rejects)
    except EndpointError as exc:
        log.error("%s", exc)
        sys.exit(1)
    rows = [json.dumps({"id": rid, **a.to_row()}, ensure_ascii=False) + "\n" for (rid, _), a in zip(requests, answers)]
    write_text_atomic(args.answers, "".join(rows))
    run_summary.write(args.summary, result)
    statuses = {s: sum(a.status == s for a in answers) for s in sorted({a.status for a in answers})}
    log.info("%d request(s): %s; %d sent, %d from the cache", len(answers), statuses, result["requests"],
             result["cache_hits"])


if __name__ == "__main__":
    main()
