"""Refiner tasks, both ways into one schema: a published dataset through a column mapping (parquet, JSON lines and a
``save_to_disk`` directory), bad rows rejected with their reasons, the prompt-length filter (counted, never cut),
and tasks built from the corpus by the writer through the real loopback demo endpoint."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import polars as pl
import pytest

from tests.loopback import LoopbackServer, Reply
from tests.test_refiner_search import demo_papers
from workflow_scripts.common.config import schema_defaults
from workflow_scripts.datasets import refiner_tasks
from workflow_scripts.datasets.refiner_load import DatasetError, check_columns, load_tasks, open_dataset
from workflow_scripts.datasets.prompt_tokens import TokenCounter
from workflow_scripts.datasets.refiner_schema import TASK_SCHEMA, prompt_counter, prompt_messages, read_tasks
from workflow_scripts.datasets.refiner_snippets import parse_tool_output
from workflow_scripts.demo.refiner_writer import WRITER
from workflow_scripts.llm.demo_server import chat_completion
from workflow_scripts.llm.stand_in import model_id
from workflow_scripts.train.rewards.refiner_claims import check_format

REFINER = schema_defaults()["refiner"]
PROMPT = REFINER["prompt"]
WRITER_BLOCK = {**REFINER["writer"], "rubrics": {**REFINER["writer"]["rubrics"], "min_positive": 2}}
DEMO_WRITER = {"kind": "demo", "demo": {"policy": "refiner_writer"}, "limits": {"max_concurrency": 8}}
# the mapping of the published rows' columns (renamed here, rubrics inside a JSON ground_truth column)
COLUMNS = {"question": "query", "reasoning": "agent_reasoning", "tool_output": "raw_tool_output",
           "positive_rubrics": "ground_truth.positive_rubrics", "negative_rubrics": "ground_truth.negative_rubrics",
           "reference": "ref", "id": "row_id"}
RUBRIC = {"title": "States the finding", "description": "Says what the measured effect was.", "weight": 1.0}
NEGATIVE = {"title": "Wrong paper", "description": "Credits the finding to another study."}


def tool(*pairs: tuple[str, str]) -> str:
    return "<tool_output>\n" + "\n".join(f"<snippet id={i}>{t}</snippet>" for i, t in pairs) + "\n</tool_output>"


def row(i: int, **overrides) -> dict:
    base = {"row_id": f"r{i}", "query": f"What did study {i} find about soil carbon?",
            "agent_reasoning": f"Snippet s{i}a reports the effect; s{i}b is background.",
            "raw_tool_output": tool((f"s{i}a", f"Study {i} found a 12% rise in soil carbon."),
                                    (f"s{i}b", "Soil carbon is measured by combustion.")),
            "ground_truth": json.dumps({"positive_rubrics": [RUBRIC], "negative_rubrics": [NEGATIVE]}),
            "ref": f"<answer><snippet id=s{i}a>Study {i} found a 12% rise in soil carbon.</snippet></answer>"}
    return {**base, **overrides}


GOOD = [row(i) for i in range(6)]
BAD = {
    "r10": ("no_tool_output", row(10, raw_tool_output="")),
    "r11": ("no_snippets", row(11, raw_tool_output="<tool_output>no results</tool_output>")),
    "r12": ("no_rubrics", row(12, ground_truth=json.dumps({"positive_rubrics": [], "negative_rubrics": [NEGATIVE]}))),
    "r13": ("id_conflict", row(13, raw_tool_output=tool(("x", "One text."), ("x", "Another text.")))),
    "r14": ("bad_rubrics", row(14, ground_truth=json.dumps({"positive_rubrics": RUBRIC}))),
    "r15": ("no_question", row(15, query="   ")),
    "r0": ("duplicate_task", row(0)),  # the same question and id as the first good row
}
# kept, but its reference cites an id that is not in the tool output: dropped from the task, listed in the rejects
BAD_REFERENCE = row(20, ref="<answer><snippet id=nope>Made up.</snippet></answer>")
UNTITLED = row(21, ground_truth=json.dumps({"positive_rubrics": [{"description": "Gives the number."}]}))
LONG = row(22, raw_tool_output=tool(*[(f"long{k}", "Soil carbon rose in plot number " + "and again " * 40)
                                      for k in range(30)]),
           ref="<answer><snippet id=long0>Soil carbon rose.</snippet></answer>")
ALL_ROWS = GOOD + [r for _, r in BAD.values()] + [BAD_REFERENCE, UNTITLED, LONG]


def write_sources(tmp: Path) -> dict[str, Path]:
    """The same rows as a parquet file, a JSON-lines file and a save_to_disk DatasetDict (train + another split)."""
    frame = pl.DataFrame(ALL_ROWS)
    frame.write_parquet(tmp / "rows.parquet")
    (tmp / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ALL_ROWS))
    ds = datasets.DatasetDict({"train": datasets.Dataset.from_list(ALL_ROWS),
                               "other": datasets.Dataset.from_list(GOOD[:2])})
    ds.save_to_disk(str(tmp / "saved"))
    return {"parquet": tmp / "rows.parquet", "jsonl": tmp / "rows.jsonl", "saved": tmp / "saved"}


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    return write_sources(tmp_path_factory.mktemp("refiner_dataset"))


@pytest.fixture(scope="module")
def counter(tiny_model_dir):
    return prompt_counter(str(tiny_model_dir))


def budget_between(counter: TokenCounter) -> int:
    """A budget every ordinary row fits and the long row does not."""
    def tokens(r):
        return counter.prompt(prompt_messages(PROMPT, r["query"], r["agent_reasoning"], r["raw_tool_output"]))

    ordinary = max(tokens(r) for r in ALL_ROWS if r is not LONG)
    assert tokens(LONG) > ordinary + 20
    return ordinary + 10


@pytest.mark.parametrize("kind", ["parquet", "jsonl", "saved"])
def test_a_dataset_loads_through_the_column_mapping_with_bad_rows_rejected(sources, counter, kind):
    dataset = open_dataset(str(sources[kind]), split="train")
    check_columns(COLUMNS, dataset.column_names, str(sources[kind]))
    budget = budget_between(counter)
    rows, rejects, counts = load_tasks(dataset, columns=COLUMNS, origin="dataset:test", counter=counter, prompt=PROMPT,
                                       max_prompt_tokens=budget, dataset_file=str(sources[kind]))
    reasons = {r["record"]: r["reason"].split(":")[0] for r in rejects.rows}
    assert reasons == {**{rid: kind for rid, (kind, _) in BAD.items()}, "r20": "reference_invalid_ids",
                       "r22": "prompt_too_long"}
    assert all(r["reason"] for r in rejects.rows) and "(task kept without a reference)" in \
        next(r["reason"] for r in rejects.rows if r["record"] == "r20")
    by_question = {r["question"]: r for r in rows}
    assert set(by_question) == {r["query"] for r in GOOD + [BAD_REFERENCE, UNTITLED]}
    good = by_question[GOOD[3]["query"]]
    assert good["reasoning"] == GOOD[3]["agent_reasoning"] and good["tool_output"] == GOOD[3]["raw_tool_output"]
    assert good["snippets"] == [{"id": "s3a", "text": "Study 3 found a 12% rise in soil carbon."},
                                {"id": "s3b", "text": "Soil carbon is measured by combustion."}]
    assert good["positive_rubrics"] == [{"title": RUBRIC["title"], "description": RUBRIC["description"]}]
    assert good["negative_rubrics"] == [NEGATIVE]
    assert good["reference"] == GOOD[3]["ref"] and good["origin"] == "dataset:test"
    assert good["messages"][1]["content"].startswith(f"Question: {GOOD[3]['query']}")
    assert by_question[BAD_REFERENCE["query"]]["reference"] is None
    assert by_question[UNTITLED["query"]]["positive_rubrics"] == [{"title": "", "description": "Gives the number."}]
    assert counts["untitled_rubrics"] == 1 and counts["references_from_dataset"] == len(GOOD) + 1
    assert counts["rows"] == len(ALL_ROWS) and counts["filtered_by_length"] == 1


def test_the_prompt_filter_counts_and_never_cuts(sources, counter):
    budget = budget_between(counter)
    dataset = open_dataset(str(sources["parquet"]))
    rows, rejects, counts = load_tasks(dataset, columns=COLUMNS, origin="dataset:test", counter=counter, prompt=PROMPT,
                                       max_prompt_tokens=budget, dataset_file="rows.parquet")
    long_reject = next(r for r in rejects.rows if r["record"] == "r22")
    assert long_reject["reason"].startswith("prompt_too_long: ") and f"> {budget}" in long_reject["reason"]
    originals = {r["query"]: r for r in ALL_ROWS}
    for task in rows:  # every kept prompt is within the budget, counted as the trainer renders it, and whole
        assert task["prompt_tokens"] == counter.prompt(task["messages"]) <= budget
        assert task["tool_output"] == originals[task["question"]]["raw_tool_output"]
        assert task["tool_output"] in task["messages"][1]["content"]
    # a budget that fits the long row keeps it whole: nothing was ever cut to fit
    rows, _, counts = load_tasks(open_dataset(str(sources["parquet"])), columns=COLUMNS, origin="dataset:test",
                                 counter=counter, prompt=PROMPT, max_prompt_tokens=10**6, dataset_file="rows.parquet")
    assert counts["filtered_by_length"] == 0
    assert next(r for r in rows if r["question"] == LONG["query"])["tool_output"] == LONG["raw_tool_output"]


def test_the_schema_is_checked_on_load(sources):
    dataset = open_dataset(str(sources["saved"]), split="train")
    with pytest.raises(DatasetError, match=r"no column 'question'.*columns.question.*'query'"):
        check_columns({**COLUMNS, "question": "question"}, dataset.column_names, "saved")
    with pytest.raises(DatasetError, match=r"must name a column"):
        check_columns({**COLUMNS, "tool_output": None}, dataset.column_names, "saved")
    with pytest.raises(DatasetError, match=r"no split 'validation'.*\['other', 'train'\]"):
        open_dataset(str(sources["saved"]), split="validation")
    assert len(open_dataset(str(sources["saved"]), split="other")) == 2


def test_load_command_writes_the_task_table(sources, tiny_model_dir, tmp_path):
    # every row maps its reference: no writer is asked (the production default asks it for missing ones)
    block = {**REFINER["tasks"]["dataset"], "columns": COLUMNS, "split": "train", "ask_references": False}
    out = tmp_path / "tasks.parquet"
    assert refiner_tasks.main(["load", "--dataset", str(sources["jsonl"]), "--dataset-json", json.dumps(block),
                               "--policy-model", str(tiny_model_dir), "--prompt-json", json.dumps(PROMPT),
                               "--max-prompt-tokens", "100000", "--out", str(out), "--rejects",
                               str(tmp_path / "rejects.jsonl"), "--counts", str(tmp_path / "counts.json")]) == 0
    tasks = read_tasks(str(out))
    assert tasks.schema == pl.Schema(TASK_SCHEMA)
    assert tasks["task_id"].is_unique().all() and tasks["task_id"].to_list() == sorted(tasks["task_id"])
    assert set(tasks["origin"]) == {"dataset:rows"}
    counts = json.loads((tmp_path / "counts.json").read_text())
    assert counts["tasks"] == tasks.height == len(GOOD) + 3 and counts["made_by"]["rubrics"] == "dataset:rows"
    assert counts["rejected"] == len(BAD) + 1 and counts["writer"] is None


# ---------------------------------------------------------------------------------------------------- the writer


def build_args(tmp: Path, papers: Path, model: Path, endpoint: dict, n: int = 40, budget: int = 100000) -> list[str]:
    corpus = {**REFINER["tasks"]["corpus"], "n_questions": n, "top_k": 4, "passage_chars": 300}
    return ["build", "--papers", str(papers), "--policy-model", str(model), "--prompt-json", json.dumps(PROMPT),
            "--writer-json", json.dumps(WRITER_BLOCK), "--corpus-json", json.dumps(corpus),
            "--max-prompt-tokens", str(budget), "--seed", "3", "--endpoint", json.dumps(endpoint),
            "--cache-dir", str(tmp / "cache"), "--out", str(tmp / "tasks.parquet"), "--rejects",
            str(tmp / "rejects.jsonl"), "--counts", str(tmp / "counts.json"), "--llm-summary",
            str(tmp / "llm_summary.json"), "--llm-rejects", str(tmp / "llm_rejects.jsonl")]


@pytest.fixture(scope="module")
def built(tmp_path_factory, tiny_model_dir):
    tmp = tmp_path_factory.mktemp("refiner_build")
    demo_papers(200).write_parquet(tmp / "papers.parquet")
    assert refiner_tasks.main(build_args(tmp, tmp / "papers.parquet", tiny_model_dir, DEMO_WRITER)) == 0
    return {"dir": tmp, "tasks": read_tasks(str(tmp / "tasks.parquet")),
            "counts": json.loads((tmp / "counts.json").read_text()),
            "rejects": [json.loads(line) for line in (tmp / "rejects.jsonl").read_text().splitlines()],
            "summary": json.loads((tmp / "llm_summary.json").read_text())}


def test_corpus_tasks_are_written_through_the_demo_endpoint(built):
    tasks, counts, rejects = built["tasks"], built["counts"], built["rejects"]
    assert tasks.schema == pl.Schema(TASK_SCHEMA) and tasks.height > 25
    assert set(tasks["origin"]) == {"corpus"}
    for task in tasks.iter_rows(named=True):
        snippets = parse_tool_output(task["tool_output"])
        assert [s.as_dict() for s in snippets] == task["snippets"] and 1 <= len(snippets) <= 4
        assert task["positive_rubrics"] and all(r["title"] and r["description"] for r in task["positive_rubrics"])
        assert task["question"] in task["messages"][1]["content"] and task["reasoning"]
        if task["reference"] is not None:  # every kept reference passes the reward's format gate and cites
            check = check_format(task["reference"], [s.id for s in snippets])
            assert check.ok and check.answer.cited_ids
    # every sampled paper is a task or a rejects row; every failure of the writer has its reason
    dropped = [r for r in rejects if "task kept" not in r["reason"]]
    assert counts["sampled"] == 40 == tasks.height + len(dropped)
    kinds = {r["reason"].split(":")[0] for r in rejects}
    assert kinds <= {"rubrics_invalid", "reference_invalid_ids", "reference_no_answer", "question_invalid",
                     "no_search_hits", "prompt_too_long"}
    assert {"rubrics_invalid", "reference_invalid_ids"} <= kinds  # the stand-in's planted faults were caught
    assert counts["with_reference"] == tasks.height - sum("task kept" in r["reason"] for r in rejects)
    assert counts["made_by"]["question"].startswith("demo stand-in refiner_writer")
    assert built["summary"]["endpoint"]["stand_in"]["name"] == "refiner_writer"
    assert counts["writer"]["requests"] == built["summary"]["requests"] > 0


def test_a_rebuild_is_answered_from_the_cache_and_identical(built, tiny_model_dir):
    tmp = built["dir"]
    again = tmp / "again"
    again.mkdir()
    args = build_args(tmp, tmp / "papers.parquet", tiny_model_dir, DEMO_WRITER)
    args = [a.replace(str(tmp / "tasks.parquet"), str(again / "tasks.parquet"))
            .replace(str(tmp / "llm_summary.json"), str(again / "llm_summary.json")) for a in args]
    assert refiner_tasks.main(args) == 0
    assert json.loads((again / "llm_summary.json").read_text())["requests"] == 0
    assert (again / "tasks.parquet").read_bytes() == (tmp / "tasks.parquet").read_bytes()


def test_the_length_filter_runs_before_rubrics_and_references_are_asked(built, tiny_model_dir, tmp_path):
    tokens = sorted(built["tasks"]["prompt_tokens"].to_list())
    budget = tokens[len(tokens) // 2]
    args = build_args(tmp_path, built["dir"] / "papers.parquet", tiny_model_dir, DEMO_WRITER, budget=budget)
    args[args.index("--cache-dir") + 1] = str(built["dir"] / "cache")  # the questions and drafts come from the cache
    assert refiner_tasks.main(args) == 0
    counts = json.loads((tmp_path / "counts.json").read_text())
    tasks = read_tasks(str(tmp_path / "tasks.parquet"))
    assert counts["filtered_by_length"] >= len(tokens) // 2 - 1 and (tasks["prompt_tokens"] <= budget).all()
    summary = json.loads((tmp_path / "llm_summary.json").read_text())
    assert summary["requests"] == 0  # nothing new was asked for the filtered tasks
    assert summary["cache_hits"] < built["summary"]["requests"] + built["summary"]["cache_hits"]


def test_invalid_writer_answers_are_rejects_not_tasks(tmp_path, tiny_model_dir):
    """A writer answering questions with prose: every paper is a rejects row naming the invalid answer."""
    model = model_id(WRITER)

    def handle(req):
        body = json.loads(req.body)
        completion = chat_completion(WRITER, body)
        if "question" in json.dumps(body.get("response_format") or {}):
            completion["choices"][0]["message"]["content"] = "A good question would be about soil."
        return Reply(200, json.dumps(completion), content_type="application/json")

    with LoopbackServer() as server:
        server.routes["/v1/chat/completions"] = handle
        endpoint = {"kind": "external", "base_url": f"{server.url}/v1", "model": model, "invalid_retries": 1,
                    "limits": {"max_concurrency": 4, "timeout_s": 5, "max_retries": 1, "backoff_base_s": 0.01}}
        demo_papers(30).write_parquet(tmp_path / "papers.parquet")
        assert refiner_tasks.main(build_args(tmp_path, tmp_path / "papers.parquet", tiny_model_dir, endpoint,
                                             n=5)) == 1
    rejects = [json.loads(line) for line in (tmp_path / "rejects.jsonl").read_text().splitlines()]
    assert len(rejects) == 5 and all(r["reason"].startswith("question_invalid: not_json") for r in rejects)
    assert json.loads((tmp_path / "counts.json").read_text())["tasks"] == 0
    assert not (tmp_path / "tasks.parquet").exists()


def test_missing_references_are_asked_from_the_writer(sources, tiny_model_dir, tmp_path):
    rows = [{**r, "ref": None} for r in GOOD]
    pl.DataFrame(rows).write_parquet(tmp_path / "no_refs.parquet")
    block = {**REFINER["tasks"]["dataset"], "columns": COLUMNS, "ask_references": True}
    args = ["load", "--dataset", str(tmp_path / "no_refs.parquet"), "--dataset-json", json.dumps(block),
            "--policy-model", str(tiny_model_dir), "--prompt-json", json.dumps(PROMPT), "--max-prompt-tokens",
            "100000", "--writer-json", json.dumps(WRITER_BLOCK), "--endpoint", json.dumps(DEMO_WRITER),
            "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "tasks.parquet"), "--rejects",
            str(tmp_path / "rejects.jsonl"), "--counts", str(tmp_path / "counts.json"), "--llm-summary",
            str(tmp_path / "llm_summary.json"), "--llm-rejects", str(tmp_path / "llm_rejects.jsonl")]
    assert refiner_tasks.main(args) == 0
    counts = json.loads((tmp_path / "counts.json").read_text())
    tasks = read_tasks(str(tmp_path / "tasks.parquet"))
    written = counts["references_from_writer"]
    dropped = [json.loads(line) for line in (tmp_path / "rejects.jsonl").read_text().splitlines()]
    assert written + len(dropped) == len(GOOD) and written >= 4
    assert int(tasks["reference"].is_not_null().sum()) == written == counts["with_reference"]
    assert counts["made_by"]["reference"].startswith("dataset:no_refs, else demo stand-in refiner_writer")


def test_the_writer_stand_in_answers_each_kind_from_the_request_only():
    from workflow_scripts.datasets import refiner_writing as writing
    from workflow_scripts.demo.refiner_writer import key_terms
    from workflow_scripts.llm.request import request_body

    def answer(request):
        return WRITER.respond(request_body(request, model_id(WRITER)))

    title = "Contrastive Pretraining for Image Classification"
    question = json.loads(answer(writing.question_request(WRITER_BLOCK, title, "We study it.")))["question"]
    assert key_terms(title) == ["contrastive pretraining", "image classification"]
    assert "contrastive pretraining" in question and "image classification" in question
    tool_text = tool(("a-0", f"{title}\nContrastive pretraining improves image classification."),
                     ("b-0", "Graph Kernels Revisited\nGraph kernels compare molecules."))
    reasoning = json.loads(answer(writing.reasoning_request(WRITER_BLOCK, question, tool_text)))["reasoning"]
    assert "a-0" in reasoning and "b-0" in reasoning
    request = writing.rubrics_request(WRITER_BLOCK, question, reasoning, tool_text)
    rubrics = json.loads(answer(request))
    assert [r["title"] for r in rubrics["negative_rubrics"]] == ["Wrong-entity attribution", "Off-query padding"]
    assert any("contrastive pretraining" in r["title"] for r in rubrics["positive_rubrics"])
    reference = answer(writing.reference_request(WRITER_BLOCK, prompt_messages(PROMPT, question, reasoning,
                                                                              tool_text)))
    check = check_format(reference, ["a-0", "b-0"])
    assert check.ok and check.answer.cited_ids == ("a-0",)
    assert answer(request) == answer(request.with_seed(7))  # a retry answers the same: a function of the messages


@pytest.mark.parametrize("module", ["refiner_tasks", "refiner_search", "refiner_splits", "refiner_sft",
                                    "refiner_card"])
def test_every_step_has_a_help(module):
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", f"workflow_scripts.datasets.{module}", "--help"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "usage:" in out.stdout
