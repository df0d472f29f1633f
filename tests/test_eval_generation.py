import importlib.util
import json
import math

import polars as pl
import pytest

from tests.fixtures_models import SYSTEM_PROMPT, TODAY, USER_TEMPLATE, make_pairs
from workflow_scripts.eval import generation, scijudge
from workflow_scripts.eval.generation import BackendUnavailableError, GenConfig, load_generator

PROMPT = {"prompt": "card", "system_prompt": SYSTEM_PROMPT, "user_template": USER_TEMPLATE, "today": TODAY}
NO_VLLM = importlib.util.find_spec("vllm") is None


def _convs(n=3):
    # different lengths, so a batch needs (left) padding
    return [[{"role": "system", "content": "sys"}, {"role": "user", "content": "Paper A or B? " * (k + 1)}]
            for k in range(n)]


def test_hf_sampling_is_deterministic_given_seed(tiny_model_dir):
    gen = load_generator(tiny_model_dir, {"max_new_tokens": 12, "batch_size": 2, "seed": 11})
    first = gen.generate(_convs())
    assert [g.text for g in first] == [g.text for g in gen.generate(_convs())]
    again = load_generator(tiny_model_dir, {"max_new_tokens": 12, "batch_size": 2, "seed": 11}).generate(_convs())
    assert first == again
    for g in first:
        assert isinstance(g.text, str) and 1 <= g.num_tokens <= 12
        assert g.finished or g.num_tokens == 12
    other = load_generator(tiny_model_dir, {"max_new_tokens": 12, "batch_size": 2, "seed": 12}).generate(_convs())
    assert [g.text for g in other] != [g.text for g in first]


def test_hf_sampling_does_not_depend_on_the_batch_size(tiny_model_dir):
    # each prompt samples from its own seed: the batch size is a speed setting, not part of the result
    settings = {"temperature": 1.0, "top_p": 0.9, "top_k": 20, "max_new_tokens": 10, "seed": 5}
    batched = load_generator(tiny_model_dir, {**settings, "batch_size": 3}).generate(_convs())
    single = load_generator(tiny_model_dir, {**settings, "batch_size": 1}).generate(_convs())
    assert batched == single
    greedy = load_generator(tiny_model_dir, {**settings, "temperature": 0, "batch_size": 3}).generate(_convs())
    assert [g.text for g in batched] != [g.text for g in greedy]  # it samples


def test_hf_greedy_batched_equals_one_by_one(tiny_model_dir):
    # the repetition penalty keeps the random model from repeating one token, so the outputs depend on the prompt
    # (with right padding, or without the attention mask, the padded prompts come out different)
    settings = {"temperature": 0, "max_new_tokens": 8, "repetition_penalty": 5.0}
    batched = load_generator(tiny_model_dir, {**settings, "batch_size": 3}).generate(_convs())
    single = load_generator(tiny_model_dir, {**settings, "batch_size": 1}).generate(_convs())
    assert batched == single
    assert len({g.text for g in batched}) > 1


def test_settings_are_checked():
    with pytest.raises(ValueError, match="unknown generation setting"):
        GenConfig.from_dict({"temprature": 0.7})
    with pytest.raises(ValueError, match="backend 'tgi' unknown"):
        GenConfig.from_dict({"backend": "tgi"})
    with pytest.raises(ValueError, match="invalid generation settings"):
        GenConfig.from_dict({"top_logprobs": -1})


@pytest.mark.skipif(not NO_VLLM, reason="vllm is installed here")
def test_vllm_without_vllm_fails_at_once_with_the_fix(tmp_path):
    with pytest.raises(BackendUnavailableError, match=r"backend 'vllm'.*pip install vllm"):
        load_generator(tmp_path / "no-model", {"backend": "vllm"})
    # before the pairs are even read
    with pytest.raises(BackendUnavailableError, match="vllm"):
        scijudge.main(["predict", "--model", str(tmp_path / "no-model"), "--pairs", str(tmp_path / "missing.parquet"),
                       "--out", str(tmp_path / "p.parquet"), "--gen-json", '{"backend": "vllm"}',
                       "--prompt-json", json.dumps(PROMPT)])


def test_scijudge_predict_asks_both_orders(tiny_model_dir, tmp_path):
    pairs_path = tmp_path / "test.parquet"
    pairs = pl.concat([make_pairs(3, seed=1, split="test_id"), make_pairs(2, seed=2, split="test_ood")])
    pairs.write_parquet(pairs_path)
    out = tmp_path / "pred.parquet"
    gen = {"backend": "hf", "temperature": 0.7, "top_p": 0.8, "top_k": 20, "max_new_tokens": 8, "batch_size": 4,
           "seed": 1234, "max_pairs": 2}
    scijudge.main(["predict", "--model", str(tiny_model_dir), "--pairs", str(pairs_path), "--out", str(out),
                   "--gen-json", json.dumps(gen), "--prompt-json", json.dumps(PROMPT)])
    df = pl.read_parquet(out)
    assert dict(df.schema) == scijudge.PREDICTION_SCHEMA
    assert df["split"].to_list() == ["test_id", "test_id", "test_ood", "test_ood"]  # max_pairs per split
    assert (df["expected_swap"] != df["expected_orig"]).all()
    assert df["num_tokens_orig"].max() <= 8 and df["raw_swap"].null_count() == 0
    # a random tiny model rarely writes a well-formed answer: unparseable -> null answer, wrong
    assert (df["answer_orig"].is_null() | df["answer_orig"].is_in(["A", "B"])).all()
    assert not df.filter(pl.col("answer_orig").is_null())["correct_orig"].any()


def test_scijudge_predict_answers_several_sets_with_one_model_load(tiny_model_dir, tmp_path, capfd):
    # the main set and an extra set with its own prompt, in one call: each file as its own call would write it
    main_pairs, other_pairs = tmp_path / "main.parquet", tmp_path / "other.parquet"
    make_pairs(3, seed=1, split="test_id").write_parquet(main_pairs)
    make_pairs(2, seed=5, split="test_biorxiv").write_parquet(other_pairs)
    other_prompt = {**PROMPT, "user_template": "Which one? " + PROMPT["user_template"]}
    gen = json.dumps({"backend": "hf", "temperature": 0.7, "max_new_tokens": 6, "seed": 7})
    base = ["predict", "--model", str(tiny_model_dir), "--gen-json", gen]
    scijudge.main([*base, "--pairs", str(main_pairs), "--out", str(tmp_path / "a.parquet"), "--prompt-json",
                   json.dumps(PROMPT), "--also-json", json.dumps({"pairs": [str(other_pairs)], "out":
                   str(tmp_path / "b.parquet"), "prompt": other_prompt})])
    assert capfd.readouterr().err.count(f"hf backend: {tiny_model_dir} on cpu") == 1  # loaded once
    scijudge.main([*base, "--pairs", str(other_pairs), "--out", str(tmp_path / "b_alone.parquet"), "--prompt-json",
                   json.dumps(other_prompt)])
    assert pl.read_parquet(tmp_path / "b.parquet").equals(pl.read_parquet(tmp_path / "b_alone.parquet"))
    assert pl.read_parquet(tmp_path / "a.parquet")["split"].unique().to_list() == ["test_id"]
    for bad, match in (({"pairs": str(other_pairs), "out": "x", "prompt": PROMPT}, "must be a list"),
                       ({"pairs": [str(other_pairs)], "prompt": PROMPT}, r"missing key\(s\) \['out'\]"),
                       ({"pairs": [str(other_pairs)], "out": str(tmp_path / "a.parquet"), "prompt": PROMPT}, "repeat")):
        with pytest.raises(SystemExit, match=match):
            scijudge.main([*base, "--pairs", str(main_pairs), "--out", str(tmp_path / "a.parquet"), "--prompt-json",
                           json.dumps(PROMPT), "--also-json", json.dumps(bad)])


def test_swapped_conversation_shows_b_first():
    pairs = make_pairs(1)
    convs = scijudge.conversations(pairs, PROMPT)
    a, b = pairs["paper_a_title"][0], pairs["paper_b_title"][0]
    assert convs["orig"][0] == pairs["messages"][0].to_list()  # as the pair builder wrote it
    user = convs["swap"][0][1]["content"]
    assert user.index(f"Title: {b}") < user.index(f"Title: {a}")


def test_generation_cli(tiny_model_dir, tmp_path):
    src, out = tmp_path / "in.parquet", tmp_path / "out.parquet"
    pl.DataFrame({"id": [1, 2], "messages": _convs(2)}).write_parquet(src)
    generation.main(["--model", str(tiny_model_dir), "--input", str(src), "--out", str(out),
                     "--gen-json", '{"max_new_tokens": 4, "temperature": 0}'])
    df = pl.read_parquet(out)
    assert df.columns == ["id", "messages", "generation", "num_tokens", "finished"]
    assert df["num_tokens"].max() <= 4


def test_top_logprobs_are_the_models_own_and_change_nothing_else(tiny_model_dir):
    import torch

    # sampling, a repetition penalty and top-k/top-p all act on the scores that choose a token; the log-probabilities
    # reported are the model's own (raw logits), and asking for them changes no output
    settings = {"temperature": 0.7, "top_p": 0.9, "top_k": 20, "max_new_tokens": 10, "repetition_penalty": 1.3,
                "batch_size": 2, "seed": 5}
    off = load_generator(tiny_model_dir, settings).generate(_convs())
    gen = load_generator(tiny_model_dir, {**settings, "top_logprobs": 4})
    on = gen.generate(_convs())
    assert [(g.text, g.num_tokens, g.finished) for g in on] == [(g.text, g.num_tokens, g.finished) for g in off]
    assert all(g.tokens is None and g.top_logprobs is None for g in off)
    prompts = generation.render_prompts(gen.tokenizer, _convs(), {})
    for g, prompt in zip(on, prompts):
        assert "".join(g.tokens) == g.text
        assert len(g.tokens) == len(g.top_logprobs) == g.num_tokens - g.finished  # the end-of-sequence token left out
        for top in g.top_logprobs:
            assert 1 <= len(top) <= 5 and sum(math.exp(v) for v in top.values()) <= 1 + 1e-6  # texts can coincide
        # the first step, recomputed without padding, batching or any logits processor
        with torch.inference_mode():
            logprobs = gen.model(torch.tensor([prompt])).logits[0, -1].float().log_softmax(-1)
        values, ids = logprobs.topk(4)
        texts = [gen.tokenizer.decode([i]) for i in ids.tolist()]
        for text, value in zip(texts, values.tolist()):
            if texts.count(text) == 1:  # tokens with the same text share one entry
                assert g.top_logprobs[0][text] == pytest.approx(value, abs=1e-4)


def test_token_texts_add_up_to_the_decoded_text(tiny_model_dir):
    tokenizer = generation.load_tokenizer(str(tiny_model_dir))
    text = "Größe → 数据 and ✓ plain words"  # characters whose bytes span several byte-level tokens
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    pieces = generation.token_texts(tokenizer, ids)
    assert "".join(pieces) == text == tokenizer.decode(ids) and len(pieces) == len(ids)
    assert "" in pieces  # a token holding only part of a character shows nothing until the character is complete
    # a candidate's text is what it adds behind the previous token, leading space included
    whole = [j for j in range(1, len(ids)) if pieces[j - 1] and pieces[j] and "\ufffd" not in pieces[j - 1] + pieces[j]]
    assert any(pieces[j].startswith(" ") for j in whole)
    for j in whole:
        assert generation.candidate_texts(tokenizer, ids[j - 1], [ids[j]]) == [pieces[j]]
