# SciJudge: citation preference pairs (train / in-domain test / temporal-OOD test) and the leakage audit.

rule scijudge_pairs:
    input:
        papers=PAPERS,
        citations=CITATIONS,
    output:
        **PAIRS,
        stats=f"{PAIRS_DIR}/stats.json",
        card=PAIRS_CARD,
    params:
        # a function, so that the {placeholders} of the prompt template are not read as wildcards
        block=lambda w: arg({k: SJ[k] for k in ("today", "system_prompt", "user_template", "pairs")}),
        seed=config["seed"],
    log:
        f"{LOGS}/scijudge_pairs.log",
    benchmark:
        f"{BENCH}/scijudge_pairs.tsv"
    priority: FEEDS_TRAINING
    threads: 2
    resources:
        mem_mb=8000,
        runtime=30,
    conda:
        "../envs/data.yaml"
    shell:
        "POLARS_MAX_THREADS={threads} python -m workflow_scripts.datasets.scijudge_pairs"
        " --papers {input.papers} --citations {input.citations} --config-json {params.block} --seed {params.seed}"
        " --train {output.train} --test-id {output.test_id} --test-ood {output.test_ood}"
        " --stats {output.stats} --card {output.card} > {log} 2>&1"


rule scijudge_leakage_audit:
    input:
        **PAIRS,
        papers=PAPERS,
    output:
        PAIRS_AUDIT,
    params:
        # the duplicate rules and seed the builder used, so that both judge a pair of papers alike
        dedupe=arg(SJ["pairs"]["dedupe"]),
        seed=config["seed"],
    log:
        f"{LOGS}/scijudge_leakage_audit.log",
    benchmark:
        f"{BENCH}/scijudge_leakage_audit.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=15,
    conda:
        "../envs/data.yaml"
    shell:
        "python -m workflow_scripts.datasets.leakage_audit --split train={input.train} --split test_id={input.test_id}"
        " --split test_ood={input.test_ood} --papers {input.papers} --dedupe-json {params.dedupe} --seed {params.seed}"
        " --out {output} > {log} 2>&1"
