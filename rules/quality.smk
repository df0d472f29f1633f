# The data-quality table of the report: what each source step read, rejected, lost to bad files and deduplicated.

DATA_QUALITY = f"{RESULTS}/arxiv/data_quality.md"


rule data_quality:
    input:
        # each reader rule writes its summary next to its table (rules/arxiv.smk)
        readers=[f"{INTERIM}/{r}.summary.json" for r in ARXIV["readers"]],
        merge=rules.arxiv_papers.output.summary,
        citations=rules.citations_table.output.report,
    output:
        report(DATA_QUALITY, caption="report/data_quality.rst", category="Data"),
    log:
        f"{LOGS}/data_quality.log",
    benchmark:
        f"{BENCH}/data_quality.tsv"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../envs/data.yaml"
    shell:
        "python -m workflow_scripts.sources.quality_table --readers {input.readers} --merge {input.merge}"
        " --citations {input.citations} --out {output} > {log} 2>&1"
