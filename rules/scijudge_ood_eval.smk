# SciJudge on the extra out-of-distribution test sets (scijudge.eval.ood_sets, the paper's Table 4): the ICLR metric
# OOD set (which of two submissions reviewers rated higher, asked as "more likely to be accepted") and the bioRxiv
# biology set (citations, another field). Every model of the main evaluation answers both A/B orders of each pair in
# its own scijudge_eval_model job (SJ_OOD_SETS, scijudge_model.smk), as does the TF-IDF baseline trained on the train
# pairs; each set gets its own metrics table.

rule scijudge_ood_baseline:
    input:
        model=rules.scijudge_baseline.output.model,
        pairs=lambda w: SJ_OOD_SETS[w.oodset]["pairs"],
    output:
        f"{SJ_OOD_EVAL_DIR}/{{oodset}}/predictions/baseline.parquet",
    params:
        max_pairs=opt("--max-pairs", SJ_EVAL["generation"]["max_pairs"]),
    log:
        f"{LOGS}/scijudge_ood_baseline/{{oodset}}.log",
    benchmark:
        f"{BENCH}/scijudge_ood_baseline/{{oodset}}.tsv"
    wildcard_constraints:
        oodset="|".join(SJ_OOD_SETS),
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../envs/eval.yaml"
    shell:
        "python -m workflow_scripts.eval.baseline predict --model {input.model} --pairs {input.pairs}"
        " --out {output} {params.max_pairs} > {log} 2>&1"


use rule scijudge_metrics as scijudge_ood_metrics with:
    input:
        # the first model is the reference of the paired differences, as in the main table
        predictions=lambda w: sj_ood_predictions(w.oodset),
    output:
        json=f"{SJ_OOD_EVAL_DIR}/{{oodset}}/metrics.json",
        md=report(f"{SJ_OOD_EVAL_DIR}/{{oodset}}/metrics.md", caption="report/scijudge_ood_table.rst",
                  category="SciJudge", subcategory="OOD test sets"),
        png=report(f"{SJ_OOD_EVAL_DIR}/{{oodset}}/accuracy.png", caption="report/scijudge_ood_table.rst",
                   category="SciJudge", subcategory="OOD test sets"),
    params:
        fields=lambda w: SJ_OOD_SETS[w.oodset]["field"],
    log:
        f"{LOGS}/scijudge_ood_metrics/{{oodset}}.log",
    benchmark:
        f"{BENCH}/scijudge_ood_metrics/{{oodset}}.tsv"
    wildcard_constraints:
        oodset="|".join(SJ_OOD_SETS),


SJ_OOD_EVALUATION = [
    path
    for s in SJ_OOD_EVALUATED
    for path in [*sj_ood_predictions(s), *expand(rules.scijudge_ood_metrics.output, oodset=s)]
]
