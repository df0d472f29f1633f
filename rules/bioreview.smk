# BioReview model line (the jang1563/bioreview-qwen3.5-9b-sft card): every reviewer report of the biomedical source
# tables (biomed.smk) through llm.endpoints.extractor into concerns; the all_nonfig corpus; train / val / test by DOI
# family with a leakage audit that stops the DAG; the card's prompts cut to the token budget; QLoRA SFT of the base
# model; the test split answered by the base and the tuned model; concern metrics (embedding match, Hungarian,
# postprocessing, baselines) and the dataset card.

BIOM = BIO["sft"]
BIO_EVAL = BIO["eval"]
BIOREVIEW_DIR = f"{RESULTS}/bioreview"
BIO_SPLITS_DIR = f"{BIOREVIEW_DIR}/splits"
BIO_SFT_DATA = f"{BIOREVIEW_DIR}/sft_data"
BIO_SFT_DIR = f"{BIOREVIEW_DIR}/sft"
BIO_EVAL_DIR = f"{BIOREVIEW_DIR}/eval"
TINY_QWEN3_5 = f"{RESULTS}/models/tiny-qwen3_5"
BIO_BASE = TINY_QWEN3_5 if BIOM["base_model"] == "tiny" else BIOM["base_model"]
EXTRACTOR = config["llm"]["endpoints"]["extractor"]
BIO_SPLIT_NAMES = ["train", "val", "test"]
# model label -> the --model argument of the predictions
BIO_MODELS = {"base": BIO_BASE, "tuned": f"{BIO_SFT_DIR}/final"}
BIO_EMBEDDING = BIO_EVAL["embedding"]


rule bioreview_extractor_calls:
    input:
        unpack(endpoint_input("extractor")),
        reports=BIOMED_TABLES["reports"],
    output:
        requests=f"{BIOREVIEW_DIR}/extraction/requests.jsonl",
        answers=f"{BIOREVIEW_DIR}/extraction/answers.jsonl",
        summary=f"{BIOREVIEW_DIR}/extraction/llm_summary.json",
        rejects=f"{BIOREVIEW_DIR}/extraction/llm_rejects.jsonl",
    params:
        sampling=lambda w: arg(BIO["extraction"]["params"]),
        max_chars=BIO["extraction"]["max_report_chars"],
        # the block names the variable holding an external key, never the key (secrets stay out of params)
        endpoint=lambda w: arg(EXTRACTOR),
        cache=LLM_CACHE,
    log:
        f"{LOGS}/bioreview_extractor_calls.log",
    benchmark:
        f"{BENCH}/bioreview_extractor_calls.tsv"
    threads: 2
    resources:
        **endpoint_resources(EXTRACTOR, {"mem_mb": 16000, "runtime": 24 * 60, "cpus_per_task": 4}),
    conda:
        "../envs/data.yaml"
    shell:
        "(python -m workflow_scripts.datasets.bioreview_extraction requests --reports {input.reports}"
        " --params-json {params.sampling} --max-report-chars {params.max_chars} --out {output.requests}"
        " && python -m workflow_scripts.llm.batch --use extractor --endpoint {params.endpoint} --cache-dir {params.cache}"
        " --requests {output.requests} --answers {output.answers} --summary {output.summary}"
        " --rejects {output.rejects}) > {log} 2>&1"


rule bioreview_concerns:
    input:
        reports=BIOMED_TABLES["reports"],
        answers=rules.bioreview_extractor_calls.output.answers,
        summary=rules.bioreview_extractor_calls.output.summary,
    output:
        concerns=f"{BIOREVIEW_DIR}/extraction/concerns.parquet",
        rejects=f"{BIOREVIEW_DIR}/extraction/rejects.jsonl",
        counts=f"{BIOREVIEW_DIR}/extraction/counts.json",
    params:
        max_chars=BIO["extraction"]["max_report_chars"],
        min_chars=BIO["extraction"]["min_text_chars"],
    log:
        f"{LOGS}/bioreview_concerns.log",
    benchmark:
        f"{BENCH}/bioreview_concerns.tsv"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=30,
    conda:
        "../envs/data.yaml"
    shell:
        "python -m workflow_scripts.datasets.bioreview_extraction build --reports {input.reports}"
        " --answers {input.answers} --max-report-chars {params.max_chars} --min-text-chars {params.min_chars}"
        " --llm-summary {input.summary} --out {output.concerns} --rejects {output.rejects} --counts {output.counts}"
        " > {log} 2>&1"


rule bioreview_corpus:
    input:
        articles=BIOMED_TABLES["articles"],
        reports=BIOMED_TABLES["reports"],
        concerns=rules.bioreview_concerns.output.concerns,
    output:
        corpus=f"{BIOREVIEW_DIR}/corpus.parquet",
        counts=f"{BIOREVIEW_DIR}/corpus_counts.json",
    log:
        f"{LOGS}/bioreview_corpus.log",
    benchmark:
        f"{BENCH}/bioreview_corpus.tsv"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=30,
    conda:
        "../envs/data.yaml"
    shell:
        "python -m workflow_scripts.datasets.bioreview_corpus --articles {input.articles} --reports {input.reports}"
        " --concerns {input.concerns} --out {output.corpus} --counts {output.counts} > {log} 2>&1"


rule bioreview_splits:
    input:
        corpus=rules.bioreview_corpus.output.corpus,
    output:
        **{s: f"{BIO_SPLITS_DIR}/{s}.parquet" for s in BIO_SPLIT_NAMES},
        stats=f"{BIO_SPLITS_DIR}/stats.json",
    params:
        out_dir=lambda w, output: os.path.dirname(output.stats),
        seed=BIO["splits"]["seed"],
        val=BIO["splits"]["val_share"],
        test=BIO["splits"]["test_share"],
    log:
        f"{LOGS}/bioreview_splits.log",
    benchmark:
        f"{BENCH}/bioreview_splits.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=10,
    conda:
        "../envs/data.yaml"
    shell:
        "python -m workflow_scripts.datasets.bioreview_splits split --corpus {input.corpus} --seed {params.seed}"
        " --val-share {params.val} --test-share {params.test} --out-dir {params.out_dir} --stats {output.stats}"
        " > {log} 2>&1"


# fails (and so stops everything downstream) when an article or a DOI family is in two splits
rule bioreview_leakage_audit:
    input:
        **{s: f"{BIO_SPLITS_DIR}/{s}.parquet" for s in BIO_SPLIT_NAMES},
    output:
        f"{BIOREVIEW_DIR}/leakage_audit.json",
    params:
        splits=lambda w, input: " ".join(f"--split {s}={input[s]}" for s in BIO_SPLIT_NAMES),
    log:
        f"{LOGS}/bioreview_leakage_audit.log",
    threads: 1
    resources:
        mem_mb=4000,
        runtime=10,
    conda:
        "../envs/data.yaml"
    shell:
        "python -m workflow_scripts.datasets.bioreview_splits audit {params.splits} --out {output} > {log} 2>&1"


# the demo's base: its tokenizer learns the training split's text only (titles, abstracts, sections, concerns)
rule tiny_qwen3_5_model:
    input:
        corpus=f"{BIO_SPLITS_DIR}/train.parquet",
        audit=rules.bioreview_leakage_audit.output,
    output:
        directory(TINY_QWEN3_5),
    params:
        sizes=" ".join(f"--{k.replace('_', '-')} {v}" for k, v in sorted(config["models"]["tiny_qwen3_5"].items())),
        seed=config["seed"],
    log:
        f"{LOGS}/tiny_qwen3_5_model.log",
    benchmark:
        f"{BENCH}/tiny_qwen3_5_model.tsv"
    # building a tiny model is mostly imports and a tokenizer fit: one core, so another job runs beside it
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../envs/train.yaml"
    shell:
        "python -m workflow_scripts.train.tiny_model build --architecture qwen3_5 --corpus {input.corpus}"
        " --text-columns title,abstract,sections,concerns --out-dir {output} {params.sizes} --seed {params.seed}"
        " > {log} 2>&1"


rule bioreview_sft_data:
    input:
        **model_input(BIO_BASE),
        split=f"{BIO_SPLITS_DIR}/{{split}}.parquet",
        audit=rules.bioreview_leakage_audit.output,
    output:
        rows=f"{BIO_SFT_DATA}/{{split}}.parquet",
        meta=f"{BIO_SFT_DATA}/{{split}}.json",
        rejects=f"{BIO_SFT_DATA}/{{split}}.rejects.jsonl",
    params:
        model=lambda w: BIO_BASE,
        budget=BIOM["budget"],
        counter=BIOM["counter"],
    log:
        f"{LOGS}/bioreview_sft_data/{{split}}.log",
    benchmark:
        f"{BENCH}/bioreview_sft_data/{{split}}.tsv"
    wildcard_constraints:
        split="|".join(BIO_SPLIT_NAMES),
    threads: 1
    resources:
        mem_mb=8000,
        runtime=30,
    conda:
        "../envs/data.yaml"
    shell:
        f"{HUB_OFFLINE}python -m workflow_scripts.datasets.bioreview_sft --split {{input.split}}"
        " --counter {params.counter} --model {params.model} --budget {params.budget} --out {output.rows}"
        " --meta {output.meta} --rejects {output.rejects} > {log} 2>&1"


rule bioreview_sft:
    input:
        **model_input(BIO_BASE),
        train=f"{BIO_SFT_DATA}/train.parquet",
        val=f"{BIO_SFT_DATA}/val.parquet",
    output:
        # with merge_and_save: final/ = the merged model, adapter/ = the QLoRA adapter (checked to load without
        # missing keys onto the base)
        model=directory(f"{BIO_SFT_DIR}/final"),
        **({"adapter": directory(f"{BIO_SFT_DIR}/adapter")} if BIOM["trainer"].get("merge_and_save") else {}),
        state=f"{BIO_SFT_DIR}/trainer_state.json",
        curves=report(f"{BIO_SFT_DIR}/curves.png", caption="report/bioreview_sft_curves.rst", category="BioReview",
                      subcategory="training"),
    params:
        # checkpoints in the run directory (results/ or cluster.scratch_dir); the declared outputs are published here
        run_dir=lambda w, output: run_dir(os.path.dirname(output.state)),
        publish=lambda w, output: os.path.dirname(output.state),
        model=lambda w: BIO_BASE,
        launch=launch_args(BIOM["launch"]),
        trainer=lambda w: arg(BIOM["trainer"]),
    log:
        f"{LOGS}/bioreview_sft.log",
    benchmark:
        f"{BENCH}/bioreview_sft.tsv"
    threads: BIOM["resources"]["cpus_per_task"]
    resources:
        **slurm_resources(BIOM["resources"], BIOM["launch"]["nodes"], BIOM["launch"]["gpus_per_node"], training=True),
    conda:
        "../envs/train.yaml"
    shell:
        f"{HUB_OFFLINE}python -m workflow_scripts.train.launch {{params.launch}}"
        " --wall-time-margin {resources.wall_time_margin_s} -- -m workflow_scripts.train.sft"
        " --model {params.model} --train {input.train} --eval {input.val} --output-dir {params.run_dir}"
        " --publish-dir {params.publish} --config-json {params.trainer} > {log} 2>&1"


rule bioreview_predict:
    input:
        unpack(lambda w: model_input(BIO_MODELS[w.model])),
        prompts=f"{BIO_SFT_DATA}/test.parquet",
    output:
        predictions=f"{BIO_EVAL_DIR}/predictions/{{model}}.parquet",
        summary=f"{BIO_EVAL_DIR}/predictions/{{model}}.json",
    params:
        model=lambda w: BIO_MODELS[w.model],
        # the settings that define the predictions; the batch size (speed and memory) goes as a resource
        gen=lambda w: arg({k: v for k, v in BIO_EVAL["generation"].items() if k != "batch_size"}),
    log:
        f"{LOGS}/bioreview_predict/{{model}}.log",
    benchmark:
        f"{BENCH}/bioreview_predict/{{model}}.tsv"
    wildcard_constraints:
        model="|".join(BIO_MODELS),
    threads: BIO_EVAL["resources"]["cpus_per_task"]
    resources:
        **slurm_resources(BIO_EVAL["resources"], gpus_per_node=BIO_EVAL["resources"].get("gpus", 0)),
        gen_batch_size=BIO_EVAL["generation"]["batch_size"],
    conda:
        "../envs/eval.yaml"
    shell:
        f"{HUB_OFFLINE}python -m workflow_scripts.eval.bioreview_predict --model {{params.model}}"
        " --prompts {input.prompts} --gen-json {params.gen} --batch-size {resources.gen_batch_size}"
        " --label {wildcards.model} --out {output.predictions} --summary {output.summary} > {log} 2>&1"


# a matcher other than specter2 has no threshold of the reference's: it needs one given or calibrated
if (BIO_EMBEDDING["model"] != "specter2" and BIO_EMBEDDING["threshold"] is None
        and not BIO_EMBEDDING["calibration_pairs"]):
    raise ConfigError(f"invalid config:\n  config key bioreview.eval.embedding: model {BIO_EMBEDDING['model']!r} "
                      "needs a threshold or calibration_pairs (0.65 is a point on specter2's cosine scale)")
BIO_CALIBRATION = [BIO_EMBEDDING["calibration_pairs"]] if BIO_EMBEDDING["calibration_pairs"] else []
BIO_THRESHOLD = opt("--threshold", BIO_EMBEDDING["threshold"]) or " ".join(f"--calibration-pairs {p}"
                                                                           for p in BIO_CALIBRATION)


rule bioreview_metrics:
    input:
        # in the order of the tables' rows: base, tuned
        predictions=[f"{BIO_EVAL_DIR}/predictions/{m}.parquet" for m in BIO_MODELS],
        truth=f"{BIO_SPLITS_DIR}/test.parquet",
        train=f"{BIO_SPLITS_DIR}/train.parquet",
        articles=rules.bioreview_corpus.output.corpus,
        calibration=BIO_CALIBRATION,
    output:
        json=f"{BIO_EVAL_DIR}/metrics.json",
        md=report(f"{BIO_EVAL_DIR}/metrics.md", caption="report/bioreview_table.rst", category="BioReview",
                  subcategory="evaluation"),
    params:
        preds=lambda w, input: " ".join(f"--predictions {p}" for p in input.predictions),
        embedding=(f"--embedding-model {BIO_EMBEDDING['model']}"
                   f" {opt('--embedding-revision', BIO_EMBEDDING['revision'])}"
                   f" {opt('--embedding-path', BIO_EMBEDDING['path'])}"),
        threshold=BIO_THRESHOLD,
        metrics=lambda w: " ".join(f"--{k.replace('_', '-')} {v}" for k, v in sorted(BIO_EVAL["metrics"].items())),
        seed=config["seed"],
    log:
        f"{LOGS}/bioreview_metrics.log",
    benchmark:
        f"{BENCH}/bioreview_metrics.tsv"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=60,
    conda:
        "../envs/eval.yaml"
    shell:
        f"{HUB_OFFLINE}python -m workflow_scripts.eval.bioreview {{params.preds}} --truth {{input.truth}}"
        " --train-truth {input.train} --articles {input.articles} {params.embedding} {params.threshold}"
        " {params.metrics} --seed {params.seed} --out-json {output.json} --out-md {output.md} > {log} 2>&1"


rule bioreview_card:
    input:
        corpus=rules.bioreview_corpus.output.corpus,
        sources=[f"{BIOMED_DIR}/{s}.summary.json" for s in BIOMED_SOURCES],
        extraction=rules.bioreview_concerns.output.counts,
        corpus_counts=rules.bioreview_corpus.output.counts,
        stats=rules.bioreview_splits.output.stats,
        audit=rules.bioreview_leakage_audit.output,
        sft=[f"{BIO_SFT_DATA}/{s}.json" for s in BIO_SPLIT_NAMES],
    output:
        report(f"{BIOREVIEW_DIR}/README.md", caption="report/bioreview_card.rst", category="BioReview",
               subcategory="data"),
    params:
        sft=lambda w, input: " ".join(f"--sft-meta {s}={p}" for s, p in zip(BIO_SPLIT_NAMES, input.sft)),
        extractor=lambda w: shlex.quote(endpoint_label(EXTRACTOR)),
    log:
        f"{LOGS}/bioreview_card.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/data.yaml"
    shell:
        "python -m workflow_scripts.datasets.bioreview_card --corpus {input.corpus} --source-summary {input.sources}"
        " --extraction-counts {input.extraction} --corpus-counts {input.corpus_counts} --split-stats {input.stats}"
        " --audit {input.audit} {params.sft} --extractor {params.extractor} --out {output} > {log} 2>&1"


rule bioreview_llm_calls:
    input:
        rules.bioreview_extractor_calls.output.summary,
    output:
        report(f"{BIOREVIEW_DIR}/llm_calls.md", caption="report/llm_summary.rst", category="BioReview",
               subcategory="data"),
    log:
        f"{LOGS}/bioreview_llm_calls.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    conda:
        "../envs/data.yaml"
    shell:
        "python -m workflow_scripts.llm.summary --out {output} {input} > {log} 2>&1"


# Every artifact of the line, named as targets
BIOREVIEW_DATA = [*rules.bioreview_card.output, *rules.bioreview_llm_calls.output,
                  *(f"{BIO_SFT_DATA}/{s}.parquet" for s in BIO_SPLIT_NAMES)]
BIOREVIEW_TRAINING = [*rules.bioreview_sft.output]
BIOREVIEW_EVALUATION = [*(f"{BIO_EVAL_DIR}/predictions/{m}.parquet" for m in BIO_MODELS),
                        *rules.bioreview_metrics.output]
