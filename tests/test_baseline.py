import random

import polars as pl
import pytest

from tests.fixtures_models import make_pairs
from workflow_scripts.eval import baseline, scijudge

STRONG = "breakthrough benchmark open-source state-of-the-art".split()
WEAK = "note remark erratum special-case".split()


def _signal_pairs(n, seed, split):
    """Pairs whose more-cited paper mentions a 'strong' word (90% of the time), the other a 'weak' one."""
    rng = random.Random(seed)
    pairs = make_pairs(n, seed=seed, split=split)
    cols = {"paper_a_abstract": [], "paper_b_abstract": []}
    for row in pairs.iter_rows(named=True):
        hi = "a" if row["correct_answer"] == "A" else "b"
        for side in "ab":
            strong = (side == hi) == (rng.random() < 0.9)
            word = rng.choice(STRONG if strong else WEAK)
            cols[f"paper_{side}_abstract"].append(f"{row[f'paper_{side}_abstract']} {word}")
    return pairs.with_columns(pl.Series(k, v) for k, v in cols.items())


@pytest.fixture(scope="module")
def data():
    return _signal_pairs(300, 0, "train"), _signal_pairs(120, 1, "test_id")


def test_text_signal_is_learned_and_order_symmetric(data):
    train, test = data
    bundle = baseline.train(train, {"min_df": 1})
    pred = baseline.predict(bundle, test, "baseline")
    assert dict(pred.schema) == scijudge.PREDICTION_SCHEMA
    # both orders of a pair get opposite letters: the model is order-symmetric by construction
    assert (pred["answer_orig"] != pred["answer_swap"]).all()
    assert pred["correct"].mean() > 0.75  # chance is 0.5 for an order-symmetric model
    # and metrics treat it as one more model
    m = scijudge.compute_metrics({"baseline": pred}, n_boot=100)
    assert m["models"]["baseline"]["splits"]["test_id"]["unparseable"]["answers"] == 0


def test_deterministic_cli_roundtrip(data, tmp_path):
    train, test = data
    train.write_parquet(tmp_path / "train.parquet")
    test.write_parquet(tmp_path / "test.parquet")
    preds = []
    for run in ("r1", "r2"):
        model, out = tmp_path / run / "model.joblib", tmp_path / run / "pred.parquet"
        baseline.main(["train", "--pairs", str(tmp_path / "train.parquet"), "--out", str(model),
                       "--params-json", '{"max_features": 2000}'])
        baseline.main(["predict", "--model", str(model), "--pairs", str(tmp_path / "test.parquet"), "--out", str(out),
                       "--max-pairs", "50"])
        preds.append(pl.read_parquet(out).drop("model"))
    assert preds[0].height == 50
    assert preds[0].equals(preds[1])


def test_bad_inputs(data, tmp_path):
    train, _ = data
    with pytest.raises(ValueError, match="unknown baseline parameter"):
        baseline.train(train, {"alpha": 1})
    not_a_model = tmp_path / "x.joblib"
    import joblib

    joblib.dump({"something": 1}, not_a_model)
    with pytest.raises(ValueError, match="not a SciJudge baseline model"):
        baseline.load(not_a_model)
