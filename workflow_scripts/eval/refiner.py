"""Refiner evaluation: answers to the held-out tasks, scored by a fixed judge, and the metrics against GRPO step.

    python -m workflow_scripts.eval.refiner predict --model DIR --tasks splits/test.parquet --label sft \\
        --gen-json '{...}' --out predictions/sft.parquet
    python -m workflow_scripts.eval.refiner score --tasks splits/test.parquet --predictions predictions/sft.parquet \\
        ... [--references] --judge-json BLOCK --cache-dir results/llm_cache [--judge-marker HUB_MARKER.json] \\
        --reward-json ... --judge-prompts-json ... --static-rubrics-json ... --out scores.parquet --summary scores.json
    python -m workflow_scripts.eval.refiner metrics --scores scores.parquet --summary scores.json \\
        --start-label sft --trainer-state grpo/trainer_state.json --out-json ... --out-md ... --out-png ...
    python -m workflow_scripts.eval.refiner reward-curves --state grpo/trainer_state.json --out reward_components.png

``predict``: one answer per test task (the policy prompt of the task table's ``messages``) through the shared
generation backends (eval.generation, ``hf`` or ``vllm``), each request seeded from the seed and the task id.
Columns: model (the label), task_id, completion, num_tokens, finished.

``score``: every answer scored by the GRPO reward's own scoring (train.rewards.refiner_score.score_batch: format
gate, rubric judge over the task's and the static rubrics, citation judge) with the judge endpoint
(llm.endpoints.judge, its server started for the step when it is a vllm or demo endpoint, its answers cached).
``--references`` adds the tasks' reference refinements as the model ``reference``. One row per model and task:
the prediction columns plus every component of the score (CompletionScore.as_row). The summary records the judge
(model, and revision: the hub snapshot's commit from its download marker; a demo judge says it is a stand-in), its
request settings and a digest of the prompts and rubrics it was asked with, and the calls per model.

``metrics``: the table (workflow_scripts.eval.refiner_metrics for the definitions) with bootstrap intervals over
test tasks, per model: the base model before SFT (when evaluated), step 0 = the model GRPO starts from, the model
of every saved checkpoint (``step-N``), the final model (``grpo``, at the run's last step) and the references;
the curves against step in a PNG. ``reward-curves``: the reward components GRPO logged per step (each component,
the judge failure rate, the share of groups with zero reward spread) as a PNG.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import polars as pl

from workflow_scripts.common.cli import json_arg, parser, setup_logging
from workflow_scripts.common.io import write_bytes_atomic, write_json_atomic, write_parquet_atomic, write_text_atomic
from workflow_scripts.eval import refiner_metrics as rm

log = logging.getLogger(__name__)

JUDGE_USE = "judge"
REFERENCE = "reference"  # the model label of the tasks' reference refinements
BASE = "base"  # the policy before SFT
FINAL = "grpo"
_STEP = re.compile(r"^step-(\d+)$")

PREDICTION_SCHEMA = {"model": pl.String, "task_id": pl.String, "completion": pl.String, "num_tokens": pl.Int32,
                     "finished": pl.Boolean}
_RUBRIC = pl.Struct({"title": pl.String, "kind": pl.String, "static": pl.Boolean, "score": pl.Float64,
                     "credit": pl.Float64, "problem": pl.String})
# every field of CompletionScore.as_row(), typed (a batch without judged answers would otherwise infer nulls)
SCORE_FIELDS = {
    "format_ok": pl.Boolean, "format_problem": pl.String, "has_answer": pl.Boolean, "answer_chars": pl.Int64,
    "n_claims": pl.Int64, "n_cited_claims": pl.Int64, "n_empty_claims": pl.Int64,
    "markup_problems": pl.List(pl.String), "cited_share": pl.Float64, "n_cited_ids": pl.Int64,
    "invalid_ids": pl.List(pl.String), "id_validity": pl.Float64, "invalid_id_rate": pl.Float64,
    "rubrics": pl.List(_RUBRIC), "rubric_score": pl.Float64, "citation_recall": pl.Float64,
    "citation_precision": pl.Float64, "citation_f1": pl.Float64, "citation_score": pl.Float64,
    "judge_calls": pl.Int64, "judge_failures": pl.Int64,
    "failure_kinds": pl.List(pl.Struct({"kind": pl.String, "count": pl.Int64})), "composite": pl.Float64,
    "reward": pl.Float64, "unscored_reason": pl.String,
}
SCORE_SCHEMA = {**PREDICTION_SCHEMA, **SCORE_FIELDS}


# ---------------------------------------------------------------------------------------------------- predict
def read_tasks(path: str | Path, max_tasks: int | None = None) -> pl.DataFrame:
    """The test tasks sorted by task_id (a stable hash: the first ``max_tasks`` are a fixed sample)."""
    tasks = pl.read_parquet(path)
    missing = [c for c in ("task_id", "messages", "question", "tool_output", "positive_rubrics", "negative_rubrics")
               if c not in tasks.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}; expected a Refiner task table")
    if tasks.height == 0:
        raise ValueError(f"{path}: no tasks")
    tasks = tasks.sort("task_id")
    return tasks.head(max_tasks) if max_tasks else tasks


def predict(model: str, tasks: pl.DataFrame, gen: Mapping[str, Any], label: str) -> pl.DataFrame:
    from workflow_scripts.eval.generation import GenConfig, load_generator, request_seed

    cfg = GenConfig.from_dict(gen)
    ids = tasks["task_id"].to_list()
    generations = load_generator(model, cfg).generate(tasks["messages"].to_list(),
                                                      seeds=[request_seed(cfg.seed, t) for t in ids])
    return pl.DataFrame({"model": [label] * len(ids), "task_id": ids, "completion": [g.text for g in generations],
                         "num_tokens": [g.num_tokens for g in generations],
                         "finished": [g.finished for g in generations]}, schema=PREDICTION_SCHEMA)


# ---------------------------------------------------------------------------------------------------- score
def read_predictions(paths: Sequence[str | Path]) -> pl.DataFrame:
    frames = []
    for path in paths:
        frame = pl.read_parquet(path)
        missing = [c for c in PREDICTION_SCHEMA if c not in frame.columns]
        if missing:
            raise ValueError(f"{path}: missing column(s) {missing}; expected `predict` output")
        frames.append(frame.select(list(PREDICTION_SCHEMA)).cast(PREDICTION_SCHEMA))
    predictions = pl.concat(frames)
    dup = predictions.group_by("model", "task_id").len().filter(pl.col("len") > 1)
    if dup.height:
        raise ValueError(f"a model answers a task twice across {list(map(str, paths))}: {dup.head(5).rows()}")
    return predictions


def reference_rows(tasks: pl.DataFrame, task_ids: Sequence[str]) -> pl.DataFrame:
    """The reference refinements of the evaluated tasks as the answers of the model ``reference``."""
    refs = tasks.filter(pl.col("task_id").is_in(list(task_ids)) & pl.col("reference").is_not_null())
    return pl.DataFrame({"model": [REFERENCE] * refs.height, "task_id": refs["task_id"],
                         "completion": refs["reference"], "num_tokens": [None] * refs.height,
                         "finished": [None] * refs.height}, schema=PREDICTION_SCHEMA)


def score_rows(predictions: pl.DataFrame, tasks: pl.DataFrame, judge, options) -> tuple[list[dict], dict]:
    """Each answer scored (one batch of judge calls per model), and the calls per model."""
    from workflow_scripts.train.rewards.refiner_score import ScoringItem, score_batch

    by_id = {t["task_id"]: t for t in tasks.iter_rows(named=True)}
    unknown = sorted(set(predictions["task_id"]) - set(by_id))
    if unknown:
        raise ValueError(f"{len(unknown)} answered task(s) are not in the task table, e.g. {unknown[:3]}")
    rows, per_model = [], {}
    for label in predictions["model"].unique(maintain_order=True):
        answers = predictions.filter(pl.col("model") == label).to_dicts()
        items = [ScoringItem.from_row(a["completion"], by_id[a["task_id"]]["question"],
                                      by_id[a["task_id"]]["tool_output"], by_id[a["task_id"]]["positive_rubrics"],
                                      by_id[a["task_id"]]["negative_rubrics"], a["task_id"]) for a in answers]
        scores = score_batch(items, judge, options)
        kinds: dict[str, int] = {}
        for s in scores:
            for kind, n in s.failure_kinds.items():
                kinds[kind] = kinds.get(kind, 0) + n
        per_model[label] = {"completions": len(scores), "format_ok": sum(s.format_ok for s in scores),
                            "judge_calls": sum(s.judge_calls for s in scores),
                            "judge_failures": sum(s.judge_failures for s in scores), "failure_kinds": kinds,
                            "unscored": sum(s.reward is None for s in scores)}
        log.info("%s: %s", label, per_model[label])
        for answer, score in zip(answers, scores):
            fields = score.as_row()
            unexpected = sorted(set(fields) - set(SCORE_FIELDS) - {"task_id"})
            if unexpected:
                raise RuntimeError(f"score fields {unexpected} are not in SCORE_FIELDS: add them to the schema")
            rows.append({**answer, **{k: fields[k] for k in SCORE_FIELDS}})
    return rows, per_model


def judge_record(block: Mapping[str, Any], provenance: Mapping[str, Any], marker: str | None) -> dict:
    """What judged: the endpoint's provenance plus the model's revision (a hub download marker's commit)."""
    record = dict(provenance)
    if block["kind"] == "demo":
        stand_in = provenance["stand_in"]
        record["revision"] = f"stand-in version {stand_in['version']}"
        record["label"] = (f"demo stand-in {stand_in['name']} version {stand_in['version']} (a deterministic "
                           "simulation, not a language model)")
        return record
    if marker:
        hub = json.loads(Path(marker).read_text())
        record["revision"] = hub["commit"]
        record["label"] = f"{provenance['model']} ({block['kind']}), hub revision {hub['commit']}"
    elif block["kind"] == "vllm":
        record["revision"] = "a local directory (no hub revision)"
        record["label"] = f"{provenance['model']} (vllm, local directory)"
    else:
        record["revision"] = None
        record["label"] = (f"{provenance['model']} (external endpoint {provenance['base_url']}; its revision is the "
                           "provider's and not recorded)")
    return record


def settings_digest(options) -> str:
    """One digest of everything the judge is asked with besides the answers: prompts, rubrics, request settings."""
    from dataclasses import asdict

    return hashlib.sha256(json.dumps(asdict(options), sort_keys=True, default=str).encode()).hexdigest()


def score(args) -> None:
    from workflow_scripts.llm.endpoints import open_client
    from workflow_scripts.train.rewards.refiner_score import RewardOptions

    options = RewardOptions.from_config(args.reward_json, args.judge_prompts_json, args.static_rubrics_json)
    tasks = read_tasks(args.tasks)
    predictions = read_predictions(args.predictions)
    if args.references:
        if "reference" not in tasks.columns:
            raise ValueError(f"{args.tasks}: --references needs a reference column")
        predictions = pl.concat([predictions, reference_rows(tasks, predictions["task_id"].unique().to_list())])
    with open_client(JUDGE_USE, args.judge_json, args.cache_dir) as client:
        rows, per_model = score_rows(predictions, tasks, client, options)
        calls = client.summary()
        judge = judge_record(client.endpoint.block, client.provenance(), args.judge_marker)
    write_parquet_atomic(pl.DataFrame(rows, schema=SCORE_SCHEMA, orient="row"), args.out)
    summary = {"judge": judge, "judge_params": dict(options.judge_params), "settings_sha256": settings_digest(options),
               "reward": {"combine": options.combine, "citation_weight": options.citation_weight,
                          "instance_rubrics_only": options.instance_rubrics_only, "format_gate": options.format_gate},
               "tasks": predictions["task_id"].n_unique(), "models": per_model, "calls": calls}
    write_json_atomic(args.summary, summary)
    log.info("scored %d answers of %d model(s) with %s", len(rows), len(per_model), judge["label"])


# ---------------------------------------------------------------------------------------------------- metrics
def table_rows(labels: Sequence[str], start_label: str, final_step: int) -> list[dict]:
    """The table's rows in order, each {label, step (None off the curve), model}: the base model before SFT (when
    it is not the start), step 0 = the start model, every checkpoint, the final model, the references."""
    known = set(labels)
    for needed in (start_label, FINAL):
        if needed not in known:
            raise ValueError(f"no scores of the model {needed!r}; scored: {sorted(known)}")
    checkpoints = {}
    for label in labels:
        m = _STEP.match(label)
        if m:
            checkpoints[int(m.group(1))] = label
        elif label not in (start_label, FINAL, BASE, REFERENCE):
            raise ValueError(f"scores of an unknown model {label!r}: expected {BASE}, {start_label}, step-N, "
                             f"{FINAL} or {REFERENCE}")
    bad = sorted(s for s in checkpoints if not 0 < s < final_step)
    if bad:
        raise ValueError(f"checkpoint step(s) {bad} are not between step 0 (the start model) and the final step "
                         f"{final_step} of the run: models kept from another run?")
    rows = []
    if BASE in known and start_label != BASE:
        rows.append({"label": BASE, "step": None, "model": "base (before SFT)"})
    rows.append({"label": start_label, "step": 0, "model": f"start ({start_label})"})
    rows += [{"label": checkpoints[s], "step": s, "model": "checkpoint"} for s in sorted(checkpoints)]
    rows.append({"label": FINAL, "step": final_step, "model": "final (grpo)"})
    if REFERENCE in known:
        rows.append({"label": REFERENCE, "step": None, "model": "reference refinements"})
    return rows


def compute_metrics(scores: pl.DataFrame, summary: Mapping, start_label: str, final_step: int, *, n_boot: int,
                    level: float, seed: int) -> dict:
    labels = scores["model"].unique(maintain_order=True).to_list()
    rows = table_rows(labels, start_label, final_step)
    by_label = {r["label"]: scores.filter(pl.col("model") == r["label"]).to_dicts() for r in rows}
    metrics = rm.compute(by_label, n_boot=n_boot, level=level, seed=seed)
    metrics["points"] = rows
    metrics["judge"] = summary["judge"]
    metrics["judge_params"] = summary["judge_params"]
    metrics["settings_sha256"] = summary["settings_sha256"]
    metrics["tasks"] = summary["tasks"]
    return metrics


def _row_label(point: Mapping) -> str:
    return f"| {'–' if point['step'] is None else point['step']} | {point['model']} |"


def markdown_table(metrics: Mapping) -> str:
    boot = metrics["bootstrap"]
    by_key = {m.key: m for m in rm.METRICS}
    level = f"{100 * boot['level']:.0f}%"
    lines = [
        "# Refiner evaluation against GRPO step",
        "",
        f"{metrics['tasks']} held-out test tasks, one answer per model; judge: {metrics['judge']['label']}, request "
        f"settings {json.dumps(metrics['judge_params'], sort_keys=True)} (prompts and rubrics digest "
        f"{metrics['settings_sha256'][:12]}). Each cell: value [{level} bootstrap interval, {boot['resamples']} "
        f"resamples of the test tasks, seed {boot['seed']}]; scores in [0, 1], rates in %. Step 0 is the model GRPO "
        "starts from; a missing value (a failed judge call, an answer that was not judged) is left out, never "
        "counted as 0; a format failure is not judged and has reward 0, as in training.",
        "",
        *(f"- **{m.title}**: {m.definition}" for m in rm.METRICS),
    ]

    def section(title: str, keys: Sequence[str], heads: Sequence[str], with_n: bool = False) -> None:
        nonlocal lines
        lines += ["", f"## {title}", "", "| step | model |" + (" n |" if with_n else "") + " " + " | ".join(heads)
                  + " |", "|---:|---|" + ("---:|" if with_n else "") + "---:|" * len(keys)]
        for point in metrics["points"]:
            entry = metrics["models"][point["label"]]
            cells = [rm.cell(entry["metrics"][k], by_key[k].unit if k in by_key else "percent") for k in keys]
            lines.append(_row_label(point) + (f" {entry['completions']} |" if with_n else "") + " "
                         + " | ".join(cells) + " |")

    def head(key: str) -> str:
        m = by_key[key]
        return m.title + {"percent": " (%)", "chars": " (chars)", "score": ""}[m.unit]

    first = ["reward", "rubric_score", "positive_pass", "negative_pass", "judge_failure_rate"]
    second = ["citation_precision", "citation_recall", "citation_f1", "invalid_id_rate", "cited_share",
              "format_valid", "answer_chars", "truncated"]
    section("Reward and rubrics", first, [head(k) for k in first], with_n=True)
    section("Citations and format", second, [head(k) for k in second])
    titles = metrics["static_rubrics"]
    if titles:
        section("Static rubrics: pass rate (%)", [rm.STATIC_PREFIX + t for t in titles], titles)
    return "\n".join(lines) + "\n"


CURVE_PANELS = ("reward", "rubric_score", "positive_pass", "negative_pass", "citation_f1", "invalid_id_rate",
                "format_valid", "answer_chars")


def curve_chart(metrics: Mapping) -> bytes:
    """Each main metric against GRPO step with its interval band; the base model and the references as horizontal
    lines; the static rubrics' pass rates in the last panel. PNG bytes."""
    from workflow_scripts.eval.plots import png_bytes, pyplot

    plt = pyplot()
    by_key = {m.key: m for m in rm.METRICS}
    points = [p for p in metrics["points"] if p["step"] is not None]
    others = {p["label"]: p for p in metrics["points"] if p["step"] is None}
    steps = [p["step"] for p in points]
    titles = metrics["static_rubrics"]
    n_panels = len(CURVE_PANELS) + (1 if titles else 0)
    cols = 3
    rows = -(-n_panels // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 2.9 * rows), squeeze=False)
    level = f"{100 * metrics['bootstrap']['level']:.0f}% CI"

    def series(key: str, labels: Sequence[str], scale: float) -> tuple[np.ndarray, ...]:
        stats = [metrics["models"][label]["metrics"][key] for label in labels]
        return tuple(np.array([np.nan if s[k] is None else scale * s[k] for s in stats], dtype=float)
                     for k in ("value", "ci_low", "ci_high"))

    for ax, key in zip(axes.flat, CURVE_PANELS):
        m = by_key[key]
        scale = 100.0 if m.unit == "percent" else 1.0
        value, low, high = series(key, [p["label"] for p in points], scale)
        ax.fill_between(steps, low, high, color="tab:blue", alpha=0.15, linewidth=0, label=level)
        ax.plot(steps, value, marker="o", markersize=3, color="tab:blue", label="GRPO")
        for label, style, color in ((BASE, "--", "grey"), (REFERENCE, ":", "tab:green")):
            if label in others:
                v = metrics["models"][label]["metrics"][key]["value"]
                if v is not None:
                    ax.axhline(scale * v, linestyle=style, color=color, linewidth=1, label=others[label]["model"])
        if np.isnan(value).all():
            ax.text(0.5, 0.5, "no value at any step", ha="center", va="center", transform=ax.transAxes,
                    fontsize="small", color="grey")
        ax.set_title(m.title + {"percent": " (%)", "chars": " (characters)", "score": ""}[m.unit], fontsize="medium")
        # the whole scale, so that no change looks larger than it is (an additive reward may pass 1)
        top = {"percent": 100.0, "score": max(1.0, ax.get_ylim()[1])}.get(m.unit, ax.get_ylim()[1])
        ax.set_ylim(-0.03 * top, 1.03 * top)  # points at 0 or at the top stay visible
        _step_axis(ax, steps)
    if titles:
        ax = axes.flat[len(CURVE_PANELS)]
        for title in titles:
            value, _, _ = series(rm.STATIC_PREFIX + title, [p["label"] for p in points], 100.0)
            ax.plot(steps, value, marker="o", markersize=3, label=title)
        ax.set_title("static rubrics: pass rate (%)", fontsize="medium")
        ax.set_ylim(-3, 103)
        ax.legend(fontsize="x-small")
        _step_axis(ax, steps)
    for ax in list(axes.flat)[n_panels:]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.suptitle("Refiner metrics on the held-out tasks against GRPO step (step 0: the model GRPO starts from)",
                 fontsize="medium")
    fig.tight_layout()
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=4, fontsize="small")
    return png_bytes(fig)


def _step_axis(ax, steps: Sequence[int]) -> None:
    if len(steps) <= 8:
        ax.set_xticks(steps)
    ax.set_xlabel("GRPO step", fontsize="small")
    ax.tick_params(labelsize="small")
    ax.grid(alpha=0.3)


# ---------------------------------------------------------------------------------------------------- reward curves
REWARD_SERIES = re.compile(r"^(refiner/.+|frac_reward_zero_std)$")


def reward_curves(state_path: str | Path, out: str | Path) -> None:
    """The Refiner reward's per-step logs (workflow_scripts.train.rewards.refiner) as one figure."""
    from workflow_scripts.train.curves import plot_log_history

    history = json.loads(Path(state_path).read_text())["log_history"]
    kept = [{k: v for k, v in e.items() if k == "step" or REWARD_SERIES.match(k)} for e in history]
    plot_log_history(kept, out, title="Refiner reward components per GRPO step", all_series=True)


# ---------------------------------------------------------------------------------------------------- CLI
def main(argv: Sequence[str] | None = None) -> None:
    p = parser(__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    pr = sub.add_parser("predict", help="one answer per test task")
    pr.add_argument("--model", required=True, help="save_pretrained directory of the model (or a hub id)")
    pr.add_argument("--tasks", required=True, help="the test split's task table")
    pr.add_argument("--label", required=True, help="the model's name in the scores (base, sft, step-N, grpo)")
    pr.add_argument("--gen-json", type=json_arg, default={}, help="eval.generation.GenConfig settings as JSON")
    pr.add_argument("--batch-size", type=int, default=None, help="prompts per generate() call: speed and memory only")
    pr.add_argument("--max-tasks", type=int, default=None, help="the first tasks by task_id only")
    pr.add_argument("--out", required=True)
    sc = sub.add_parser("score", help="every answer scored with the judge")
    sc.add_argument("--tasks", required=True)
    sc.add_argument("--predictions", action="append", required=True, help="a `predict` output (repeat per model)")
    sc.add_argument("--references", action="store_true", help="score the tasks' reference refinements too")
    sc.add_argument("--judge-json", type=json_arg, required=True, help="the llm.endpoints.judge block as JSON")
    sc.add_argument("--judge-marker", default=None, help="the hub download marker of a vllm judge's model")
    sc.add_argument("--cache-dir", required=True, help="the LLM response cache (llm.cache_dir)")
    sc.add_argument("--reward-json", type=json_arg, default=None, help="config refiner.reward")
    sc.add_argument("--judge-prompts-json", type=json_arg, default=None, help="config refiner.judge")
    sc.add_argument("--static-rubrics-json", type=json_arg, default=None, help="config refiner.static_rubrics")
    sc.add_argument("--out", required=True, help="scores parquet")
    sc.add_argument("--summary", required=True, help="the judge and its calls, JSON")
    me = sub.add_parser("metrics", help="the table and curves with bootstrap intervals")
    me.add_argument("--scores", required=True)
    me.add_argument("--summary", required=True, help="`score` summary (the judge)")
    me.add_argument("--start-label", required=True, help="the model GRPO starts from: sft or base")
    me.add_argument("--trainer-state", required=True, help="the GRPO run's trainer_state.json: its global_step is "
                                                           "the final model's step")
    me.add_argument("--out-json", required=True)
    me.add_argument("--out-md", required=True)
    me.add_argument("--out-png", required=True)
    me.add_argument("--bootstrap", type=int, default=1000)
    me.add_argument("--ci-level", type=float, default=0.95)
    me.add_argument("--seed", type=int, default=1234)
    rc = sub.add_parser("reward-curves", help="the reward components GRPO logged, per step")
    rc.add_argument("--state", required=True, help="trainer_state.json of the GRPO run")
    rc.add_argument("--out", required=True)
    args = p.parse_args(argv)
    setup_logging(args.verbose)
    if args.command == "predict":
        gen = dict(args.gen_json, **({"batch_size": args.batch_size} if args.batch_size else {}))
        frame = predict(args.model, read_tasks(args.tasks, args.max_tasks), gen, args.label)
        write_parquet_atomic(frame, args.out)
        log.info("%s: %d answers, %d cut at max_new_tokens", args.label, frame.height, (~frame["finished"]).sum())
    elif args.command == "score":
        score(args)
    elif args.command == "metrics":
        final_step = int(json.loads(Path(args.trainer_state).read_text())["global_step"])
        try:
            metrics = compute_metrics(pl.read_parquet(args.scores), json.loads(Path(args.summary).read_text()),
                                      args.start_label, final_step, n_boot=args.bootstrap, level=args.ci_level,
                                      seed=args.seed)
        except ValueError as exc:
            raise SystemExit(f"{args.scores}: {exc}") from None
        write_json_atomic(args.out_json, metrics)
        write_text_atomic(args.out_md, markdown_table(metrics))
        write_bytes_atomic(args.out_png, curve_chart(metrics))
        log.info("metrics of %s written to %s", [r["label"] for r in metrics["points"]], args.out_md)
    else:
        reward_curves(args.state, args.out)


if __name__ == "__main__":
    main()
