# Reviewer-line sources: PeerRead and OpenReview (ICLR 2019-2021) -> results/reviews/{papers,reviews}.parquet.
# Harvest rules track a small `.done.json` (never the download directory, which Snakemake would delete when a job
# fails, losing what a rerun resumes from); snapshot mode reads a directory in the source's own layout.

from workflow_scripts.sources.reviews import config_checks as review_checks

REV = config["reviewer"]
REV_INTERIM = f"{RESULTS}/interim/reviews"
REVIEWS_DIR = f"{RESULTS}/reviews"
REVIEW_TABLES = [f"{REVIEWS_DIR}/papers.parquet", f"{REVIEWS_DIR}/reviews.parquet", f"{REVIEWS_DIR}/README.md"]
# passed to params through functions: their braces ("\\d{4}", "Paper{number}") are not wildcards
DROP_LINES = arg(REV["pdf_text"]["drop_lines"])
OPENREVIEW_VENUES = arg(REV["openreview"]["venues"])

localrules:
    peerread_fetch,
    openreview_fetch,


if config["demo"]["enabled"]:

    rule demo_reviews:
        output:
            peerread=directory(f"{DEMO}/peerread"),
            openreview=directory(f"{DEMO}/openreview"),
            truth=f"{DEMO}/reviews_truth.parquet",
        params:
            out_dir=lambda w, output: os.path.dirname(output.truth),
            seed=config["seed"],
            sizes=arg(REV["demo"]),
        log:
            f"{LOGS}/demo_reviews.log",
        benchmark:
            f"{BENCH}/demo_reviews.tsv"
        threads: 1
        resources:
            mem_mb=2000,
            runtime=10,
        conda:
            "../envs/data.yaml"
        shell:
            "python -m workflow_scripts.demo.reviews --out-dir {params.out_dir} --seed {params.seed}"
            " --sizes {params.sizes} > {log} 2>&1"


# checked while the rules are read, once the demo's producer is known (see check_snapshots in common.smk)
_review_problems = review_checks.problems(config, lambda path: produced_here(os.path.normpath(path)))
if _review_problems:
    raise ConfigError("invalid config:\n  " + "\n  ".join(_review_problems))
SNAPSHOTS.update(review_checks.snapshot_keys(config))
# what each source's parser reads: its snapshot (see snapshot_input in common.smk) or the harvest's `.done.json`
REV_SOURCE_INPUT = {
    s: snapshot_input(f"reviewer.{s}.snapshot_dir") if REV[s]["mode"] == "snapshot" else f"{RAW}/{s}.done.json"
    for s in ("peerread", "openreview")
}
# the per-source outputs the merge reads, of the configured sources only
REV_STEP_OUTPUTS = {
    kind: [f"{REV_INTERIM}/{s}.{kind}" for s in REV["sources"]]
    for kind in ("papers.parquet", "reviews.parquet", "summary.json")
}


rule peerread_fetch:
    output:
        done=f"{RAW}/peerread.done.json",
    params:
        files=lambda w, output: harvested(output.done),
        repo=REV["peerread"]["repo"],
        ref=REV["peerread"]["ref"],
        venues=" ".join(REV["peerread"]["venues"]),
        splits=" ".join(REV["peerread"]["splits"]),
        urls=f"--api-url {REV['peerread']['api_url']} --raw-url {REV['peerread']['raw_url']}",
        http=http_args(REV["peerread"]["http"]),
    log:
        f"{LOGS}/peerread_fetch.log",
    benchmark:
        f"{BENCH}/peerread_fetch.tsv"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=120,
    conda:
        "../envs/data.yaml"
    shell:
        "python -m workflow_scripts.sources.reviews.peerread harvest --out-dir {params.files} --repo {params.repo}"
        " --ref {params.ref} --venues {params.venues} --splits {params.splits} {params.urls} {params.http}"
        " --done {output.done} > {log} 2>&1"


rule peerread_parse:
    input:
        REV_SOURCE_INPUT["peerread"],
    output:
        papers=f"{REV_INTERIM}/peerread.papers.parquet",
        reviews=f"{REV_INTERIM}/peerread.reviews.parquet",
        rejects=f"{REV_INTERIM}/peerread.rejects.jsonl",
        summary=f"{REV_INTERIM}/peerread.summary.json",
    params:
        snapshot=lambda w, input: harvested(input[0]),
        venues=" ".join(REV["peerread"]["venues"]),
        splits=" ".join(REV["peerread"]["splits"]),
        drop_lines=lambda w: DROP_LINES,
        bad_input=BAD_INPUT_ARGS,  # rules/arxiv.smk: the policy of every reader
    log:
        f"{LOGS}/peerread_parse.log",
    benchmark:
        f"{BENCH}/peerread_parse.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../envs/data.yaml"
    shell:
        "python -m workflow_scripts.sources.reviews.peerread parse --snapshot {params.snapshot} --venues {params.venues}"
        " --splits {params.splits} --drop-lines {params.drop_lines} --out-papers {output.papers}"
        " --out-reviews {output.reviews} --rejects {output.rejects} --summary {output.summary} {params.bad_input}"
        " > {log} 2>&1"


rule openreview_fetch:
    output:
        done=f"{RAW}/openreview.done.json",
    params:
        out_dir=lambda w, output: harvested(output.done),
        base_url=REV["openreview"]["base_url"],
        venues=lambda w: OPENREVIEW_VENUES,
        page_size=REV["openreview"]["page_size"],
        # only the names of the variables holding the credentials: secrets never enter params, logs or outputs
        auth=f"--username-env {REV['openreview']['username_env']} --password-env {REV['openreview']['password_env']}",
        pdfs=opt("--max-pdfs-per-venue", REV["openreview"]["max_pdfs_per_venue"]),
        seed=config["seed"],
        max_wait=REV["openreview"]["max_wait_s"],
        http=http_args(REV["openreview"]["http"]),
    log:
        f"{LOGS}/openreview_fetch.log",
    benchmark:
        f"{BENCH}/openreview_fetch.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=7 * 24 * 60,
    conda:
        "../envs/data.yaml"
    shell:
        "python -m workflow_scripts.sources.reviews.openreview harvest --out-dir {params.out_dir}"
        " --base-url {params.base_url} --venues {params.venues} --page-size {params.page_size} {params.auth}"
        " {params.pdfs} --seed {params.seed} --max-wait-s {params.max_wait} {params.http} --done {output.done}"
        " > {log} 2>&1"


rule openreview_pdf_text:
    input:
        REV_SOURCE_INPUT["openreview"],
    output:
        text=f"{REV_INTERIM}/openreview.pdf_text.parquet",
        rejects=f"{REV_INTERIM}/openreview.pdf_text.rejects.jsonl",
        summary=f"{REV_INTERIM}/openreview.pdf_text.summary.json",
    params:
        pdfs=lambda w, input: os.path.join(harvested(input[0]), "pdfs"),
        drop_lines=lambda w: DROP_LINES,
        min_chars=REV["pdf_text"]["min_chars"],
        bad_input=BAD_INPUT_ARGS,  # rules/arxiv.smk: the policy of every reader
    log:
        f"{LOGS}/openreview_pdf_text.log",
    benchmark:
        f"{BENCH}/openreview_pdf_text.tsv"
    priority: FEEDS_TRAINING
    threads: REV["pdf_text"]["workers"]
    resources:
        mem_mb=8000,
        runtime=240,
    conda:
        "../envs/data.yaml"
    shell:
        "python -m workflow_scripts.sources.reviews.pdf_text --pdfs {params.pdfs} --out {output.text}"
        " --rejects {output.rejects} --summary {output.summary} --drop-lines {params.drop_lines}"
        " --min-chars {params.min_chars} --workers {threads} {params.bad_input} > {log} 2>&1"


rule openreview_parse:
    input:
        notes=REV_SOURCE_INPUT["openreview"],
        text=rules.openreview_pdf_text.output.text,
    output:
        papers=f"{REV_INTERIM}/openreview.papers.parquet",
        reviews=f"{REV_INTERIM}/openreview.reviews.parquet",
        rejects=f"{REV_INTERIM}/openreview.rejects.jsonl",
        summary=f"{REV_INTERIM}/openreview.summary.json",
    params:
        snapshot=lambda w, input: harvested(input.notes),
        venues=lambda w: OPENREVIEW_VENUES,
        bad_input=BAD_INPUT_ARGS,  # rules/arxiv.smk: the policy of every reader
    log:
        f"{LOGS}/openreview_parse.log",
    benchmark:
        f"{BENCH}/openreview_parse.tsv"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=60,
    conda:
        "../envs/data.yaml"
    shell:
        "python -m workflow_scripts.sources.reviews.openreview parse --snapshot {params.snapshot}"
        " --venues {params.venues} --pdf-text {input.text} --out-papers {output.papers}"
        " --out-reviews {output.reviews} --rejects {output.rejects} --summary {output.summary} {params.bad_input}"
        " > {log} 2>&1"


rule reviews_tables:
    input:
        papers=REV_STEP_OUTPUTS["papers.parquet"],
        reviews=REV_STEP_OUTPUTS["reviews.parquet"],
        summaries=REV_STEP_OUTPUTS["summary.json"]
        + ([rules.openreview_pdf_text.output.summary] if "openreview" in REV["sources"] else []),
    output:
        papers=REVIEW_TABLES[0],
        reviews=REVIEW_TABLES[1],
        card=report(REVIEW_TABLES[2], caption="report/reviews_tables.rst", category="Reviewer"),
    log:
        f"{LOGS}/reviews_tables.log",
    benchmark:
        f"{BENCH}/reviews_tables.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../envs/data.yaml"
    shell:
        "python -m workflow_scripts.sources.reviews.merge --papers {input.papers} --reviews {input.reviews}"
        " --summaries {input.summaries} --out-papers {output.papers} --out-reviews {output.reviews}"
        " --card {output.card} > {log} 2>&1"
