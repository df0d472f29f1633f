"""Reviewer evaluation: accept/reject decisions on the benchmark from each model, then the card's metrics.

    python -m workflow_scripts.eval.reviewer predict --model DIR --benchmark benchmark.parquet --gen-json JSON \\
        [--batch-size N] --label student --out predictions/student.parquet
    python -m workflow_scripts.eval.reviewer requests --benchmark benchmark.parquet --params-json JSON \\
        --top-logprobs K --out requests.jsonl
    python -m workflow_scripts.llm.batch --use teacher ... --requests requests.jsonl --answers answers.jsonl
    python -m workflow_scripts.eval.reviewer from-answers --benchmark benchmark.parquet --answers answers.jsonl \\
        --label teacher --out predictions/teacher.parquet
    python -m workflow_scripts.eval.reviewer constant --benchmark benchmark.parquet --decision accept \\
        --label always_accept --out predictions/always_accept.parquet
    python -m workflow_scripts.eval.reviewer metrics --predictions P1 --predictions P2 ... --out-json metrics.json \\
        --out-md metrics.md --out-reliability-png reliability.png --out-rates-png accept_rates.png \\
        --out-generations-jsonl generations.jsonl [--bootstrap N --ci-level L --seed S --bins B \\
        --unparsed-as reject|exclude --reference-accept-rate R --provenance JSON]

Every predictions file has one row per benchmark paper (PREDICTION_SCHEMA), whatever made it: a local model
(``predict``, hf or vllm), the teacher's endpoint (``from-answers``, backend ``endpoint``) or a constant answer
(``constant``). The decision is read by the parser the teacher filter uses (datasets.reviewer_decision), so a
review kept for training and a benchmark answer are read alike; ``parse_problem`` says why there is none
(``no_decision``, ``both_decisions``, ``truncated`` when the output was cut before any decision line, or an
endpoint answer's status). ``p_accept`` comes from the log-probabilities at the decision word
(eval.review_decision_probability). The metrics are computed in eval.reviewer_metrics.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Mapping, Sequence

import polars as pl

from workflow_scripts.common.cli import json_arg, parser, setup_logging
from workflow_scripts.common.io import write_bytes_atomic, write_json_atomic, write_parquet_atomic, write_text_atomic
from workflow_scripts.datasets.reviewer_decision import parse_decision
from workflow_scripts.eval import reviewer_metrics
from workflow_scripts.eval.generation import GenConfig, load_generator, require_backend
from workflow_scripts.eval.review_decision_probability import p_accept_of_chat_logprobs, p_accept_of_generation
from workflow_scripts.llm.batch import read_answer_rows, request_lines

log = logging.getLogger(__name__)

PAPER_COLUMNS = {"key": pl.String, "source": pl.String, "venue": pl.String, "paper_id": pl.String,
                 "title": pl.String, "label": pl.Boolean}  # label: true = accepted
RUN_COLUMNS = {"model": pl.String,  # the label the metrics show
               "backend": pl.String}  # hf, vllm, endpoint or constant
OUTPUT_COLUMNS: dict[str, pl.DataType] = {
    "generation": pl.String,  # the review as generated (null for a constant)
    "num_tokens": pl.Int32,  # generated tokens (null where unknown)
    "finished": pl.Boolean,  # False when the token limit cut the output
    "decision": pl.String,  # accept / reject; null when unparsed
    "parse_problem": pl.String,  # why there is no decision, else null
    "p_accept": pl.Float64,  # p(accept) at the decision word, null where it cannot be had
    "latency_s": pl.Float64,  # wall time of the paper's batch / the batch's size
}
PREDICTION_SCHEMA: dict[str, pl.DataType] = {**PAPER_COLUMNS, **RUN_COLUMNS, **OUTPUT_COLUMNS}
DECISIONS = ("accept", "reject")
DEFAULT_TOP_LOGPROBS = 20  # vllm's default cap per request


# ----------------------------------------------------------------------------------------------------------- inputs


def read_benchmark(path: str | Path) -> pl.DataFrame:
    frame = pl.read_parquet(path)
    missing = [c for c in (*PAPER_COLUMNS, "messages") if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: not a reviewer benchmark, missing column(s) {missing}")
    duplicated = frame.filter(pl.col("key").is_duplicated())["key"].unique().sort().to_list()
    if duplicated:
        raise ValueError(f"{path}: key(s) occur more than once: {duplicated[:5]}")
    unlabelled = frame.filter(pl.col("label").is_null())["key"].to_list()
    if frame.schema["label"] != pl.Boolean or unlabelled:
        raise ValueError(f"{path}: label must be a boolean on every paper (true = accepted); "
                         f"type {frame.schema['label']}, unlabelled: {unlabelled[:5]}")
    return frame.sort("key")


def read_predictions(path: str | Path) -> pl.DataFrame:
    """One model's predictions; the metrics refuse a file they would misread."""
    frame = pl.read_parquet(path)
    missing = [c for c in PREDICTION_SCHEMA if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: not a reviewer predictions file, missing column(s) {missing}")
    models = frame["model"].unique().to_list()
    if len(models) != 1:
        raise ValueError(f"{path}: one model per predictions file, found {models}")
    duplicated = frame.filter(pl.col("key").is_duplicated())["key"].unique().sort().to_list()
    if duplicated:
        raise ValueError(f"{path}: paper(s) predicted more than once: {duplicated[:5]}")
    bad = frame.filter(pl.col("decision").is_not_null() & ~pl.col("decision").is_in(DECISIONS))
    if bad.height:
        raise ValueError(f"{path}: paper {bad['key'][0]!r} has decision {bad['decision'][0]!r}; "
                         f"allowed: {list(DECISIONS)} or null")
    return frame.select([pl.col(c).cast(t) for c, t in PREDICTION_SCHEMA.items()]).sort("key")


def predictions_frame(benchmark: pl.DataFrame, label: str, backend: str, rows: Sequence[Mapping[str, Any]]
                      ) -> pl.DataFrame:
    """The predictions table: the benchmark's paper columns, then one row of model columns per paper."""
    outputs = pl.DataFrame([{c: r.get(c) for c in OUTPUT_COLUMNS} for r in rows], schema=OUTPUT_COLUMNS,
                           orient="row")
    run = pl.DataFrame({"model": [label] * benchmark.height, "backend": [backend] * benchmark.height},
                       schema=RUN_COLUMNS)
    papers = benchmark.select([pl.col(c).cast(t) for c, t in PAPER_COLUMNS.items()])
    return pl.concat([papers, run, outputs], how="horizontal")


def _decision(text: str | None, finished: bool | None) -> tuple[str | None, str | None, int | None]:
    """(decision, parse_problem, offset of the decision word)."""
    parsed = parse_decision(text)
    problem = parsed.problem
    if problem == "no_decision" and finished is False:
        problem = "truncated"  # the token limit came before any decision line
    return parsed.decision, problem, parsed.offset


def _log_summary(frame: pl.DataFrame, path: str | Path) -> None:
    parsed = frame.filter(pl.col("decision").is_not_null())
    problems = dict(frame.group_by("parse_problem").len().drop_nulls().sort("parse_problem").iter_rows())
    without_p = parsed.filter(pl.col("p_accept").is_null()).height
    log.info("wrote %d prediction(s) of %s to %s: %d accept, %d reject, unparsed %s", frame.height,
             frame["model"][0] if frame.height else "?", path, (parsed["decision"] == "accept").sum(),
             (parsed["decision"] == "reject").sum(), problems or 0)
    if without_p:
        log.warning("%d parsed decision(s) without p(accept): neither decision word among the top log-probabilities "
                    "at the decision token (or no log-probabilities)", without_p)


# ------------------------------------------------------------------------------------------------------ predictions


def predict(model: str, benchmark_path: str | Path, gen: Mapping[str, Any], label: str) -> pl.DataFrame:
    """Generate a review per benchmark paper with the given settings, log-probabilities on."""
    cfg = GenConfig.from_dict(gen)
    if not cfg.top_logprobs:
        cfg.top_logprobs = DEFAULT_TOP_LOGPROBS
        log.info("top_logprobs not set: asking %d per token for p(accept)", cfg.top_logprobs)
    require_backend(cfg.backend)  # a missing backend fails before anything is read or loaded
    benchmark = read_benchmark(benchmark_path)
    log.info("generating reviews of %d paper(s) with %s", benchmark.height, model)
    gens = load_generator(model, cfg).generate(benchmark["messages"].to_list())
    rows = []
    for g in gens:
        decision, problem, offset = _decision(g.text, g.finished)
        p = None if offset is None else p_accept_of_generation(g, offset)
        rows.append({"generation": g.text, "num_tokens": g.num_tokens, "finished": g.finished, "decision": decision,
                     "parse_problem": problem, "p_accept": p, "latency_s": g.latency_s})
    return predictions_frame(benchmark, label, cfg.backend, rows)


def from_answers(benchmark_path: str | Path, answers_path: str | Path, label: str) -> pl.DataFrame:
    """The endpoint's answers as predictions; an answer that is not ok is an unparsed paper with its status."""
    benchmark = read_benchmark(benchmark_path)
    answers = read_answer_rows(answers_path, benchmark["key"], complete=True)
    rows = []
    for key in benchmark["key"]:
        a = answers[key]
        text = a.get("text") if a.get("text") is not None else a.get("raw")
        finish = a.get("finish_reason")
        row = {"generation": text, "num_tokens": (a.get("usage") or {}).get("completion_tokens"),
               "finished": None if finish is None else finish != "length", "latency_s": a.get("latency_s")}
        if a["status"] == "ok":
            decision, problem, offset = _decision(text, row["finished"])
            p = None if offset is None or not a.get("logprobs") else p_accept_of_chat_logprobs(a["logprobs"], text,
                                                                                               offset)
            row.update(decision=decision, parse_problem=problem, p_accept=p)
        else:
            row.update(decision=None, parse_problem=a["status"], p_accept=None)
        rows.append(row)
    return predictions_frame(benchmark, label, "endpoint", rows)


def constant(benchmark_path: str | Path, decision: str, label: str) -> pl.DataFrame:
    """The same decision for every paper (always-accept: the baseline a skewed benchmark needs), p_accept 1 or 0."""
    if decision not in DECISIONS:
        raise ValueError(f"decision {decision!r}: choose one of {list(DECISIONS)}")
    benchmark = read_benchmark(benchmark_path)
    row = {"decision": decision, "p_accept": 1.0 if decision == "accept" else 0.0}
    return predictions_frame(benchmark, label, "constant", [row] * benchmark.height)


# -------------------------------------------------------------------------------------------------------------- cli


def main(argv: Sequence[str] | None = None) -> None:
    p = parser(__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    pr = sub.add_parser("predict", formatter_class=p.formatter_class, help="a local model's reviews and decisions")
    pr.add_argument("--model", required=True, help="save_pretrained directory of the model to evaluate")
    pr.add_argument("--benchmark", required=True, help="benchmark parquet (key, source, venue, paper_id, title, "
                                                       "messages, label)")
    pr.add_argument("--gen-json", type=json_arg, default={},
                    help="generation settings (workflow_scripts.eval.generation.GenConfig); top_logprobs defaults to "
                         f"{DEFAULT_TOP_LOGPROBS} here")
    pr.add_argument("--batch-size", type=int, default=None,
                    help="prompts per generate() call (overrides --gen-json): speed and memory only")
    pr.add_argument("--label", required=True, help="the model's name in the metrics")
    pr.add_argument("--out", required=True, help="predictions parquet")
    rq = sub.add_parser("requests", formatter_class=p.formatter_class,
                        help="the benchmark as request lines for workflow_scripts.llm.batch")
    rq.add_argument("--benchmark", required=True)
    rq.add_argument("--params-json", type=json_arg, required=True,
                    help='sampling params, e.g. {"temperature": 0.2, "top_p": 0.9, "max_tokens": 1400}')
    rq.add_argument("--top-logprobs", type=int, required=True, help="alternatives per token (for p(accept))")
    rq.add_argument("--out", required=True, help="requests JSONL")
    fa = sub.add_parser("from-answers", formatter_class=p.formatter_class,
                        help="predictions from the answers llm.batch wrote for those requests")
    fa.add_argument("--benchmark", required=True)
    fa.add_argument("--answers", required=True, help="answers JSONL of workflow_scripts.llm.batch")
    fa.add_argument("--label", required=True)
    fa.add_argument("--out", required=True)
    co = sub.add_parser("constant", formatter_class=p.formatter_class, help="one decision for every paper")
    co.add_argument("--benchmark", required=True)
    co.add_argument("--decision", required=True, choices=DECISIONS)
    co.add_argument("--label", required=True)
    co.add_argument("--out", required=True)
    me = sub.add_parser("metrics", formatter_class=p.formatter_class,
                        help="decision metrics, calibration, tables and figures of one or more predictions files")
    me.add_argument("--predictions", required=True, action="append",
                    help="predictions parquet, repeated; the tables keep this order")
    me.add_argument("--out-json", required=True)
    me.add_argument("--out-md", required=True)
    me.add_argument("--out-reliability-png", required=True)
    me.add_argument("--out-rates-png", required=True)
    me.add_argument("--out-generations-jsonl", required=True, help="every model's per-paper output")
    me.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples of papers (0: no CI)")
    me.add_argument("--ci-level", type=float, default=0.95)
    me.add_argument("--seed", type=int, default=1234)
    me.add_argument("--bins", type=int, default=5, help="equal-mass bins of the reliability diagram and ECE")
    me.add_argument("--unparsed-as", choices=reviewer_metrics.UNPARSED_AS, default="reject",
                    help="an output without a decision counts as a reject, or the paper is left out of that "
                         "model's decision metrics")
    me.add_argument("--reference-accept-rate", type=float, default=None,
                    help="the reference's true accept rate, shown next to this benchmark's")
    me.add_argument("--provenance", type=json_arg, default=None,
                    help='{"label": "what made it"}, e.g. {"teacher": "demo stand-in reviewer_teacher@1"}')
    args = p.parse_args(argv)
    setup_logging(args.verbose)
    if args.command == "predict":
        gen = args.gen_json if args.batch_size is None else {**args.gen_json, "batch_size": args.batch_size}
        frame = predict(args.model, args.benchmark, gen, args.label)
    elif args.command == "from-answers":
        frame = from_answers(args.benchmark, args.answers, args.label)
    elif args.command == "constant":
        frame = constant(args.benchmark, args.decision, args.label)
    elif args.command == "requests":
        benchmark = read_benchmark(args.benchmark)
        write_text_atomic(args.out, request_lines(benchmark.select("key", "messages").iter_rows(), args.params_json, args.top_logprobs))
        log.info("wrote %d request(s) to %s", benchmark.height, args.out)
        return
    else:
        _metrics(args)
        return
    write_parquet_atomic(frame, args.out)
    _log_summary(frame, args.out)


def _metrics(args) -> None:
    provenance = args.provenance
    if provenance is not None and not (isinstance(provenance, dict)
                                       and all(isinstance(v, str) for v in provenance.values())):
        raise SystemExit(f"--provenance must be a JSON object of label -> text, got {provenance!r}")
    frames: dict[str, pl.DataFrame] = {}
    for path in args.predictions:
        frame = read_predictions(path)
        label = frame["model"][0]
        if label in frames:
            raise SystemExit(f"model {label!r} appears in two predictions files (the second: {path})")
        frames[label] = frame
    metrics = reviewer_metrics.compute_metrics(
        frames, n_boot=args.bootstrap, seed=args.seed, level=args.ci_level, bins=args.bins,
        unparsed_as=args.unparsed_as, reference_accept_rate=args.reference_accept_rate, provenance=provenance)
    for label, path in zip(frames, args.predictions):
        metrics["models"][label]["predictions"] = str(path)
    write_json_atomic(args.out_json, metrics)
    write_text_atomic(args.out_md, reviewer_metrics.markdown_table(metrics))
    write_bytes_atomic(args.out_reliability_png, reviewer_metrics.reliability_png(metrics))
    write_bytes_atomic(args.out_rates_png, reviewer_metrics.rates_png(metrics))
    write_text_atomic(args.out_generations_jsonl, reviewer_metrics.generations_jsonl(frames))
    log.info("metrics of %s written to %s, %s, %s, %s, %s", list(frames), args.out_json, args.out_md,
             args.out_reliability_png, args.out_rates_png, args.out_generations_jsonl)


if __name__ == "__main__":
    main()
