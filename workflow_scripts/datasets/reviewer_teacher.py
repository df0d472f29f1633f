"""The Reviewer SFT set: teacher requests for the prompt pool, then the filtered teacher reviews split into train/val.

    python -m workflow_scripts.datasets.reviewer_teacher requests --pool pool.parquet \\
        --params-json '{"temperature": 0.3, "max_tokens": 1400}' --out requests.jsonl
    python -m workflow_scripts.llm.batch --use teacher ... --requests requests.jsonl --answers answers.jsonl
    python -m workflow_scripts.datasets.reviewer_teacher build --pool pool.parquet --answers answers.jsonl \\
        --train-size 334 --val-size 100 --seed 1234 --model BASE_MODEL_DIR --teacher-label 'TEACHER NAME' \\
        --out-train train.parquet --out-val val.parquet --out-rejects rejects.jsonl --out-card README.md \\
        [--llm-summary llm_summary.json]

``requests``: one request line per pool paper (id = the paper's key, the pool's messages, the sampling params),
in the format :mod:`workflow_scripts.llm.batch` reads.

``build`` keeps an answer only when its status is ``ok`` and :func:`.reviewer_decision.parse_decision` finds one
decision; every other pool paper is a rejects row (file, record = key, reason): the answer's status with its problem
(``truncated``, ``invalid``, ``failed``, ``not_asked``), ``no_answer``, ``no_decision``, ``both_decisions``, or
``duplicate`` (the same review text, whitespace collapsed and case folded, as a paper earlier in key order). A kept
review's decision lines are written in their plain form (emphasis, quotes, bullets removed), so the student learns
the one line the parser reads. Kept papers are split by a seeded hash of their key: ``--val-size`` to val,
``--train-size`` to train, the rest counted as unused; with fewer kept than train + val, each split gets its
proportional share (said in the log and the card). Rows: key, venue, decision (the teacher's), prompt (the pool's
messages) and completion (one assistant message with the review): TRL's conversational prompt-completion format,
so the SFT loss is on the review only. The card gives the counts, the teacher's accept rate (overall, per split
and venue), prompt and completion token statistics with the base tokenizer, the teacher's model name (and, for a
demo endpoint, that a stand-in wrote the reviews) and the LLM run summary when given.
"""

from __future__ import annotations

import json
import logging
import sys
from collections import Counter
from pathlib import Path
from typing import Mapping, Sequence

import polars as pl

from workflow_scripts.common.cli import json_arg, parser, setup_logging
from workflow_scripts.common.io import Rejects, write_parquet_atomic, write_text_atomic
from workflow_scripts.datasets.card_text import md_table, number_stats, rate
from workflow_scripts.datasets.reviewer_decision import PREFIX, WORDS, parse_decision
from workflow_scripts.datasets.reviewer_pool import MESSAGE, hash_rank
from workflow_scripts.llm.batch import read_answer_rows, request_lines

log = logging.getLogger(__name__)

DECISION_LINE = {decision: f"{PREFIX}{word}." for word, decision in WORDS.items()}
SFT_SCHEMA: dict[str, pl.DataType] = {"key": pl.String, "venue": pl.String, "decision": pl.String,
                                      "prompt": pl.List(MESSAGE), "completion": pl.List(MESSAGE)}


def read_pool(path: str | Path) -> pl.DataFrame:
    frame = pl.read_parquet(path)
    missing = [c for c in ("key", "venue", "messages", "prompt_tokens") if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: not a reviewer prompt pool, missing column(s) {missing}")
    return frame.sort("key")


# ---------------------------------------------------------------------------------------------------------------------
# requests


def plain_decision_lines(text: str) -> str:
    """The review with each decision line in its plain form (``**I recommend ...**`` -> ``I recommend ...``)."""
    out = []
    for line in text.splitlines(keepends=True):
        decision = parse_decision(line).decision
        if decision is None:
            out.append(line)
        else:
            ending = line[len(line.rstrip("\r\n")):]
            out.append(DECISION_LINE[decision] + ending)
    return "".join(out)


def normalized_text(text: str) -> str:
    return " ".join(text.split()).casefold()


def filter_answers(pool: pl.DataFrame, answers: Mapping[str, dict], rejects: Rejects, file: str
                   ) -> tuple[list[dict], Counter]:
    """The kept rows in key order, and counts of what the filter did beside rejecting."""
    kept, seen, notes = [], {}, Counter()
    for key, venue, messages in pool.select("key", "venue", "messages").iter_rows():
        answer = answers.get(key)
        if answer is None:
            rejects.add(file, key, "no_answer: the answers file has no line for this paper")
            continue
        notes["answered"] += 1
        if answer.get("status") != "ok":
            rejects.add(file, key, f"{answer.get('status')}: {answer.get('problem')}", answer.get("raw"))
            continue
        text = answer.get("text") or ""
        parsed = parse_decision(text)
        if parsed.decision is None:
            rejects.add(file, key, f"{parsed.problem}: the review has no single decision line", text)
            continue
        review = plain_decision_lines(text)
        notes["decision_line_rewritten"] += review != text
        fingerprint = normalized_text(review)
        if fingerprint in seen:
            rejects.add(file, key, f"duplicate: the same review text as {seen[fingerprint]}")
            continue
        seen[fingerprint] = key
        kept.append({"key": key, "venue": venue, "decision": parsed.decision, "prompt": messages,
                     "completion": [{"role": "assistant", "content": review}]})
    return kept, notes


def split_sizes(kept: int, train_size: int, val_size: int) -> tuple[int, int]:
    """(train, val): the configured sizes, or with fewer kept papers each split's proportional share."""
    if kept >= train_size + val_size:
        return train_size, val_size
    val = round(kept * val_size / (train_size + val_size)) if train_size + val_size else 0
    return kept - val, val


def split(kept: Sequence[dict], train_size: int, val_size: int, seed: int) -> tuple[list[dict], list[dict], int]:
    """(train, val, unused count): papers ranked by a seeded hash of their key, val first; rows keep key order."""
    n_train, n_val = split_sizes(len(kept), train_size, val_size)
    ranked = sorted(kept, key=lambda row: hash_rank(seed, row["key"]))
    val_keys = {row["key"] for row in ranked[:n_val]}
    train_keys = {row["key"] for row in ranked[n_val:n_val + n_train]}
    return ([r for r in kept if r["key"] in train_keys], [r for r in kept if r["key"] in val_keys],
            len(kept) - n_train - n_val)


def token_stats(tokenizer, rows: Sequence[dict], prompt_tokens: Mapping[str, int]) -> dict:
    """Prompt (from the pool), completion and whole-sequence tokens with the base tokenizer's chat template."""
    completion, sequence = [], []
    for row in rows:
        text = tokenizer.apply_chat_template(row["prompt"] + row["completion"], tokenize=False)
        total = len(tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])
        sequence.append(total)
        completion.append(total - prompt_tokens[row["key"]])
    return {"prompt": number_stats([prompt_tokens[r["key"]] for r in rows]), "completion": number_stats(completion),
            "sequence": number_stats(sequence)}


def stand_in_doc(teacher_label: str, summary: Mapping | None) -> str | None:
    """The description of the demo stand-in that wrote the reviews, or None when a model wrote them."""
    stand_in = ((summary or {}).get("endpoint") or {}).get("stand_in")
    if stand_in:
        return stand_in["doc"]
    if teacher_label.startswith("demo/"):
        from workflow_scripts.llm.stand_in import load

        try:
            return load(teacher_label[len("demo/"):].split("@", 1)[0]).doc
        except (ValueError, ImportError, AttributeError):
            return "(no registered stand-in of that name)"
    return None


def render_card(stats: dict, teacher_label: str, summary: Mapping | None) -> str:
    c = stats["counts"]
    model = ((summary or {}).get("endpoint") or {}).get("model")
    lines = ["# Reviewer SFT set: teacher reviews", "",
             f"Teacher: {teacher_label}" + (f", model `{model}`." if model and model != teacher_label else ".")]
    doc = stand_in_doc(teacher_label, summary)
    if doc is not None:
        lines += ["", f"**The reviews in this dataset were written by the demo stand-in `{model or teacher_label}`, a "
                      f"deterministic simulation, not a language model.** {doc}"]
    lines += ["", "## Counts", "",
              md_table(["pool", "answered", "kept", "rejected", "train", "val", "unused"],
                       [[c["pool"], c["answered"], c["kept"], c["rejected"], c["train"], c["val"], c["unused"]]]), ""]
    if stats["short"]:
        lines += [f"Fewer papers kept ({c['kept']}) than train + val ({stats['train_size']} + {stats['val_size']}): "
                  "each split got its proportional share.", ""]
    lines += ["Rejects by reason:", "",
              md_table(["reason", "papers"], [[k, v] for k, v in stats["rejects"].items()]) if stats["rejects"]
              else "None.", "",
              f"Decision lines rewritten to their plain form: {stats['decision_line_rewritten']}.", "",
              "## Teacher accept rate", "",
              md_table(["set", "accept rate"], [[name, rate(a, n)] for name, (a, n) in stats["accept"].items()]), "",
              "## Tokens (base tokenizer)", "",
              md_table(["", "mean", "median", "max"],
                       [[name, t["mean"], t["median"], t["max"]] for name, t in stats["tokens"].items()]), "",
              "Sequence = prompt + review through the chat template, what SFT sees.", ""]
    if summary:
        lines += ["## LLM run", "",
                  md_table(["requests sent", "cache hits", "tokens in / out", "cached tokens in / out", "failures",
                            "wall s"],
                           [[summary.get("requests"), summary.get("cache_hits"),
                             f"{summary.get('tokens_in')} / {summary.get('tokens_out')}",
                             f"{summary.get('cached_tokens_in')} / {summary.get('cached_tokens_out')}",
                             sum((summary.get("failures") or {}).values()), summary.get("wall_s")]]), ""]
    return "\n".join(lines)


def build(pool: pl.DataFrame, answers: Mapping[str, dict], *, train_size: int, val_size: int, seed: int,
          answers_file: str) -> tuple[list[dict], list[dict], Rejects, dict]:
    rejects = Rejects()
    kept, notes = filter_answers(pool, answers, rejects, answers_file)
    train, val, unused = split(kept, train_size, val_size, seed)
    short = len(kept) < train_size + val_size
    if short:
        log.warning("%d review(s) kept, fewer than train %d + val %d: %d train, %d val (proportional)", len(kept),
                    train_size, val_size, len(train), len(val))

    def accepts(rows):
        return sum(r["decision"] == "accept" for r in rows), len(rows)

    accept = {"kept": accepts(kept), "train": accepts(train), "val": accepts(val)}
    for venue in sorted({r["venue"] for r in kept}):
        accept[f"kept, {venue}"] = accepts([r for r in kept if r["venue"] == venue])
    stats = {"counts": {"pool": pool.height, "answered": notes["answered"], "kept": len(kept),
                        "rejected": len(rejects), "train": len(train), "val": len(val), "unused": unused},
             "rejects": rejects.counts(), "decision_line_rewritten": notes["decision_line_rewritten"],
             "accept": accept, "short": short, "train_size": train_size, "val_size": val_size}
    log.info("%d pool paper(s), %d answered, %d kept (%s accept), %d rejected %s; train %d, val %d, unused %d",
             pool.height, notes["answered"], len(kept), rate(*accept["kept"]), len(rejects), rejects.counts(),
             len(train), len(val), unused)
    return train, val, rejects, stats


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("requests", help="one teacher request per pool paper")
    r.add_argument("--pool", required=True)
    r.add_argument("--params-json", type=json_arg, required=True, help="sampling parameters of every request")
    r.add_argument("--out", required=True)
    b = sub.add_parser("build", help="filter the answers and split them into train/val")
    b.add_argument("--pool", required=True)
    b.add_argument("--answers", required=True, help="llm.batch's answers file")
    b.add_argument("--train-size", type=int, required=True)
    b.add_argument("--val-size", type=int, required=True)
    b.add_argument("--seed", type=int, required=True)
    b.add_argument("--model", required=True, help="the base model (its tokenizer counts the tokens)")
    b.add_argument("--teacher-label", required=True, help="how the card names the teacher (plain text); a demo stand-in is recognised from "
                                                         "--llm-summary or a demo/... model name")
    b.add_argument("--llm-summary", default=None, help="llm.batch's run summary")
    for name in ("train", "val", "rejects", "card"):
        b.add_argument(f"--out-{name}", required=True)
    args = p.parse_args(argv)
    setup_logging(args.verbose)
    pool = read_pool(args.pool)
    if args.command == "requests":
        if not isinstance(args.params_json, dict):
            p.error("--params-json must be a JSON object")
        write_text_atomic(args.out, request_lines(pool.select("key", "messages").iter_rows(), args.params_json))
        log.info("%d teacher request(s) -> %s", pool.height, args.out)
        return 0
    if min(args.train_size, args.val_size) < 0:
        p.error("--train-size and --val-size must not be negative")
    answers = read_answer_rows(args.answers, pool["key"], complete=False)
    train, val, rejects, stats = build(pool, answers, train_size=args.train_size, val_size=args.val_size,
                                       seed=args.seed, answers_file=args.answers)
    rejects.write(args.out_rejects)
    if not train:
        log.error("no teacher review survived the filter for train (%d kept of %d): see %s", stats["counts"]["kept"],
                  pool.height, args.out_rejects)
        return 1
    from workflow_scripts.datasets.prompt_tokens import load_tokenizer

    prompt_tokens = dict(pool.select("key", "prompt_tokens").iter_rows())
    stats["tokens"] = token_stats(load_tokenizer(args.model), train + val, prompt_tokens)
    summary = json.loads(Path(args.llm_summary).read_text()) if args.llm_summary else None
    write_parquet_atomic(pl.DataFrame(train, schema=SFT_SCHEMA, orient="row"), args.out_train)
    write_parquet_atomic(pl.DataFrame(val, schema=SFT_SCHEMA, orient="row"), args.out_val)
    write_text_atomic(args.out_card, render_card(stats, args.teacher_label, summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
