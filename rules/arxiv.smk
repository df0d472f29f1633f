# arXiv metadata three ways (OAI-PMH bulk harvest, the metadata dump, the arxiv-package API) -> papers.parquet.
# Harvest rules track a small `.done.json`, not the page directory: Snakemake deletes the declared outputs of a
# failed job, and pages already downloaded must survive a kill so the rerun resumes.

# downloads run on the submitting host: compute nodes often have no internet, and these jobs mostly wait on rate limits
localrules:
    arxiv_oai_harvest,
    arxiv_api_fetch,


FIELD_ARGS = f"--fields {arg(config['fields'])} --unmapped-field {arg(config['unmapped_field'])}"
# the bad-file policy of every reader step, citations.smk's included
BAD_INPUT_ARGS = f"--max-lost-fraction {config['bad_input']['max_lost_fraction']}" + (
    " --quarantine-bad-files" if config["bad_input"]["quarantine"] else ""
)


rule arxiv_oai_harvest:
    output:
        done=f"{RAW}/oai_pmh/{{oai_set}}.done.json",
    params:
        pages=lambda w, output: harvested(output.done),
        oai_set=lambda w: OAI_SETS[w.oai_set],
        base_url=ARXIV["oai_pmh"]["base_url"],
        prefix=ARXIV["oai_pmh"]["metadata_prefix"],
        window=" ".join(
            filter(None, [opt("--from", ARXIV["oai_pmh"]["from_date"]), opt("--until", ARXIV["oai_pmh"]["until_date"])])
        ),
        http=http_args(ARXIV["oai_pmh"]["http"]),
    log:
        f"{LOGS}/arxiv_oai_harvest/{{oai_set}}.log",
    benchmark:
        f"{BENCH}/arxiv_oai_harvest/{{oai_set}}.tsv"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=24 * 60,
        # one polite connection to arXiv at a time, whatever --cores says (see the profiles)
        oai_pmh_connection=1,
    conda:
        "../envs/data.yaml"
    shell:
        "python -m workflow_scripts.sources.oai_pmh harvest --base-url {params.base_url} --set {params.oai_set}"
        " --metadata-prefix {params.prefix} --out-dir {params.pages} {params.window} {params.http}"
        " --done {output.done} > {log} 2>&1"


rule arxiv_oai_parse:
    input:
        reader_input("oai_pmh"),
    output:
        papers=reader_output("oai_pmh"),
        rejects=f"{INTERIM}/oai_pmh.rejects.jsonl",
        summary=f"{INTERIM}/oai_pmh.summary.json",
    params:
        pages=lambda w, input: " ".join(map(harvested, input)),
        fields=FIELD_ARGS,
        # snapshot pages may hold more than the configured sets: records outside them are excluded and counted
        sets=" ".join(ARXIV["oai_pmh"]["sets"]),
        bad_input=BAD_INPUT_ARGS,
    log:
        f"{LOGS}/arxiv_oai_parse.log",
    benchmark:
        f"{BENCH}/arxiv_oai_parse.tsv"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=120,
    conda:
        "../envs/data.yaml"
    shell:
        "python -m workflow_scripts.sources.oai_pmh parse --pages {params.pages} --out {output.papers}"
        " --rejects {output.rejects} --summary {output.summary} {params.fields} --sets {params.sets}"
        " {params.bad_input} > {log} 2>&1"


if ARXIV["dump"]["mode"] == "download":

    localrules:
        arxiv_dump_download,

    rule arxiv_dump_download:
        output:
            ARXIV["dump"]["path"],
        params:
            url=ARXIV["dump"]["download_url"],
            member=opt("--zip-member", ARXIV["dump"]["zip_member"]),
            # names of the variables holding the credentials, never their values
            auth=f"--user-env {ARXIV['dump']['user_env']} --key-env {ARXIV['dump']['key_env']}",
            http=http_args(ARXIV["dump"]["http"]),
        log:
            f"{LOGS}/arxiv_dump_download.log",
        benchmark:
            f"{BENCH}/arxiv_dump_download.tsv"
        threads: 1
        resources:
            mem_mb=2000,
            runtime=4 * 60,
        conda:
            "../envs/data.yaml"
        shell:
            "python -m workflow_scripts.sources.fetch_file --url {params.url} --out {output} {params.member}"
            " {params.auth} {params.http} > {log} 2>&1"


rule arxiv_dump_import:
    input:
        dump=dump_input(),
    output:
        papers=reader_output("dump"),
        rejects=f"{INTERIM}/dump.rejects.jsonl",
        summary=f"{INTERIM}/dump.summary.json",
    params:
        dump=lambda w, input: harvested(input.dump),
        fields=FIELD_ARGS,
        bad_input=BAD_INPUT_ARGS,
    log:
        f"{LOGS}/arxiv_dump_import.log",
    benchmark:
        f"{BENCH}/arxiv_dump_import.tsv"
    priority: FEEDS_TRAINING
    threads: 2
    resources:
        mem_mb=16000,
        runtime=120,
        # speed and memory only, the same table: a resource, since a changed param would rerun everything downstream
        chunk_lines=ARXIV["dump"]["chunk_lines"],
    conda:
        "../envs/data.yaml"
    shell:
        "python -m workflow_scripts.sources.arxiv_dump --dump {params.dump} --out {output.papers}"
        " --rejects {output.rejects} --summary {output.summary} --chunk-lines {resources.chunk_lines}"
        " --workers {threads} {params.fields} {params.bad_input} > {log} 2>&1"


rule arxiv_api_fetch:
    output:
        done=f"{RAW}/arxiv_api.done.json",
    params:
        feeds=lambda w, output: harvested(output.done),
        queries=arg(ARXIV["api"]["queries"]),
        base_url=ARXIV["api"]["base_url"],
        page_size=ARXIV["api"]["page_size"],
        delay=ARXIV["api"]["delay_s"],
        retries=ARXIV["api"]["num_retries"],
    log:
        f"{LOGS}/arxiv_api_fetch.log",
    benchmark:
        f"{BENCH}/arxiv_api_fetch.tsv"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=6 * 60,
        oai_pmh_connection=1,
    conda:
        "../envs/data.yaml"
    shell:
        "python -m workflow_scripts.sources.arxiv_api fetch --out-dir {params.feeds} --query-json {params.queries}"
        " --base-url {params.base_url} --page-size {params.page_size} --delay-s {params.delay}"
        " --num-retries {params.retries} --done {output.done} > {log} 2>&1"


rule arxiv_api_parse:
    input:
        reader_input("api"),
    output:
        papers=reader_output("api"),
        rejects=f"{INTERIM}/api.rejects.jsonl",
        summary=f"{INTERIM}/api.summary.json",
    params:
        feeds=lambda w, input: " ".join(map(harvested, input)),
        fields=FIELD_ARGS,
        bad_input=BAD_INPUT_ARGS,
    log:
        f"{LOGS}/arxiv_api_parse.log",
    benchmark:
        f"{BENCH}/arxiv_api_parse.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    conda:
        "../envs/data.yaml"
    shell:
        "python -m workflow_scripts.sources.arxiv_api parse --feeds {params.feeds} --out {output.papers}"
        " --rejects {output.rejects} --summary {output.summary} {params.fields} {params.bad_input} > {log} 2>&1"


rule arxiv_papers:
    input:
        [reader_output(r) for r in ARXIV["readers"]],
    output:
        papers=PAPERS,
        summary=f"{RESULTS}/arxiv/papers.summary.json",
    log:
        f"{LOGS}/arxiv_papers.log",
    benchmark:
        f"{BENCH}/arxiv_papers.tsv"
    priority: FEEDS_TRAINING
    threads: 2
    resources:
        mem_mb=16000,
        runtime=60,
    conda:
        "../envs/data.yaml"
    shell:
        "python -m workflow_scripts.sources.arxiv_papers --inputs {input} --out {output.papers}"
        " --summary {output.summary} > {log} 2>&1"
