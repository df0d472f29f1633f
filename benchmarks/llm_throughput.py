"""Benchmark: the LLM client against the demo endpoint with injected latency, and its cache-hit path.

For each concurrency, a fresh cache and a demo server that holds every answer ``--latency-ms``: requests/s against
the ideal concurrency / latency, with the CPU seconds the client and the server used. Then ``--cached`` answers
written to a cache and read back through the client: cached answers/s (index load included, reported apart).

    python benchmarks/llm_throughput.py [--latency-ms 300] [--concurrency 1 8 32 64 128] [--cached 20000]

Goals on 2 cores: >= 90% of the ideal rate up to 64 in flight; >= 20,000 cached answers/s.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from workflow_scripts.llm.cache import ResponseCache  # noqa: E402
from workflow_scripts.llm.client import completion_record  # noqa: E402
from workflow_scripts.llm.demo_server import chat_completion  # noqa: E402
from workflow_scripts.llm.endpoints import open_client  # noqa: E402
from workflow_scripts.llm.request import ChatRequest, request_body, request_key  # noqa: E402
from workflow_scripts.llm.stand_in import GENERIC, model_id  # noqa: E402

# a judge-sized prompt: ~1,500 characters
PROMPT = ("Question: does the response satisfy the criterion? Answer with a score from 0 to 2.\n" +
          "The response discusses the method, its limitations and the evidence cited for each claim. " * 15)


def requests(n: int, tag: str) -> list[ChatRequest]:
    return [ChatRequest([{"role": "system", "content": "You are a careful judge."},
                         {"role": "user", "content": f"[{tag} {i}] {PROMPT}"}], {"temperature": 0, "max_tokens": 256})
            for i in range(n)]


def client_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def server_cpu() -> float:
    """CPU seconds of this process's children so far (the demo server; Linux /proc)."""
    total = 0
    for task in Path("/proc/self/task").iterdir():
        for child in (task / "children").read_text().split():
            fields = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def throughput(concurrency: int, latency_ms: float, rounds: int) -> dict:
    n = max(64, concurrency * rounds)
    block = {"kind": "demo", "demo": {"latency_ms": latency_ms}, "limits": {"max_concurrency": concurrency}}
    with tempfile.TemporaryDirectory() as cache, open_client("judge", block, cache) as client:
        asked = requests(n, f"c{concurrency}")
        cpu = (client_cpu(), server_cpu())  # the server's start-up is not counted
        start = time.perf_counter()
        answers = client.complete_many(asked)
        wall = time.perf_counter() - start
        cpu = (client_cpu() - cpu[0], server_cpu() - cpu[1])
    assert all(a.ok and not a.cached for a in answers), {a.status for a in answers}
    ideal = concurrency / (latency_ms / 1000)
    return {"concurrency": concurrency, "requests": n, "wall_s": round(wall, 2), "rps": round(n / wall, 1),
            "ideal_rps": round(ideal, 1), "of_ideal": round(n / wall / ideal, 3),
            "client_cpu_ms_per_request": round(cpu[0] / n * 1000, 2),
            "server_cpu_ms_per_request": round(cpu[1] / n * 1000, 2)}


def cache_hits(n: int) -> dict:
    asked = requests(n, "cached")
    model = model_id(GENERIC)
    with tempfile.TemporaryDirectory() as cache:
        with ResponseCache(Path(cache) / "judge") as store:  # what earlier runs left: one record per request
            for request in asked:
                body = request_body(request, model)
                record = completion_record(json.dumps(chat_completion(GENERIC, body)).encode())
                store.put(request_key(body), {**record, "model": model, "latency_s": 0.3, "at": 0.0})
        start = time.perf_counter()
        with open_client("judge", {"kind": "external", "model": model, "base_url": "http://127.0.0.1:9/v1"},
                         cache) as client:  # nothing listens there: a single request would fail the run
            loaded = time.perf_counter()
            answers = client.complete_many(asked)
            done = time.perf_counter()
    assert all(a.ok and a.cached for a in answers) and client.stats.requests == 0
    return {"cached_answers": n, "index_load_s": round(loaded - start, 3), "lookup_s": round(done - loaded, 3),
            "answers_per_s": round(n / (done - loaded)), "answers_per_s_with_load": round(n / (done - start))}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--latency-ms", type=float, default=300.0)
    p.add_argument("--concurrency", type=int, nargs="*", default=[1, 8, 32, 64, 128], help="none: the cache only")
    p.add_argument("--rounds", type=int, default=8, help="requests per concurrency slot (at least 64 requests)")
    p.add_argument("--cached", type=int, default=20000, help="answers for the cache-hit path")
    p.add_argument("--json", default=None, help="also write the results here")
    args = p.parse_args()
    results = {"throughput": [], "cache": None}
    print("| in flight | requests | wall | requests/s | ideal | of ideal | client CPU / request | "
          "server CPU / request |")
    print("|---|---|---|---|---|---|---|---|")
    for concurrency in args.concurrency:
        r = throughput(concurrency, args.latency_ms, args.rounds)
        results["throughput"].append(r)
        print(f"| {concurrency} | {r['requests']} | {r['wall_s']} s | {r['rps']} | {r['ideal_rps']} | "
              f"{r['of_ideal']:.0%} | {r['client_cpu_ms_per_request']} ms | {r['server_cpu_ms_per_request']} ms |",
              flush=True)
    if args.cached:
        c = results["cache"] = cache_hits(args.cached)
        print(f"\ncache-hit path: {c['cached_answers']:,} answers, {c['answers_per_s']:,}/s "
              f"(index of the cache loaded in {c['index_load_s']} s; {c['answers_per_s_with_load']:,}/s with it)")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
