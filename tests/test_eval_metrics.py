import json

import polars as pl
import pytest

from tests.fixtures_models import make_pairs
from workflow_scripts.eval import scijudge as sj


def _pairs(fields, split="test_id", seed=0):
    """Pairs with the given field per pair (make_pairs draws archive names; the pair builder writes fields)."""
    return make_pairs(len(fields), seed=seed, split=split).with_columns(paper_a_category=pl.Series(fields))


def _preds(pairs, orig, swap, model="m"):
    """Predictions from per-order answers given as 'right' / 'wrong' / None (unparseable)."""
    flip = {"A": "B", "B": "A"}
    outputs = {}
    for order, marks in (("orig", orig), ("swap", swap)):
        expected = pairs["correct_answer"].to_list()
        if order == "swap":
            expected = [flip[e] for e in expected]
        answers = [None if m is None else e if m == "right" else flip[e] for m, e in zip(marks, expected)]
        outputs[order] = {"raw": [f"<answer>{a}</answer>" if a else "no idea" for a in answers], "answer": answers}
    return sj.build_predictions(pairs, model, outputs)


def test_pair_counts_only_when_both_orders_right():
    pairs = _pairs(["CS"] * 4)
    df = _preds(pairs, ["right", "right", "wrong", "right"], ["right", "wrong", "right", None])
    assert df["correct_orig"].to_list() == [True, True, False, True]
    assert df["correct_swap"].to_list() == [True, False, True, False]
    assert df["correct"].to_list() == [True, False, False, False]
    # the swapped order expects the other letter
    assert (df["expected_orig"] != df["expected_swap"]).all()
    m = sj.compute_metrics({"m": df}, n_boot=0)["models"]["m"]["splits"]["test_id"]
    assert m["overall"]["value"] == 0.25 and m["overall"]["correct"] == 1 and m["overall"]["n"] == 4
    assert m["single_order_accuracy"] == pytest.approx(5 / 8)
    assert m["overall"]["ci_low"] is None  # no bootstrap asked


def test_unparseable_counts_as_wrong_and_is_reported():
    pairs = _pairs(["CS", "Math", "Math"])
    df = _preds(pairs, [None, "right", None], [None, "right", "right"])
    m = sj.compute_metrics({"m": df}, n_boot=0)["models"]["m"]["splits"]["test_id"]
    assert m["overall"]["correct"] == 1
    assert m["unparseable"] == {
        "answers": 3, "answers_total": 6, "by_order": {"orig": 2, "swap": 1}, "pairs": 2, "rate": 0.5,
    }
    table = sj.markdown_table(sj.compute_metrics({"m": df}, n_boot=0))
    assert "| unparseable answers (pairs) | | 3/6 (2) |" in table


def test_accuracy_per_field_and_split():
    fields = ["CS"] * 4 + ["Math"] * 2 + ["Physics"] * 2 + ["Astro"]
    marks = ["right"] * 4 + ["right", "wrong"] + ["wrong"] * 2 + ["right"]
    test_id = _preds(_pairs(fields), marks, ["right"] * len(fields))
    test_ood = _preds(_pairs(["Others"], split="test_ood", seed=1), ["wrong"], ["right"])
    metrics = sj.compute_metrics({"m": pl.concat([test_ood, test_id])}, n_boot=0)
    assert metrics["protocol"]["splits"] == ["test_id", "test_ood"]  # in-domain first, whatever the row order
    assert metrics["protocol"]["fields"] == ["CS", "Math", "Physics", "Others", "Astro"]  # unknown field after
    by_field = metrics["models"]["m"]["splits"]["test_id"]["by_field"]
    assert {g: (s["n"], s["value"]) for g, s in by_field.items()} == {
        "CS": (4, 1.0), "Math": (2, 0.5), "Physics": (2, 0.0), "Others": (0, None), "Astro": (1, 1.0),
    }
    assert metrics["models"]["m"]["splits"]["test_id"]["overall"]["value"] == pytest.approx(6 / 9)
    ood = metrics["models"]["m"]["splits"]["test_ood"]
    assert (ood["overall"]["n"], ood["overall"]["value"], ood["by_field"]["Others"]["n"]) == (1, 0.0, 1)


def test_bootstrap_ci_contains_estimate_and_is_seeded():
    pairs = _pairs(["CS", "Math", "Physics", "Others"] * 25)
    marks = (["right"] * 3 + ["wrong"]) * 25
    base = _preds(pairs, marks, ["right"] * 100, model="base")
    tuned = _preds(pairs, ["right"] * 100, ["right"] * 90 + [None] * 10, model="tuned")
    frames = {"base": base, "tuned": tuned}
    a = sj.compute_metrics(frames, n_boot=500, seed=7)
    assert a == sj.compute_metrics(frames, n_boot=500, seed=7)
    assert a != sj.compute_metrics(frames, n_boot=500, seed=8)
    for label in frames:
        entry = a["models"][label]["splits"]["test_id"]
        for s in [entry["overall"], *entry["by_field"].values()]:
            assert s["ci_low"] <= s["value"] <= s["ci_high"]
            assert 0 <= s["ci_low"] and s["ci_high"] <= 1
        assert entry["overall"]["ci_low"] < entry["overall"]["ci_high"]
    delta = a["models"]["tuned"]["splits"]["test_id"]["delta_vs_reference"]["overall"]
    assert delta["value"] == pytest.approx(0.90 - 0.75)
    assert delta["ci_low"] <= delta["value"] <= delta["ci_high"]
    # different pairs: no paired difference
    other = _preds(_pairs(["CS"] * 3, seed=5), ["right"] * 3, ["right"] * 3, model="other")
    c = sj.compute_metrics({"base": base, "other": other}, n_boot=100)
    assert c["models"]["other"]["splits"]["test_id"]["delta_vs_reference"]["overall"] is None


def test_metrics_cli_writes_json_markdown_png(tmp_path):
    pairs = pl.concat([_pairs(["CS", "Math", "Physics", "Others"] * 3), _pairs(["CS", "Math"], "test_ood", 1)])
    n = pairs.height
    paths = []
    for label, marks in (("base", ["wrong", "right"] * (n // 2)), ("tuned", ["right"] * (n - 1) + [None])):
        path = tmp_path / f"{label}.parquet"
        _preds(pairs, marks, ["right"] * n, model=label).write_parquet(path)
        paths.append(path)
    outs = [tmp_path / f"r{i}" for i in range(2)]
    for out in outs:
        argv = ["metrics", "--labels", "base,tuned", "--bootstrap", "200", "--seed", "3",
                "--out-json", str(out / "m.json"), "--out-md", str(out / "t.md"), "--out-png", str(out / "c.png")]
        sj.main(argv + [a for p in paths for a in ("--predictions", str(p))])
    for name in ("m.json", "t.md", "c.png"):  # same inputs and seed: same bytes
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes(), name
    metrics = json.loads((outs[0] / "m.json").read_text())
    assert list(metrics["models"]) == ["base", "tuned"]
    assert metrics["models"]["tuned"]["predictions"] == str(paths[1])
    assert metrics["models"]["tuned"]["splits"]["test_ood"]["unparseable"]["answers"] == 1
    table = (outs[0] / "t.md").read_text()
    assert "## in-domain (test_id)" in table and "## temporal OOD (test_ood)" in table
    assert "| field | n | base | tuned |" in table and "Δ overall vs base" in table
    assert (outs[0] / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(SystemExit):
        sj.main(["metrics", "--labels", "only_one", "--out-json", "x", "--out-md", "y", "--out-png", "z",
                 "--predictions", str(paths[0]), "--predictions", str(paths[1])])


def test_inputs_are_checked(tmp_path):
    pairs = _pairs(["CS", "CS"])
    with pytest.raises(ValueError, match="'A', 'B' or null"):
        sj.build_predictions(pairs, "m", {o: {"raw": ["", ""], "answer": ["A", "C"]} for o in sj.ORDERS})
    no_field = pairs.with_columns(paper_a_category=pl.lit(None, pl.String))
    with pytest.raises(ValueError, match="has no field"):
        _preds(no_field, ["right"] * 2, ["right"] * 2)
    bad = tmp_path / "bad.parquet"
    _preds(pairs, ["right"] * 2, ["right"] * 2).drop("answer_swap").write_parquet(bad)
    with pytest.raises(ValueError, match="answer_swap"):
        sj.read_predictions(bad)
    # pairs: max_pairs keeps N of each split, a stable sample that grows with N; the same pair twice is an error
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    make_pairs(20, split="test_id").write_parquet(a)
    make_pairs(4, split="test_ood").write_parquet(b)
    three, four = (sj.load_pairs([a, b], max_pairs=k) for k in (3, 4))
    assert dict(three.group_by("split").len().iter_rows()) == {"test_id": 3, "test_ood": 3}
    assert set(three["pair_id"]) < set(four["pair_id"])
    assert three.filter(pl.col("split") == "test_id")["pair_id"].to_list() != [f"test_id-{i:05d}" for i in range(3)]
    assert three["pair_id"].to_list() == sorted(three["pair_id"])  # file order kept
    with pytest.raises(ValueError, match="more than once"):
        sj.load_pairs([a, a])


def test_help_of_every_module():
    from workflow_scripts.eval import baseline, generation

    for main, argv in ((sj.main, ["predict"]), (sj.main, ["metrics"]), (baseline.main, ["train"]),
                       (baseline.main, ["predict"]), (generation.main, [])):
        with pytest.raises(SystemExit) as exc:
            main([*argv, "--help"])
        assert exc.value.code == 0
