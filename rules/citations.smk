localrules:
    citations_fetch,


# Citation counts for every paper: Semantic Scholar batch API or OpenAlex (config citations.source).

rule citations_fetch:
    input:
        papers=PAPERS,
    output:
        done=f"{RAW}/citations/{CIT['source']}.done.json",
    params:
        source=CIT["source"],
        responses=lambda w, output: harvested(output.done),
        base_url=CIT[CIT["source"]]["base_url"],
        batch_size=CIT[CIT["source"]]["batch_size"],
        # only the *name* of the variable holding the key: secrets never enter params, logs or outputs
        key_env=CIT[CIT["source"]]["api_key_env"],
        extra=(
            f"--fields {CIT['semantic_scholar']['fields']}"
            if CIT["source"] == "semantic_scholar"
            else f"--mailto-env {CIT['openalex']['mailto_env']}"
        ),
        http=http_args(CIT[CIT["source"]]["http"]),
    log:
        f"{LOGS}/citations_fetch.log",
    benchmark:
        f"{BENCH}/citations_fetch.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=48 * 60,
        citation_api_connection=1,
    conda:
        "../envs/data.yaml"
    shell:
        "python -m workflow_scripts.sources.{params.source} fetch --papers {input.papers} --out-dir {params.responses}"
        " --base-url {params.base_url} --batch-size {params.batch_size} --api-key-env {params.key_env}"
        " {params.extra} {params.http} --done {output.done} > {log} 2>&1"


rule citations_table:
    input:
        papers=PAPERS,
        responses=citation_responses(),
    output:
        citations=CITATIONS,
        report=f"{RESULTS}/arxiv/citations.report.json",
        rejects=f"{RESULTS}/arxiv/citations.rejects.jsonl",
    params:
        source=CIT["source"],
        responses=lambda w, input: harvested(input.responses),
        bad_input=BAD_INPUT_ARGS,
    log:
        f"{LOGS}/citations_table.log",
    benchmark:
        f"{BENCH}/citations_table.tsv"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=60,
    conda:
        "../envs/data.yaml"
    shell:
        "python -m workflow_scripts.sources.citations parse --source {params.source} --responses {params.responses}"
        " --papers {input.papers} --out {output.citations} --report {output.report} --rejects {output.rejects}"
        " {params.bad_input} > {log} 2>&1"
