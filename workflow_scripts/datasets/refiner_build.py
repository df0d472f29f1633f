"""Refiner tasks built from the harvested corpus: a question per sampled paper, the local search tool's output for it,
an agent-reasoning draft, rubrics and a reference refinement, all but the search written by the writer endpoint.

Why the questions come from the writer and not from a template: a templated question ("What does <title>
propose?") names the paper, so the search finds it at once and the task tests nothing; a writer asks what a
researcher would ask, in the paper's terms but without its title. The demo's stand-in writes templated questions
from a title's technical terms, which is enough to run every step.

Steps, in order (:func:`build_tasks`), each counted, each failure a rejects row naming the paper (record =
arxiv_id) and the reason:

1. ``n_questions`` papers with a title and an abstract, ranked by a seeded hash of their arxiv_id;
2. ``question`` request per paper (:mod:`.refiner_writing`); a failed or invalid answer: ``question_<status>``;
3. the question searched (:mod:`.refiner_search`, ``top_k`` passages); none sharing a term: ``no_search_hits``; a
   result the snippet parser cannot read back (an abstract quoting a source tag): ``tool_output_<kind>``; whether the
   paper itself was among the results is counted;
4. ``reasoning`` request: ``reasoning_<status>``;
5. the policy prompt rendered and counted with the policy tokenizer; over ``max_prompt_tokens``:
   ``prompt_too_long`` (the task is filtered, never cut), before any later request is spent on it;
6. ``rubrics`` and ``reference`` requests. Invalid rubrics reject the task (``rubrics_<status>``). A reference that
   fails (``reference_<status>``) or fails the format gate (:func:`.refiner_writing.reference_problem`) is left
   out (the task stays, with reference null, usable for GRPO and evaluation) and listed in the rejects too.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any, Mapping

import polars as pl

from workflow_scripts.common.io import Rejects
from workflow_scripts.datasets import refiner_writing as writing
from workflow_scripts.datasets.prompt_tokens import TokenCounter, token_stats
from workflow_scripts.datasets.refiner_schema import prompt_counter, prompt_messages, rubric_list, task_id
from workflow_scripts.datasets.refiner_search import SearchIndex, tool_output
from workflow_scripts.datasets.refiner_snippets import SnippetError, parse_tool_output
from workflow_scripts.datasets.stable_hash import hash_strings
from workflow_scripts.llm.client import LLMClient

log = logging.getLogger(__name__)

ORIGIN = "corpus"


def usable_papers(papers: pl.DataFrame) -> pl.DataFrame:
    text = ("title", "abstract")
    return papers.filter(*(pl.col(c).str.strip_chars().str.len_chars().fill_null(0) > 0 for c in text))


def sample_papers(papers: pl.DataFrame, n: int, seed: int) -> pl.DataFrame:
    """``n`` usable papers, the lowest by a seeded hash of their arxiv_id (in arxiv_id order)."""
    usable = usable_papers(papers).select("arxiv_id", "title", "abstract")
    ranked = usable.with_columns(pl.Series("rank", hash_strings(usable["arxiv_id"], seed))).sort("rank", "arxiv_id")
    return ranked.head(n).drop("rank").sort("arxiv_id")


def build_tasks(papers: pl.DataFrame, *, client: LLMClient, counter: TokenCounter, prompt: Mapping[str, str],
                writer: Mapping[str, Any], corpus: Mapping[str, Any], max_prompt_tokens: int, seed: int,
                papers_file: str) -> tuple[list[dict], Rejects, dict]:
    rejects = Rejects()
    notes: Counter = Counter()
    sample = sample_papers(papers, corpus["n_questions"], seed)
    index = SearchIndex.from_papers(papers.select("arxiv_id", "title", "abstract"),
                                    passage_chars=corpus["passage_chars"], **corpus["bm25"])
    log.info("%d paper(s) sampled of %d usable; asking the writer for questions", sample.height,
             usable_papers(papers).height)

    # 1-3: questions, then the search for each
    drafts: list[dict] = []
    papers_rows = list(sample.iter_rows(named=True))
    answers = client.complete_many([writing.question_request(writer, p["title"], p["abstract"])
                                    for p in papers_rows])
    for paper, answer in zip(papers_rows, answers):
        question, problem = writing.answer_value("question", answer)
        if problem:
            rejects.add(papers_file, paper["arxiv_id"], problem, answer.raw)
            continue
        notes["questions_ok"] += 1
        hits = index.search_passages(question, corpus["top_k"])
        if not hits:
            rejects.add(papers_file, paper["arxiv_id"], f"no_search_hits: no passage shares a term with {question!r}")
            continue
        text = tool_output([h.snippet for h in hits])
        try:  # the one parser reads back what the tool wrote (an abstract quoting a source tag cannot be read)
            snippets = [s.as_dict() for s in parse_tool_output(text)]
        except SnippetError as exc:
            rejects.add(papers_file, paper["arxiv_id"], f"tool_output_{exc}")
            continue
        notes["source_retrieved"] += any(h.paper_id == paper["arxiv_id"] for h in hits)
        drafts.append({"paper": paper["arxiv_id"], "question": question, "tool_output": text,
                       "snippets": snippets})

    # 4-5: reasoning drafts, then the prompt budget
    answers = client.complete_many([writing.reasoning_request(writer, d["question"], d["tool_output"])
                                    for d in drafts])
    fitting, all_tokens = [], []
    for draft, answer in zip(drafts, answers):
        reasoning, problem = writing.answer_value("reasoning", answer)
        if problem:
            rejects.add(papers_file, draft["paper"], problem, answer.raw)
            continue
        draft["reasoning"] = reasoning
        draft["messages"] = prompt_messages(prompt, draft["question"], reasoning, draft["tool_output"])
        draft["prompt_tokens"] = counter.prompt(draft["messages"])
        all_tokens.append(draft["prompt_tokens"])
        if draft["prompt_tokens"] > max_prompt_tokens:
            rejects.add(papers_file, draft["paper"], f"prompt_too_long: {draft['prompt_tokens']} tokens > "
                                                     f"{max_prompt_tokens} (filtered, not cut)", draft["question"])
            continue
        fitting.append(draft)

    # 6: rubrics and references
    asked = [writing.rubrics_request(writer, d["question"], d["reasoning"], d["tool_output"]) for d in fitting]
    asked += [writing.reference_request(writer, d["messages"]) for d in fitting]
    answers = client.complete_many(asked)
    rubric_answers, reference_answers = answers[:len(fitting)], answers[len(fitting):]
    rows = []
    for draft, rubric_answer, reference_answer in zip(fitting, rubric_answers, reference_answers):
        value, problem = writing.answer_value("rubrics", rubric_answer)
        if problem:
            rejects.add(papers_file, draft["paper"], problem, rubric_answer.raw)
            continue
        positive, _ = rubric_list(value["positive_rubrics"], "positive_rubrics")
        negative, _ = rubric_list(value["negative_rubrics"], "negative_rubrics")
        reference, problem = writing.written_reference(reference_answer, draft["snippets"])
        if problem:
            rejects.add(papers_file, draft["paper"], f"{problem} (task kept without a reference)",
                        reference_answer.raw or reference_answer.text)
        rows.append({"task_id": task_id(ORIGIN, draft["paper"], draft["question"]), "question": draft["question"],
                     "reasoning": draft["reasoning"], "tool_output": draft["tool_output"],
                     "snippets": draft["snippets"], "positive_rubrics": positive, "negative_rubrics": negative,
                     "reference": reference, "origin": ORIGIN, "messages": draft["messages"],
                     "prompt_tokens": draft["prompt_tokens"]})
    rows.sort(key=lambda r: r["task_id"])
    counts = {
        "papers": papers.height, "papers_usable": usable_papers(papers).height, "sampled": sample.height,
        "questions_ok": notes["questions_ok"], "searched": len(drafts),
        "search": {"passages": len(index.items), "top_k": corpus["top_k"],
                   "source_retrieved": notes["source_retrieved"],
                   "snippets_per_task": token_stats([len(d["snippets"]) for d in drafts])},
        "prompt_tokens_all": token_stats(all_tokens),
        "filtered_by_length": len(all_tokens) - len(fitting),
        "rubric_counts": {"positive": token_stats([len(r["positive_rubrics"]) for r in rows]),
                          "negative": token_stats([len(r["negative_rubrics"]) for r in rows])},
    }
    return rows, rejects, counts
