"""SciJudge accuracy against GRPO training step (the paper's Figure 3): per field and test split, with bootstrap CIs.

The points: step 0 is the model GRPO starts from (the SFT warm-up, or the base model), then the model of every saved
checkpoint the training run kept (workflow_scripts.train.checkpoint_models), then the final model at the run's last
step (trainer_state.json). Every point is predicted by the same call, with the same settings and pairs, as the
metrics table, whose start and grpo columns are therefore the first and last points. Accuracy follows that table:
a pair counts only when both A/B orders are answered right; unparseable answers count as wrong.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from workflow_scripts.common.cli import parser, setup_logging
from workflow_scripts.common.io import write_bytes_atomic, write_json_atomic, write_text_atomic
from workflow_scripts.datasets.scijudge_pairs import FIELDS
from workflow_scripts.eval.plots import png_bytes, pyplot
from workflow_scripts.eval.scijudge import SPLIT_TITLES, compute_metrics, read_predictions
from workflow_scripts.eval.stats import interval_cell

log = logging.getLogger(__name__)

OVERALL = "overall"


def curve_points(start: str, checkpoints: Mapping[int, str], final: str, final_step: int) -> dict[int, str]:
    """Step -> predictions file, ascending; a checkpoint step outside (0, final step) is an error naming it, since it
    cannot belong to the run that ended at ``final_step``."""
    bad = sorted(s for s in checkpoints if not 0 < s < final_step)
    if bad:
        raise ValueError(f"checkpoint step(s) {bad} are not between step 0 (the start model) and the final step "
                         f"{final_step} of the run: models kept from another run?")
    return {0: start, **dict(sorted(checkpoints.items())), final_step: final}


def curve_metrics(points: Mapping[int, str], start_label: str, *, n_boot: int, seed: int, level: float,
                  fields: Sequence[str] = FIELDS) -> dict:
    """The metrics of every point (workflow_scripts.eval.scijudge.compute_metrics, one "model" per step, step 0 the
    reference of the differences), with the steps and what each point is."""
    frames = {str(step): read_predictions(path) for step, path in points.items()}
    metrics = compute_metrics(frames, n_boot=n_boot, seed=seed, level=level, fields=fields)
    steps = list(points)
    kinds = {steps[0]: f"start ({start_label})", steps[-1]: "final (grpo)"}
    metrics["points"] = [{"step": s, "model": kinds.get(s, "checkpoint"), "predictions": str(points[s])}
                         for s in steps]
    return metrics


def _stats(entry: Mapping, group: str) -> Mapping:
    return entry["overall"] if group == OVERALL else entry["by_field"][group]


def markdown_table(metrics: Mapping) -> str:
    proto = metrics["protocol"]
    groups = [*proto["fields"], OVERALL]
    boot = proto["bootstrap"]
    lines = [
        "# SciJudge accuracy against GRPO training step",
        "",
        f"Accuracy in % (a pair counts only when both A/B orders are right) [{100 * boot['level']:.0f}% bootstrap CI, "
        f"{boot['resamples']} resamples of pairs, seed {boot['seed']}], per field and overall, for the model GRPO "
        "starts from (step 0), the model of every saved checkpoint and the final model. Unparseable answers count as "
        "wrong; their count is the last column (answers of both orders).",
    ]
    for split in proto["splits"]:
        lines += ["", f"## {SPLIT_TITLES.get(split, split)}", ""]
        lines.append("| step | model | n | " + " | ".join(groups) + " | unparseable |")
        lines.append("|---:|---|---:|" + "---:|" * (len(groups) + 1))
        for point in metrics["points"]:
            entry = metrics["models"][str(point["step"])]["splits"][split]
            cells = [interval_cell(_stats(entry, g)) for g in groups]
            unparse = entry["unparseable"]
            lines.append(f"| {point['step']} | {point['model']} | {entry['overall']['n']} | " + " | ".join(cells)
                         + f" | {unparse['answers']}/{unparse['answers_total']} |")
    return "\n".join(lines) + "\n"


def curve_chart(metrics: Mapping) -> bytes:
    """Accuracy against step with its CI band, one small panel per field (and overall) and test split, so that no
    band hides another; PNG bytes."""
    plt = pyplot()
    proto = metrics["protocol"]
    groups = [*proto["fields"], OVERALL]
    steps = [p["step"] for p in metrics["points"]]
    splits = proto["splits"]
    fig, axes = plt.subplots(len(splits), len(groups), figsize=(2.6 * len(groups), 0.6 + 2.4 * len(splits)),
                             squeeze=False, sharex=True, sharey=True)
    level = f"{100 * proto['bootstrap']['level']:.0f}%"
    for row, split in enumerate(splits):
        for col, group in enumerate(groups):
            ax = axes[row, col]
            stats = [_stats(metrics["models"][str(s)]["splits"][split], group) for s in steps]
            value, low, high = (np.array([np.nan if s[k] is None else 100 * s[k] for s in stats])
                                for k in ("value", "ci_low", "ci_high"))
            color = "black" if group == OVERALL else "tab:blue"
            ax.fill_between(steps, low, high, color=color, alpha=0.15, linewidth=0, label=f"{level} CI")
            ax.plot(steps, value, marker="o", markersize=3, color=color, label="pair accuracy")
            # a random guesser gets both orders right one time in four
            ax.axhline(25, color="grey", linestyle=":", linewidth=1, label="random guess")
            ax.set_ylim(0, 100)
            if len(steps) <= 8:  # every point labelled; a long run keeps matplotlib's ticks
                ax.set_xticks(steps)
            ax.tick_params(labelsize="small")
            if row == 0:
                ax.set_title(group, fontsize="medium")
            if col == 0:
                ax.set_ylabel(f"{SPLIT_TITLES.get(split, split)}\naccuracy (%)", fontsize="small")
            if row == len(splits) - 1:
                ax.set_xlabel("GRPO step", fontsize="small")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.suptitle("SciJudge pair accuracy (both A/B orders right) against GRPO step; step 0: the model GRPO starts from",
                 fontsize="medium")
    fig.tight_layout()
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=3, fontsize="small")
    return png_bytes(fig)


def _checkpoint_arg(text: str) -> tuple[int, str]:
    step, sep, path = text.partition("=")
    if not sep or not step.isdigit() or not path:
        raise argparse.ArgumentTypeError(f"{text!r}: expected STEP=PREDICTIONS, e.g. 50=step-50.parquet")
    return int(step), path


def main(argv: Sequence[str] | None = None) -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--start", required=True, help="predictions of the model GRPO starts from (step 0)")
    p.add_argument("--start-label", required=True, help="what the start model is, e.g. sft or base")
    p.add_argument("--checkpoint", action="append", default=[], type=_checkpoint_arg, metavar="STEP=PREDICTIONS",
                   help="predictions of a saved checkpoint's model (repeat per checkpoint)")
    p.add_argument("--final", required=True, help="predictions of the final model")
    p.add_argument("--trainer-state", required=True, help="trainer_state.json of the run: its global_step is the "
                                                          "final model's step")
    p.add_argument("--out-json", required=True)
    p.add_argument("--out-md", required=True)
    p.add_argument("--out-png", required=True)
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples (0: no CI)")
    p.add_argument("--ci-level", type=float, default=0.95)
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--fields", default=",".join(FIELDS), help="fields in table order")
    args = p.parse_args(argv)
    setup_logging(args.verbose)
    checkpoints: dict[int, str] = {}
    for step, path in args.checkpoint:
        if step in checkpoints:
            raise SystemExit(f"--checkpoint: step {step} given twice ({checkpoints[step]}, {path})")
        checkpoints[step] = path
    final_step = int(json.loads(Path(args.trainer_state).read_text())["global_step"])
    try:
        points = curve_points(args.start, checkpoints, args.final, final_step)
    except ValueError as exc:
        raise SystemExit(f"{args.trainer_state}: {exc}") from None
    metrics = curve_metrics(points, args.start_label, n_boot=args.bootstrap, seed=args.seed, level=args.ci_level,
                            fields=[f.strip() for f in args.fields.split(",") if f.strip()])
    write_json_atomic(args.out_json, metrics)
    write_text_atomic(args.out_md, markdown_table(metrics))
    write_bytes_atomic(args.out_png, curve_chart(metrics))
    log.info("accuracy at steps %s written to %s, %s, %s", list(points), args.out_json, args.out_md, args.out_png)


if __name__ == "__main__":
    main()
