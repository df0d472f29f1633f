# The offline demo corpus: native-format snapshots of synthetic papers that the readers consume in snapshot mode.

if config["demo"]["enabled"]:

    rule demo_snapshots:
        output:
            oai_pmh=directory(f"{DEMO}/oai_pmh"),
            dump=f"{DEMO}/arxiv-metadata-oai-snapshot.json",
            api=directory(f"{DEMO}/arxiv_api"),
            semantic_scholar=directory(f"{DEMO}/semantic_scholar"),
            openalex=directory(f"{DEMO}/openalex"),
            truth=f"{DEMO}/truth.parquet",
        params:
            out_dir=lambda w, output: os.path.dirname(output.truth),
            n_papers=config["demo"]["n_papers"],
            seed=config["seed"],
            start=config["demo"]["start_date"],
            end=config["demo"]["end_date"],
            page_size=config["demo"]["oai_page_size"],
            batch_size=config["demo"]["s2_batch_size"],
            sets=",".join(config["arxiv"]["oai_pmh"]["sets"]),
        log:
            f"{LOGS}/demo_snapshots.log",
        benchmark:
            f"{BENCH}/demo_snapshots.tsv"
        threads: 1
        resources:
            mem_mb=2000,
            runtime=10,
        conda:
            "../envs/data.yaml"
        shell:
            "python -m workflow_scripts.demo.generate --out-dir {params.out_dir} --n-papers {params.n_papers}"
            " --seed {params.seed} --start-date {params.start} --end-date {params.end}"
            " --oai-page-size {params.page_size} --s2-batch-size {params.batch_size} --sets {params.sets} > {log} 2>&1"
