"""Training curves (loss, reward, KL, ...) as one PNG from a trainer_state.json ``log_history``."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Mapping, Sequence

from workflow_scripts.common.cli import parser, setup_logging
from workflow_scripts.common.io import atomic_path
from workflow_scripts.train.reward_trend import REWARD_KEY, reward_trend

# Shown in this order when logged, then reward components, completion lengths and eval metrics; the rest of what the
# trainers log (clip ratios, min/max lengths, timings ...) only with all_series, to keep the figure readable.
PREFERRED = ["loss", "reward", "reward_std", "kl", "entropy", "eval_loss", "mean_token_accuracy", "learning_rate",
             "grad_norm"]
EXTRA = re.compile(
    r"^(rewards/.+/mean|completions/(mean_length|clipped_ratio)|eval_(?!runtime|samples_per|steps_per|num_tokens).+)$"
)
SKIP = {"epoch", "step", "total_flos", "train_runtime", "train_samples_per_second", "train_steps_per_second",
        "train_loss", "num_tokens", "num_input_tokens_seen"}


def series(log_history: Sequence[Mapping], all_series: bool = False) -> dict[str, tuple[list[int], list[float]]]:
    out: dict[str, tuple[list[int], list[float]]] = {}
    for entry in log_history:
        step = entry.get("step")
        for key, value in entry.items():
            if key in SKIP or step is None or isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            if math.isfinite(value):
                xs, ys = out.setdefault(key, ([], []))
                xs.append(int(step))
                ys.append(float(value))
    rest = sorted(k for k in out if k not in PREFERRED and (all_series or EXTRA.match(k)))
    return {k: out[k] for k in [k for k in PREFERRED if k in out] + rest}


def plot_log_history(
    log_history: Sequence[Mapping], out_png: str | Path, title: str | None = None, all_series: bool = False
) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from matplotlib.ticker import MaxNLocator

    data = series(log_history, all_series)
    n = max(len(data), 1)
    cols = min(3, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.5 * cols, 3 * rows), squeeze=False)
    for ax, (key, (xs, ys)) in zip(axes.flat, data.items()):
        ax.plot(xs, ys, marker="o" if len(xs) < 30 else None, markersize=3)
        if key == REWARD_KEY:  # did GRPO's reward rise: the trend of reward_trend.json, on the panel it is about
            ax.set_title(f"{key}\n{reward_trend(log_history)['summary']}", fontsize=7)
        else:
            ax.set_title(key, fontsize=9)
        ax.set_xlabel("step")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(data):]:
        ax.axis("off")
    if not data:
        axes.flat[0].text(0.5, 0.5, "nothing logged", ha="center", va="center")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(out_png) as tmp:
        # no Software/date metadata: the same history gives the same bytes
        fig.savefig(tmp, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)
    return Path(out_png)


def main(argv: Sequence[str] | None = None) -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--state", required=True, help="trainer_state.json (output dir or a checkpoint)")
    p.add_argument("--out", required=True, help="PNG to write")
    p.add_argument("--title", default=None)
    p.add_argument("--all", action="store_true", help="every logged series, not only the main ones")
    args = p.parse_args(argv)
    setup_logging(args.verbose)
    state = json.loads(Path(args.state).read_text(encoding="utf-8"))
    plot_log_history(state.get("log_history", []), args.out, args.title, args.all)


if __name__ == "__main__":
    main()
