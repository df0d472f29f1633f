"""Config that passes the schema but cannot give a sensible run is refused while the DAG is built, naming the key;
the pair builder and the leakage audit stop on an empty split with a message that says why."""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import json
import os
import subprocess
import sys

import polars as pl
import pytest
import yaml

from tests.workflow_runner import ROOT, merge, snakemake, write_config
from workflow_scripts.common.config import ConfigError, check_config, schema_defaults, snapshot_problems
from workflow_scripts.datasets import leakage_audit
from workflow_scripts.datasets import scijudge_pairs as sp
from workflow_scripts.datasets.synthetic_papers import synthetic_tables
from workflow_scripts.train.config import block_problems, init_fields

DEMO = yaml.safe_load((ROOT / "config.yaml").read_text())
PRODUCTION = yaml.safe_load((ROOT / "config.production.yaml").read_text())


def problems(base: dict, **overrides) -> str:
    """The ConfigError message for ``base`` with nested ``overrides``, or '' when the config passes."""
    cfg = merge(copy.deepcopy(base), overrides)
    try:
        check_config(cfg)
    except ConfigError as exc:
        return str(exc)
    return ""


def test_the_shipped_configs_pass():
    assert problems(DEMO) == "" and problems(PRODUCTION) == "" and problems({}) == ""


@pytest.mark.parametrize(
    "overrides, key",
    [
        ({"scijudge": {"today": "2025-13-45"}}, "scijudge.today"),
        ({"demo": {"start_date": "2021-02-30"}}, "demo.start_date"),
        ({"arxiv": {"oai_pmh": {"from_date": "2024-04-31"}}}, "arxiv.oai_pmh.from_date"),
        ({"arxiv": {"api": {"queries": [{"name": "q", "category": "cs.*", "from_date": "2025-11-01",
                                         "until_date": "2025-11-31"}]}}}, "arxiv.api.queries.0.until_date"),
        ({"scijudge": {"today": "2025/12/10"}}, "scijudge.today"),
    ],
)
def test_every_date_key_is_a_calendar_date(overrides, key):
    assert f"config key {key}: " in problems(DEMO, **overrides)
    assert "is not a calendar date (YYYY-MM-DD)" in problems(DEMO, **overrides)


def test_date_windows_do_not_end_before_they_start():
    msg = problems(PRODUCTION, arxiv={"oai_pmh": {"from_date": "2024-05-01", "until_date": "2024-04-01"}})
    assert "config key arxiv.oai_pmh.until_date: 2024-04-01 is before arxiv.oai_pmh.from_date 2024-05-01" in msg
    assert "config key demo.end_date" in problems(DEMO, demo={"end_date": "2020-12-31"})


@pytest.mark.parametrize(
    "base, overrides, cutoff, message",
    [
        (DEMO, {}, 2019, "leaves the train and in-domain test splits (train, test_id) empty: they come from papers "
                         "first published up to 2019, and the papers start on 2021-01-01 (demo.start_date)"),
        (DEMO, {}, 2025, "leaves the temporal OOD test split (test_ood) empty: it comes from papers first published "
                         "after 2025, and the papers end by 2025-12-07 (scijudge.pairs.until_date)"),
        (DEMO, {"demo": {"end_date": "2024-06-30"}}, 2024, "the papers end by 2024-06-30 (demo.end_date)"),
        (PRODUCTION, {}, 2100, "(scijudge.pairs.until_date)"),
        (PRODUCTION, {"scijudge": {"today": "2099-01-01", "pairs": {"until_date": "2099-01-01"}}}, 2100,
         "(today's date)"),
        (PRODUCTION, {"scijudge": {"pairs": {"until_date": "2099-01-01"}}}, 2100, "(scijudge.today)"),
        (PRODUCTION, {"arxiv": {"readers": ["oai_pmh"], "oai_pmh": {"until_date": "2023-06-30"}}}, 2023,
         "the papers end by 2023-06-30 (arxiv.oai_pmh.until_date)"),
    ],
)
def test_the_cutoff_leaves_train_and_test_periods(base, overrides, cutoff, message):
    msg = problems(base, **merge(copy.deepcopy(overrides), {"scijudge": {"pairs": {"cutoff_year": cutoff}}}))
    assert f"config key scijudge.pairs.cutoff_year: {cutoff} " in msg and message in msg
    assert problems(base, **merge(copy.deepcopy(overrides), {"scijudge": {"pairs": {"cutoff_year": 2021}}})) == ""


def test_oai_from_date_does_not_bound_first_versions():
    # a harvest from 2024 brings old papers revised since: a cutoff before 2024 still leaves a train period
    assert problems(PRODUCTION, arxiv={"readers": ["oai_pmh"], "oai_pmh": {"from_date": "2024-01-01"}},
                    scijudge={"pairs": {"cutoff_year": 2019}}) == ""


def test_run_name_is_gone():
    assert "unknown key(s) ['run_name']" in problems(DEMO, run_name="demo")


def test_trainer_keys_are_checked_with_their_full_key_path():
    msg = problems(DEMO, scijudge={"grpo": {"trainer": {"learning_rat": 1e-5}},
                                   "sft_warmup": {"trainer": {"max_lenght": 64, "output_dir": "x"}}})
    assert "config key scijudge.grpo.trainer.learning_rat: unknown; did you mean learning_rate?" in msg
    assert "config key scijudge.sft_warmup.trainer.max_lenght: unknown; did you mean max_length?" in msg
    assert "config key scijudge.sft_warmup.trainer: config key 'output_dir' is not allowed here" in msg
    # every line's training blocks, not only SciJudge's
    msg = problems(DEMO, reviewer={"sft": {"trainer": {"lora_rr": 8}}}, bioreview={"sft": {"trainer": {"max_step": 1}}})
    assert "config key reviewer.sft.trainer.lora_rr: unknown; did you mean lora_r?" in msg
    assert "config key bioreview.sft.trainer.max_step: unknown; did you mean max_steps?" in msg
    # model keys (ModelArgs) and script keys route like at the start of training
    assert block_problems("k", {"lora_r": 8, "rewards": {"format": 0.0}, "beta": 0.0}, "grpo") == []
    assert block_problems("k", {"zzz": 1}, "sft") == [
        "config key k.zzz: unknown; not a field of ['SFTScriptArgs', 'ModelArgs', 'SFTConfig']"
    ]


def test_trl_field_names_are_cached_so_the_dag_check_never_imports_torch(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    from trl import GRPOConfig, SFTConfig

    for cls in (GRPOConfig, SFTConfig):
        assert init_fields(f"trl:{cls.__name__}") == {f.name for f in dataclasses.fields(cls) if f.init}
    probe = (
        "import sys\n"
        "from workflow_scripts.train.config import block_problems\n"
        "print(block_problems('k', {'learning_rat': 1}, 'grpo'), block_problems('k', {'max_length': 8}, 'sft'))\n"
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules, 'a DAG check imported torch'\n"
    )
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path), PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "k.learning_rat: unknown; did you mean learning_rate?" in proc.stdout


def test_a_missing_snapshot_is_an_error_unless_a_rule_writes_it(tmp_path):
    cfg = schema_defaults()
    cfg["arxiv"].update(readers=["oai_pmh", "dump"])
    cfg["arxiv"]["oai_pmh"].update(mode="snapshot", snapshot_dir=str(tmp_path / "pages"))
    cfg["arxiv"]["dump"].update(mode="snapshot", path=str(tmp_path / "dump.json"))
    cfg["citations"].update(mode="snapshot", snapshot_dir=str(tmp_path / "s2"))
    (tmp_path / "s2").mkdir()
    written_by_a_rule = {str(tmp_path / "dump.json")}
    assert snapshot_problems(cfg, written_by_a_rule.__contains__) == [
        f"config key arxiv.oai_pmh.snapshot_dir: {tmp_path / 'pages'} does not exist, "
        "and no rule of this workflow writes it"
    ]


@pytest.mark.slow
def test_the_dag_build_stops_on_config_that_passes_the_schema(tmp_path):
    def refused(**overrides) -> str:
        proc = snakemake(tmp_path, "-n", config=write_config(tmp_path, **overrides), check=False)
        assert proc.returncode != 0
        return proc.stdout + proc.stderr

    assert "config key scijudge.today: '2025-13-45' is not a calendar date" in refused(scijudge={"today": "2025-13-45"})
    out = refused(scijudge={"pairs": {"cutoff_year": 2019}, "grpo": {"trainer": {"learning_rat": 1}}})
    assert "config key scijudge.pairs.cutoff_year: 2019 leaves the train and in-domain test splits" in out
    assert "config key scijudge.grpo.trainer.learning_rat: unknown; did you mean learning_rate?" in out


# ---- the pair builder and the audit on empty splits


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("empty")
    papers, cites = synthetic_tables(3000, seed=5, start="2023-01-01", end="2025-12-31")
    papers.write_parquet(tmp / "papers.parquet")
    cites.write_parquet(tmp / "citations.parquet")
    return tmp


def build_args(tmp, out, cutoff: int) -> list[str]:
    block = schema_defaults()["scijudge"]
    block["pairs"]["cutoff_year"] = cutoff
    return [
        "--papers", str(tmp / "papers.parquet"), "--citations", str(tmp / "citations.parquet"),
        "--config-json", json.dumps(block), "--seed", "1", "--train", str(out / "train.parquet"),
        "--test-id", str(out / "test_id.parquet"), "--test-ood", str(out / "test_ood.parquet"),
        "--stats", str(out / "stats.json"), "--card", str(out / "README.md"),
    ]


@pytest.mark.parametrize("cutoff, empty", [(2019, ("train", "test_id")), (2100, ("test_ood",))])
def test_the_pair_builder_refuses_an_empty_split_and_says_why(tables, tmp_path, cutoff, empty):
    with pytest.raises(SystemExit) as stop:
        sp.main(build_args(tables, tmp_path, cutoff))
    msg = str(stop.value)
    assert "no pairs for split(s) [" in msg and all(f"{split}: its period" in msg for split in empty)
    assert f"first published up to cutoff_year {cutoff}" in msg and "first versions 2023-01-01.." in msg
    assert "holds no paper: change scijudge.pairs.cutoff_year" in msg
    assert not list(tmp_path.iterdir()), "nothing is written"


def test_no_copy_of_a_re_submission_reaches_a_test(tmp_path):
    """Both copies of a re-submission after the cutoff (one title, two ids) stay out of the tests."""
    rows = [  # id, title, citations, first version
        ("e2", "Early high", 100, "2023-03-10"), ("h1", "Early low", 1, "2023-03-12"),  # the train pair
        ("e1", "Held high", 100, "2023-05-10"), ("i2", "Held low", 1, "2023-05-12"),  # held out (seed 1, share 0.3)
        ("a", "A shared title", 100, "2025-01-30"), ("c", "A Shared Title!", 100, "2025-01-31"),
        ("b", "Low in January", 1, "2025-01-15"), ("d", "Low in February", 1, "2025-02-02"),
        ("f", "High in March", 100, "2025-03-30"), ("g", "Low in April", 1, "2025-04-02"),
    ]
    pl.DataFrame({
        "arxiv_id": [r[0] for r in rows], "title": [r[1] for r in rows], "abstract": ["text"] * len(rows),
        "primary_category": ["cs.LG"] * len(rows), "field": ["CS"] * len(rows),
        "published": [dt.date.fromisoformat(r[3]) for r in rows],
    }).write_parquet(tmp_path / "papers.parquet")
    pl.DataFrame({"arxiv_id": [r[0] for r in rows], "citation_count": [r[2] for r in rows]}).write_parquet(
        tmp_path / "citations.parquet")
    out = tmp_path / "out"
    args = build_args(tmp_path, out, 2024)
    block = json.loads(args[args.index("--config-json") + 1])
    block["pairs"]["test_id"]["held_out_share"] = 0.3
    args[args.index("--config-json") + 1] = json.dumps(block)
    sp.main(args)
    report = leakage_audit.audit({s: str(out / f"{s}.parquet") for s in sp.SPLITS},
                                 ["paper_a_arxiv_id", "paper_b_arxiv_id"], ["paper_a_title", "paper_b_title"])
    assert report["passed"], report["overlaps"]
    ood = pl.read_parquet(out / "test_ood.parquet")
    assert sorted(ood["paper_a_arxiv_id"].to_list() + ood["paper_b_arxiv_id"].to_list()) == ["f", "g"]


def test_the_audit_reports_an_empty_split_as_such_never_as_a_leak(tmp_path, capfd):
    columns = ["paper_a_arxiv_id", "paper_b_arxiv_id", "paper_a_title", "paper_b_title"]
    splits = {"train": [("t1", "t2", "Train one", "Train two")], "test_id": [("i1", "i2", "Test one", "Test two")],
              "test_ood": []}
    args = []
    for name, rows in splits.items():
        table = pl.DataFrame(rows, schema={c: pl.String for c in columns}, orient="row")
        table.write_parquet(tmp_path / f"{name}.parquet")
        args += ["--split", f"{name}={tmp_path / name}.parquet"]
    assert leakage_audit.main([*args, "--out", str(tmp_path / "audit.json")]) == 1
    log = capfd.readouterr().err
    assert "split(s) ['test_ood'] have no rows" in log and "LEAK" not in log
    assert not (tmp_path / "audit.json").exists()
