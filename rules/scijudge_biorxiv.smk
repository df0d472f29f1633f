# SciJudge bioRxiv biology test (field OOD): bioRxiv `details` answers -> papers -> citation counts by DOI -> pairs
# (results/scijudge/ood/biorxiv/). Harvest rules track a small `.done.json`, never the download directory, which
# Snakemake would delete when a job fails, losing what a rerun resumes from.

from workflow_scripts.sources import biorxiv_checks
from workflow_scripts.sources.biorxiv import Window, page_dirs

BX = biorxiv_checks.block(config)
BX_KEY = biorxiv_checks.KEY
BX_RAW = f"{RAW}/biorxiv"
BX_TABLES = f"{RESULTS}/biorxiv"
BX_PAPERS = f"{BX_TABLES}/papers.parquet"
BX_CITATIONS = f"{BX_TABLES}/citations.parquet"
BX_DIR = f"{RESULTS}/scijudge/ood/biorxiv"
BX_PAIRS = f"{BX_DIR}/pairs.parquet"
BX_OUTPUTS = [BX_PAIRS, f"{BX_DIR}/card.md", f"{BX_DIR}/stats.json"]
BX_WINDOWS = [Window(w["from_date"], w["until_date"]) for w in BX["windows"]]
BX_WINDOW_ARGS = " ".join(f"--window {w.from_date}:{w.until_date}" for w in BX_WINDOWS)
BX_CIT = BX["citations"]["source"]
BX_CIT_API = CIT[BX_CIT]  # one place for a citation API's settings: the `citations` block

localrules:
    biorxiv_harvest,
    biorxiv_citations_fetch,


if config["demo"]["enabled"]:

    rule demo_biorxiv:
        output:
            details=directory(f"{DEMO}/biorxiv"),
            semantic_scholar=directory(f"{DEMO}/biorxiv_semantic_scholar"),
        params:
            out_dir=lambda w, output: os.path.dirname(output.details),
            seed=config["seed"],
            n_papers=BX["demo"]["n_papers"],
            windows=BX_WINDOW_ARGS,
        log:
            f"{LOGS}/demo_biorxiv.log",
        benchmark:
            f"{BENCH}/demo_biorxiv.tsv"
        threads: 1
        resources:
            mem_mb=1000,
            runtime=10,
        conda:
            "../envs/data.yaml"
        shell:
            "python -m workflow_scripts.demo.biorxiv --out-dir {params.out_dir} --seed {params.seed}"
            " --n-papers {params.n_papers} {params.windows} > {log} 2>&1"


# checked while the rules are read, once the demo's producer is known (see check_snapshots in common.smk)
_bx_problems = biorxiv_checks.problems(config, lambda path: produced_here(os.path.normpath(path)))
if _bx_problems:
    raise ConfigError("invalid config:\n  " + "\n  ".join(_bx_problems))
SNAPSHOTS.update(biorxiv_checks.snapshot_keys(config))
BX_DETAILS_INPUT = (
    snapshot_input(f"{BX_KEY}.snapshot_dir") if BX["mode"] == "snapshot" else f"{BX_RAW}/details.done.json"
)
BX_RESPONSES_INPUT = (
    snapshot_input(f"{BX_KEY}.citations.snapshot_dir")
    if BX["citations"]["mode"] == "snapshot"
    else f"{BX_RAW}/citations/{BX_CIT}.done.json"
)


rule biorxiv_harvest:
    output:
        done=f"{BX_RAW}/details.done.json",
    params:
        out_dir=lambda w, output: harvested(output.done),
        base_url=BX["base_url"],
        server=BX["server"],
        windows=BX_WINDOW_ARGS,
        http=http_args(BX["http"]),
    log:
        f"{LOGS}/biorxiv_harvest.log",
    benchmark:
        f"{BENCH}/biorxiv_harvest.tsv"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=24 * 60,
    conda:
        "../envs/data.yaml"
    shell:
        "python -m workflow_scripts.sources.biorxiv harvest --base-url {params.base_url} --server {params.server}"
        " {params.windows} --out-dir {params.out_dir} {params.http} --done {output.done} > {log} 2>&1"


rule biorxiv_papers:
    input:
        details=BX_DETAILS_INPUT,
    output:
        papers=BX_PAPERS,
        rejects=f"{BX_TABLES}/papers.rejects.jsonl",
        summary=f"{BX_TABLES}/papers.summary.json",
    params:
        # a snapshot is read whole; a harvest, by the page directories of the configured windows only
        pages=lambda w, input: (
            harvested(input.details)
            if BX["mode"] == "snapshot"
            else " ".join(map(str, page_dirs(harvested(input.details), BX["server"], BX_WINDOWS)))
        ),
        server=BX["server"],
        categories=arg(BX["categories"]),
        bad_input=BAD_INPUT_ARGS,
    log:
        f"{LOGS}/biorxiv_papers.log",
    benchmark:
        f"{BENCH}/biorxiv_papers.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../envs/data.yaml"
    shell:
        "python -m workflow_scripts.sources.biorxiv parse --pages {params.pages} --server {params.server}"
        " --categories {params.categories} --out {output.papers} --rejects {output.rejects}"
        " --summary {output.summary} {params.bad_input} > {log} 2>&1"


rule biorxiv_citations_fetch:
    input:
        papers=BX_PAPERS,
    output:
        done=f"{BX_RAW}/citations/{BX_CIT}.done.json",
    params:
        source=BX_CIT,
        responses=lambda w, output: harvested(output.done),
        base_url=BX_CIT_API["base_url"],
        batch_size=BX_CIT_API["batch_size"],
        # only the *name* of the variable holding the key: secrets never enter params, logs or outputs
        key_env=BX_CIT_API["api_key_env"],
        extra=(
            f"--fields {BX_CIT_API['fields']}"
            if BX_CIT == "semantic_scholar"
            else f"--mailto-env {BX_CIT_API['mailto_env']}"
        ),
        http=http_args(BX_CIT_API["http"]),
    log:
        f"{LOGS}/biorxiv_citations_fetch.log",
    benchmark:
        f"{BENCH}/biorxiv_citations_fetch.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=24 * 60,
        # the same API as the arXiv citation fetch: one connection to it at a time
        citation_api_connection=1,
    conda:
        "../envs/data.yaml"
    shell:
        "python -m workflow_scripts.sources.{params.source} fetch --id-kind doi --papers {input.papers}"
        " --out-dir {params.responses} --base-url {params.base_url} --batch-size {params.batch_size}"
        " --api-key-env {params.key_env} {params.extra} {params.http} --done {output.done} > {log} 2>&1"


rule biorxiv_citations_table:
    input:
        papers=BX_PAPERS,
        responses=BX_RESPONSES_INPUT,
    output:
        citations=BX_CITATIONS,
        report=f"{BX_TABLES}/citations.report.json",
        rejects=f"{BX_TABLES}/citations.rejects.jsonl",
    params:
        source=BX_CIT,
        responses=lambda w, input: harvested(input.responses),
        bad_input=BAD_INPUT_ARGS,
    log:
        f"{LOGS}/biorxiv_citations_table.log",
    benchmark:
        f"{BENCH}/biorxiv_citations_table.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    conda:
        "../envs/data.yaml"
    shell:
        "python -m workflow_scripts.sources.citations parse --source {params.source} --id-kind doi"
        " --responses {params.responses} --papers {input.papers} --out {output.citations}"
        " --report {output.report} --rejects {output.rejects} {params.bad_input} > {log} 2>&1"


rule scijudge_biorxiv_build:
    input:
        papers=BX_PAPERS,
        citations=BX_CITATIONS,
    output:
        pairs=BX_PAIRS,
        card=f"{BX_DIR}/card.md",
        stats=f"{BX_DIR}/stats.json",
    params:
        pairs=arg(BX["pairs"]),
        # a function, so that the {placeholders} of the prompt template are not read as wildcards
        prompt=lambda w: arg({k: SJ[k] for k in ("today", "system_prompt", "user_template")}),
        seed=config["seed"],
    log:
        f"{LOGS}/scijudge_biorxiv_build.log",
    benchmark:
        f"{BENCH}/scijudge_biorxiv_build.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=15,
    conda:
        "../envs/data.yaml"
    shell:
        "python -m workflow_scripts.datasets.biorxiv_pairs --papers {input.papers} --citations {input.citations}"
        " --pairs-json {params.pairs} --prompt-json {params.prompt} --seed {params.seed} --out {output.pairs}"
        " --stats {output.stats} --card {output.card} > {log} 2>&1"


# the named target: `snakemake scijudge_biorxiv_pairs`
rule scijudge_biorxiv_pairs:
    input:
        BX_OUTPUTS,
