"""Reviewer evaluation: the decision parser on what models really write, p(accept) from token log-probabilities,
the card's metric arithmetic, calibration, and the predict / from-answers / requests / constant / metrics steps."""

import json
import math

import numpy as np
import polars as pl
import pytest

from workflow_scripts.datasets.reviewer_decision import parse_decision
from workflow_scripts.eval import reviewer, reviewer_metrics
from workflow_scripts.eval.generation import Generation, render_prompts
from workflow_scripts.eval.review_decision_probability import (
    p_accept, p_accept_of_chat_logprobs, p_accept_of_generation,
)
from workflow_scripts.eval.stats import wilson_interval
from workflow_scripts.llm.batch import read_requests, request_lines

ACCEPT_LINE, REJECT_LINE = "I recommend this paper for ACCEPTANCE.", "I recommend this paper for REJECTION."
SYSTEM = "You are an experienced academic peer reviewer."


# ------------------------------------------------------------------------------------------------- decision parser


@pytest.mark.parametrize("text, decision, problem", [
    # the template's two lines echoed: no decision, even with a real one after them
    (f"End with EXACTLY ONE line:\n    {ACCEPT_LINE}\n    {REJECT_LINE}\n", None, "both_decisions"),
    (f"    {ACCEPT_LINE}\n    {REJECT_LINE}\n\n{REJECT_LINE}", None, "both_decisions"),
    (f"## Final Recommendation\n**{ACCEPT_LINE}**", "accept", None),  # bold
    (f'"{REJECT_LINE}"', "reject", None),  # quoted
    (f"> {REJECT_LINE}", "reject", None),  # block quote
    (f"- {ACCEPT_LINE}", "accept", None),  # bulleted
    (f"{ACCEPT_LINE}\n\nThank you for the opportunity to review.", "accept", None),  # trailing text after it
    (f"{ACCEPT_LINE} The work is solid.", None, "no_decision"),  # the sentence must stand alone on its line
    (ACCEPT_LINE.lower(), None, "no_decision"),  # lowercase
    ("The criteria for ACCEPTANCE are met; I recommend this paper for ACCEPTANCE in principle.", None, "no_decision"),
    ("I recommend this paper for REJECTION", "reject", None),  # no final full stop
    (f"## Summary\r\nGood.\r\n\r\n{ACCEPT_LINE}\r\n", "accept", None),  # CRLF
    (f"Weak.\n{REJECT_LINE}\nOn reflection:\n{REJECT_LINE}", "reject", None),  # repeated, one decision
])
def test_decision_parser_on_adversarial_outputs(text, decision, problem):
    parsed = parse_decision(text)
    assert (parsed.decision, parsed.problem) == (decision, problem)
    if decision:
        word = {"accept": "ACCEPTANCE", "reject": "REJECTION"}[decision]
        assert text[parsed.offset:].startswith(word) and text.rindex(word) == parsed.offset  # the last line's word
    else:
        assert parsed.offset is None


# ---------------------------------------------------------------------------------------------------- p(accept)


def _steps(tokens, decision_step, alternatives):
    """Candidates per step: the chosen token only, except at the decision step."""
    return [alternatives if i == decision_step else [(t, 0.0)] for i, t in enumerate(tokens)]


def test_p_accept_with_the_space_attached_to_the_word():
    tokens = ["Solid", " work", ".\n", "I", " recommend", " this", " paper", " for", " ACC", "EPT", "ANCE", "."]
    text = "".join(tokens)
    alternatives = [(" ACC", math.log(0.6)), (" REJ", math.log(0.2)), ("ACC", math.log(0.1)),  # no space: not it
                    (" the", math.log(0.05)), (" R", math.log(0.05))]  # a bare first letter starts REJECTION
    p = p_accept(tokens, _steps(tokens, 8, alternatives), text, parse_decision(text).offset)
    assert p == pytest.approx(0.6 / (0.6 + 0.2 + 0.05))


def test_p_accept_with_split_tokens_and_sentencepiece_marks():
    # the space is a token of its own: the decision token starts at the word, alternatives without a space count
    tokens = ["I", "▁recommend", "▁this", "▁paper", "▁for", "▁", "REJECT", "ION", "."]
    text = "".join(tokens).replace("▁", " ")
    alternatives = [("REJECT", math.log(0.3)), ("RE", math.log(0.1)), ("ACCEPTANCE", math.log(0.2)),
                    ("▁ACC", math.log(0.3))]  # "▁ACC" would put a second space before the word
    assert p_accept(tokens, _steps(tokens, 6, alternatives), text, parse_decision(text).offset) == pytest.approx(
        0.2 / 0.6)
    # one token reaching back over the space and "for": the same text must precede the candidates
    tokens = ["I recommend this paper", " for ACC", "EPTANCE"]
    alternatives = [(" for ACC", math.log(0.5)), (" for REJ", math.log(0.5)), (" ACC", math.log(0.9))]
    text = "".join(tokens)
    assert p_accept(tokens, _steps(tokens, 1, alternatives), text, parse_decision(text).offset) == pytest.approx(0.5)


def test_p_accept_is_none_when_neither_decision_is_a_candidate():
    tokens = ["I", " recommend", " this", " paper", " for", " ACCEPTANCE", "."]
    text = "".join(tokens)
    offset = parse_decision(text).offset
    assert p_accept(tokens, _steps(tokens, 5, [(" the", -0.1), (" a", -2.0)]), text, offset) is None
    assert p_accept(tokens, _steps(tokens, 5, [(" ACCEPTANCE", -0.1)]), text, offset) == 1.0  # one side only


def test_p_accept_from_an_endpoint_answer_and_from_a_generation():
    # a chat completion's logprobs.content: a <think> block and surrounding space that Answer.text leaves out
    pieces = ["<think>", "hmm", "</think>", "\n\n", "Fine", ".\n", "I", " recommend", " this", " paper", " for",
              " REJ", "ECTION", ".", "\n"]
    content = [{"token": t, "logprob": -0.01, "top_logprobs": [{"token": t, "logprob": -0.01}]} for t in pieces]
    content[11] = {"token": " REJ", "logprob": math.log(0.7),  # the chosen token is not among its alternatives
                   "top_logprobs": [{"token": " ACC", "logprob": math.log(0.1)},
                                    {"token": " A", "logprob": math.log(0.1)}]}
    text = "Fine.\n" + REJECT_LINE
    assert p_accept_of_chat_logprobs(content, text, parse_decision(text).offset) == pytest.approx(0.2 / 0.9)

    tokens = ["Fine", ".\n", "I", " recommend", " this", " paper", " for", " ACCEPT", "ANCE", "."]
    top = [{t: 0.0} for t in tokens]
    top[7] = {" ACCEPT": math.log(0.45), " REJECTION": math.log(0.15), " a": math.log(0.4)}
    gen = Generation(text="".join(tokens), num_tokens=11, finished=True, tokens=tokens, top_logprobs=top)
    assert p_accept_of_generation(gen, parse_decision(gen.text).offset) == pytest.approx(0.75)
    with pytest.raises(ValueError, match="top_logprobs > 0"):
        p_accept_of_generation(Generation(text=gen.text, num_tokens=11, finished=True), 0)


# ------------------------------------------------------------------------------------------------------- metrics


def _benchmark(labels, venues=None) -> pl.DataFrame:
    n = len(labels)
    return pl.DataFrame({
        "key": [f"paper-{i:03d}" for i in range(n)],
        "source": ["peerread"] * n,
        "venue": venues or ["ICLR 2017"] * n,
        "paper_id": [str(i) for i in range(n)],
        "title": [f"Paper {i}" for i in range(n)],
        "messages": [[{"role": "system", "content": SYSTEM}, {"role": "user", "content": f"Review paper {i}."}]
                     for i in range(n)],
        "label": labels,
    })


def _predictions(benchmark, label, decisions, p=None, problems=None, backend="hf"):
    rows = [{"decision": d, "parse_problem": (problems or {}).get(i, None if d else "no_decision"),
             "p_accept": None if p is None else p[i], "generation": f"review {i}", "finished": True,
             "num_tokens": 10, "latency_s": 0.5} for i, d in enumerate(decisions)]
    return reviewer.predictions_frame(benchmark, label, backend, rows)


def _card_benchmark():
    """The card's benchmark as the brief decomposes it: 95 papers, 80 accepted; the fine-tuned model's decisions
    are TP 74, FN 6, FP 12, TN 3."""
    labels = [True] * 80 + [False] * 15
    student = ["accept"] * 74 + ["reject"] * 6 + ["accept"] * 12 + ["reject"] * 3
    return _benchmark(labels), student


def test_the_cards_arithmetic():
    benchmark, student = _card_benchmark()
    frames = {"student": _predictions(benchmark, "student", student),
              "always_accept": _predictions(benchmark, "always_accept", ["accept"] * 95, backend="constant")}
    metrics = reviewer_metrics.compute_metrics(frames, n_boot=300, seed=3)
    m = metrics["models"]["student"]
    assert m["confusion"] == {"tp": 74, "fp": 12, "fn": 6, "tn": 3}
    assert [round(m[s]["value"], 3) for s in ("precision", "recall", "f1", "accuracy")] == [0.860, 0.925, 0.892, 0.811]
    assert m["predicted_accept_rate"]["value"] == pytest.approx(86 / 95)
    baseline = metrics["models"]["always_accept"]
    assert round(baseline["f1"]["value"], 3) == 0.914 and round(baseline["accuracy"]["value"], 3) == 0.842
    assert metrics["benchmark"]["true_accept_rate"]["successes"] == 80
    for s in reviewer_metrics.SCORES:
        assert m[s]["ci_low"] <= m[s]["value"] <= m[s]["ci_high"] and m[s]["ci_low"] < m[s]["ci_high"]
    # seeded: the same intervals again; another seed, others
    again = reviewer_metrics.compute_metrics(frames, n_boot=300, seed=3)["models"]["student"]
    other = reviewer_metrics.compute_metrics(frames, n_boot=300, seed=4)["models"]["student"]
    assert again["f1"] == m["f1"] and other["f1"] != m["f1"]


def test_bootstrap_scores_match_sklearn_on_the_identity_resample():
    rng = np.random.default_rng(0)
    y, predicted = rng.random(40) < 0.7, rng.random(40) < 0.6
    boot = reviewer_metrics.resampled_scores(y, predicted, np.arange(40)[None, :])
    points = reviewer_metrics.point_scores(y, predicted)
    assert {s: float(v[0]) for s, v in boot.items()} == pytest.approx(points)
    none_predicted = reviewer_metrics.resampled_scores(y, np.zeros(40, bool), np.arange(40)[None, :])
    assert none_predicted["precision"][0] == 0 == reviewer_metrics.point_scores(y, np.zeros(40, bool))["precision"]


def test_unparsed_outputs_count_as_reject_or_are_left_out():
    benchmark = _benchmark([True, True, False, False], venues=["ACL 2017", "ICLR 2017", "ICLR 2017", "ICLR 2017"])
    frame = _predictions(benchmark, "m", ["accept", None, None, "reject"], problems={1: "truncated"})
    as_reject = reviewer_metrics.model_metrics(frame, n_boot=0, seed=0, level=0.95, bins=5, unparsed_as="reject")
    assert as_reject["n"] == 4 and as_reject["confusion"] == {"tp": 1, "fp": 0, "fn": 1, "tn": 2}
    assert as_reject["unparsed"] == {"total": 2, "by_problem": {"no_decision": 1, "truncated": 1}}
    excluded = reviewer_metrics.model_metrics(frame, n_boot=0, seed=0, level=0.95, bins=5, unparsed_as="exclude")
    assert excluded["n"] == 2 and excluded["confusion"] == {"tp": 1, "fp": 0, "fn": 0, "tn": 1}
    assert excluded["by_venue"]["ICLR 2017"]["n"] == 1 and as_reject["by_venue"]["ICLR 2017"]["n"] == 3
    assert as_reject["by_venue"]["ACL 2017"]["f1"] == 1.0 and as_reject["by_venue"]["ICLR 2017"]["f1"] == 0.0


def test_wilson_interval_values():
    assert wilson_interval(8, 10, 0.95) == pytest.approx((0.4902, 0.9433), abs=1e-4)
    assert wilson_interval(0, 10, 0.95) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson_interval(10, 10, 0.95) == pytest.approx((0.7225, 1.0), abs=1e-4)
    assert wilson_interval(80, 95, 0.95) == pytest.approx((0.7557, 0.9019), abs=1e-4)
    assert wilson_interval(0, 0, 0.95) == (None, None)


def test_brier_and_ece_on_a_hand_example():
    y, p = np.array([False, True, True, True]), np.array([0.1, 0.2, 0.8, 0.9])
    cal = reviewer_metrics.calibration(y, p, bins=2)
    # Brier: (0.01 + 0.64 + 0.04 + 0.01) / 4; bins {0.1, 0.2} and {0.8, 0.9}: |0.5 - 0.15| and |1 - 0.85|, half each
    assert cal["brier"] == pytest.approx(0.175) and cal["ece"] == pytest.approx(0.25)
    assert cal["bins"] == [pytest.approx({"n": 2, "mean_p_accept": 0.15, "accept_fraction": 0.5}),
                           pytest.approx({"n": 2, "mean_p_accept": 0.85, "accept_fraction": 1.0})]
    # ties leave equal-mass bins empty: only the filled ones are kept, with every paper counted once
    tied = reviewer_metrics.calibration(np.array([True, True, False, True, True]), np.array([1.0] * 4 + [0.5]), bins=5)
    assert [b["n"] for b in tied["bins"]] == [1, 4] and tied["ece"] == pytest.approx(0.2 * 0.5 + 0.8 * 0.25)
    assert reviewer_metrics.calibration(y[:0], p[:0], bins=5) is None


def test_metrics_cli_writes_tables_figures_and_generations(tmp_path):
    benchmark, student = _card_benchmark()
    venues = ["ICLR 2017"] * 78 + ["ACL 2017"] * 14 + ["CoNLL 2016"] * 3
    benchmark = benchmark.with_columns(venue=pl.Series(venues))
    rng = np.random.default_rng(1)
    frames = {
        "base": _predictions(benchmark, "base", ["accept"] * 70 + [None] * 10 + ["reject"] * 15),
        "student": _predictions(benchmark, "student", student,
                                p=[float(x) for x in rng.uniform(0.5, 1.0, 80)] + [0.3] * 15),
        "teacher": _predictions(benchmark, "teacher", ["accept"] * 95, backend="endpoint"),
        "always_accept": _predictions(benchmark, "always_accept", ["accept"] * 95, p=[1.0] * 95, backend="constant"),
    }
    paths = []
    for label, frame in frames.items():
        paths += ["--predictions", str(tmp_path / f"{label}.parquet")]
        frame.write_parquet(paths[-1])
    out = {k: tmp_path / name for k, name in (("json", "m.json"), ("md", "m.md"), ("rel", "rel.png"),
                                              ("rates", "rates.png"), ("gen", "gen.jsonl"))}
    reviewer.main(["metrics", *paths, "--out-json", str(out["json"]), "--out-md", str(out["md"]),
                   "--out-reliability-png", str(out["rel"]), "--out-rates-png", str(out["rates"]),
                   "--out-generations-jsonl", str(out["gen"]), "--bootstrap", "50", "--seed", "7", "--bins", "5",
                   "--unparsed-as", "reject", "--reference-accept-rate", "0.842",
                   "--provenance", '{"teacher": "demo stand-in reviewer_teacher@1"}'])
    metrics = json.loads(out["json"].read_text())
    assert metrics["model_order"] == ["base", "student", "teacher", "always_accept"]
    assert metrics["models"]["base"]["unparsed"]["total"] == 10
    assert metrics["models"]["teacher"]["calibration"] is None
    assert metrics["models"]["student"]["calibration"]["n"] == 95
    assert len(metrics["models"]["student"]["calibration"]["bins"]) == 5
    assert metrics["benchmark"]["by_venue"]["CoNLL 2016"]["n"] == 3
    md = out["md"].read_text()
    rows = [line.split(" | ")[0] for line in md.splitlines()
            if line.startswith("| ") and line.split(" | ")[1] in ("hf", "endpoint", "constant")]
    assert rows == ["| base", "| student", "| teacher", "| always_accept"]
    assert "true accept rate 84.2% (80/95); the reference reports 84.2%" in md
    assert "Provenance: teacher: demo stand-in reviewer_teacher@1." in md and "count as reject" in md
    assert "| CoNLL 2016 | 3 |" in md
    for png in (out["rel"], out["rates"]):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    lines = [json.loads(line) for line in out["gen"].read_text().splitlines()]
    assert len(lines) == 4 * 95 and {r["model"] for r in lines} == set(frames)
    assert lines[0]["generation"] == "review 0" and lines[0]["key"] == "paper-000"


def test_metrics_refuse_mismatched_inputs(tmp_path):
    benchmark, _ = _card_benchmark()
    a = _predictions(benchmark, "a", ["accept"] * 95)
    flipped = _predictions(benchmark.with_columns(label=~pl.col("label")), "b", ["accept"] * 95)
    with pytest.raises(ValueError, match="not the same benchmark"):
        reviewer_metrics.compute_metrics({"a": a, "b": flipped}, n_boot=0)
    bad = tmp_path / "bad.parquet"
    a.with_columns(decision=pl.lit("maybe")).write_parquet(bad)
    with pytest.raises(ValueError, match="decision 'maybe'"):
        reviewer.read_predictions(bad)


# --------------------------------------------------------------------------------------------------------- steps


@pytest.fixture(scope="module")
def decisive_model(tmp_path_factory):
    """A tiny Qwen3 that writes ``I recommend this paper for ACCEPTANCE.`` and stops, and whose own distribution at
    the decision word is 3:1 for ACCEPTANCE over REJECTION: with attention and MLP outputs zeroed, each step's logits
    depend on the current token only, and an untied output layer maps each token of the line to the next one."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from workflow_scripts.train.tiny_model import build_tiny_model

    root = tmp_path_factory.mktemp("decisive")
    texts = [SYSTEM, "Review paper 1.", ACCEPT_LINE, REJECT_LINE] * 20
    build_tiny_model(texts, root / "random", vocab_size=400)
    tokenizer = AutoTokenizer.from_pretrained(root / "random")
    model = AutoModelForCausalLM.from_pretrained(root / "random")
    accept = tokenizer(ACCEPT_LINE, add_special_tokens=False)["input_ids"]
    reject = tokenizer(REJECT_LINE, add_special_tokens=False)["input_ids"]
    fork = next(i for i, (a, r) in enumerate(zip(accept, reject)) if a != r)  # the decision word's first token
    prompt = render_prompts(tokenizer, [_benchmark([True])["messages"][0].to_list()], {})[0]
    chain = [prompt[-1], *accept, tokenizer.eos_token_id]
    edges = [(a, b, 20.0) for a, b in zip(chain, chain[1:])] + [(accept[fork - 1], reject[fork], 20.0 - math.log(3))]
    assert len({a for a, b, _ in edges if b != reject[fork]}) == len(chain) - 1, "a token repeats in the line"
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        hidden = model.model.norm(model.model.embed_tokens.weight)  # each token's last hidden state
        head = torch.zeros_like(hidden)
        for prev, nxt, logit in edges:
            head[nxt] += logit * hidden[prev] / hidden[prev].dot(hidden[prev])
    model.config.tie_word_embeddings = False
    model.lm_head.weight = torch.nn.Parameter(head)
    model.save_pretrained(root / "model")
    tokenizer.save_pretrained(root / "model")
    return root / "model"


def test_predict_end_to_end_with_decision_logprobs(decisive_model, tmp_path):
    bench = tmp_path / "benchmark.parquet"
    _benchmark([True, False, True]).write_parquet(bench)
    out = tmp_path / "pred.parquet"
    gen = {"backend": "hf", "temperature": 0.2, "top_p": 0.9, "top_k": None, "max_new_tokens": 20, "seed": 1234,
           "top_logprobs": 5}
    reviewer.main(["predict", "--model", str(decisive_model), "--benchmark", str(bench), "--gen-json",
                   json.dumps(gen), "--batch-size", "2", "--label", "student", "--out", str(out)])
    df = pl.read_parquet(out)
    assert dict(df.schema) == reviewer.PREDICTION_SCHEMA
    assert df["generation"].to_list() == [ACCEPT_LINE] * 3 and df["finished"].all()
    assert df["decision"].to_list() == ["accept"] * 3 and df["parse_problem"].null_count() == 3
    # the model's own 3:1 at the decision word, not the sampling distribution (temperature 0.2 would give 3^5:1)
    assert df["p_accept"].to_list() == pytest.approx([0.75] * 3, abs=1e-4)
    assert df["model"].unique().to_list() == ["student"] and df["backend"].unique().to_list() == ["hf"]
    assert (df["latency_s"] > 0).all() and df["label"].to_list() == [True, False, True]

    reviewer.main(["predict", "--model", str(decisive_model), "--benchmark", str(bench), "--gen-json",
                   json.dumps({**gen, "max_new_tokens": 3}), "--label", "student", "--out", str(out)])
    cut = pl.read_parquet(out)
    assert cut["parse_problem"].to_list() == ["truncated"] * 3 and cut["p_accept"].null_count() == 3
    assert not cut["finished"].any() and cut["num_tokens"].to_list() == [3] * 3


def test_predict_on_a_random_model_keeps_every_paper(tiny_model_dir, tmp_path):
    bench = tmp_path / "benchmark.parquet"
    _benchmark([True, False]).write_parquet(bench)
    out = tmp_path / "pred.parquet"
    reviewer.main(["predict", "--model", str(tiny_model_dir), "--benchmark", str(bench), "--gen-json",
                   '{"max_new_tokens": 6, "temperature": 0.2, "top_p": 0.9}', "--label", "base", "--out", str(out)])
    df = pl.read_parquet(out)
    assert df.height == 2 and dict(df.schema) == reviewer.PREDICTION_SCHEMA
    parsed = df.filter(pl.col("decision").is_not_null())
    assert parsed["p_accept"].drop_nulls().is_between(0, 1).all()
    assert df.filter(pl.col("decision").is_null())["parse_problem"].is_in(["no_decision", "truncated"]).all()


def _answer(key, status, text, finish="stop", logprobs=None, tokens=900):
    row = {"id": key, "key": "sha", "status": status, "text": text, "json": None, "finish_reason": finish,
           "usage": {"completion_tokens": tokens}, "latency_s": 2.0, "logprobs": logprobs, "cached": False,
           "problem": None if status == "ok" else f"{status}: detail", "raw": None, "attempts": 1}
    return json.dumps(row) + "\n"


def test_from_answers_keeps_every_paper_with_its_status(tmp_path):
    bench = tmp_path / "benchmark.parquet"
    _benchmark([True, False, True, False]).write_parquet(bench)
    pieces = ["Good", ".\n", "I", " recommend", " this", " paper", " for", " ACC", "EPTANCE", "."]
    content = [{"token": t, "logprob": -0.1, "top_logprobs": []} for t in pieces]
    content[7] = {"token": " ACC", "logprob": math.log(0.8), "top_logprobs": [
        {"token": " ACC", "logprob": math.log(0.8)}, {"token": " REJ", "logprob": math.log(0.2)}]}
    answers = tmp_path / "answers.jsonl"
    answers.write_text(_answer("paper-000", "ok", "Good.\n" + ACCEPT_LINE, logprobs=content)
                       + _answer("paper-001", "truncated", "## Summary\nA long review", finish="length", tokens=1400)
                       + _answer("paper-002", "failed", None, finish=None, tokens=None)
                       + _answer("paper-003", "ok", "No verdict here."))
    out = tmp_path / "teacher.parquet"
    reviewer.main(["from-answers", "--benchmark", str(bench), "--answers", str(answers), "--label", "teacher",
                   "--out", str(out)])
    df = pl.read_parquet(out)
    assert dict(df.schema) == reviewer.PREDICTION_SCHEMA and df["backend"].unique().to_list() == ["endpoint"]
    assert df["decision"].to_list() == ["accept", None, None, None]
    assert df["parse_problem"].to_list() == [None, "truncated", "failed", "no_decision"]
    assert df["p_accept"].to_list()[0] == pytest.approx(0.8) and df["p_accept"].null_count() == 3
    assert df["finished"].to_list() == [True, False, None, True]
    assert df["num_tokens"].to_list() == [900, 1400, None, 900]

    answers.write_text(_answer("paper-000", "ok", ACCEPT_LINE))
    with pytest.raises(ValueError, match=r"3 without an answer \(e.g. \['paper-001'"):
        reviewer.from_answers(bench, answers, "teacher")


def test_requests_are_what_llm_batch_reads(tmp_path):
    bench = tmp_path / "benchmark.parquet"
    _benchmark([True, False]).write_parquet(bench)
    out = tmp_path / "requests.jsonl"
    params = {"temperature": 0.2, "top_p": 0.9, "max_tokens": 1400}
    reviewer.main(["requests", "--benchmark", str(bench), "--params-json", json.dumps(params), "--top-logprobs", "5",
                   "--out", str(out)])
    requests = read_requests(out)
    assert [rid for rid, _ in requests] == ["paper-000", "paper-001"]
    assert requests[0][1].top_logprobs == 5 and requests[0][1].params == params
    assert requests[1][1].messages[1] == {"role": "user", "content": "Review paper 1."}
    with pytest.raises(ValueError, match="set by the client"):
        request_lines(reviewer.read_benchmark(bench).select("key", "messages").iter_rows(), {"logprobs": True}, 5)


def test_constant_row(tmp_path):
    bench = tmp_path / "benchmark.parquet"
    _benchmark([True, False, True]).write_parquet(bench)
    out = tmp_path / "always_accept.parquet"
    reviewer.main(["constant", "--benchmark", str(bench), "--decision", "accept", "--label", "always_accept",
                   "--out", str(out)])
    df = pl.read_parquet(out)
    assert df["decision"].to_list() == ["accept"] * 3 and df["p_accept"].to_list() == [1.0] * 3
    assert df["backend"].unique().to_list() == ["constant"] and df["generation"].null_count() == 3


def test_benchmark_is_checked(tmp_path):
    bench = tmp_path / "benchmark.parquet"
    _benchmark([True, None]).write_parquet(bench)
    with pytest.raises(ValueError, match=r"label must be a boolean.*paper-001"):
        reviewer.read_benchmark(bench)
    _benchmark([True]).drop("venue").write_parquet(bench)
    with pytest.raises(ValueError, match=r"missing column\(s\) \['venue'\]"):
        reviewer.read_benchmark(bench)


@pytest.mark.parametrize("command", ["predict", "requests", "from-answers", "constant", "metrics"])
def test_help_of_every_subcommand(command):
    with pytest.raises(SystemExit) as exc:
        reviewer.main([command, "--help"])
    assert exc.value.code == 0
