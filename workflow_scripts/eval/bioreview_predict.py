"""BioReview predictions: a model's concern list for every article of a split, parsed into the evaluation's table.

    python -m workflow_scripts.eval.bioreview_predict --model MODEL_DIR --prompts sft/test.parquet \\
        --gen-json '{"temperature": 0.1, "top_p": 0.9, "repetition_penalty": 1.05, "max_new_tokens": 4096,
                     "chat_template_kwargs": {"enable_thinking": false}}' --label tuned \\
        --out predictions/tuned.parquet --summary predictions/tuned.json

The prompts are the split's SFT rows (datasets.bioreview_sft: the card's system prompt and the article cut to the
same budget and counter as training), generated with the shared backends (eval.generation: ``hf`` or ``vllm``),
each request seeded from the run's seed and the article id. An answer is read as the model was trained to write it:
the whole output one JSON array (``parse_ok``). Otherwise the reader of the extraction answers takes over (a fenced
block, then the span from the first ``[`` to the last ``]``), ``parse_ok`` is false and the concerns are what it
found; an output with no array at all is an article answered with no concern. Array items that are not an object
with a non-blank string ``text`` are dropped; a category or severity outside the card's lists is kept as null.
Every case is counted per model in ``--summary`` (parse failures, fallbacks, truncations, items dropped).

Output (eval.concern_tables' predictions table): article_id, model, concerns [{text, category, severity}], parse_ok,
plus the raw generation, num_tokens and finished.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path
from typing import Any, Mapping, Sequence

import polars as pl

from workflow_scripts.common.cli import json_arg, parser, setup_logging
from workflow_scripts.common.io import write_json_atomic, write_parquet_atomic
from workflow_scripts.datasets.bioreview_extraction import NotAnArray, parse_array
from workflow_scripts.datasets.bioreview_prompts import CATEGORIES, SEVERITIES
from workflow_scripts.eval.concern_tables import PREDICTIONS_SCHEMA

log = logging.getLogger(__name__)

PARSE_STATUSES = ("json", "fallback", "failed")


def read_answer(text: str) -> tuple[list[Any], str]:
    """The answer's array items and how they were found: ``json`` (the whole output), ``fallback`` (a fenced block or
    the ``[...]`` span), ``failed`` (no array: no items)."""
    try:
        value = json.loads(text.strip())
        if isinstance(value, list):
            return value, "json"
    except ValueError:
        pass
    try:
        return parse_array(text), "fallback"
    except NotAnArray:
        return [], "failed"


def concern_of(item: Any) -> dict | None:
    """An item as a predicted concern, or None when it has no usable text."""
    if not isinstance(item, dict) or not isinstance(item.get("text"), str) or not item["text"].strip():
        return None
    category, severity = item.get("category"), item.get("severity")
    return {"text": item["text"].strip(), "category": category if category in CATEGORIES else None,
            "severity": severity if severity in SEVERITIES else None}


def parse_generations(article_ids: Sequence[str], texts: Sequence[str], label: str) -> tuple[list[dict], dict]:
    """One predictions row per article and the counts of what parsing found."""
    rows, counts = [], Counter()
    for article_id, text in zip(article_ids, texts, strict=True):
        items, status = read_answer(text)
        counts[status] += 1
        concerns = [c for c in map(concern_of, items) if c is not None]
        counts["items"] += len(items)
        counts["items_dropped"] += len(items) - len(concerns)
        counts["concerns"] += len(concerns)
        rows.append({"article_id": article_id, "model": label, "concerns": concerns, "parse_ok": status == "json"})
    return rows, {key: counts[key] for key in (*PARSE_STATUSES, "items", "items_dropped", "concerns")}


def predict(model: str, prompts_path: str | Path, gen: Mapping[str, Any], label: str) -> tuple[pl.DataFrame, dict]:
    from workflow_scripts.eval.generation import GenConfig, load_generator, request_seed

    prompts = pl.read_parquet(prompts_path)
    missing = [c for c in ("article_id", "prompt") if c not in prompts.columns]
    if missing:
        raise ValueError(f"{prompts_path}: missing column(s) {missing}; expected bioreview_sft rows")
    cfg = GenConfig.from_dict(gen)
    ids = prompts["article_id"].to_list()
    generations = load_generator(model, cfg).generate(prompts["prompt"].to_list(),
                                                      seeds=[request_seed(cfg.seed, a) for a in ids])
    rows, counts = parse_generations(ids, [g.text for g in generations], label)
    frame = pl.DataFrame(rows, schema=PREDICTIONS_SCHEMA).with_columns(
        pl.Series("generation", [g.text for g in generations], dtype=pl.String),
        pl.Series("num_tokens", [g.num_tokens for g in generations], dtype=pl.Int32),
        pl.Series("finished", [g.finished for g in generations], dtype=pl.Boolean),
    )
    summary = {"model": label, "model_path": str(model), "articles": frame.height, "parse": counts,
               "truncated": int((~frame["finished"]).sum()), "generation": {**gen, "batch_size": cfg.batch_size}}
    return frame, summary


def main(argv: Sequence[str] | None = None) -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="save_pretrained directory of the model (or a hub id)")
    p.add_argument("--prompts", required=True, help="the split's SFT rows (article_id, prompt)")
    p.add_argument("--gen-json", type=json_arg, default={}, help="eval.generation.GenConfig settings as JSON")
    p.add_argument("--batch-size", type=int, default=None, help="prompts per generate() call: speed and memory only")
    p.add_argument("--label", required=True, help="the model's name in the metrics")
    p.add_argument("--out", required=True, help="predictions parquet")
    p.add_argument("--summary", required=True, help="counts JSON (parse failures, fallbacks, truncations)")
    args = p.parse_args(argv)
    setup_logging(args.verbose)
    gen = dict(args.gen_json, **({"batch_size": args.batch_size} if args.batch_size else {}))
    frame, summary = predict(args.model, args.prompts, gen, args.label)
    write_parquet_atomic(frame, args.out)
    write_json_atomic(args.summary, summary)
    log.info("%s: %d articles, parse %s, %d truncated", args.label, frame.height, summary["parse"],
             summary["truncated"])


if __name__ == "__main__":
    main()
