"""Refiner tasks loaded from a published dataset with ``datasets``, through a column mapping from config.

Where the rows come from (:func:`open_dataset`): a directory written by ``save_to_disk`` (``load_from_disk``; of a
DatasetDict the configured split), a parquet / JSON-lines / JSON / CSV file, or anything ``load_dataset`` reads: a
directory of such files or a downloaded hub snapshot (the split named by file names), or a hub id (``name``,
``split``, ``revision`` from config; needs the hub).

The mapping (``refiner.tasks.dataset.columns``) names, for each task field, where its value is: a column, or a
dotted path into a column holding an object or its JSON text (``ground_truth.positive_rubrics``), since whether the
published rows keep their rubrics at the top level or inside ``ground_truth`` is not documented. question,
tool_output and positive_rubrics must be mapped; reasoning, negative_rubrics, reference and id may be null (no
reasoning = an empty one for every row, counted; no negatives = none; no id = the tool output's hash keys the task).
A mapped column the dataset lacks stops the step naming the config key and the columns it has: the schema is
checked on load, not row by row.

Each row is checked (:func:`.refiner_schema.task_problem` and the parsers): a row without tool output, without a
snippet source, with a snippet id repeated with different text, with rubrics in another form than a list of
{title, description} (JSON text of one accepted; ``weight`` and other keys left out; a missing title kept as '' and
counted), without a positive rubric, or without a question is a rejects row (record = the row's id, else its index)
with the reason; so is a second row with the same task id (``duplicate_task``). The prompt is rendered and counted
as for corpus tasks; over the budget: ``prompt_too_long``, filtered, never cut. A dataset reference failing the
format gate is dropped from its task (listed in the rejects, the task kept); with ``ask_references`` the writer
endpoint writes the references a row lacks, from the policy prompt.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from pathlib import Path
from typing import Any, Iterable, Mapping

from workflow_scripts.common.io import Rejects
from workflow_scripts.datasets import refiner_writing as writing
from workflow_scripts.datasets.prompt_tokens import TokenCounter
from workflow_scripts.datasets.refiner_schema import (RubricError, prompt_counter, parsed_snippets, prompt_messages,
                                                      rubric_list, task_id, task_problem)

log = logging.getLogger(__name__)

REQUIRED_FIELDS = ("question", "tool_output", "positive_rubrics")
OPTIONAL_FIELDS = ("reasoning", "negative_rubrics", "reference", "id")
FILE_BUILDERS = {".parquet": "parquet", ".jsonl": "json", ".json": "json", ".csv": "csv"}


class DatasetError(ValueError):
    """A dataset that cannot give tasks at all (unreadable, wrong split, a mapped column missing)."""


def open_dataset(path: str, *, name: str | None = None, split: str = "train", revision: str | None = None):
    """The configured split of a dataset as a ``datasets.Dataset`` (see the module docstring for the sources)."""
    import datasets

    local = Path(path)
    if local.is_dir() and any((local / f).exists() for f in ("dataset_dict.json", "state.json")):
        loaded = datasets.load_from_disk(str(local))
        if isinstance(loaded, datasets.DatasetDict):
            if split not in loaded:
                raise DatasetError(f"{path}: no split {split!r} (config key refiner.tasks.dataset.split); it has "
                                   f"{sorted(loaded)}")
            loaded = loaded[split]
        return loaded
    if local.is_file():
        builder = FILE_BUILDERS.get(local.suffix.lower())
        if builder is None:
            raise DatasetError(f"{path}: cannot read a {local.suffix or 'suffix-less'} file; give one of "
                               f"{sorted(FILE_BUILDERS)} or a dataset directory")
        return datasets.load_dataset(builder, data_files={split: str(local)}, split=split)
    try:  # a revision names a hub commit; a local directory has none
        return datasets.load_dataset(path, name, split=split, **({} if local.is_dir() else {"revision": revision}))
    except ValueError as exc:  # an unknown split names the ones there are
        raise DatasetError(f"{path}: {exc}") from None


def label_of(path: str) -> str:
    """How the origin column names a dataset: its hub id, or the file or directory name."""
    local = Path(path)
    return local.stem if local.is_file() else (local.name if local.exists() else path)


def check_columns(columns: Mapping[str, str | None], available: Iterable[str], path: str) -> None:
    available = list(available)
    unmapped = [f for f in REQUIRED_FIELDS if not columns.get(f)]
    if unmapped:
        raise DatasetError(f"config key refiner.tasks.dataset.columns: {unmapped} must name a column")
    for field, spec in columns.items():
        if spec and spec.split(".", 1)[0] not in available:
            raise DatasetError(f"{path}: no column {spec.split('.', 1)[0]!r} (config key "
                               f"refiner.tasks.dataset.columns.{field}); the dataset has {available}")


def column_value(row: Mapping[str, Any], spec: str) -> Any:
    """The value at a column or a dotted path into it (objects or their JSON text); None where the path ends."""
    column, *keys = spec.split(".")
    value = row.get(column)
    for key in keys:
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                return None
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _text(value: Any, field: str) -> str | None:
    """A text field's value, None when empty; a non-text value raises ValueError naming the field."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"bad_value: {field} is a {type(value).__name__}, not text")
    return value if value.strip() else None


def candidate(row: Mapping[str, Any], columns: Mapping[str, str | None], notes: Counter
              ) -> tuple[dict | None, str | None]:
    """A row's task fields (snippets, rubrics in the table's form), or why it cannot be a task."""
    def get(field: str) -> Any:
        return column_value(row, columns[field]) if columns.get(field) else None

    try:
        out = {field: _text(get(field), field) for field in ("question", "tool_output", "reference")}
        reasoning = _text(get("reasoning"), "reasoning")
    except ValueError as exc:
        return None, str(exc)
    if columns.get("reasoning") and reasoning is None:
        return None, "no_reasoning: the mapped reasoning is empty"
    out["reasoning"] = reasoning or ""
    try:
        out["positive_rubrics"], untitled_pos = rubric_list(get("positive_rubrics"), "positive_rubrics")
        out["negative_rubrics"], untitled_neg = rubric_list(get("negative_rubrics"), "negative_rubrics")
    except RubricError as exc:
        return None, f"bad_rubrics: {exc}"
    problem = task_problem({**out, "question": out["question"] or ""})
    if problem:
        return None, problem
    out["snippets"] = [s.as_dict() for s in parsed_snippets(out["tool_output"])]
    notes["untitled_rubrics"] += untitled_pos + untitled_neg
    out["id"] = get("id")
    return out, None


def load_tasks(dataset: Iterable[Mapping[str, Any]], *, columns: Mapping[str, str | None], origin: str,
               counter: TokenCounter, prompt: Mapping[str, str], max_prompt_tokens: int, dataset_file: str,
               client=None, writer: Mapping[str, Any] | None = None) -> tuple[list[dict], Rejects, dict]:
    """Tasks from dataset rows (see the module docstring); with ``client`` and ``writer``, missing references are
    asked."""
    rejects = Rejects()
    notes: Counter = Counter()
    seen: dict[str, str] = {}
    rows, all_tokens = [], []
    for index, row in enumerate(dataset):
        notes["rows"] += 1
        task, problem = candidate(row, columns, notes)
        record = str(column_value(row, columns["id"]) if columns.get("id") else index)
        if problem:
            rejects.add(dataset_file, record, problem)
            continue
        source_key = str(task["id"]) if task["id"] is not None else \
            hashlib.sha256(task["tool_output"].encode("utf-8")).hexdigest()[:16]
        tid = task_id(origin, source_key, task["question"])
        if tid in seen:
            rejects.add(dataset_file, record, f"duplicate_task: the same question and source as row {seen[tid]}")
            continue
        seen[tid] = record
        messages = prompt_messages(prompt, task["question"], task["reasoning"], task["tool_output"])
        tokens = counter.prompt(messages)
        all_tokens.append(tokens)
        if tokens > max_prompt_tokens:
            rejects.add(dataset_file, record, f"prompt_too_long: {tokens} tokens > {max_prompt_tokens} "
                                              "(filtered, not cut)", task["question"])
            continue
        reference = task["reference"]
        if reference is not None:
            problem = writing.reference_problem(reference, [s["id"] for s in task["snippets"]])
            if problem:
                rejects.add(dataset_file, record, f"{problem} (task kept without a reference)", reference)
                reference = None
            else:
                notes["references_from_dataset"] += 1
        rows.append({"task_id": tid, "question": " ".join(task["question"].split()), "reasoning": task["reasoning"],
                     "tool_output": task["tool_output"], "snippets": task["snippets"],
                     "positive_rubrics": task["positive_rubrics"], "negative_rubrics": task["negative_rubrics"],
                     "reference": reference, "origin": origin, "messages": messages, "prompt_tokens": tokens,
                     "_record": record})
    if client is not None and writer is not None:
        _ask_references(rows, client, writer, rejects, dataset_file, notes)
    for r in rows:
        r.pop("_record")
    rows.sort(key=lambda r: r["task_id"])
    counts = {"rows": notes["rows"], "columns": dict(columns), "reasoning_mapped": bool(columns.get("reasoning")),
              "untitled_rubrics": notes["untitled_rubrics"], "filtered_by_length": sum(t > max_prompt_tokens
                                                                                       for t in all_tokens),
              "references_from_dataset": notes["references_from_dataset"],
              "references_from_writer": notes["references_from_writer"]}
    return rows, rejects, counts


def _ask_references(rows: list[dict], client, writer: Mapping[str, Any], rejects: Rejects, dataset_file: str,
                    notes: Counter) -> None:
    missing = [r for r in rows if r["reference"] is None]
    answers = client.complete_many([writing.reference_request(writer, r["messages"]) for r in missing])
    for row, answer in zip(missing, answers):
        reference, problem = writing.written_reference(answer, row["snippets"])
        if problem:
            rejects.add(dataset_file, row["_record"], f"{problem} (task kept without a reference)",
                        answer.raw or answer.text)
            continue
        row["reference"] = reference
        notes["references_from_writer"] += 1

