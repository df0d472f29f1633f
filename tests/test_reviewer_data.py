"""The Reviewer line's data: prompt truncation, benchmark labels, pool sampling, the leakage audit, the teacher
filter and split, and the demo teacher answering through the real demo server and llm.batch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from tests.workflow_runner import ROOT
from workflow_scripts.common.io import Rejects
from workflow_scripts.datasets import reviewer_leakage, reviewer_pool, reviewer_teacher
from workflow_scripts.datasets.reviewer_labels import parse_rules
from workflow_scripts.datasets.prompt_tokens import load_tokenizer
from workflow_scripts.datasets.reviewer_prompts import PromptRenderer, Unrenderable, body_text, largest_fitting
from workflow_scripts.demo.reviews import World
from workflow_scripts.llm.batch import read_answer_rows, read_requests, request_lines
from workflow_scripts.sources.reviews.tables import PAPER_SCHEMA
from workflow_scripts.train.tiny_model import train_tokenizer

SYSTEM = "You are an experienced academic peer reviewer.\n\nRULES:\n1. Be SPECIFIC."
TEMPLATE = ("Review the following paper. Format:\n\n## Summary\n<contribution>\n\n## Final Recommendation\n"
            "End with EXACTLY ONE line:\n    I recommend this paper for ACCEPTANCE.\n"
            "    I recommend this paper for REJECTION.\n\n---\n\nTitle: {title}\nAbstract: {abstract}\n"
            "Paper content:\n{body}\n")
ACCEPT, REJECT = "I recommend this paper for ACCEPTANCE.", "I recommend this paper for REJECTION."


def demo_papers(venue: str, n: int, seed: int = 7) -> list:
    world = World(seed, f"test/{venue}")
    return [world.paper(venue, int(venue[-4:]), f"{venue[:4]}{i:03d}") for i in range(n)]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """A tokenizer with a chat template (all the prompt steps load from a model directory), trained on demo text."""
    texts = [TEMPLATE, SYSTEM] + [f"{p.title}\n{p.abstract}\n" + "\n".join(t for _, t in p.sections)
                                  for p in demo_papers("iclr_2019", 30)]
    out = tmp_path_factory.mktemp("reviewer_model")
    train_tokenizer(texts, vocab_size=600, model_max_length=4096).save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def tokenizer(model_dir):
    return load_tokenizer(str(model_dir))


def paper_row(venue: str, paper_id: str, title: str, *, split: str | None = None, decision: str | None = "accept",
              ratings: tuple = (6.0,), sections: list | None = None, year: int | None = None) -> dict:
    source = "openreview" if split is None else "peerread"
    return {"key": f"{source}:{venue}:{paper_id}", "source": source, "venue": venue,
            "year": year or int(venue[-4:]), "split": split, "paper_id": paper_id, "title": title,
            "abstract": f"We study {title.lower()}.", "authors": [],
            "sections": [{"heading": "1 INTRODUCTION", "text": f"The body of {title}."}] if sections is None
            else sections, "text_source": None, "decision": decision, "decision_raw": decision,
            "reviews": [{"review_id": f"r{i}", "reviewer": None, "title": None, "text": "ok", "rating": r,
                         "confidence": None, "scores": []} for i, r in enumerate(ratings)],
            "n_reviews": len(ratings), "pdf_field": None, "file": "x.json"}


def papers_frame(rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=PAPER_SCHEMA, orient="row").sort("key")


# ---------------------------------------------------------------------------------------------------------------------
# prompts


def test_the_body_joins_headed_blocks_and_a_null_heading_gives_the_text_alone():
    sections = [{"heading": None, "text": "Preamble."}, {"heading": "1 INTRO", "text": "Text one."},
                {"heading": "2 EMPTY", "text": ""}, {"heading": None, "text": None}]
    assert body_text(sections) == "Preamble.\n\n1 INTRO\nText one.\n\n2 EMPTY"
    assert body_text(None) == ""


def test_truncation_cuts_only_the_body_and_fills_the_budget_exactly(tokenizer):
    paper = demo_papers("iclr_2020", 1)[0]
    body = body_text([{"heading": h, "text": t} for h, t in paper.sections])
    full = PromptRenderer(tokenizer, SYSTEM, TEMPLATE, 100_000).render(paper.title, paper.abstract, body)
    assert not full.body_truncated and full.body_tokens_kept == full.body_tokens_total > 100
    ends = [end for _, end in tokenizer(body, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]]
    for budget in (full.prompt_tokens - 1, full.prompt_tokens - 37, full.prompt_tokens - full.body_tokens_total + 5):
        renderer = PromptRenderer(tokenizer, SYSTEM, TEMPLATE, budget)
        prompt = renderer.render(paper.title, paper.abstract, body)
        kept_body = body[: ends[prompt.body_tokens_kept - 1]]
        assert prompt.body_truncated and prompt.body_tokens_total == full.body_tokens_total
        # instructions, title and abstract verbatim; the body a prefix of the paper's
        assert prompt.messages == [{"role": "system", "content": SYSTEM},
                                   {"role": "user", "content": TEMPLATE.format(title=paper.title,
                                                                               abstract=paper.abstract,
                                                                               body=kept_body)}]
        assert prompt.prompt_tokens == renderer.count(prompt.messages) <= budget
        one_more = renderer.messages(paper.title, paper.abstract, body[: ends[prompt.body_tokens_kept]])
        assert renderer.count(one_more) > budget  # the largest body that fits


def test_a_paper_whose_instructions_alone_exceed_the_budget_is_unrenderable(tokenizer):
    renderer = PromptRenderer(tokenizer, SYSTEM, TEMPLATE, 20)
    with pytest.raises(Unrenderable, match="alone take .* over max_prompt_tokens 20") as caught:
        renderer.render("A title", "An abstract.", "Body.")
    assert caught.value.reason == "prompt_over_budget"
    with pytest.raises(ValueError, match="no placeholder for \\['body'\\]"):
        PromptRenderer(tokenizer, SYSTEM, "Title: {title} {abstract}", 100)


@pytest.mark.parametrize("guess", [-5, 0, 3, 41, 42, 43, 80, 500])
def test_the_cut_search_finds_the_largest_fitting_length_from_any_guess(guess):
    probes = []

    def fits(k):
        probes.append(k)
        return k <= 42

    assert largest_fitting(fits, 0, 100, guess) == 42
    assert len(probes) <= 16


# ---------------------------------------------------------------------------------------------------------------------
# labels


def test_label_rules_give_labels_or_say_why_not():
    rules = parse_rules({"iclr_2017": "decision", "acl_2017": {"rule": "mean_recommendation", "threshold": 3.5},
                         "conll_2016": "accept_all", "x_2000": "reject_all", "y_2000": "exclude"},
                        ["iclr_2017", "acl_2017", "conll_2016", "x_2000", "y_2000"])
    ratings = [{"rating": 3.0}, {"rating": 4.0}, {"rating": None}]
    assert rules["iclr_2017"].label("accept", []) == (True, None)
    assert rules["iclr_2017"].label("reject", []) == (False, None)
    assert rules["iclr_2017"].label(None, [])[0] is None
    assert rules["acl_2017"].label(None, ratings) == (True, None)  # mean 3.5 >= 3.5
    assert rules["acl_2017"].label(None, ratings[:1]) == (False, None)
    assert rules["acl_2017"].label(None, [{"rating": None}])[1].endswith("no official review with a rating")
    assert rules["conll_2016"].label("reject", []) == (True, None)
    assert rules["x_2000"].label("accept", []) == (False, None)
    assert rules["acl_2017"].describe() == "mean_recommendation >= 3.5"
    for spec, message in [({}, "iclr_2017: no label rule"), ({"iclr_2017": "majority"}, "is not a label rule"),
                          ({"iclr_2017": {"rule": "mean_recommendation"}}, "a threshold goes with"),
                          ({"iclr_2017": {"rule": "decision", "threshold": 3}}, "a threshold goes with")]:
        with pytest.raises(ValueError, match=message):
            parse_rules(spec, ["iclr_2017"])


# ---------------------------------------------------------------------------------------------------------------------
# pool and benchmark


def review_table() -> pl.DataFrame:
    rows = [
        # benchmark: ICLR 2017 dev/test by decision, ACL by mean rating
        paper_row("iclr_2017", "501", "Deep Nets: A Study", split="test", decision="accept"),
        paper_row("iclr_2017", "502", "Shallow Nets", split="dev", decision="reject"),
        paper_row("iclr_2017", "503", "Undecided Nets", split="dev", decision=None),  # no label
        paper_row("iclr_2017", "504", "Textless Nets", split="test", sections=[]),  # no text
        paper_row("acl_2017", "501", "Parsing Things", split="test", decision=None, ratings=(4.0, 5.0)),
        paper_row("acl_2017", "502", "Tagging Things", split="dev", decision=None, ratings=(2.0, 3.0)),
        # a bare id shared with benchmark papers of other venues: another paper, no match
        paper_row("iclr_2019", "501", "Same Bare Id"),
        *[paper_row("iclr_2017", str(100 + i), f"Train Paper {i}", split="train") for i in range(6)],
        # OpenReview: a resubmission of a benchmark paper, and one resubmitted from 2019 to 2020
        paper_row("iclr_2019", "Or19a", "deep nets -- a STUDY!"),
        paper_row("iclr_2019", "Or19b", "Recurrent Things"),
        paper_row("iclr_2020", "Or20a", "Recurrent  things."),
        *[paper_row("iclr_2019", f"Or19x{i}", f"Nineteen {i}") for i in range(5)],
        *[paper_row("iclr_2020", f"Or20x{i}", f"Twenty {i}") for i in range(2)],
    ]
    return papers_frame(rows)


def selection(seed: int = 3, **kw) -> reviewer_pool.Selection:
    venues = ["iclr_2017", "acl_2017"]
    values = dict(pool_sizes={"iclr_2017": 4, "iclr_2019": 3, "iclr_2020": 5}, pool_splits=["train"],
                  benchmark_venues=venues, benchmark_splits=["dev", "test"],
                  label_rules=parse_rules({"iclr_2017": "decision",
                                           "acl_2017": {"rule": "mean_recommendation", "threshold": 3.5}}, venues),
                  seed=seed)
    return reviewer_pool.Selection(**{**values, **kw})


def test_benchmark_labels_pool_exclusions_and_a_seeded_sample(tokenizer):
    renderer = PromptRenderer(tokenizer, SYSTEM, TEMPLATE, 2000)
    built = reviewer_pool.build(review_table(), renderer, selection(), "papers.parquet")
    assert not built.problems and built.audit["passed"]
    bench = built.benchmark
    assert dict(zip(bench["key"], bench["label"])) == {
        "peerread:acl_2017:501": True, "peerread:acl_2017:502": False,
        "peerread:iclr_2017:501": True, "peerread:iclr_2017:502": False}
    assert set(bench["label_rule"]) == {"decision", "mean_recommendation >= 3.5"}
    reasons = {r["record"]: r["reason"].split(":")[0] for r in built.rejects.rows}
    assert reasons == {"peerread:iclr_2017:503": "no_label", "peerread:iclr_2017:504": "no_text",
                       "openreview:iclr_2019:Or19a": "benchmark_match_title",
                       "openreview:iclr_2020:Or20a": "duplicate_title"}
    pool = built.pool
    assert pool["key"].is_unique().all()
    per_venue = dict(pool.group_by("venue").len().iter_rows())
    assert per_venue == {"iclr_2017": 4, "iclr_2019": 3, "iclr_2020": 2}  # 2020: 2 candidates for 5
    assert built.stats["pool"]["venues"]["iclr_2020"]["shortfall"] == 3
    assert built.stats["pool"]["benchmark_matches"] == {"id": 0, "title": 1}
    assert pool.filter(pl.col("venue") == "iclr_2017")["split"].to_list() == ["train"] * 4
    # deterministic; another seed draws another sample; a larger size keeps the smaller one's papers
    again = reviewer_pool.build(review_table(), renderer, selection(), "papers.parquet").pool
    assert again.equals(pool)
    other = reviewer_pool.build(review_table(), renderer, selection(seed=4), "papers.parquet").pool
    assert set(other["key"]) != set(pool["key"])
    larger = reviewer_pool.build(review_table(), renderer, selection(pool_sizes={"iclr_2017": 6, "iclr_2019": 3,
                                                                                 "iclr_2020": 5}), "p").pool
    assert set(pool["key"]) <= set(larger["key"])
    card = reviewer_pool.render_card(built, selection())
    assert "| **all** |" in card and "2/4 (50.0%)" in card and "Passed" in card and "| no_label | 1 |" in card


def test_the_pool_step_writes_its_outputs_and_fails_on_an_unexpected_benchmark_size(tmp_path, model_dir):
    papers = tmp_path / "papers.parquet"
    review_table().write_parquet(papers)
    out = {name: tmp_path / f"{name}.out" for name in ("pool", "benchmark", "audit", "rejects", "card")}
    argv = ["--papers", str(papers), "--model", str(model_dir), "--system-json", json.dumps(SYSTEM),
            "--user-template-json", json.dumps(TEMPLATE), "--max-prompt-tokens", "2000",
            "--pool-sizes", '{"iclr_2017": 4, "iclr_2019": 3}', "--benchmark-venues", "iclr_2017", "acl_2017",
            "--benchmark-splits", "dev", "test", "--label-rules",
            '{"iclr_2017": "decision", "acl_2017": "accept_all"}', "--seed", "1",
            *[a for name, path in out.items() for a in (f"--out-{name}", str(path))]]
    assert reviewer_pool.main(argv) == 0
    pool, bench = pl.read_parquet(out["pool"]), pl.read_parquet(out["benchmark"])
    assert pool.height == 7 and bench.height == 4
    assert list(pool.columns) == list(reviewer_pool.PROMPT_SCHEMA)
    assert bench["messages"][0].to_list()[0] == {"role": "system", "content": SYSTEM}
    assert json.loads(out["audit"].read_text())["passed"] is True
    assert len(out["rejects"].read_text().splitlines()) == 3  # no label, no text, a benchmark resubmission
    for path in out.values():
        path.unlink()
    assert reviewer_pool.main(argv + ["--expected-benchmark-size", "95"]) == 1
    assert not out["pool"].exists() and "expected 95" in out["card"].read_text()


# ---------------------------------------------------------------------------------------------------------------------
# leakage audit


def test_the_audit_catches_a_planted_resubmission_and_exits_non_zero(tmp_path, capsys):
    bench = pl.DataFrame({"key": ["peerread:iclr_2017:501", "peerread:acl_2017:7"],
                          "title": ["Learning to Résumé: Deep Nets, Revisited", "Parsing"]})
    pool = pl.DataFrame({"key": ["openreview:iclr_2019:Xy12", "openreview:iclr_2019:Ab34", "openreview:iclr_2020:Cd56",
                                 "peerread:acl_2017:7"],
                         "title": ["learning to resume -- deep  nets revisited", "Other", "OTHER.", "Parsing again"]})
    bench.write_parquet(tmp_path / "bench.parquet")
    pool.write_parquet(tmp_path / "pool.parquet")
    status = reviewer_leakage.main(["--pool", str(tmp_path / "pool.parquet"), "--benchmark",
                                    str(tmp_path / "bench.parquet"), "--out", str(tmp_path / "audit.json")])
    assert status == 1
    report = json.loads((tmp_path / "audit.json").read_text())
    assert report["matches_by_rule"] == {"id": 1, "title": 1} and not report["passed"]
    assert report["pool_duplicate_titles"] == [{"normalized_title": "other", "keys": [
        "openreview:iclr_2019:Ab34", "openreview:iclr_2020:Cd56"]}]
    err = capsys.readouterr().err
    assert ("LEAK (title): pool paper openreview:iclr_2019:Xy12 ('learning to resume -- deep  nets revisited') matches "
            "benchmark paper peerread:iclr_2017:501") in err
    clean = reviewer_leakage.audit(pool.head(2), bench)
    assert clean["matches_by_rule"]["title"] == 1  # the resubmission alone still fails
    assert reviewer_leakage.audit(pool.slice(1, 1), bench)["passed"]


# ---------------------------------------------------------------------------------------------------------------------
# teacher requests, filter and split


def pool_frame(keys: list[str]) -> pl.DataFrame:
    rows = [{"key": k, "source": "openreview", "venue": "iclr_2019", "year": 2019, "split": None, "paper_id": k,
             "title": k, "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": f"Paper {k}"}],
             "prompt_tokens": 10, "body_tokens_kept": 2, "body_tokens_total": 2, "body_truncated": False}
            for k in keys]
    return pl.DataFrame(rows, schema=reviewer_pool.PROMPT_SCHEMA, orient="row")


def answer(key: str, text: str | None, status: str = "ok", problem: str | None = None) -> dict:
    return {"id": key, "key": "h" + key, "status": status, "text": text, "problem": problem, "raw": None}


def test_requests_are_what_llm_batch_reads(tmp_path):
    path = tmp_path / "requests.jsonl"
    pool = pool_frame(["b", "a"]).sort("key")
    path.write_text(request_lines(pool.select("key", "messages").iter_rows(), {"temperature": 0.3}))
    [(first_id, first)] = read_requests(path)[:1]
    assert first_id == "a" and first.params == {"temperature": 0.3} and first.messages[1]["content"] == "Paper a"
    with pytest.raises(ValueError, match="set by the client"):
        request_lines(pool_frame(["a"]).select("key", "messages").iter_rows(), {"model": "x"})


def test_the_filter_keeps_one_clean_decision_per_paper_and_says_why_not():
    review = "## Summary\nGood.\n\n## Final Recommendation\nSolid.\n"
    answers = {
        "a": answer("a", review + ACCEPT),
        "b": answer("b", review + f"{ACCEPT}\n{REJECT}"),  # both template lines echoed
        "c": answer("c", review),  # no decision line
        "d": answer("d", review[:20], "truncated", "truncated: finish_reason length after 9 completion tokens"),
        "e": answer("e", "  " + review.replace("Good", "GOOD").replace("\n", "\n\n") + ACCEPT),  # a's, re-spaced
        "f": answer("f", "## Summary\nWeak.\n\n**" + REJECT + "**"),  # bold: kept, written plain
        "g": answer("g", None, "failed", "failed: http_503 after 3 attempts"),
        "i": answer("i", "## Summary\nAnother.\n" + ACCEPT + "\n\nI recommend this paper for ACCEPTANCE"),
    }
    pool = pool_frame(list("abcdefghi"))
    rejects = Rejects()
    kept, notes = reviewer_teacher.filter_answers(pool, answers, rejects, "answers.jsonl")
    assert [(r["key"], r["decision"]) for r in kept] == [("a", "accept"), ("f", "reject"), ("i", "accept")]
    assert {r["record"]: r["reason"].split(":")[0] for r in rejects.rows} == {
        "b": "both_decisions", "c": "no_decision", "d": "truncated", "e": "duplicate", "g": "failed",
        "h": "no_answer"}
    assert "the same review text as a" in next(r["reason"] for r in rejects.rows if r["record"] == "e")
    assert kept[1]["completion"] == [{"role": "assistant", "content": "## Summary\nWeak.\n\n" + REJECT}]
    assert kept[0]["prompt"][1] == {"role": "user", "content": "Paper a"}
    assert notes["answered"] == 8 and notes["decision_line_rewritten"] == 2


def test_answers_of_another_pool_are_refused(tmp_path):
    path = tmp_path / "answers.jsonl"
    path.write_text(json.dumps(answer("zz", ACCEPT)) + "\n")
    with pytest.raises(ValueError, match="1 answer\\(s\\) for other ids \\(e.g. \\['zz'\\]\\)"):
        read_answer_rows(path, ["a"], complete=False)


def test_split_sizes_exact_proportional_and_unused():
    rows = [{"key": f"k{i:03d}", "decision": "accept"} for i in range(500)]
    train, val, unused = reviewer_teacher.split(rows, 334, 100, seed=1)
    assert (len(train), len(val), unused) == (334, 100, 66)
    assert not {r["key"] for r in train} & {r["key"] for r in val}
    assert [r["key"] for r in train] == sorted(r["key"] for r in train)
    assert reviewer_teacher.split(rows, 334, 100, seed=1) == (train, val, unused)
    assert reviewer_teacher.split_sizes(200, 334, 100) == (154, 46)
    train, val, unused = reviewer_teacher.split(rows[:200], 334, 100, seed=1)
    assert (len(train), len(val), unused) == (154, 46, 0)


# ---------------------------------------------------------------------------------------------------------------------
# the demo teacher through the demo server and llm.batch


def test_the_demo_teacher_answers_through_the_demo_server_following_the_evidence(tmp_path, tokenizer, model_dir):
    papers = demo_papers("iclr_2019", 40, seed=11) + demo_papers("iclr_2020", 40, seed=11)
    renderer = PromptRenderer(tokenizer, SYSTEM, TEMPLATE, 4000)
    rows = []
    for p in papers:
        prompt = renderer.render(p.title, p.abstract, body_text([{"heading": h, "text": t} for h, t in p.sections]))
        assert not prompt.body_truncated
        rows.append({"key": f"openreview:{p.venue}:{p.paper_id}", "source": "openreview", "venue": p.venue,
                     "year": p.year, "split": None, "paper_id": p.paper_id, "title": p.title,
                     "messages": prompt.messages, "prompt_tokens": prompt.prompt_tokens,
                     "body_tokens_kept": prompt.body_tokens_kept, "body_tokens_total": prompt.body_tokens_total,
                     "body_truncated": False})
    pool = pl.DataFrame(rows, schema=reviewer_pool.PROMPT_SCHEMA, orient="row").sort("key")
    pool.write_parquet(tmp_path / "pool.parquet")
    assert reviewer_teacher.main(["requests", "--pool", str(tmp_path / "pool.parquet"), "--params-json",
                                  '{"temperature": 0.3, "max_tokens": 600}', "--out",
                                  str(tmp_path / "requests.jsonl")]) == 0
    endpoint = {"kind": "demo", "demo": {"policy": "reviewer_teacher"}, "limits": {"max_concurrency": 8}}
    subprocess.run([sys.executable, "-m", "workflow_scripts.llm.batch", "--use", "teacher", "--endpoint",
                    json.dumps(endpoint), "--cache-dir", str(tmp_path / "cache"), "--requests",
                    str(tmp_path / "requests.jsonl"), "--answers", str(tmp_path / "answers.jsonl"), "--summary",
                    str(tmp_path / "summary.json"), "--rejects", str(tmp_path / "llm_rejects.jsonl")],
                   cwd=ROOT, check=True, capture_output=True, timeout=120)
    out = {name: tmp_path / f"{name}.out" for name in ("train", "val", "rejects", "card")}
    assert reviewer_teacher.main([
        "build", "--pool", str(tmp_path / "pool.parquet"), "--answers", str(tmp_path / "answers.jsonl"),
        "--train-size", "60", "--val-size", "15", "--seed", "5", "--model", str(model_dir),
        "--teacher-label", "demo/reviewer_teacher@1", "--llm-summary", str(tmp_path / "summary.json"),
        *[a for name, path in out.items() for a in (f"--out-{name}", str(path))]]) == 0
    kept = pl.concat([pl.read_parquet(out["train"]), pl.read_parquet(out["val"])])
    assert kept.height >= 0.9 * len(papers)  # the filter keeps most answers
    quality = {f"openreview:{p.venue}:{p.paper_id}": p.quality for p in papers}
    decided = [(quality[k], d == "accept") for k, d in zip(kept["key"], kept["decision"])]
    strong = [a for q, a in decided if q > 0.5]  # papers whose EXPERIMENTS text carries the STRONG sentences
    weak = [a for q, a in decided if q < -0.5]
    assert sum(strong) / len(strong) >= 0.9 and sum(weak) / len(weak) <= 0.4
    assert 0.55 <= sum(a for _, a in decided) / len(decided) <= 0.9
    review = kept["completion"][0].to_list()[0]["content"]
    assert review.startswith("## Summary") and "## Final Recommendation" in review
    assert review.rstrip().splitlines()[-1] in (ACCEPT, REJECT)
    card = out["card"].read_text()
    assert "written by the demo stand-in `demo/reviewer_teacher@1`" in card and "| requests sent |" in card
