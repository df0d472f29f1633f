"""Decoding noise in the SciJudge evaluation: k draws per pair and order, each request from its own stable seed, and
the metrics' per-draw spread beside the bootstrap interval; and the baseline's hash sample of training pairs."""

import polars as pl
import pytest

from tests.fixtures_models import SYSTEM_PROMPT, TODAY, USER_TEMPLATE, make_pairs
from workflow_scripts.common.sampling import hash_sample
from workflow_scripts.eval import baseline
from workflow_scripts.eval import scijudge as sj
from workflow_scripts.eval.generation import request_seed

PROMPT = {"prompt": "card", "system_prompt": SYSTEM_PROMPT, "user_template": USER_TEMPLATE, "today": TODAY}
FLIP = {"A": "B", "B": "A"}


def test_request_seeds_are_distinct_and_stable():
    keys = [(f"test_id-{i:05d}", order, draw) for i in range(200) for order in sj.ORDERS for draw in range(3)]
    seeds = [request_seed(1234, *k) for k in keys]
    assert len(set(seeds)) == len(keys) and all(0 <= s < 2**63 for s in seeds)
    assert seeds == [request_seed(1234, *k) for k in keys]
    assert request_seed(1235, *keys[0]) != seeds[0]
    # pinned: a changed derivation would silently change every sampled evaluation
    assert request_seed(1234, "test_id-00000", "orig", 0) == 641606809688180131


@pytest.fixture(scope="module")
def pairs_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("noise") / "test.parquet"
    make_pairs(3, seed=7, split="test_id").write_parquet(path)
    return path


def _predict(model, pairs_file, samples, **gen):
    settings = {"temperature": 1.0, "top_p": 1.0, "top_k": 0, "max_new_tokens": 6, "batch_size": 4, "seed": 9,
                "samples": samples, **gen}
    return sj.predict(str(model), [str(pairs_file)], settings, PROMPT)


def test_each_draw_samples_from_its_own_seed(tiny_model_dir, pairs_file):
    three = _predict(tiny_model_dir, pairs_file, 3)
    assert dict(three.schema) == sj.PREDICTION_SCHEMA
    assert three.height == 9 and three.group_by("draw").len().sort("draw")["len"].to_list() == [3, 3, 3]
    by_pair = three.group_by("pair_id").agg(pl.col("raw_orig").n_unique())
    assert by_pair["raw_orig"].max() > 1  # the same prompt, other answers: each draw has its own seed
    assert three.equals(_predict(tiny_model_dir, pairs_file, 3, batch_size=1))  # reproducible, whatever the batches
    # a draw's seed depends on the draw, not on how many are drawn: one draw is the first of three
    one = _predict(tiny_model_dir, pairs_file, 1)
    assert one.equals(three.filter(pl.col("draw") == 0))


def test_several_draws_need_sampling(tiny_model_dir, pairs_file):
    with pytest.raises(ValueError, match="samples 3: give 1, or more than 1 with a sampling temperature > 0"):
        _predict(tiny_model_dir / "never-loaded", pairs_file, 3, temperature=0)


# correct (both orders) per pair, one list per draw: draw accuracies 2/4, 3/4, 1/4
DRAWS = [[True, True, False, False], [True, True, True, False], [True, False, False, False]]


def _draw_table(draws=DRAWS, model="m"):
    """Predictions of 4 pairs (2 CS, 2 Math), one frame per draw; the swapped order is always right."""
    fields = pl.Series(["CS", "CS", "Math", "Math"])
    pairs = make_pairs(4, seed=2, split="test_id").with_columns(paper_a_category=fields)
    frames = []
    for d, rights in enumerate(draws):
        answers = [gold if right else FLIP[gold] for right, gold in zip(rights, pairs["correct_answer"])]
        outputs = {"orig": {"raw": answers, "answer": answers},
                   "swap": {"raw": pairs["correct_answer"].replace(FLIP).to_list(),
                            "answer": pairs["correct_answer"].replace(FLIP).to_list()}}
        frames.append(sj.build_predictions(pairs, model, outputs, draw=d))
    return pl.concat(frames)


def test_metrics_give_the_mean_over_draws_and_their_spread():
    m = sj.compute_metrics({"m": _draw_table()}, n_boot=300, seed=5)
    assert m["protocol"]["draws"] == {"m": 3}
    overall = m["models"]["m"]["splits"]["test_id"]["overall"]
    assert (overall["n"], overall["draws"], overall["correct"]) == (4, 3, 6)
    assert overall["value"] == pytest.approx(0.5)
    # quarters are exact in binary: std of (0.5, 0.75, 0.25) with k - 1 = 2 degrees of freedom is 0.25
    assert overall["per_draw"] == {"values": [0.5, 0.75, 0.25], "mean": 0.5, "std": 0.25, "min": 0.25, "max": 0.75}
    assert overall["ci_low"] <= overall["value"] <= overall["ci_high"]
    cs = m["models"]["m"]["splits"]["test_id"]["by_field"]["CS"]
    assert cs["value"] == pytest.approx(5 / 6) and cs["per_draw"]["values"] == pytest.approx([1.0, 1.0, 0.5])
    # the bootstrap resamples pairs with all their draws: repeating every draw adds no information and changes nothing
    doubled = sj.compute_metrics({"m": _draw_table(DRAWS + DRAWS)}, n_boot=300, seed=5)
    again = doubled["models"]["m"]["splits"]["test_id"]["overall"]
    assert (again["value"], again["ci_low"], again["ci_high"]) == (overall["value"], overall["ci_low"],
                                                                   overall["ci_high"])


def test_markdown_shows_the_spread_beside_a_single_draw_model():
    frames = {"m": _draw_table(), "one": _draw_table(DRAWS[:1], model="one")}
    table = sj.markdown_table(sj.compute_metrics(frames, n_boot=0))
    assert "| overall per draw | | 50.0 ± 25.0 [25.0, 75.0] (3 draws) | 50.0 (1 draw) |" in table
    assert "the accuracy is the mean over the k draws" in table
    single = sj.markdown_table(sj.compute_metrics({"one": frames["one"]}, n_boot=0))
    assert "per draw" not in single and "draws" not in single


def test_predictions_files_with_draws_are_checked(tmp_path):
    path = tmp_path / "p.parquet"
    table = _draw_table()
    table.write_parquet(path)
    read = sj.read_predictions(path)
    assert read.select("pair_id", "draw").equals(table.select("pair_id", "draw").sort("pair_id", "draw"))
    table.filter(~((pl.col("pair_id") == "test_id-00002") & (pl.col("draw") == 1))).write_parquet(path)
    with pytest.raises(ValueError, match=r"pair 'test_id-00002' has 2 of the 3 draws"):
        sj.read_predictions(path)
    pl.concat([table, table.head(1)]).write_parquet(path)
    with pytest.raises(ValueError, match=r"pair 'test_id-00000' \(draw 0\) occurs more than once"):
        sj.read_predictions(path)
    # a file written before draws existed holds one draw per pair
    table.filter(pl.col("draw") == 0).drop("draw").write_parquet(path)
    assert sj.read_predictions(path)["draw"].to_list() == [0] * 4


def test_hash_sample_is_not_the_first_rows():
    df = make_pairs(40, seed=1).with_columns(split=pl.Series(["train"] * 20 + ["test_id"] * 20))
    ten = hash_sample(df, 10)
    assert ten.height == 10 and ten["pair_id"].to_list() != df["pair_id"].head(10).to_list()
    assert ten["pair_id"].to_list() == [p for p in df["pair_id"] if p in set(ten["pair_id"])]  # order kept
    assert set(ten["pair_id"]) < set(hash_sample(df, 20)["pair_id"])  # nested as N grows
    assert set(hash_sample(df.reverse(), 10)["pair_id"]) == set(ten["pair_id"])  # independent of row order
    assert dict(hash_sample(df, 3, over="split").group_by("split").len().iter_rows()) == {"train": 3, "test_id": 3}
    assert hash_sample(df, 3, seed=1)["pair_id"].to_list() != hash_sample(df, 3, seed=2)["pair_id"].to_list()
    assert hash_sample(df, None).equals(df)


def test_baseline_trains_on_the_hash_sample(tmp_path):
    # each pair's abstracts carry a word of their own, so the fitted vocabulary shows which pairs were trained on
    pairs = make_pairs(60, seed=3)
    pairs = pairs.with_columns((pl.col("paper_a_abstract") + " pairword" + pl.col("pair_id").str.slice(-5)))
    bundle = baseline.train(pairs, {"max_pairs": 20, "min_df": 1})
    trained = {w for w in bundle["vectorizer"].vocabulary_ if w.startswith("pairword") and " " not in w}
    assert bundle["n_train_pairs"] == 20
    assert trained == {"pairword" + p[-5:] for p in hash_sample(pairs, 20)["pair_id"]}
    assert trained != {"pairword" + p[-5:] for p in pairs["pair_id"].head(20)}
