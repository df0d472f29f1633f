# SciJudge's metric-OOD test: ICLR submissions paired by their review ratings (config scijudge.ood.iclr). OpenReview
# notes of the years the Reviewer line does not fetch (harvested, API v1 and v2, or a snapshot) plus the Reviewer
# line's OpenReview notes -> review scores per submission -> results/scijudge/ood/iclr/ pairs.parquet, card.md,
# stats.json.
# `snakemake scijudge_iclr_pairs` builds it; it is not a target of `all` yet.

from workflow_scripts.datasets import iclr_pairs
from workflow_scripts.sources.reviews import iclr_venues

SJ_ICLR = SJ["ood"]["iclr"]
SJ_ICLR_DIR = f"{RESULTS}/scijudge/ood/iclr"
SJ_ICLR_PAIRS = f"{SJ_ICLR_DIR}/pairs.parquet"
SJ_ICLR_INTERIM = f"{RESULTS}/interim/scijudge_iclr"
SJ_ICLR_VENUES = iclr_venues.own_venues(config)  # harvested here, or read from this block's snapshot
SJ_ICLR_REVIEWER_VENUES = iclr_venues.reviewer_venues(config)  # read from the Reviewer line's OpenReview notes

localrules:
    scijudge_iclr_fetch,


if config["demo"]["enabled"]:

    rule demo_iclr_reviews:
        output:
            notes=directory(f"{DEMO}/{iclr_venues.DEMO_SUBDIR}"),
            truth=f"{DEMO}/iclr_truth.parquet",
        params:
            out_dir=lambda w, output: os.path.dirname(output.truth),
            seed=config["seed"],
            # functions: the braces of "Paper{number}" are not wildcards
            venues=lambda w: arg(SJ_ICLR["venues"]),
            sizes=lambda w: arg(SJ_ICLR["demo"]),
        log:
            f"{LOGS}/demo_iclr_reviews.log",
        benchmark:
            f"{BENCH}/demo_iclr_reviews.tsv"
        threads: 1
        resources:
            mem_mb=2000,
            runtime=10,
        conda:
            "../envs/data.yaml"
        shell:
            "python -m workflow_scripts.demo.iclr_reviews --out-dir {params.out_dir} --seed {params.seed}"
            " --venues {params.venues} --sizes {params.sizes} > {log} 2>&1"


# checked while the rules are read, once the demo's producer is known (see check_snapshots in common.smk)
try:
    SJ_ICLR_PROMPT = iclr_pairs.iclr_prompt(SJ)  # the prompt settings the evaluation of this set takes
except ValueError as _exc:
    raise ConfigError(f"invalid config:\n  {_exc}")
_iclr_problems = iclr_venues.problems(config, lambda path: produced_here(os.path.normpath(path)))
if _iclr_problems:
    raise ConfigError("invalid config:\n  " + "\n  ".join(_iclr_problems))
SNAPSHOTS.update(iclr_venues.snapshot_keys(config))
# what the scores step reads: this block's snapshot or harvest, and the Reviewer line's OpenReview input (reviews.smk)
SJ_ICLR_INPUTS = {}
if SJ_ICLR_VENUES:
    SJ_ICLR_INPUTS["own"] = (
        snapshot_input("scijudge.ood.iclr.snapshot_dir")
        if SJ_ICLR["mode"] == "snapshot"
        else f"{RAW}/openreview_iclr.done.json"
    )
if SJ_ICLR_REVIEWER_VENUES:
    SJ_ICLR_INPUTS["reviewer"] = REV_SOURCE_INPUT["openreview"]
SJ_ICLR_INPUT_VENUES = {"own": SJ_ICLR_VENUES, "reviewer": SJ_ICLR_REVIEWER_VENUES}


rule scijudge_iclr_fetch:
    output:
        done=f"{RAW}/openreview_iclr.done.json",
    params:
        out_dir=lambda w, output: harvested(output.done),
        urls=f"--base-url {SJ_ICLR['base_url']} --base-url-v2 {SJ_ICLR['base_url_v2']}",
        venues=lambda w: arg(SJ_ICLR_VENUES),
        page_size=SJ_ICLR["page_size"],
        # only the names of the variables holding the credentials: secrets never enter params, logs or outputs
        auth=f"--username-env {SJ_ICLR['username_env']} --password-env {SJ_ICLR['password_env']}",
        max_wait=SJ_ICLR["max_wait_s"],
        http=http_args(SJ_ICLR["http"]),
    log:
        f"{LOGS}/scijudge_iclr_fetch.log",
    benchmark:
        f"{BENCH}/scijudge_iclr_fetch.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=3 * 24 * 60,
    conda:
        "../envs/data.yaml"
    shell:
        "python -m workflow_scripts.sources.reviews.openreview harvest --out-dir {params.out_dir} {params.urls}"
        " --venues {params.venues} --page-size {params.page_size} {params.auth} --notes-only"
        " --max-wait-s {params.max_wait} {params.http} --done {output.done} > {log} 2>&1"


rule scijudge_iclr_scores:
    input:
        # whether every selected year has one venue depends on the Reviewer line's venues too: checked when this set
        # is in the DAG, so that other targets never fail on it
        unpack(lambda w: iclr_venues.checked_inputs(config, SJ_ICLR_INPUTS)),
    output:
        scores=f"{SJ_ICLR_INTERIM}/scores.parquet",
        rejects=f"{SJ_ICLR_INTERIM}/scores.rejects.jsonl",
        summary=f"{SJ_ICLR_INTERIM}/scores.summary.json",
    params:
        # `--input DIR VENUES_JSON` for each source of notes
        inputs=lambda w, input: " ".join(
            f"--input {harvested(input[k])} {arg(SJ_ICLR_INPUT_VENUES[k])}" for k in SJ_ICLR_INPUTS
        ),
        review_fields=lambda w: arg(SJ_ICLR["review_fields"]),
        bad_input=BAD_INPUT_ARGS,  # rules/arxiv.smk: the policy of every reader
    log:
        f"{LOGS}/scijudge_iclr_scores.log",
    benchmark:
        f"{BENCH}/scijudge_iclr_scores.tsv"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=60,
    conda:
        "../envs/data.yaml"
    shell:
        "python -m workflow_scripts.sources.reviews.openreview_scores {params.inputs}"
        " --review-fields {params.review_fields} --out {output.scores} --rejects {output.rejects}"
        " --summary {output.summary} {params.bad_input} > {log} 2>&1"


rule scijudge_iclr_pairs:
    input:
        scores=rules.scijudge_iclr_scores.output.scores,
        summary=rules.scijudge_iclr_scores.output.summary,
    output:
        pairs=SJ_ICLR_PAIRS,
        stats=f"{SJ_ICLR_DIR}/stats.json",
        card=f"{SJ_ICLR_DIR}/card.md",
    params:
        # functions: the {placeholders} of the prompt template are not wildcards
        block=lambda w: arg({k: SJ_ICLR[k] for k in iclr_pairs.BLOCK_KEYS}),
        prompt=lambda w: arg(SJ_ICLR_PROMPT),
        seed=config["seed"],
    log:
        f"{LOGS}/scijudge_iclr_pairs.log",
    benchmark:
        f"{BENCH}/scijudge_iclr_pairs.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=15,
    conda:
        "../envs/data.yaml"
    shell:
        "python -m workflow_scripts.datasets.iclr_pairs --scores {input.scores} --scores-summary {input.summary}"
        " --config-json {params.block} --prompt-json {params.prompt} --seed {params.seed} --out {output.pairs}"
        " --stats {output.stats} --card {output.card} > {log} 2>&1"
