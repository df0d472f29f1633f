# SciJudge model line: an optional SFT format warm-up, GRPO (DAPO loss) on the train pairs, then the pairwise
# evaluation of the base, warmed-up and trained models and a non-LLM baseline on the in-domain and temporal-OOD tests
# (both A/B orders per pair).

from workflow_scripts.datasets import biorxiv_pairs
from workflow_scripts.datasets.scijudge_prompt import PROMPT_KEYS

GRPO = SJ["grpo"]
SFTW = SJ["sft_warmup"]
SJ_EVAL = SJ["eval"]
# model label -> the --model argument; evaluated in this order, the first is the reference of the differences
SJ_MODELS = {"base": model_path(SJ["base_model"])}
if SFTW["enabled"]:
    SJ_MODELS["sft"] = f"{SFTW_DIR}/final"
# GRPO starts from the format-warmed model when the warm-up is on, else from the base model
GRPO_START_LABEL = "sft" if SFTW["enabled"] else "base"
GRPO_START = SJ_MODELS[GRPO_START_LABEL]
SJ_MODELS["grpo"] = f"{GRPO_DIR}/final"
SJ_LABELS = [*SJ_MODELS, "baseline"]
# accuracy against GRPO step: the model of every saved checkpoint, published by scijudge_grpo (see the rules at the end)
SJ_CURVES = SJ_EVAL["checkpoints"]


rule scijudge_sft_data:
    input:
        train=PAIRS["train"],
        audit=PAIRS_AUDIT,
    output:
        SFTW_DATA,
    params:
        max_pairs=opt("--max-pairs", SFTW["max_pairs"]),
        seed=config["seed"],
        prompt=SJ["prompt"],
    log:
        f"{LOGS}/scijudge_sft_data.log",
    benchmark:
        f"{BENCH}/scijudge_sft_data.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=15,
    conda:
        "../envs/data.yaml"
    shell:
        "python -m workflow_scripts.datasets.scijudge_sft --pairs {input.train} --out {output}"
        " {params.max_pairs} --seed {params.seed} --prompt-variant {params.prompt} > {log} 2>&1"


rule scijudge_sft_warmup:
    input:
        **model_input(SJ_MODELS["base"]),
        train=SFTW_DATA,
    output:
        model=directory(f"{SFTW_DIR}/final"),
        state=f"{SFTW_DIR}/trainer_state.json",
        curves=report(
            f"{SFTW_DIR}/curves.png", caption="report/scijudge_sft_curves.rst", category="SciJudge", subcategory="training"
        ),
    params:
        # checkpoints in the run directory (results/ or cluster.scratch_dir); the declared outputs are published here
        run_dir=lambda w, output: run_dir(os.path.dirname(output.state)),
        publish=lambda w, output: os.path.dirname(output.state),
        model=lambda w: SJ_MODELS["base"],
        launch=launch_args(SFTW["launch"]),
        trainer=lambda w: arg(SFTW["trainer"] | {"seed": config["seed"]}),
    log:
        f"{LOGS}/scijudge_sft_warmup.log",
    benchmark:
        f"{BENCH}/scijudge_sft_warmup.tsv"
    threads: SFTW["resources"]["cpus_per_task"]
    resources:
        **slurm_resources(SFTW["resources"], SFTW["launch"]["nodes"], SFTW["launch"]["gpus_per_node"],
                          training=True),
    conda:
        "../envs/train.yaml"
    shell:
        f"{HUB_OFFLINE}python -m workflow_scripts.train.launch {{params.launch}}"
        " --wall-time-margin {resources.wall_time_margin_s} -- -m workflow_scripts.train.sft"
        " --model {params.model} --train {input.train} --output-dir {params.run_dir} --publish-dir {params.publish}"
        " --config-json {params.trainer} > {log} 2>&1"


# a checkpoint rule: which steps it saved (the fan-out of scijudge_eval_checkpoint) is known once it has run
checkpoint scijudge_grpo:
    input:
        **model_input(GRPO_START),
        train=PAIRS["train"],
        audit=PAIRS_AUDIT,
    output:
        # the run directory itself is not an output: Snakemake deletes outputs of failed jobs, and the
        # checkpoints inside must survive a kill or preemption so the rerun resumes from the last one
        model=directory(f"{GRPO_DIR}/final"),
        state=f"{GRPO_DIR}/trainer_state.json",
        curves=report(
            f"{GRPO_DIR}/curves.png", caption="report/scijudge_curves.rst", category="SciJudge", subcategory="training"
        ),
        # the mean reward of the last quarter of steps minus the first, with its bootstrap interval
        trend=f"{GRPO_DIR}/reward_trend.json",
        # the models kept in the run directory at each save, published (hard links) when the run ends
        **({"checkpoint_models": directory(GRPO_CHECKPOINT_MODELS)} if SJ_CURVES["enabled"] else {}),
    params:
        run_dir=lambda w, output: run_dir(os.path.dirname(output.state)),
        publish=lambda w, output: os.path.dirname(output.state),
        model=lambda w: GRPO_START,
        launch=launch_args(GRPO["launch"]),
        # the rewards parse the answer format of the configured prompt variant
        trainer=lambda w: arg(GRPO["trainer"] | {"seed": config["seed"], "reward_options": {"prompt": SJ["prompt"]}}),
        keep="--keep-checkpoint-models" if SJ_CURVES["enabled"] else "",
    log:
        f"{LOGS}/scijudge_grpo.log",
    benchmark:
        f"{BENCH}/scijudge_grpo.tsv"
    threads: GRPO["resources"]["cpus_per_task"]
    resources:
        **slurm_resources(GRPO["resources"], GRPO["launch"]["nodes"], GRPO["launch"]["gpus_per_node"],
                          training=True),
    conda:
        train_env(GRPO["trainer"])
    shell:
        f"{HUB_OFFLINE}python -m workflow_scripts.train.launch {{params.launch}}"
        " --wall-time-margin {resources.wall_time_margin_s} -- -m workflow_scripts.train.grpo"
        " --model {params.model} --train {input.train} --output-dir {params.run_dir} --publish-dir {params.publish}"
        " --reward scijudge --config-json {params.trainer} {params.keep} > {log} 2>&1"


# the extra out-of-distribution test sets (scijudge.eval.ood_sets, the paper's Table 4; scijudge_ood_eval.smk): set ->
# its pairs, the prompt settings the evaluation renders them with (ICLR: its own question), and its field
SJ_OOD_SETS = {
    "iclr": {"pairs": SJ_ICLR_PAIRS, "prompt": SJ_ICLR_PROMPT, "field": SJ["ood"]["iclr"]["category"]},
    "biorxiv": {"pairs": BX_PAIRS, "prompt": {k: SJ[k] for k in PROMPT_KEYS}, "field": biorxiv_pairs.FIELD},
}
SJ_OOD_EVALUATED = SJ_EVAL["ood_sets"]


# One job per model answers the main test pairs and every extra OOD set: the model is loaded once (loading is most of
# a small set's job, and minutes for a large model), each set with its own prompt and predictions file.
rule scijudge_eval_model:
    input:
        unpack(lambda w: model_input(SJ_MODELS[w.model])),
        pairs=SJ_TEST,
        audit=PAIRS_AUDIT,
        ood_pairs=[SJ_OOD_SETS[s]["pairs"] for s in SJ_OOD_EVALUATED],
    output:
        main=f"{SJ_EVAL_DIR}/predictions/{{model}}.parquet",
        ood=[sj_ood_prediction(s, "{model}") for s in SJ_OOD_EVALUATED],
    params:
        # a configured model, or (scijudge_eval_checkpoint, below) a saved GRPO checkpoint's `step-N`
        model=lambda w: SJ_MODELS.get(w.model, f"{GRPO_CHECKPOINT_MODELS}/{w.model}"),
        pairs=lambda w, input: " ".join(f"--pairs {p}" for p in input.pairs),
        # the settings that define the predictions; the batch size (speed and memory) goes as a resource, since a
        # changed param would rerun every evaluation
        gen=lambda w: arg({k: v for k, v in SJ_EVAL["generation"].items() if k != "batch_size"}),
        prompt=lambda w: arg({k: SJ[k] for k in PROMPT_KEYS}),
        ood=lambda w: " ".join(f"--also-json {arg(sj_ood_set(s, w.model))}" for s in SJ_OOD_EVALUATED),
    log:
        f"{LOGS}/scijudge_eval_model/{{model}}.log",
    benchmark:
        f"{BENCH}/scijudge_eval_model/{{model}}.tsv"
    wildcard_constraints:
        model="|".join(SJ_MODELS),
    threads: SJ_EVAL["resources"]["cpus_per_task"]
    resources:
        **slurm_resources(SJ_EVAL["resources"], gpus_per_node=SJ_EVAL["resources"].get("gpus", 0)),
        gen_batch_size=SJ_EVAL["generation"]["batch_size"],
    conda:
        "../envs/eval.yaml"
    shell:
        f"{HUB_OFFLINE}python -m workflow_scripts.eval.scijudge predict --model {{params.model}} {{params.pairs}}"
        " --out {output.main} --gen-json {params.gen} --batch-size {resources.gen_batch_size}"
        " --prompt-json {params.prompt} {params.ood} > {log} 2>&1"


rule scijudge_baseline:
    input:
        train=PAIRS["train"],
        test=SJ_TEST,
        audit=PAIRS_AUDIT,
    output:
        model=f"{SJ_EVAL_DIR}/baseline/model.joblib",
        predictions=f"{SJ_EVAL_DIR}/predictions/baseline.parquet",
    params:
        params=lambda w: arg({k: v for k, v in SJ_EVAL["baseline"].items()}),
        test=lambda w, input: " ".join(f"--pairs {p}" for p in input.test),
        max_pairs=opt("--max-pairs", SJ_EVAL["generation"]["max_pairs"]),
    log:
        f"{LOGS}/scijudge_baseline.log",
    benchmark:
        f"{BENCH}/scijudge_baseline.tsv"
    threads: 1
    resources:
        mem_mb=16000,
        runtime=120,
    conda:
        "../envs/eval.yaml"
    shell:
        "(python -m workflow_scripts.eval.baseline train --pairs {input.train} --out {output.model} --params-json {params.params}"
        " && python -m workflow_scripts.eval.baseline predict --model {output.model} {params.test}"
        " --out {output.predictions} {params.max_pairs}) > {log} 2>&1"


rule scijudge_metrics:
    input:
        # order matters: the first model is the reference of the paired differences (base model)
        predictions=[f"{SJ_EVAL_DIR}/predictions/{m}.parquet" for m in SJ_LABELS],
    output:
        json=SJ_METRICS,
        md=report(f"{SJ_EVAL_DIR}/metrics.md", caption="report/scijudge_table.rst", category="SciJudge", subcategory="evaluation"),
        png=report(f"{SJ_EVAL_DIR}/accuracy.png", caption="report/scijudge_chart.rst", category="SciJudge", subcategory="evaluation"),
    params:
        preds=lambda w, input: " ".join(f"--predictions {p}" for p in input.predictions),
        bootstrap=SJ_EVAL["metrics"]["bootstrap"],
        level=SJ_EVAL["metrics"]["ci_level"],
        fields=",".join(config["fields"]),
        seed=config["seed"],
        labels=",".join(SJ_LABELS),
    log:
        f"{LOGS}/scijudge_metrics.log",
    benchmark:
        f"{BENCH}/scijudge_metrics.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../envs/eval.yaml"
    shell:
        "python -m workflow_scripts.eval.scijudge metrics {params.preds} --labels {params.labels}"
        " --out-json {output.json} --out-md {output.md} --out-png {output.png} --bootstrap {params.bootstrap}"
        " --ci-level {params.level} --seed {params.seed} --fields {params.fields} > {log} 2>&1"


# Every artifact of the model line, named as a target (rule all, scijudge_model, scijudge_eval): Snakemake 9 checks
# the outputs of an intermediate job only when something downstream must run, so a training or evaluation job that
# failed or was interrupted (its outputs deleted) while the metrics of the previous run are still on disk would
# otherwise be forgotten ("Nothing to be done"). As targets, a missing one is rebuilt, and what follows it too.
SJ_TRAINING = [
    *(rules.scijudge_sft_warmup.output if SFTW["enabled"] else []),
    *rules.scijudge_grpo.output,
]
SJ_EVALUATION = [
    *(f"{SJ_EVAL_DIR}/predictions/{m}.parquet" for m in SJ_LABELS),
    *rules.scijudge_baseline.output,
    *rules.scijudge_metrics.output,
]


# ---- accuracy against GRPO step (the paper's Figure 3): every saved checkpoint evaluated like the models above
#
# Which checkpoints a run saves is known only once it has run (production trains one epoch: max_steps follows from
# the pair count), hence the checkpoint rule. save_total_limit deletes old checkpoints, so the training run keeps the
# model files of each one as it is saved (hard links, no optimizer state) in its run directory, which survives a
# kill or preemption like the checkpoints, and publishes them when it ends (workflow_scripts.train.checkpoint_models).
# Step 0 is the model GRPO starts from and the last step the final model: their predictions are the ones above.


if SJ_CURVES["enabled"]:

    # the same predict call as scijudge_eval_model, every param and resource included: the points of the curve and
    # the rows of the metrics table are predicted alike
    use rule scijudge_eval_model as scijudge_eval_checkpoint with:
        input:
            models=rules.scijudge_grpo.output.checkpoint_models,
            pairs=SJ_TEST,
            audit=PAIRS_AUDIT,
        output:
            # the main test pairs only: the curve is drawn on them
            main=f"{SJ_CHECKPOINT_PREDICTIONS}/{{model}}.parquet",
        params:
            ood="",
        log:
            f"{LOGS}/scijudge_eval_checkpoint/{{model}}.log",
        benchmark:
            f"{BENCH}/scijudge_eval_checkpoint/{{model}}.tsv"
        wildcard_constraints:
            model=r"step-\d+",

    rule scijudge_checkpoint_curves:
        input:
            start=f"{SJ_EVAL_DIR}/predictions/{GRPO_START_LABEL}.parquet",
            checkpoints=lambda w: sj_checkpoint_predictions().values(),
            final=f"{SJ_EVAL_DIR}/predictions/grpo.parquet",
            state=rules.scijudge_grpo.output.state,
        output:
            json=f"{SJ_EVAL_DIR}/checkpoint_curves.json",
            md=report(f"{SJ_EVAL_DIR}/checkpoint_curves.md", caption="report/scijudge_checkpoint_table.rst",
                      category="SciJudge", subcategory="evaluation"),
            png=report(f"{SJ_EVAL_DIR}/checkpoint_curves.png", caption="report/scijudge_checkpoint_curves.rst",
                       category="SciJudge", subcategory="evaluation"),
        params:
            checkpoints=lambda w: " ".join(f"--checkpoint {s}={p}" for s, p in sj_checkpoint_predictions().items()),
            start_label=GRPO_START_LABEL,
            bootstrap=SJ_EVAL["metrics"]["bootstrap"],
            level=SJ_EVAL["metrics"]["ci_level"],
            fields=",".join(config["fields"]),
            seed=config["seed"],
        log:
            f"{LOGS}/scijudge_checkpoint_curves.log",
        benchmark:
            f"{BENCH}/scijudge_checkpoint_curves.tsv"
        threads: 1
        resources:
            mem_mb=4000,
            runtime=30,
        conda:
            "../envs/eval.yaml"
        shell:
            "python -m workflow_scripts.eval.scijudge_curves --start {input.start} --start-label {params.start_label}"
            " {params.checkpoints} --final {input.final} --trainer-state {input.state} --out-json {output.json}"
            " --out-md {output.md} --out-png {output.png} --bootstrap {params.bootstrap} --ci-level {params.level}"
            " --seed {params.seed} --fields {params.fields} > {log} 2>&1"

    SJ_EVALUATION += rules.scijudge_checkpoint_curves.output
