"""Can a model learn the demo's SciJudge comparison at all? A probe that trains it on the answer letter alone.

Both orders of every train pair, the letter's cross-entropy at the answer position (the whole vocabulary), AdamW with
a linear warm-up and cosine decay; every ``--every`` steps the accuracy on the in-domain test pairs (each order, and
both orders of a pair right). Variants shorten the prompt (``--abstract-words``: the abstracts cut to their first N
words, 0 for titles only) or write the answer into it (``--hint``: a control that must be learned, so that a model
stuck at chance is known to be stuck on the comparison, not on the training path).

    python benchmarks/scijudge_learnability.py --model results/models/tiny_qwen3 --pairs results/scijudge/pairs \\
        [--abstract-words 0] [--hint] [--steps 300 --batch 16 --lr 3e-3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from pathlib import Path

import polars as pl
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from workflow_scripts.common.config import schema_defaults  # noqa: E402
from workflow_scripts.datasets.scijudge_prompt import fill_prompt_texts, render_messages, swapped_answer  # noqa: E402


def prompt_texts(variant: str) -> dict:
    block = schema_defaults()["scijudge"]
    block["prompt"] = variant
    fill_prompt_texts(block)
    return {"system_prompt": block["system_prompt"], "user_template": block["user_template"], "today": block["today"]}


def encode(tok, path: Path, texts: dict, args) -> list[tuple[list[int], int]]:
    """(prompt ids up to the answer letter, the letter's id) for both orders of every pair."""
    letter = {x: tok.convert_tokens_to_ids(x) for x in "AB"}
    out = []
    for row in pl.read_parquet(path).iter_rows(named=True):
        if args.abstract_words >= 0:
            for side in "ab":
                row[f"paper_{side}_abstract"] = " ".join(row[f"paper_{side}_abstract"].split()[: args.abstract_words])
        for swap in (False, True):
            gold = swapped_answer(row["correct_answer"]) if swap else row["correct_answer"]
            reason = f"Hint {gold}." if args.hint else "Compared."
            text = tok.apply_chat_template(render_messages(row, swap=swap, **texts), tokenize=False,
                                           add_generation_prompt=True) + f"<reason>{reason}</reason>\n<answer>"
            out.append((tok(text, add_special_tokens=False).input_ids, letter[gold]))
    return out


def batch(items, pad_id: int):
    width = max(len(ids) for ids, _ in items)
    ids = torch.full((len(items), width), pad_id)
    mask = torch.zeros((len(items), width), dtype=torch.long)
    for i, (x, _) in enumerate(items):  # left padding: the answer position is the last one of every row
        ids[i, width - len(x):] = torch.tensor(x)
        mask[i, width - len(x):] = 1
    return ids, mask, torch.tensor([y for _, y in items])


def letter_logits(model, ids, mask, letters):
    return model(input_ids=ids, attention_mask=mask, logits_to_keep=1).logits[:, -1][:, letters]


def accuracy(model, test, pad_id: int, letters) -> tuple[float, float]:
    """(accuracy per order, share of pairs right in both orders); test items come in order pairs."""
    model.eval()
    right = []
    with torch.no_grad():
        for i in range(0, len(test), 32):
            ids, mask, y = batch(test[i:i + 32], pad_id)
            pick = letter_logits(model, ids, mask, letters).argmax(-1)
            right += (torch.tensor(letters)[pick] == y).tolist()
    model.train()
    both = [right[i] and right[i + 1] for i in range(0, len(right), 2)]
    return sum(right) / len(right), sum(both) / len(both)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="a save_pretrained directory (the demo's tiny Qwen3)")
    ap.add_argument("--pairs", required=True, type=Path, help="the directory of train.parquet and test_id.parquet")
    ap.add_argument("--prompt", default="card", help="scijudge.prompt variant")
    ap.add_argument("--abstract-words", type=int, default=-1, help="cut abstracts to N words (0: titles only)")
    ap.add_argument("--hint", action="store_true", help="control: the answer letter is written into the prompt")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--every", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, help="write the curve here too")
    args = ap.parse_args()

    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    tok = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForCausalLM.from_pretrained(args.model)
    letters = [tok.convert_tokens_to_ids(x) for x in "AB"]
    texts = prompt_texts(args.prompt)
    train, test = (encode(tok, args.pairs / f"{s}.parquet", texts, args) for s in ("train", "test_id"))
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.95), weight_decay=0.0)
    warm = max(1, args.steps // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warm if s < warm else 0.5 * (1 + math.cos(math.pi * (s - warm) / max(1, args.steps - warm))))
    curve, order, start = [], [], time.time()
    for step in range(1, args.steps + 1):
        if len(order) < args.batch:
            order = rng.sample(range(len(train)), len(train))
        ids, mask, y = batch([train[order.pop()] for _ in range(args.batch)], tok.pad_token_id)
        logits = model(input_ids=ids, attention_mask=mask, logits_to_keep=1).logits[:, -1]
        loss = torch.nn.functional.cross_entropy(logits, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad()
        if step % args.every == 0 or step == args.steps:
            single, both = accuracy(model, test, tok.pad_token_id, letters)
            point = {"step": step, "prompts": step * args.batch, "seconds": round(time.time() - start, 1),
                     "loss": round(loss.item(), 4), "test_accuracy": round(single, 4), "test_both_orders": round(both, 4)}
            curve.append(point)
            print(json.dumps(point), flush=True)
    result = {"model": args.model, "prompt_tokens_mean": sum(len(x) for x, _ in train) / len(train),
              "train_prompts": len(train), **{k: getattr(args, k) for k in ("abstract_words", "hint", "batch", "lr")},
              "curve": curve}
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
