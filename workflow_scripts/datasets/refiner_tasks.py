"""Refiner tasks, two ways into one table (:data:`.refiner_schema.TASK_SCHEMA`): built from the corpus, or loaded from
a published dataset.

    python -m workflow_scripts.datasets.refiner_tasks build --papers papers.parquet --policy-model MODEL \\
        --prompt-json '{"system": ..., "user": ...}' --writer-json '{...}' --corpus-json '{...}' \\
        --max-prompt-tokens 6144 --seed 1234 --endpoint '{"kind": "demo", ...}' --cache-dir results/llm_cache \\
        --out tasks.parquet --rejects rejects.jsonl --counts counts.json --llm-summary llm_summary.json \\
        --llm-rejects llm_rejects.jsonl
    python -m workflow_scripts.datasets.refiner_tasks load --dataset PATH_OR_HUB_ID --dataset-json '{...}' \\
        --policy-model MODEL --prompt-json '{...}' --max-prompt-tokens 6144 --out ... --rejects ... --counts ... \\
        [--writer-json ... --endpoint ... --cache-dir ... --llm-summary ... --llm-rejects ...]
    python -m workflow_scripts.datasets.refiner_tasks download --repo ORG/NAME --revision main --out-dir DIR \\
        --marker marker.json

``build``: :mod:`.refiner_build` (questions, search, reasoning, rubrics and references through the writer endpoint
``llm.endpoints.writer``); ``load``: :mod:`.refiner_load` (the configured column mapping; with ``ask_references``
in the dataset block the writer fills the references a row lacks). ``download``: a hub dataset's snapshot into a
directory that ``load`` then reads offline (``huggingface_hub.snapshot_download``; the one step that needs the hub).

Both ways count every prompt with the policy's tokenizer (``--policy-model``: its chat template with the
generation prompt) and filter out, never cut, prompts over ``--max-prompt-tokens``. Outputs: the task table (rows
in task_id order), the rejects (file, record, reason), the counts (what each stage kept and dropped, prompt token
statistics, what made each field: the writer's model, a demo stand-in and its description, or the dataset) and,
when the writer was asked, its run summary and its own rejects (invalid and truncated answers).
"""

from __future__ import annotations

import logging
import sys
from typing import Any, Mapping

import polars as pl

from workflow_scripts.common.cli import json_arg, parser, setup_logging
from workflow_scripts.common.io import Rejects, write_json_atomic, write_parquet_atomic
from workflow_scripts.datasets.prompt_tokens import token_stats
from workflow_scripts.datasets.refiner_schema import check_prompt, prompt_counter, tasks_frame
from workflow_scripts.datasets.refiner_writing import check_writer

log = logging.getLogger(__name__)

FIELDS_MADE = ("question", "reasoning", "tool_output", "rubrics", "reference")


def writer_record(summary: Mapping[str, Any] | None) -> dict | None:
    """What the counts keep of the writer's run summary: model (and stand-in), calls, tokens, cost."""
    if not summary:
        return None
    endpoint = summary.get("endpoint") or {}
    keys = ("requests", "cache_hits", "tokens_in", "tokens_out", "cached_tokens_in", "cached_tokens_out", "not_asked",
            "failures", "invalid", "cost", "wall_s")
    return {"model": endpoint.get("model"), "stand_in": endpoint.get("stand_in"), **{k: summary.get(k) for k in keys}}


def summarize(rows: list[dict], rejects: Rejects, stage_counts: dict, *, mode: str, made_by: dict,
              max_prompt_tokens: int, policy_model: str, summary: Mapping | None) -> dict:
    return {
        "mode": mode, "tasks": len(rows), "with_reference": sum(r["reference"] is not None for r in rows),
        "origins": dict(sorted({o: sum(r["origin"] == o for r in rows) for o in {r["origin"] for r in rows}}.items())),
        "max_prompt_tokens": max_prompt_tokens, "policy_model": policy_model,
        "prompt_tokens": token_stats([r["prompt_tokens"] for r in rows]),
        "snippets": token_stats([len(r["snippets"]) for r in rows]),
        "rejected": len(rejects), "rejects": rejects.counts(), **stage_counts, "made_by": made_by,
        "writer": writer_record(summary),
    }


def _writer_label(client) -> str:
    p = client.provenance()
    return f"demo stand-in {p['stand_in']['name']} ({p['model']})" if p["stand_in"] else f"{p['model']} ({p['kind']})"


def _finish(args, rows: list[dict], rejects: Rejects, counts: dict) -> int:
    rejects.write(args.rejects)
    write_json_atomic(args.counts, counts)
    if not rows:
        log.error("no task kept: %s", counts["rejects"])
        return 1
    write_parquet_atomic(tasks_frame(rows), args.out)
    log.info("%d task(s) (%d with a reference) -> %s; %d rejected %s; %d filtered by prompt length (> %d tokens)",
             len(rows), counts["with_reference"], args.out, len(rejects), counts["rejects"],
             counts.get("filtered_by_length", 0), counts["max_prompt_tokens"])
    return 0


def run_build(args) -> int:
    from workflow_scripts.datasets.refiner_build import build_tasks
    from workflow_scripts.llm.endpoints import open_client

    papers = pl.read_parquet(args.papers, columns=["arxiv_id", "title", "abstract"])
    counter = prompt_counter(args.policy_model)
    with open_client("writer", args.endpoint, args.cache_dir, server_log=args.server_log) as client:
        rows, rejects, stages = build_tasks(papers, client=client, counter=counter, prompt=args.prompt_json,
                                            writer=args.writer_json, corpus=args.corpus_json,
                                            max_prompt_tokens=args.max_prompt_tokens, seed=args.seed,
                                            papers_file=args.papers)
        summary = client.summary()
        client.rejects.write(args.llm_rejects)
        label = _writer_label(client)
    write_json_atomic(args.llm_summary, summary)
    made_by = {field: label for field in FIELDS_MADE} | {"tool_output": "local BM25 search (bm25s) over the corpus"}
    counts = summarize(rows, rejects, stages, mode="corpus", made_by=made_by,
                       max_prompt_tokens=args.max_prompt_tokens, policy_model=args.policy_model, summary=summary)
    return _finish(args, rows, rejects, counts)


def run_load(args) -> int:
    from workflow_scripts.datasets.refiner_load import check_columns, label_of, load_tasks, open_dataset

    block = args.dataset_json
    dataset = open_dataset(args.dataset, name=block.get("name"), split=block.get("split", "train"),
                           revision=block.get("revision"))
    check_columns(block["columns"], dataset.column_names, args.dataset)
    if block.get("max_rows"):
        dataset = dataset.select(range(min(block["max_rows"], len(dataset))))
    origin = f"dataset:{block.get('label') or label_of(args.dataset)}"
    counter = prompt_counter(args.policy_model)
    common = {"columns": block["columns"], "origin": origin, "counter": counter, "prompt": args.prompt_json,
              "max_prompt_tokens": args.max_prompt_tokens, "dataset_file": args.dataset}
    summary, made_by = None, {field: origin for field in FIELDS_MADE}
    if block.get("ask_references"):
        if not (args.endpoint is not None and args.cache_dir and args.writer_json and args.llm_summary
                and args.llm_rejects):
            raise SystemExit("ask_references needs --writer-json, --endpoint, --cache-dir, --llm-summary and "
                             "--llm-rejects")
        from workflow_scripts.llm.endpoints import open_client

        with open_client("writer", args.endpoint, args.cache_dir, server_log=args.server_log) as client:
            rows, rejects, stages = load_tasks(dataset, client=client, writer=args.writer_json, **common)
            summary = client.summary()
            client.rejects.write(args.llm_rejects)
            made_by["reference"] = f"{origin}, else {_writer_label(client)}"
        write_json_atomic(args.llm_summary, summary)
    else:
        rows, rejects, stages = load_tasks(dataset, **common)
    counts = summarize(rows, rejects, stages, mode="dataset", made_by=made_by,
                       max_prompt_tokens=args.max_prompt_tokens, policy_model=args.policy_model, summary=summary)
    counts["dataset"] = {"path": args.dataset, **{k: block.get(k) for k in ("name", "split", "revision")}}
    return _finish(args, rows, rejects, counts)


def run_download(args) -> int:
    from huggingface_hub import snapshot_download

    path = snapshot_download(args.repo, repo_type="dataset", revision=args.revision, local_dir=args.out_dir)
    write_json_atomic(args.marker, {"repo_id": args.repo, "revision": args.revision, "snapshot": str(path)})
    log.info("dataset %s@%s -> %s", args.repo, args.revision, path)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="tasks from the corpus through the writer endpoint")
    b.add_argument("--papers", required=True, help="papers.parquet (arxiv_id, title, abstract)")
    b.add_argument("--corpus-json", type=json_arg, required=True, help="refiner.tasks.corpus as JSON")
    b.add_argument("--seed", type=int, required=True)
    lo = sub.add_parser("load", help="tasks from a published dataset through a column mapping")
    lo.add_argument("--dataset", required=True, help="a save_to_disk directory, a data file or directory, or a hub id")
    lo.add_argument("--dataset-json", type=json_arg, required=True, help="refiner.tasks.dataset as JSON")
    for sp in (b, lo):
        sp.add_argument("--policy-model", required=True, help="its tokenizer and chat template count the prompts")
        sp.add_argument("--prompt-json", type=json_arg, required=True, help="refiner.prompt as JSON")
        sp.add_argument("--max-prompt-tokens", type=int, required=True, help="longer prompts are filtered out")
        sp.add_argument("--writer-json", type=json_arg, required=sp is b, help="refiner.writer as JSON")
        sp.add_argument("--endpoint", type=json_arg, default=None, help="llm.endpoints.writer as JSON")
        sp.add_argument("--cache-dir", default=None, help="llm.cache_dir")
        sp.add_argument("--server-log", default=None)
        sp.add_argument("--out", required=True, help="task table (parquet)")
        sp.add_argument("--rejects", required=True)
        sp.add_argument("--counts", required=True)
        sp.add_argument("--llm-summary", required=sp is b, help="the writer's run summary (JSON)")
        sp.add_argument("--llm-rejects", required=sp is b, help="the writer's invalid and truncated answers")
    d = sub.add_parser("download", help="a hub dataset's snapshot into a directory")
    d.add_argument("--repo", required=True)
    d.add_argument("--revision", default="main")
    d.add_argument("--out-dir", required=True)
    d.add_argument("--marker", required=True, help="JSON: repo, revision, snapshot directory")
    args = p.parse_args(argv)
    setup_logging(args.verbose)
    if args.command == "download":
        return run_download(args)
    if args.max_prompt_tokens < 1:
        p.error("--max-prompt-tokens must be positive")
    check_prompt(args.prompt_json)
    if args.writer_json:
        check_writer(args.writer_json)
    if args.command == "build":
        if args.cache_dir is None or args.endpoint is None:
            p.error("build needs --endpoint and --cache-dir (the writer)")
        return run_build(args)
    return run_load(args)


if __name__ == "__main__":
    sys.exit(main())
