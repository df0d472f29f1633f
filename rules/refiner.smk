# Refiner model line, data (the lihaoxin2020 refiner cards): tasks {question, agent reasoning, search-tool output with
# snippet ids, positive / negative rubrics, reference refinement} loaded from a published dataset through a column
# mapping, or built from the harvested corpus (papers.parquet) with a local BM25 search tool and the writer endpoint
# (llm.endpoints.writer); prompts over the policy's token budget filtered out; train / val / test by question with a
# leakage audit that stops the DAG; SFT rows from the references; the dataset card.

REF = config["refiner"]
REF_TASKS_CFG = REF["tasks"]
REF_DATASET = REF_TASKS_CFG["dataset"]
REFINER_DIR = f"{RESULTS}/refiner"
REF_SPLITS_DIR = f"{REFINER_DIR}/splits"
REF_SFT_DATA = f"{REFINER_DIR}/sft_data"
REF_SPLIT_NAMES = ["train", "val", "test"]
REF_SFT_SPLITS = ["train", "val"]
REF_POLICY = model_path(REF["policy_model"])
REF_WRITER = config["llm"]["endpoints"]["writer"]
REF_LLM_CACHE = config["llm"]["cache_dir"]
REF_FROM_CORPUS = REF_TASKS_CFG["source"] == "corpus"
# the writer is asked when the tasks are built, or when a dataset's missing references are to be written
REF_USES_WRITER = REF_FROM_CORPUS or REF_DATASET["ask_references"]
# a hub dataset is downloaded once (rule refiner_dataset_download) and read offline like a local snapshot
REF_DATASET_FROM_HUB = not REF_FROM_CORPUS and hub_model.is_hub_id(REF_DATASET["path"])
REF_DATASET_SNAPSHOT = f"{REFINER_DIR}/dataset/{hub_model.slug(REF_DATASET['path'])}"


# what the tasks are made from: the corpus (and the policy's tokenizer), or the dataset (a downloaded hub snapshot's
# marker, or the local path itself)
REF_TASK_INPUT = {
    **model_input(REF_POLICY),
    **({"papers": PAPERS} if REF_FROM_CORPUS else
       {"dataset": f"{REF_DATASET_SNAPSHOT}.json" if REF_DATASET_FROM_HUB else REF_DATASET["path"]}),
}
if REF_FROM_CORPUS:
    REF_TASK_SOURCE = "build --papers {input.papers} --corpus-json {params.corpus} --seed {params.seed}"
else:
    REF_TASK_SOURCE = (f"load --dataset {REF_DATASET_SNAPSHOT if REF_DATASET_FROM_HUB else '{input.dataset}'}"
                       " --dataset-json {params.dataset}")
# (functions: a string param would be read as a wildcard pattern, and the prompts hold braces)
REF_TASK_PARAMS = (
    {"corpus": lambda w: arg(REF_TASKS_CFG["corpus"]), "seed": config["seed"]} if REF_FROM_CORPUS
    # the hub id stays the origin's label when the rows are read from its downloaded snapshot
    else {"dataset": lambda w: arg({**REF_DATASET, "label": REF_DATASET["label"] or (
        REF_DATASET["path"] if REF_DATASET_FROM_HUB else None)})})
if REF_USES_WRITER:
    # the block names the variable holding an external key, never the key (secrets stay out of params)
    REF_TASK_PARAMS.update(writer=lambda w: arg(REF["writer"]), endpoint=lambda w: arg(REF_WRITER),
                           cache=REF_LLM_CACHE)
REF_TASK_WRITER = (" --writer-json {params.writer} --endpoint {params.endpoint} --cache-dir {params.cache}"
                   " --llm-summary {output.llm_summary} --llm-rejects {output.llm_rejects}") if REF_USES_WRITER else ""


if REF_DATASET_FROM_HUB:

    localrules:
        refiner_dataset_download,

    # the one Refiner job that reaches the hub (a localrule: compute nodes often have no internet)
    rule refiner_dataset_download:
        output:
            marker=f"{REF_DATASET_SNAPSHOT}.json",
        params:
            repo=REF_DATASET["path"],
            revision=REF_DATASET["revision"],
            out_dir=lambda w, output: output.marker.removesuffix(".json"),
        log:
            f"{LOGS}/refiner_dataset_download.log",
        benchmark:
            f"{BENCH}/refiner_dataset_download.tsv"
        threads: 2
        resources:
            mem_mb=4000,
            runtime=6 * 60,
        conda:
            "../envs/data.yaml"
        shell:
            "HF_HUB_OFFLINE=0 python -m workflow_scripts.datasets.refiner_tasks download --repo {params.repo}"
            " --revision {params.revision} --out-dir {params.out_dir} --marker {output.marker} > {log} 2>&1"


rule refiner_tasks:
    input:
        # a writer block the schema accepts can still be unusable: endpoint_input stops the run naming the keys
        unpack(endpoint_input("writer")) if REF_USES_WRITER else [],
        **REF_TASK_INPUT,
    output:
        tasks=f"{REFINER_DIR}/tasks.parquet",
        rejects=f"{REFINER_DIR}/tasks.rejects.jsonl",
        counts=f"{REFINER_DIR}/tasks.counts.json",
        **({"llm_summary": f"{REFINER_DIR}/writer/llm_summary.json",
            "llm_rejects": f"{REFINER_DIR}/writer/llm_rejects.jsonl"} if REF_USES_WRITER else {}),
    params:
        # only what this way of making the tasks reads, so that an edit elsewhere reruns nothing
        model=lambda w: REF_POLICY,
        prompt=lambda w: arg(REF["prompt"]),
        budget=REF["max_prompt_tokens"],
        **REF_TASK_PARAMS,
    log:
        f"{LOGS}/refiner_tasks.log",
    benchmark:
        f"{BENCH}/refiner_tasks.tsv"
    threads: REF_TASKS_CFG["resources"]["cpus_per_task"]
    resources:
        **(endpoint_resources(REF_WRITER, REF_TASKS_CFG["resources"]) if REF_USES_WRITER
           else slurm_resources(REF_TASKS_CFG["resources"])),
    conda:
        "../envs/data.yaml"
    shell:
        f"{HUB_OFFLINE}python -m workflow_scripts.datasets.refiner_tasks {REF_TASK_SOURCE}"
        " --policy-model {params.model} --prompt-json {params.prompt} --max-prompt-tokens {params.budget}"
        " --out {output.tasks} --rejects {output.rejects} --counts {output.counts}"
        f"{REF_TASK_WRITER} > {{log}} 2>&1"


rule refiner_splits:
    input:
        tasks=rules.refiner_tasks.output.tasks,
    output:
        **{s: f"{REF_SPLITS_DIR}/{s}.parquet" for s in REF_SPLIT_NAMES},
        stats=f"{REF_SPLITS_DIR}/stats.json",
    params:
        out_dir=lambda w, output: os.path.dirname(output.stats),
        seed=REF["split"]["seed"],
        val=REF["split"]["val_share"],
        test=REF["split"]["test_share"],
        dedupe=lambda w: arg(REF["split"]["dedupe"]),
        # MinHash seed of the near-duplicate rule: the leakage audit's, so both find the same pairs
        dedupe_seed=config["seed"],
    log:
        f"{LOGS}/refiner_splits.log",
    benchmark:
        f"{BENCH}/refiner_splits.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    conda:
        "../envs/data.yaml"
    shell:
        "python -m workflow_scripts.datasets.refiner_splits --tasks {input.tasks} --seed {params.seed}"
        " --val-share {params.val} --test-share {params.test} --dedupe-json {params.dedupe}"
        " --dedupe-seed {params.dedupe_seed} --out-dir {params.out_dir} --stats {output.stats} > {log} 2>&1"


# fails (and so stops everything downstream) when a task id, a question or a near-duplicate of it is in two splits
rule refiner_leakage_audit:
    input:
        **{s: f"{REF_SPLITS_DIR}/{s}.parquet" for s in REF_SPLIT_NAMES},
    output:
        f"{REFINER_DIR}/leakage_audit.json",
    params:
        splits=lambda w, input: " ".join(f"--split {s}={input[s]}" for s in REF_SPLIT_NAMES),
        dedupe=lambda w: arg(REF["split"]["dedupe"]),
        seed=config["seed"],
    log:
        f"{LOGS}/refiner_leakage_audit.log",
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    conda:
        "../envs/data.yaml"
    shell:
        "python -m workflow_scripts.datasets.leakage_audit {params.splits} --id-columns task_id"
        " --title-columns question --dedupe-json {params.dedupe} --seed {params.seed} --out {output} > {log} 2>&1"


rule refiner_sft_data:
    input:
        **model_input(REF_POLICY),
        split=f"{REF_SPLITS_DIR}/{{split}}.parquet",
        audit=rules.refiner_leakage_audit.output,
    output:
        rows=f"{REF_SFT_DATA}/{{split}}.parquet",
        meta=f"{REF_SFT_DATA}/{{split}}.json",
        rejects=f"{REF_SFT_DATA}/{{split}}.rejects.jsonl",
    params:
        model=lambda w: REF_POLICY,
        max_length=REF["sft_data"]["max_length"],
    log:
        f"{LOGS}/refiner_sft_data/{{split}}.log",
    benchmark:
        f"{BENCH}/refiner_sft_data/{{split}}.tsv"
    wildcard_constraints:
        split="|".join(REF_SFT_SPLITS),
    threads: 1
    resources:
        mem_mb=8000,
        runtime=60,
    conda:
        "../envs/data.yaml"
    shell:
        f"{HUB_OFFLINE}python -m workflow_scripts.datasets.refiner_sft --split {{input.split}}"
        " --model {params.model} --max-length {params.max_length} --out {output.rows} --meta {output.meta}"
        " --rejects {output.rejects} > {log} 2>&1"


rule refiner_card:
    input:
        counts=rules.refiner_tasks.output.counts,
        stats=rules.refiner_splits.output.stats,
        audit=rules.refiner_leakage_audit.output,
        sft=[f"{REF_SFT_DATA}/{s}.json" for s in REF_SFT_SPLITS],
        llm_summary=[f"{REFINER_DIR}/writer/llm_summary.json"] if REF_USES_WRITER else [],
    output:
        md=report(f"{REFINER_DIR}/README.md", caption="report/refiner_card.rst", category="Refiner",
                  subcategory="data"),
        json=f"{REFINER_DIR}/card.json",
    params:
        sft=lambda w, input: " ".join(f"--sft-meta {s}={p}" for s, p in zip(REF_SFT_SPLITS, input.sft)),
        llm=lambda w, input: " ".join(f"--llm-summary {p}" for p in input.llm_summary),
    log:
        f"{LOGS}/refiner_card.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/data.yaml"
    shell:
        "python -m workflow_scripts.datasets.refiner_card --task-counts {input.counts} --split-stats {input.stats}"
        " --audit {input.audit} {params.sft} {params.llm} --out-md {output.md} --out-json {output.json}"
        " > {log} 2>&1"


if REF_USES_WRITER:

    rule refiner_llm_calls:
        input:
            f"{REFINER_DIR}/writer/llm_summary.json",
        output:
            report(f"{REFINER_DIR}/llm_calls.md", caption="report/llm_summary.rst", category="Refiner",
                   subcategory="data"),
        log:
            f"{LOGS}/refiner_llm_calls.log",
        threads: 1
        resources:
            mem_mb=1000,
            runtime=5,
        conda:
            "../envs/data.yaml"
        shell:
            "python -m workflow_scripts.llm.summary --out {output} {input} > {log} 2>&1"


# Every data artifact of the line, named as targets
REFINER_DATA = [*rules.refiner_card.output, *(f"{REF_SFT_DATA}/{s}.parquet" for s in REF_SFT_SPLITS),
                *(f"{REF_SPLITS_DIR}/{s}.parquet" for s in REF_SPLIT_NAMES),
                *([f"{REFINER_DIR}/llm_calls.md"] if REF_USES_WRITER else [])]
