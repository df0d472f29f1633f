"""The Refiner task table: one schema for tasks loaded from a published dataset and tasks built from the corpus.

Columns (:data:`TASK_SCHEMA`): task_id (:func:`task_id`), question, reasoning (the agent's reasoning), tool_output
(the raw search-tool text with its ``<snippet id=ID>`` sources), snippets (parsed from tool_output by
:func:`workflow_scripts.datasets.refiner_snippets.parse_tool_output`), positive_rubrics and negative_rubrics
(lists of {title, description}), reference (a reference refinement, the SFT target; null when there is none),
origin (``dataset:<name>`` or ``corpus``), messages (the policy prompt: system + user from the configured templates)
and prompt_tokens (messages rendered by the policy's chat template with the generation prompt, counted with its
tokenizer).

:func:`task_problem` is the one check of a candidate row, whichever way it was made; :func:`prompt_messages` fills
the configured templates (``refiner.prompt.system`` / ``refiner.prompt.user``, ``str.format`` fields
``{question}``, ``{reasoning}``, ``{tool_output}``, literal braces doubled).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Mapping, Sequence

import polars as pl

from workflow_scripts.datasets.prompt_tokens import TokenCounter, load_tokenizer
from workflow_scripts.datasets.refiner_snippets import Snippet, SnippetError, parse_tool_output

MESSAGE = pl.Struct({"role": pl.String, "content": pl.String})
SNIPPET = pl.Struct({"id": pl.String, "text": pl.String})
RUBRIC = pl.Struct({"title": pl.String, "description": pl.String})
TASK_SCHEMA: dict[str, pl.DataType] = {
    "task_id": pl.String, "question": pl.String, "reasoning": pl.String, "tool_output": pl.String,
    "snippets": pl.List(SNIPPET), "positive_rubrics": pl.List(RUBRIC), "negative_rubrics": pl.List(RUBRIC),
    "reference": pl.String, "origin": pl.String, "messages": pl.List(MESSAGE), "prompt_tokens": pl.Int64,
}
PROMPT_FIELDS = ("question", "reasoning", "tool_output")


def task_id(origin: str, source_key: str, question: str) -> str:
    """A stable id: the start of the SHA-256 of the origin, the source's own key and the question."""
    basis = "\x1f".join((origin, source_key, " ".join(question.split())))
    return hashlib.sha256(basis.encode("utf-8")).hexdigest()[:16]


# ---------------------------------------------------------------------------------------------------------------------
# prompts


def check_template(template: str, key: str) -> None:
    """A template must format with the prompt fields (and no others), or every task would fail the same way."""
    try:
        template.format(**{name: "" for name in PROMPT_FIELDS})
    except (KeyError, IndexError, ValueError) as exc:
        raise ValueError(f"config key {key}: the template cannot be filled with the fields {PROMPT_FIELDS} "
                         f"({type(exc).__name__}: {exc}); double literal braces") from None


def check_prompt(prompt: Mapping[str, str]) -> None:
    check_template(prompt["system"], "refiner.prompt.system")
    check_template(prompt["user"], "refiner.prompt.user")
    missing = [name for name in PROMPT_FIELDS if "{" + name + "}" not in prompt["user"]]
    if missing:
        raise ValueError(f"config key refiner.prompt.user: no placeholder for {missing}")


def prompt_messages(prompt: Mapping[str, str], question: str, reasoning: str, tool_output: str) -> list[dict]:
    fields = {"question": question, "reasoning": reasoning, "tool_output": tool_output}
    return [{"role": "system", "content": prompt["system"].format(**fields)},
            {"role": "user", "content": prompt["user"].format(**fields)}]


def prompt_counter(model: str) -> TokenCounter:
    """Tokens of a policy prompt: the policy's tokenizer on the chat template's rendering (what the trainer feeds
    the model); a hub id is read from the local hub cache."""
    from workflow_scripts.train.hub_model import local_model

    return TokenCounter(load_tokenizer(local_model(model)))


# ---------------------------------------------------------------------------------------------------------------------
# rubrics


class RubricError(ValueError):
    """Rubrics in a form the table cannot hold; the message says what and where."""


def rubric_list(value: Any, which: str) -> tuple[list[dict], int]:
    """A rubric list (list of {title, description} objects, or its JSON text) in the table's form, and how many of
    its items had no title (kept with title ''; counted by the caller). Extra keys (``weight``) are left out."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise RubricError(f"{which} is a string that is not JSON") from None
    if value is None:
        return [], 0
    if not isinstance(value, (list, tuple)):
        raise RubricError(f"{which} is a {type(value).__name__}, not a list")
    out, untitled = [], 0
    for i, item in enumerate(value):
        if not isinstance(item, Mapping):
            raise RubricError(f"{which}[{i}] is a {type(item).__name__}, not an object")
        description, title = item.get("description"), item.get("title")
        if not isinstance(description, str) or not description.strip():
            raise RubricError(f"{which}[{i}] has no description")
        if title is not None and not isinstance(title, str):
            raise RubricError(f"{which}[{i}] has a title that is not a string")
        untitled += not (title or "").strip()
        out.append({"title": (title or "").strip(), "description": description.strip()})
    return out, untitled


# ---------------------------------------------------------------------------------------------------------------------
# the row check


def parsed_snippets(tool_output: str | None) -> list[Snippet]:
    """The sources of a row's tool output; SnippetError for a missing, source-less or ambiguous one."""
    if not isinstance(tool_output, str) or not tool_output.strip():
        raise SnippetError("no_tool_output", "the row has no tool output")
    snippets = parse_tool_output(tool_output)
    if not snippets:
        raise SnippetError("no_snippets", "the tool output holds no <snippet id=...> source")
    return snippets


def task_problem(row: Mapping[str, Any]) -> str | None:
    """Why a candidate row (question, reasoning, tool_output, positive_rubrics, negative_rubrics) cannot be a task, as
    ``<kind>: <detail>``, or None. Rubrics must already be in the table's form (:func:`rubric_list`)."""
    if not isinstance(row.get("question"), str) or not row["question"].strip():
        return "no_question: the question is empty"
    if not isinstance(row.get("reasoning"), str):
        return "no_reasoning: the row has no agent reasoning"
    try:
        parsed_snippets(row.get("tool_output"))
    except SnippetError as exc:
        return str(exc)
    if not row.get("positive_rubrics"):
        negatives = len(row.get("negative_rubrics") or ())
        return f"no_rubrics: no positive rubric ({negatives} negative)"
    return None


def tasks_frame(rows: Sequence[Mapping[str, Any]]) -> pl.DataFrame:
    """Task rows (dicts with the schema's keys; others are left out) as the table."""
    if not rows:
        return pl.DataFrame(schema=TASK_SCHEMA)
    return pl.DataFrame([{k: r.get(k) for k in TASK_SCHEMA} for r in rows], schema=TASK_SCHEMA, orient="row")


def read_tasks(path: str) -> pl.DataFrame:
    """A task table, checked to have the schema's columns and types."""
    frame = pl.read_parquet(path)
    missing = [c for c in TASK_SCHEMA if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: not a Refiner task table, missing column(s) {missing}")
    wrong = {c: str(frame.schema[c]) for c, t in TASK_SCHEMA.items() if frame.schema[c] != t}
    if wrong:
        raise ValueError(f"{path}: column(s) of the wrong type {wrong}")
    return frame
