# scitaste: the open scholarly record -> corpora for scientific judgment -> trained and evaluated models.
# Architecture and conventions: README.md. Every rule calls a workflow_scripts module; all logic lives there.

from snakemake.utils import min_version

min_version("9.20")


# The embedded offline demo is the default; `--configfile config.production.yaml` replaces it rather than being
# merged over it, so no demo setting leaks into a production run.
if not workflow.overwrite_configfiles:

    configfile: "config.yaml"


include: "rules/common.smk"
include: "rules/demo.smk"
include: "rules/arxiv.smk"
include: "rules/citations.smk"
include: "rules/quality.smk"
include: "rules/reviews.smk"
include: "rules/scijudge.smk"
include: "rules/scijudge_biorxiv.smk"
include: "rules/scijudge_iclr.smk"
include: "rules/models.smk"
include: "rules/scijudge_model.smk"
include: "rules/scijudge_ood_eval.smk"
include: "rules/reviewer.smk"
include: "rules/biomed.smk"
include: "rules/bioreview.smk"
include: "rules/refiner.smk"
include: "rules/refiner_model.smk"


onerror:
    # a job the cluster refused (sbatch error) never wrote its log: put the reason there
    from workflow_scripts.common.submit_errors import copy_submit_errors

    copy_submit_errors(log)


rule all:
    default_target: True
    input:
        PAPERS,
        CITATIONS,
        PAIRS.values(),
        PAIRS_AUDIT,
        SJ_TRAINING,
        SJ_EVALUATION,
        SJ_OOD_EVALUATION,
        DATA_QUALITY,
        REVIEW_TABLES,
        REVIEWER_DATA,
        REVIEWER_TRAINING,
        REVIEWER_EVALUATION,
        BIOREVIEW_DATA,
        BIOREVIEW_TRAINING,
        BIOREVIEW_EVALUATION,
        REFINER_DATA,
        REFINER_TRAINING,
        REFINER_EVALUATION,


# Named targets, one per artifact: `snakemake papers`, `snakemake pairs`, ...
rule papers:
    input:
        PAPERS,


rule citations:
    input:
        CITATIONS,


rule pairs:
    input:
        PAIRS.values(),
        PAIRS_CARD,


rule audit:
    input:
        PAIRS_AUDIT,


rule scijudge_model:
    input:
        SJ_TRAINING,


rule scijudge_eval:
    input:
        SJ_TRAINING,
        SJ_EVALUATION,


rule scijudge_eval_ood:
    input:
        SJ_OOD_EVALUATION,


rule reviews:
    input:
        REVIEW_TABLES,


rule reviewer_data:
    input:
        REVIEWER_DATA,


rule reviewer_model:
    input:
        REVIEWER_TRAINING,


rule reviewer_eval:
    input:
        REVIEWER_TRAINING,
        REVIEWER_EVALUATION,


# the BioReview line, whole: sources, concerns, corpus, splits (audited), SFT data, QLoRA model, metrics, card
rule bioreview:
    input:
        BIOREVIEW_DATA,
        BIOREVIEW_TRAINING,
        BIOREVIEW_EVALUATION,


# the Refiner line, whole: tasks, splits (audited), SFT data and card, SFT and GRPO models, per-checkpoint metrics
rule refiner:
    input:
        REFINER_DATA,
        REFINER_TRAINING,
        REFINER_EVALUATION,
