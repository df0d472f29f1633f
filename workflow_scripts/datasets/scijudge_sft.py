"""Build the SciJudge SFT format warm-up set: each train pair's prompt plus a short, well-formed assistant answer.

A policy that never writes a parseable ``<answer>X</answer>`` gets reward 0 on every GRPO sample, so GRPO has no
signal (the from-scratch demo model is such a policy). A short supervised pass on this set teaches the output shape
first. The completion is ``<reason>{one sentence}</reason>\\n<answer>{correct_answer}</answer>`` (``<think>`` for the
paper's prompt variant: the format of ``--prompt-variant``, as the rewards and the evaluation parse it), the sentence
built from the two papers' dates only (never the citation counts), e.g. "Paper B is older than paper A.": short and
of one shape on purpose, so that a tiny model learns where the tags open and close within a few dozen steps. Only
pairs of the train split are accepted, so no test pair (nor its label) reaches training.

Output columns: ``prompt`` (the pair's system + user messages, unchanged), ``completion`` (one assistant message),
the TRL SFTTrainer conversational prompt-completion format (loss on the completion only), plus ``pair_id`` and
``correct_answer`` for tracing (workflow_scripts.train.sft drops them).

    python -m workflow_scripts.datasets.scijudge_sft --pairs train.parquet --out sft.parquet [--max-pairs N] --seed S \\
        --prompt-variant card
"""

from __future__ import annotations

import logging
from typing import Mapping, Sequence

import polars as pl

from workflow_scripts.common.answers import AnswerFormat
from workflow_scripts.common.cli import parser, setup_logging
from workflow_scripts.common.io import write_parquet_atomic
from workflow_scripts.common.sampling import hash_sample
from workflow_scripts.datasets.scijudge_prompt import VARIANTS, answer_format

log = logging.getLogger(__name__)

REQUIRED = ("pair_id", "split", "messages", "correct_answer", "paper_a_date", "paper_b_date")
TRAIN_SPLIT = "train"


def reason_text(pair: Mapping) -> str:
    """One sentence placing the chosen paper (the correct answer) in time against the other, from the dates alone.

    Never from citation counts. Not the titles either: a from-scratch model cannot copy a title after a few dozen
    steps, and titles make the completion long and of varying length (past the demo's 32-token GRPO completions).
    """
    chosen = pair["correct_answer"]
    other = "B" if chosen == "A" else "A"
    date_c, date_o = pair[f"paper_{chosen.lower()}_date"], pair[f"paper_{other.lower()}_date"]
    when = "older than" if date_c < date_o else "newer than" if date_c > date_o else "as old as"
    return f"Paper {chosen} is {when} paper {other}."


def completion_text(pair: Mapping, answers: AnswerFormat = VARIANTS["card"]) -> str:
    return answers.completion(reason_text(pair), pair["correct_answer"])


def check_pairs(df: pl.DataFrame, path: str) -> None:
    """Refuse what would train on the wrong thing, naming the file and the first bad records."""
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: not a SciJudge pairs file, missing column(s) {missing}")
    if df.height == 0:
        raise ValueError(f"{path}: no pairs")
    checks = [
        # the warm-up trains on these answers: a test pair here would leak its label into the evaluated model
        (pl.col("split").ne_missing(TRAIN_SPLIT), f"split is not {TRAIN_SPLIT!r} (only train pairs may be used)"),
        (~pl.col("correct_answer").is_in(["A", "B"]) | pl.col("correct_answer").is_null(),
         "correct_answer not in {A, B}"),
        (pl.col("messages").list.len().fill_null(0) == 0, "no prompt messages"),
        (pl.col("messages").list.last().struct.field("role") == "assistant", "prompt ends with an assistant turn"),
        (pl.col("paper_a_date").is_null() | pl.col("paper_b_date").is_null(), "missing date"),
    ]
    for bad, why in checks:
        ids = df.filter(bad)["pair_id"].head(5).to_list()
        if ids:
            raise ValueError(f"{path}: {why} in pair(s) {ids}")
    dup = df.filter(pl.col("pair_id").is_duplicated())["pair_id"].unique().sort().head(5).to_list()
    if dup:
        raise ValueError(f"{path}: pair_id(s) occur more than once: {dup}")


def build(df: pl.DataFrame, path: str = "<pairs>", max_pairs: int | None = None, seed: int = 0,
          variant: str = "card") -> pl.DataFrame:
    """``max_pairs`` pairs (a seeded hash sample of pair_id, file order kept), each with the completion in the answer
    format of the prompt ``variant``."""
    answers = answer_format(variant)
    check_pairs(df, path)
    df = hash_sample(df, max_pairs, seed=seed)
    rows = df.select(REQUIRED).to_dicts()
    completions = []
    for row in rows:
        text = completion_text(row, answers)
        # the warm-up only helps if the rewards and the evaluation accept exactly what it teaches
        if answers.parse(text) != row["correct_answer"] or not answers.is_well_formatted(text):
            raise ValueError(f"{path}: pair {row['pair_id']!r}: the built completion does not parse: {text!r}")
        completions.append([{"role": "assistant", "content": text}])
    return pl.DataFrame(
        {
            "pair_id": df["pair_id"],
            # as scijudge_pairs wrote it, not re-rendered: exactly the prompts GRPO then trains on
            "prompt": df["messages"],
            "completion": pl.Series(completions, dtype=df.schema["messages"]),
            "correct_answer": df["correct_answer"],
        }
    )


def main(argv: Sequence[str] | None = None) -> None:
    p = parser(__doc__.split("\n\n")[0])
    p.add_argument("--pairs", required=True, help="SciJudge train pairs parquet (split 'train' only)")
    p.add_argument("--out", required=True, help="output SFT parquet (prompt, completion, pair_id, correct_answer)")
    p.add_argument("--max-pairs", type=int, default=None, help="keep this many pairs (seeded sample); all if unset")
    p.add_argument("--seed", type=int, required=True, help="seed of the --max-pairs sample")
    p.add_argument("--prompt-variant", required=True, choices=sorted(VARIANTS),
                   help="the prompt variant of the pairs (config scijudge.prompt): the answer format to teach")
    args = p.parse_args(argv)
    setup_logging(args.verbose)
    if args.max_pairs is not None and args.max_pairs < 1:
        p.error("--max-pairs must be at least 1")
    out = build(pl.read_parquet(args.pairs), args.pairs, args.max_pairs, args.seed, args.prompt_variant)
    write_parquet_atomic(out, args.out)
    n_a = int((out["correct_answer"] == "A").sum())
    log.info("wrote %d SFT examples (%d A, %d B) to %s", out.height, n_a, out.height - n_a, args.out)


if __name__ == "__main__":
    main()
