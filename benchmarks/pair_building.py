"""Benchmark: SciJudge pair building on a synthetic table of N papers (default 2.9 million, the reference scale).

Runs the pipeline step (polars and numpy: date bounds, held-out in-domain test, temporal OOD test, duplicate
detection by title, near title, DOI and journal reference) and a straightforward pandas implementation of the same
rules side by side, each in a fresh process, and reports wall time, peak RSS and the pairs. Both must write the same
rows (pairs, order, A/B sides, paper attributes, prompts); the benchmark fails naming the split where they do not.

    python benchmarks/pair_building.py --papers 2900000 [--skip-pandas] [--json out.json]

Goal for the polars step on 2 cores: <= 30 s wall and <= 4 GB peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from workflow_scripts.common.config import schema_defaults  # noqa: E402
from workflow_scripts.datasets.synthetic_papers import synthetic_tables  # noqa: E402


def run_measured(cmd: list[str], env: dict) -> dict:
    """Wall time of one child process, with its output."""
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[:4]} failed:\n{proc.stderr.decode()[-3000:]}")
    return {"wall_s": round(wall, 2), "stdout": proc.stdout.decode(), "stderr_tail": proc.stderr.decode()[-500:]}


def peak_rss_cmd(cmd: list[str]) -> list[str]:
    # report the child's own peak RSS from inside a tiny wrapper: resource.getrusage(RUSAGE_CHILDREN) after it exits
    wrapper = (
        "import resource, subprocess, sys, json; r = subprocess.run(sys.argv[1:]);"
        "print(json.dumps({'peak_rss_mb': round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1)}), file=sys.stderr);"
        "sys.exit(r.returncode)"
    )
    return [sys.executable, "-c", wrapper, *cmd]


def measure(cmd: list[str], env: dict) -> dict:
    res = run_measured(peak_rss_cmd(cmd), env)
    last = [line for line in res.pop("stderr_tail").splitlines() if line.startswith("{")][-1]
    return res | json.loads(last)


def pair_ids(path: Path) -> set[str]:
    return set(pl.read_parquet(path, columns=["pair_id"])["pair_id"].to_list())


def row_digests(path: Path, columns: list[str]) -> pl.Series:
    """A hash of every row of a pairs file over ``columns`` decoded, in file order; read as a stream (the train split
    holds gigabytes of text)."""
    return pl.scan_parquet(path).select(pl.struct(columns).hash(seed=0)).collect(engine="streaming").to_series()


def compare(step_dir: Path, reference_dir: Path, splits) -> dict[str, str]:
    """Per split, "same" when the reference wrote the step's rows (every column decoded, in the same order), else
    how they differ. Decoded, not byte for byte: the two write parquet with different writers and settings."""
    verdict = {}
    for split in splits:
        ours, theirs = step_dir / f"{split}.parquet", reference_dir / f"{split}.parquet"
        schema, other = pl.scan_parquet(ours).collect_schema(), pl.scan_parquet(theirs).collect_schema()
        differing = [c for c in schema if other.get(c) != schema[c]]
        if differing:
            verdict[split] = f"columns missing or of another type in the reference: {differing}"
        elif pair_ids(ours) != pair_ids(theirs):
            verdict[split] = "different pairs"
        elif not row_digests(ours, list(schema)).equals(row_digests(theirs, list(schema))):
            verdict[split] = "same pairs, different rows (order, A/B side, paper attributes or prompts)"
        else:
            verdict[split] = "same"
    return verdict


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--papers", type=int, default=2_900_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-pandas", action="store_true")
    ap.add_argument("--json", help="write the figures here too")
    args = ap.parse_args()

    block = schema_defaults()["scijudge"]
    env = dict(os.environ, PYTHONPATH=str(ROOT), POLARS_MAX_THREADS=os.environ.get("POLARS_MAX_THREADS", "2"))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        papers, cites = synthetic_tables(args.papers, seed=args.seed)
        papers.write_parquet(tmp / "papers.parquet")
        cites.write_parquet(tmp / "citations.parquet")
        del papers, cites
        out = {"papers": args.papers, "cores": os.cpu_count()}
        polars_cmd = [
            sys.executable, "-m", "workflow_scripts.datasets.scijudge_pairs",
            "--papers", str(tmp / "papers.parquet"), "--citations", str(tmp / "citations.parquet"),
            "--config-json", json.dumps(block), "--seed", "1234",
            "--train", str(tmp / "train.parquet"), "--test-id", str(tmp / "test_id.parquet"),
            "--test-ood", str(tmp / "test_ood.parquet"), "--stats", str(tmp / "stats.json"), "--card", str(tmp / "card.md"),
        ]
        out["polars"] = measure(polars_cmd, env)
        stats = json.loads((tmp / "stats.json").read_text())
        out["polars"]["pairs"] = {s: v["pairs"] for s, v in stats["splits"].items()}
        out["polars"]["duplicate_pairs_by_rule"] = stats["duplicates"]["pairs_by_rule"]
        out["polars"].pop("stdout")
        print(json.dumps(out["polars"]), flush=True)
        if not args.skip_pandas:
            (tmp / "pd").mkdir()
            code = (
                "import json, sys; from benchmarks.pandas_pairs import build; "
                f"build({str(tmp / 'papers.parquet')!r}, {str(tmp / 'citations.parquet')!r}, json.loads(sys.argv[1]), 1234, {str(tmp / 'pd')!r})"
            )
            res = measure([sys.executable, "-c", code, json.dumps(block)], env)
            res["pairs"] = json.loads(res.pop("stdout").strip().splitlines()[-1])
            out["pandas"] = res
            out["same_rows"] = compare(tmp, tmp / "pd", out["polars"]["pairs"])
            print(json.dumps(out["pandas"]), flush=True)
    print(json.dumps(out, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    differ = {s: v for s, v in out.get("same_rows", {}).items() if v != "same"}
    if differ:
        raise SystemExit(f"the pandas reference and the step disagree: {differ}")


if __name__ == "__main__":
    main()
