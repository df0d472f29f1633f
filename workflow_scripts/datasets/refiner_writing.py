"""What the Refiner task builder asks the writer endpoint (``llm.endpoints.writer``), and how its answers are read.

Four kinds of request, each from config templates (``refiner.writer.<kind>.system`` / ``.user``, ``str.format``
fields in braces, literal braces doubled) and the shared sampling ``refiner.writer.params``:

* ``question`` ({title}, {abstract}): one research question that a paper helps answer; JSON ``{"question"}``;
* ``reasoning`` ({question}, {tool_output}): the search agent's working notes; JSON ``{"reasoning"}``;
* ``rubrics`` ({question}, {reasoning}, {tool_output}, and the item counts {min_positive}, {max_positive},
  {min_negative}, {max_negative} of ``refiner.writer.rubrics``): JSON ``{"positive_rubrics", "negative_rubrics"}``,
  lists of {title, description} within those counts;
* ``reference``: the policy's own prompt (``refiner.prompt``), answered in plain text: the reference refinement,
  checked afterwards by the reward's format gate (:func:`reference_problem`).

Each JSON kind has a strict schema, sent as the response format and checked locally by the LLM layer (an invalid
answer is asked again with another seed, then reported ``invalid``). :func:`answer_value` turns an answer row into
(value, None) or (None, ``<kind>_<status>: <problem>``) for the rejects.
"""

from __future__ import annotations

from typing import Any, Mapping

from workflow_scripts.llm.answers import Answer
from workflow_scripts.llm.request import ChatRequest

RUBRIC_LIMITS = ("min_positive", "max_positive", "min_negative", "max_negative")
KIND_FIELDS = {"question": ("title", "abstract"), "reasoning": ("question", "tool_output"),
               "rubrics": ("question", "reasoning", "tool_output", *RUBRIC_LIMITS)}
_TEXT = {"type": "string", "minLength": 1}


def _object(**properties: Mapping) -> dict:
    return {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}


QUESTION_SCHEMA = _object(question=_TEXT)
REASONING_SCHEMA = _object(reasoning=_TEXT)
RUBRIC_ITEM = _object(title=_TEXT, description=_TEXT)


def rubrics_schema(limits: Mapping[str, int]) -> dict:
    def array(low: int, high: int) -> dict:
        return {"type": "array", "items": RUBRIC_ITEM, "minItems": low, "maxItems": high}

    return _object(positive_rubrics=array(limits["min_positive"], limits["max_positive"]),
                   negative_rubrics=array(limits["min_negative"], limits["max_negative"]))


def check_writer(writer: Mapping[str, Any]) -> None:
    """Every writer template formats with its kind's fields, and the rubric counts make sense; ValueError naming
    the config key otherwise."""
    for kind, fields in KIND_FIELDS.items():
        for part in ("system", "user"):
            template = writer[kind][part]
            try:
                template.format(**{name: "" for name in fields})
            except (KeyError, IndexError, ValueError) as exc:
                raise ValueError(f"config key refiner.writer.{kind}.{part}: cannot be filled with the fields {fields} "
                                 f"({type(exc).__name__}: {exc}); double literal braces") from None
    r = writer["rubrics"]
    if not (1 <= r["min_positive"] <= r["max_positive"] and 0 <= r["min_negative"] <= r["max_negative"]):
        raise ValueError("config key refiner.writer.rubrics: need 1 <= min_positive <= max_positive and "
                         f"0 <= min_negative <= max_negative, got {dict(r)}")


def _messages(writer: Mapping[str, Any], kind: str, **fields: str) -> list[dict]:
    block = writer[kind]
    return [{"role": "system", "content": block["system"].format(**fields)},
            {"role": "user", "content": block["user"].format(**fields)}]


def question_request(writer: Mapping[str, Any], title: str, abstract: str) -> ChatRequest:
    return ChatRequest(_messages(writer, "question", title=title, abstract=abstract), writer["params"],
                       QUESTION_SCHEMA)


def reasoning_request(writer: Mapping[str, Any], question: str, tool_output: str) -> ChatRequest:
    return ChatRequest(_messages(writer, "reasoning", question=question, tool_output=tool_output), writer["params"],
                       REASONING_SCHEMA)


def rubrics_request(writer: Mapping[str, Any], question: str, reasoning: str, tool_output: str) -> ChatRequest:
    limits = {k: str(writer["rubrics"][k]) for k in RUBRIC_LIMITS}
    return ChatRequest(_messages(writer, "rubrics", question=question, reasoning=reasoning, tool_output=tool_output,
                                 **limits), writer["params"], rubrics_schema(writer["rubrics"]))


def reference_request(writer: Mapping[str, Any], policy_messages: list[dict]) -> ChatRequest:
    return ChatRequest(policy_messages, writer["params"])


def answer_value(kind: str, answer: Answer) -> tuple[Any, str | None]:
    """The answer's value (the JSON field of its kind, the rubric object, or the reference text), or why not."""
    if not answer.ok:
        return None, f"{kind}_{answer.status}: {answer.problem}"
    if kind == "reference":
        return answer.text, None
    if kind == "rubrics":
        return answer.json, None
    return " ".join(str(answer.json[kind]).split()), None


def reference_problem(text: str, known_ids: list[str]) -> str | None:
    """Why a reference refinement cannot be an SFT target, or None: the reward's format gate (one ``<answer>``
    block, every cited id in the tool output) and at least one citation."""
    from workflow_scripts.train.rewards.refiner_claims import check_format

    check = check_format(text or "", known_ids)
    if not check.ok:
        return f"reference_{check.problem}"
    if not check.answer.cited_ids:
        return "reference_uncited: the answer cites no snippet"
    return None


def written_reference(answer: Answer, snippets: list[dict]) -> tuple[str | None, str | None]:
    """The writer's reference refinement for a task with these snippets, or None and why it cannot be a target."""
    reference, problem = answer_value("reference", answer)
    problem = problem or reference_problem(reference, [s["id"] for s in snippets])
    return (None, problem) if problem else (reference, None)
