# Reviewer model line (the card's recipe): a prompt pool and the 95-paper benchmark from the review tables, checked
# for leakage; teacher reviews of the pool through llm.endpoints.teacher, filtered to one parseable decision and
# split by paper; LoRA SFT of the base model on them; the benchmark answered by the base model, the student, the
# teacher (the ceiling) and always-accept, scored with decision metrics and calibration.


REVM = REV["sft"]
REV_EVAL = REV["eval"]
REVIEWER_DIR = f"{RESULTS}/reviewer"
TINY_GEMMA = f"{RESULTS}/models/tiny-gemma4"
REV_BASE = TINY_GEMMA if REV["base_model"] == "tiny" else REV["base_model"]
REV_SFT_DIR = f"{REVIEWER_DIR}/sft"
REV_EVAL_DIR = f"{REVIEWER_DIR}/eval"
TEACHER = config["llm"]["endpoints"]["teacher"]
LLM_CACHE = config["llm"]["cache_dir"]
# model label -> the --model argument of the generation rows; teacher and always_accept are rows of their own
REV_MODELS = {"base": REV_BASE, "student": f"{REV_SFT_DIR}/final"}
REV_LABELS = [*REV_MODELS, "teacher", "always_accept"]


rule tiny_gemma_model:
    input:
        corpus=REVIEW_TABLES[0],
    output:
        directory(TINY_GEMMA),
    params:
        sizes=" ".join(f"--{k.replace('_', '-')} {v}" for k, v in sorted(config["models"]["tiny_gemma4"].items())),
        seed=config["seed"],
    log:
        f"{LOGS}/tiny_gemma_model.log",
    benchmark:
        f"{BENCH}/tiny_gemma_model.tsv"
    # building a tiny model is mostly imports and a tokenizer fit: one core, so another job runs beside it
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../envs/train.yaml"
    shell:
        "python -m workflow_scripts.train.tiny_model build --architecture gemma4 --corpus {input.corpus}"
        " --text-columns title,abstract --out-dir {output} {params.sizes} --seed {params.seed} > {log} 2>&1"


rule reviewer_pool:
    input:
        **model_input(REV_BASE),
        papers=REVIEW_TABLES[0],
    output:
        pool=f"{REVIEWER_DIR}/pool.parquet",
        benchmark=f"{REVIEWER_DIR}/benchmark.parquet",
        audit=f"{REVIEWER_DIR}/leakage_audit.json",
        rejects=f"{REVIEWER_DIR}/pool.rejects.jsonl",
        card=report(f"{REVIEWER_DIR}/README.md", caption="report/reviewer_pool.rst", category="Reviewer",
                    subcategory="data"),
    params:
        model=lambda w: REV_BASE,
        prompts=lambda w: f"--system-json {arg(REV['system_prompt'])} --user-template-json {arg(REV['user_template'])}",
        max_tokens=REV["max_prompt_tokens"],
        sizes=lambda w: arg(REV["pool"]["sizes"]),
        venues=" ".join(REV["benchmark"]["venues"]),
        splits=" ".join(REV["benchmark"]["splits"]),
        rules=lambda w: arg(REV["benchmark"]["label_rules"]),
        expected=opt("--expected-benchmark-size", REV["benchmark"]["expected_size"]),
        seed=config["seed"],
    log:
        f"{LOGS}/reviewer_pool.log",
    benchmark:
        f"{BENCH}/reviewer_pool.tsv"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=60,
    conda:
        "../envs/data.yaml"
    shell:
        f"{HUB_OFFLINE}python -m workflow_scripts.datasets.reviewer_pool --papers {{input.papers}} --model {{params.model}}"
        " {params.prompts} --max-prompt-tokens {params.max_tokens} --pool-sizes {params.sizes}"
        " --benchmark-venues {params.venues} --benchmark-splits {params.splits} --label-rules {params.rules}"
        " {params.expected} --seed {params.seed} --out-pool {output.pool} --out-benchmark {output.benchmark} --out-audit {output.audit}"
        " --out-rejects {output.rejects} --out-card {output.card} > {log} 2>&1"


rule reviewer_teacher:
    input:
        unpack(endpoint_input("teacher")),
        pool=rules.reviewer_pool.output.pool,
        audit=rules.reviewer_pool.output.audit,
    output:
        requests=f"{REVIEWER_DIR}/teacher/requests.jsonl",
        answers=f"{REVIEWER_DIR}/teacher/answers.jsonl",
        summary=f"{REVIEWER_DIR}/teacher/llm_summary.json",
        rejects=f"{REVIEWER_DIR}/teacher/llm_rejects.jsonl",
    params:
        sampling=lambda w: arg(REV["teacher"]["params"]),
        # the block names the variable holding an external key, never the key (secrets stay out of params)
        endpoint=lambda w: arg(TEACHER),
        cache=LLM_CACHE,
    log:
        f"{LOGS}/reviewer_teacher.log",
    benchmark:
        f"{BENCH}/reviewer_teacher.tsv"
    priority: FEEDS_TRAINING
    threads: 2
    resources:
        **endpoint_resources(TEACHER, {"mem_mb": 16000, "runtime": 24 * 60, "cpus_per_task": 4}),
    conda:
        "../envs/data.yaml"
    shell:
        f"{HUB_OFFLINE}(python -m workflow_scripts.datasets.reviewer_teacher requests --pool {{input.pool}}"
        " --params-json {params.sampling} --out {output.requests}"
        " && python -m workflow_scripts.llm.batch --use teacher --endpoint {params.endpoint} --cache-dir {params.cache}"
        " --requests {output.requests} --answers {output.answers} --summary {output.summary}"
        " --rejects {output.rejects}) > {log} 2>&1"


rule reviewer_sft_data:
    input:
        **model_input(REV_BASE),
        pool=rules.reviewer_pool.output.pool,
        answers=rules.reviewer_teacher.output.answers,
        summary=rules.reviewer_teacher.output.summary,
    output:
        train=f"{REVIEWER_DIR}/sft_data/train.parquet",
        val=f"{REVIEWER_DIR}/sft_data/val.parquet",
        rejects=f"{REVIEWER_DIR}/sft_data/rejects.jsonl",
        card=report(f"{REVIEWER_DIR}/sft_data/README.md", caption="report/reviewer_sft_data.rst", category="Reviewer",
                    subcategory="data"),
    params:
        model=lambda w: REV_BASE,
        train=REV["teacher"]["train_size"],
        val=REV["teacher"]["val_size"],
        teacher=lambda w: shlex.quote(endpoint_label(TEACHER)),
        seed=config["seed"],
    log:
        f"{LOGS}/reviewer_sft_data.log",
    benchmark:
        f"{BENCH}/reviewer_sft_data.tsv"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=30,
    conda:
        "../envs/data.yaml"
    shell:
        f"{HUB_OFFLINE}python -m workflow_scripts.datasets.reviewer_teacher build --pool {{input.pool}}"
        " --answers {input.answers} --llm-summary {input.summary} --train-size {params.train} --val-size {params.val}"
        " --seed {params.seed} --model {params.model} --teacher-label {params.teacher} --out-train {output.train}"
        " --out-val {output.val} --out-rejects {output.rejects} --out-card {output.card} > {log} 2>&1"


rule reviewer_sft:
    input:
        **model_input(REV_BASE),
        train=rules.reviewer_sft_data.output.train,
        val=rules.reviewer_sft_data.output.val,
    output:
        # with merge_and_save: final/ = the merged model, adapter/ = the LoRA adapter
        model=directory(f"{REV_SFT_DIR}/final"),
        **({"adapter": directory(f"{REV_SFT_DIR}/adapter")} if REVM["trainer"].get("merge_and_save") else {}),
        state=f"{REV_SFT_DIR}/trainer_state.json",
        curves=report(f"{REV_SFT_DIR}/curves.png", caption="report/reviewer_sft_curves.rst", category="Reviewer",
                      subcategory="training"),
    params:
        # checkpoints in the run directory (results/ or cluster.scratch_dir); the declared outputs are published here
        run_dir=lambda w, output: run_dir(os.path.dirname(output.state)),
        publish=lambda w, output: os.path.dirname(output.state),
        model=lambda w: REV_BASE,
        launch=launch_args(REVM["launch"]),
        trainer=lambda w: arg(REVM["trainer"]),
    log:
        f"{LOGS}/reviewer_sft.log",
    benchmark:
        f"{BENCH}/reviewer_sft.tsv"
    threads: REVM["resources"]["cpus_per_task"]
    resources:
        **slurm_resources(REVM["resources"], REVM["launch"]["nodes"], REVM["launch"]["gpus_per_node"], training=True),
    conda:
        "../envs/train.yaml"
    shell:
        f"{HUB_OFFLINE}python -m workflow_scripts.train.launch {{params.launch}}"
        " --wall-time-margin {resources.wall_time_margin_s} -- -m workflow_scripts.train.sft"
        " --model {params.model} --train {input.train} --eval {input.val} --output-dir {params.run_dir}"
        " --publish-dir {params.publish} --config-json {params.trainer} > {log} 2>&1"


rule reviewer_predict:
    input:
        unpack(lambda w: model_input(REV_MODELS[w.model])),
        benchmark=rules.reviewer_pool.output.benchmark,
        audit=rules.reviewer_pool.output.audit,
    output:
        f"{REV_EVAL_DIR}/predictions/{{model}}.parquet",
    params:
        model=lambda w: REV_MODELS[w.model],
        # the settings that define the predictions; the batch size (speed and memory) goes as a resource
        gen=lambda w: arg({k: v for k, v in REV_EVAL["generation"].items() if k != "batch_size"}),
    log:
        f"{LOGS}/reviewer_predict/{{model}}.log",
    benchmark:
        f"{BENCH}/reviewer_predict/{{model}}.tsv"
    wildcard_constraints:
        model="|".join(REV_MODELS),
    threads: REV_EVAL["resources"]["cpus_per_task"]
    resources:
        **slurm_resources(REV_EVAL["resources"], gpus_per_node=REV_EVAL["resources"].get("gpus", 0)),
        gen_batch_size=REV_EVAL["generation"]["batch_size"],
    conda:
        "../envs/eval.yaml"
    shell:
        f"{HUB_OFFLINE}python -m workflow_scripts.eval.reviewer predict --model {{params.model}}"
        " --benchmark {input.benchmark} --gen-json {params.gen} --batch-size {resources.gen_batch_size}"
        " --label {wildcards.model} --out {output} > {log} 2>&1"


rule reviewer_teacher_predict:
    input:
        unpack(endpoint_input("teacher")),
        benchmark=rules.reviewer_pool.output.benchmark,
        audit=rules.reviewer_pool.output.audit,
    output:
        predictions=f"{REV_EVAL_DIR}/predictions/teacher.parquet",
        requests=f"{REV_EVAL_DIR}/teacher/requests.jsonl",
        answers=f"{REV_EVAL_DIR}/teacher/answers.jsonl",
        summary=f"{REV_EVAL_DIR}/teacher/llm_summary.json",
        rejects=f"{REV_EVAL_DIR}/teacher/llm_rejects.jsonl",
    params:
        # the benchmark's sampling (the card's), asked of the teacher's endpoint with its log-probabilities
        sampling=lambda w: arg({"temperature": REV_EVAL["generation"]["temperature"],
                                "top_p": REV_EVAL["generation"]["top_p"],
                                "max_tokens": REV_EVAL["generation"]["max_new_tokens"],
                                "seed": REV_EVAL["generation"]["seed"]}),
        top_logprobs=REV_EVAL["generation"]["top_logprobs"],
        endpoint=lambda w: arg(TEACHER),
        cache=LLM_CACHE,
    log:
        f"{LOGS}/reviewer_teacher_predict.log",
    benchmark:
        f"{BENCH}/reviewer_teacher_predict.tsv"
    threads: 2
    resources:
        **endpoint_resources(TEACHER, {"mem_mb": 16000, "runtime": 12 * 60, "cpus_per_task": 4}),
    conda:
        "../envs/eval.yaml"
    shell:
        f"{HUB_OFFLINE}(python -m workflow_scripts.eval.reviewer requests --benchmark {{input.benchmark}}"
        " --params-json {params.sampling}"
        " --top-logprobs {params.top_logprobs} --out {output.requests}"
        " && python -m workflow_scripts.llm.batch --use teacher --endpoint {params.endpoint} --cache-dir {params.cache}"
        " --requests {output.requests} --answers {output.answers} --summary {output.summary}"
        " --rejects {output.rejects}"
        " && python -m workflow_scripts.eval.reviewer from-answers --benchmark {input.benchmark}"
        " --answers {output.answers} --label teacher --out {output.predictions}) > {log} 2>&1"


rule reviewer_always_accept:
    input:
        benchmark=rules.reviewer_pool.output.benchmark,
    output:
        f"{REV_EVAL_DIR}/predictions/always_accept.parquet",
    log:
        f"{LOGS}/reviewer_always_accept.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/eval.yaml"
    shell:
        "python -m workflow_scripts.eval.reviewer constant --benchmark {input.benchmark} --decision accept"
        " --label always_accept --out {output} > {log} 2>&1"


rule reviewer_metrics:
    input:
        # in the order of the tables' rows: base, student, teacher, always_accept
        predictions=[f"{REV_EVAL_DIR}/predictions/{m}.parquet" for m in REV_LABELS],
    output:
        json=f"{REV_EVAL_DIR}/metrics.json",
        md=report(f"{REV_EVAL_DIR}/metrics.md", caption="report/reviewer_table.rst", category="Reviewer",
                  subcategory="evaluation"),
        reliability=report(f"{REV_EVAL_DIR}/reliability.png", caption="report/reviewer_reliability.rst",
                           category="Reviewer", subcategory="evaluation"),
        rates=report(f"{REV_EVAL_DIR}/accept_rates.png", caption="report/reviewer_rates.rst", category="Reviewer",
                     subcategory="evaluation"),
        generations=f"{REV_EVAL_DIR}/generations.jsonl",
    params:
        preds=lambda w, input: " ".join(f"--predictions {p}" for p in input.predictions),
        metrics=lambda w: " ".join(f"--{k.replace('_', '-')} {v}" for k, v in sorted(REV_EVAL["metrics"].items())),
        reference=opt("--reference-accept-rate", REV["benchmark"]["reference_accept_rate"]),
        provenance=lambda w: arg({"teacher": endpoint_label(TEACHER)}),
        seed=config["seed"],
    log:
        f"{LOGS}/reviewer_metrics.log",
    benchmark:
        f"{BENCH}/reviewer_metrics.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../envs/eval.yaml"
    shell:
        "python -m workflow_scripts.eval.reviewer metrics {params.preds} --out-json {output.json} --out-md {output.md}"
        " --out-reliability-png {output.reliability} --out-rates-png {output.rates}"
        " --out-generations-jsonl {output.generations} {params.metrics} {params.reference}"
        " --provenance {params.provenance}"
        " --seed {params.seed} > {log} 2>&1"


rule reviewer_llm_calls:
    input:
        rules.reviewer_teacher.output.summary,
        rules.reviewer_teacher_predict.output.summary,
    output:
        report(f"{REVIEWER_DIR}/llm_calls.md", caption="report/llm_summary.rst", category="Reviewer",
               subcategory="data"),
    log:
        f"{LOGS}/reviewer_llm_calls.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    conda:
        "../envs/data.yaml"
    shell:
        "python -m workflow_scripts.llm.summary --out {output} {input} > {log} 2>&1"


# Every artifact of the line, named as targets (see SJ_TRAINING in scijudge_model.smk for why outputs of
# intermediate jobs are targets too)
REVIEWER_DATA = [*rules.reviewer_pool.output, *rules.reviewer_sft_data.output, *rules.reviewer_llm_calls.output]
REVIEWER_TRAINING = [*rules.reviewer_sft.output]
REVIEWER_EVALUATION = [
    *(f"{REV_EVAL_DIR}/predictions/{m}.parquet" for m in REV_LABELS),
    *rules.reviewer_metrics.output,
]
