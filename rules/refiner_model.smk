# Refiner model line, training and evaluation (the lihaoxin2020 refiner cards): SFT of the policy on the reference
# refinements (loss on the completion only), GRPO from the SFT model with the rubric + citation judge reward (the judge
# served beside the trainer, once for all ranks, on GPUs of its own), then every model - the base, step 0 = the model
# GRPO starts from, every saved checkpoint, the final one - answering the held-out tasks, scored by the same judge,
# with bootstrap intervals and the metrics against GRPO step. Data rules: rules/refiner.smk.

from workflow_scripts.common.config import served_llm_gpus

REF_SFT = REF["sft"]
REF_GRPO = REF["grpo"]
REF_EVAL = REF["eval"]
REF_SFT_DIR = f"{REFINER_DIR}/sft"
REF_GRPO_DIR = f"{REFINER_DIR}/grpo"
REF_EVAL_DIR = f"{REFINER_DIR}/eval"
REF_CHECKPOINT_MODELS = f"{REF_GRPO_DIR}/{checkpoint_models.PUBLISHED_DIR}"  # the model of every saved GRPO checkpoint
REF_CHECKPOINT_PREDICTIONS = f"{REF_EVAL_DIR}/predictions/checkpoints"  # step-N.parquet: their answers
REF_JUDGE = config["llm"]["endpoints"]["judge"]
REF_CURVES = REF_EVAL["checkpoints"]["enabled"]
# model label -> the --model argument; GRPO starts from the SFT model when the SFT stage is on, else the policy model
REF_MODELS = {"base": REF_POLICY} if REF_EVAL["base_model"] or not REF_SFT["enabled"] else {}
if REF_SFT["enabled"]:
    REF_MODELS["sft"] = f"{REF_SFT_DIR}/final"
REF_START_LABEL = "sft" if REF_SFT["enabled"] else "base"
REF_GRPO_START = REF_POLICY if REF_START_LABEL == "base" else REF_MODELS["sft"]
REF_MODELS["grpo"] = f"{REF_GRPO_DIR}/final"
# the judge's GPUs join the GRPO job's when the launcher serves it (a vllm endpoint); an external one is only called
REF_JUDGE_SERVED = REF_JUDGE["kind"] != "external"
REF_JUDGE_GPUS = served_llm_gpus(REF_JUDGE)
REF_GRPO_GPUS = REF_GRPO["launch"]["gpus_per_node"] + REF_JUDGE_GPUS


if REF_SFT["enabled"]:

    rule refiner_sft:
        input:
            **model_input(REF_POLICY),
            train=f"{REF_SFT_DATA}/train.parquet",
            val=f"{REF_SFT_DATA}/val.parquet",
        output:
            model=directory(f"{REF_SFT_DIR}/final"),
            state=f"{REF_SFT_DIR}/trainer_state.json",
            curves=report(f"{REF_SFT_DIR}/curves.png", caption="report/refiner_sft_curves.rst", category="Refiner",
                          subcategory="training"),
        params:
            # checkpoints in the run directory (results/ or cluster.scratch_dir); the declared outputs are published
            run_dir=lambda w, output: run_dir(os.path.dirname(output.state)),
            publish=lambda w, output: os.path.dirname(output.state),
            model=lambda w: REF_POLICY,
            launch=launch_args(REF_SFT["launch"]),
            # the rows were built to refiner.sft_data.max_length: the trainer takes the same, so none is cut
            trainer=lambda w: arg(REF_SFT["trainer"] | {"max_length": REF["sft_data"]["max_length"]}),
        log:
            f"{LOGS}/refiner_sft.log",
        benchmark:
            f"{BENCH}/refiner_sft.tsv"
        threads: REF_SFT["resources"]["cpus_per_task"]
        resources:
            **slurm_resources(REF_SFT["resources"], REF_SFT["launch"]["nodes"], REF_SFT["launch"]["gpus_per_node"],
                              training=True),
        conda:
            "../envs/train.yaml"
        shell:
            f"{HUB_OFFLINE}python -m workflow_scripts.train.launch {{params.launch}}"
            " --wall-time-margin {resources.wall_time_margin_s} -- -m workflow_scripts.train.sft"
            " --model {params.model} --train {input.train} --eval {input.val} --output-dir {params.run_dir}"
            " --publish-dir {params.publish} --config-json {params.trainer} > {log} 2>&1"


# a checkpoint rule: which steps it saved (the fan-out of refiner_eval_checkpoint) is known once it has run
checkpoint refiner_grpo:
    input:
        unpack(ref_judge_input),
        **model_input(REF_GRPO_START),
        train=f"{REF_SPLITS_DIR}/train.parquet",
        audit=rules.refiner_leakage_audit.output,
    output:
        # the run directory is not an output: its checkpoints must survive a failed job, for the rerun to resume
        model=directory(f"{REF_GRPO_DIR}/final"),
        state=f"{REF_GRPO_DIR}/trainer_state.json",
        curves=report(f"{REF_GRPO_DIR}/curves.png", caption="report/refiner_grpo_curves.rst", category="Refiner",
                      subcategory="training"),
        trend=f"{REF_GRPO_DIR}/reward_trend.json",
        **({"checkpoint_models": directory(REF_CHECKPOINT_MODELS)} if REF_CURVES else {}),
    params:
        run_dir=lambda w, output: run_dir(os.path.dirname(output.state)),
        publish=lambda w, output: os.path.dirname(output.state),
        model=lambda w: REF_GRPO_START,
        launch=launch_args(REF_GRPO["launch"] | {"gpus_per_node": REF_GRPO_GPUS}),
        # the judge (a vllm or demo endpoint) served by the launcher once for all ranks; the reward finds its URL
        serve=lambda w: opt("--serve-llm",
                            f"judge={json.dumps(REF_JUDGE, sort_keys=True)}" if REF_JUDGE_SERVED else None),
        trainer=lambda w: arg(REF_GRPO["trainer"] | {"reward_options": {
            "judge": REF_JUDGE, "cache_dir": REF_LLM_CACHE, "reward": REF["reward"], "judge_prompts": REF["judge"],
            "static_rubrics": REF["static_rubrics"]}}),
        keep="--keep-checkpoint-models" if REF_CURVES else "",
    log:
        f"{LOGS}/refiner_grpo.log",
    benchmark:
        f"{BENCH}/refiner_grpo.tsv"
    threads: REF_GRPO["resources"]["cpus_per_task"]
    resources:
        **slurm_resources(REF_GRPO["resources"], REF_GRPO["launch"]["nodes"], REF_GRPO_GPUS, training=True),
    conda:
        train_env(REF_GRPO["trainer"])
    shell:
        f"{HUB_OFFLINE}python -m workflow_scripts.train.launch {{params.launch}} {{params.serve}}"
        " --wall-time-margin {resources.wall_time_margin_s} -- -m workflow_scripts.train.grpo"
        " --model {params.model} --train {input.train} --output-dir {params.run_dir} --publish-dir {params.publish}"
        " --reward refiner --config-json {params.trainer} {params.keep} > {log} 2>&1"


rule refiner_grpo_rewards:
    input:
        state=rules.refiner_grpo.output.state,
    output:
        report(f"{REF_GRPO_DIR}/reward_components.png", caption="report/refiner_reward_components.rst",
               category="Refiner", subcategory="training"),
    log:
        f"{LOGS}/refiner_grpo_rewards.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/eval.yaml"
    shell:
        "python -m workflow_scripts.eval.refiner reward-curves --state {input.state} --out {output} > {log} 2>&1"


rule refiner_eval_predict:
    input:
        unpack(lambda w: model_input(REF_MODELS[w.model])),
        tasks=f"{REF_SPLITS_DIR}/test.parquet",
        audit=rules.refiner_leakage_audit.output,
    output:
        f"{REF_EVAL_DIR}/predictions/{{model}}.parquet",
    params:
        # a configured model, or (refiner_eval_checkpoint, below) a saved GRPO checkpoint's `step-N`
        model=lambda w: REF_MODELS.get(w.model, f"{REF_CHECKPOINT_MODELS}/{w.model}"),
        # the settings that define the answers; the batch size (speed and memory) goes as a resource
        gen=lambda w: arg({k: v for k, v in REF_EVAL["generation"].items() if k != "batch_size"}),
        max_tasks=opt("--max-tasks", REF_EVAL["max_tasks"]),
    log:
        f"{LOGS}/refiner_eval_predict/{{model}}.log",
    benchmark:
        f"{BENCH}/refiner_eval_predict/{{model}}.tsv"
    wildcard_constraints:
        model="|".join(REF_MODELS),
    threads: REF_EVAL["resources"]["cpus_per_task"]
    resources:
        **slurm_resources(REF_EVAL["resources"], gpus_per_node=REF_EVAL["resources"].get("gpus", 0)),
        gen_batch_size=REF_EVAL["generation"]["batch_size"],
    conda:
        "../envs/eval.yaml"
    shell:
        f"{HUB_OFFLINE}python -m workflow_scripts.eval.refiner predict --model {{params.model}} --tasks {{input.tasks}}"
        " --label {wildcards.model} --gen-json {params.gen} --batch-size {resources.gen_batch_size} {params.max_tasks}"
        " --out {output} > {log} 2>&1"


if REF_CURVES:

    # the same predict call, every param and resource included: the points of the curves are answered alike
    use rule refiner_eval_predict as refiner_eval_checkpoint with:
        input:
            models=rules.refiner_grpo.output.checkpoint_models,
            tasks=f"{REF_SPLITS_DIR}/test.parquet",
            audit=rules.refiner_leakage_audit.output,
        output:
            f"{REF_CHECKPOINT_PREDICTIONS}/{{model}}.parquet",
        log:
            f"{LOGS}/refiner_eval_checkpoint/{{model}}.log",
        benchmark:
            f"{BENCH}/refiner_eval_checkpoint/{{model}}.tsv"
        wildcard_constraints:
            model=r"step-\d+",


# one job scores every model's answers: the judge (a vllm server in production) starts once
rule refiner_eval_score:
    input:
        unpack(ref_judge_input),
        predictions=ref_predictions,
        tasks=f"{REF_SPLITS_DIR}/test.parquet",
    output:
        scores=f"{REF_EVAL_DIR}/scores.parquet",
        summary=f"{REF_EVAL_DIR}/scores.json",
    params:
        predictions=lambda w, input: " ".join(f"--predictions {p}" for p in input.predictions),
        references="--references" if REF_EVAL["references"] else "",
        # the block names the variable holding an external key, never the key (secrets stay out of params)
        judge=lambda w: arg(REF_JUDGE),
        marker=lambda w, input: opt("--judge-marker", input.get("judge_model")),
        cache=REF_LLM_CACHE,
        reward=lambda w: arg(REF["reward"]),
        prompts=lambda w: arg(REF["judge"]),
        static=lambda w: arg(REF["static_rubrics"]),
    log:
        f"{LOGS}/refiner_eval_score.log",
    benchmark:
        f"{BENCH}/refiner_eval_score.tsv"
    threads: REF_EVAL["score_resources"]["cpus_per_task"]
    resources:
        **endpoint_resources(REF_JUDGE, REF_EVAL["score_resources"]),
    conda:
        "../envs/eval.yaml"
    shell:
        f"{HUB_OFFLINE}python -m workflow_scripts.eval.refiner score --tasks {{input.tasks}} {{params.predictions}}"
        " {params.references} --judge-json {params.judge} {params.marker} --cache-dir {params.cache}"
        " --reward-json {params.reward} --judge-prompts-json {params.prompts} --static-rubrics-json {params.static}"
        " --out {output.scores} --summary {output.summary} > {log} 2>&1"


rule refiner_eval_metrics:
    input:
        scores=rules.refiner_eval_score.output.scores,
        summary=rules.refiner_eval_score.output.summary,
        state=rules.refiner_grpo.output.state,
    output:
        json=f"{REF_EVAL_DIR}/metrics.json",
        md=report(f"{REF_EVAL_DIR}/metrics.md", caption="report/refiner_table.rst", category="Refiner",
                  subcategory="evaluation"),
        png=report(f"{REF_EVAL_DIR}/curves.png", caption="report/refiner_curves.rst", category="Refiner",
                   subcategory="evaluation"),
    params:
        start_label=REF_START_LABEL,
        bootstrap=REF_EVAL["metrics"]["bootstrap"],
        level=REF_EVAL["metrics"]["ci_level"],
        seed=config["seed"],
    log:
        f"{LOGS}/refiner_eval_metrics.log",
    benchmark:
        f"{BENCH}/refiner_eval_metrics.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../envs/eval.yaml"
    shell:
        "python -m workflow_scripts.eval.refiner metrics --scores {input.scores} --summary {input.summary}"
        " --start-label {params.start_label} --trainer-state {input.state} --out-json {output.json}"
        " --out-md {output.md} --out-png {output.png} --bootstrap {params.bootstrap} --ci-level {params.level}"
        " --seed {params.seed} > {log} 2>&1"


# Every artifact of the line's models, named as targets (rule all, refiner): a training or evaluation job whose
# outputs were deleted (failed, interrupted) is rebuilt with what follows it, even where later outputs still exist
REFINER_TRAINING = [
    *(rules.refiner_sft.output if REF_SFT["enabled"] else []),
    *rules.refiner_grpo.output,
    *rules.refiner_grpo_rewards.output,
]
REFINER_EVALUATION = [
    *(f"{REF_EVAL_DIR}/predictions/{m}.parquet" for m in REF_MODELS),
    *rules.refiner_eval_score.output,
    *rules.refiner_eval_metrics.output,
]
