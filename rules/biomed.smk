# BioReview sources: eLife, PLOS, F1000Research (+ Wellcome, Gates Open Research), PeerJ and Nature, each parsed from
# its native files into results/biomed/<source>.{articles,reports,responses}.parquet (tables.py). Per source,
# `mode: harvest` runs its resumable harvester into results/raw/biomed/<source>/ (tracked by a small `.done.json`,
# never the directory, which Snakemake would delete when a job fails) and `mode: snapshot` reads a directory of the
# source's files in any layout its parser reads (a harvest's out dir, the demo's).

from workflow_scripts.sources.biomed import config_checks as biomed_checks

BIO = config["bioreview"]
BIOMED_DIR = f"{RESULTS}/biomed"
BIOMED_RAW = f"{RAW}/biomed"
BIOMED_DEMO = f"{DEMO}/biomed"
BIOMED_SOURCES = BIO["sources"]
# the parse options that name a source's directories: Nature's review PDFs and full texts lie under one directory
BIOMED_DIR_FLAGS = {"elife": ["--xml"], "plos": ["--xml"], "f1000": ["--xml"], "peerj": ["--html"],
                    "nature": ["--peer-review-files", "--full-texts"]}
# the bad-input policy of every reader (rules/arxiv.smk), with the line's own loss bound where one is set
BIOMED_BAD_INPUT = BAD_INPUT_ARGS if BIO["max_lost_fraction"] is None else (
    f"--max-lost-fraction {BIO['max_lost_fraction']}" + (" --quarantine-bad-files" if config["bad_input"]["quarantine"]
                                                         else ""))
BIOMED_TABLES = {kind: [f"{BIOMED_DIR}/{s}.{kind}.parquet" for s in BIOMED_SOURCES] for kind in ("articles", "reports")}

localrules:
    biomed_harvest,


if config["demo"]["enabled"]:

    rule demo_biomed:
        output:
            **{s: directory(f"{BIOMED_DEMO}/{s}") for s in BIOMED_DIR_FLAGS},
            pairs=f"{BIOMED_DEMO}/paraphrase_pairs.parquet",
        params:
            out_dir=lambda w, output: os.path.dirname(output.pairs),
            n=BIO["demo"]["n_articles"],
            seed=config["seed"],
        log:
            f"{LOGS}/demo_biomed.log",
        benchmark:
            f"{BENCH}/demo_biomed.tsv"
        threads: 1
        resources:
            mem_mb=2000,
            runtime=10,
        conda:
            "../envs/data.yaml"
        shell:
            "python -m workflow_scripts.demo.biomed --out-dir {params.out_dir} --n-articles {params.n}"
            " --seed {params.seed} > {log} 2>&1"


# checked while the rules are read, once the demo's producer is known (see check_snapshots in common.smk)
_biomed_problems = biomed_checks.problems(config, produced_here)
if _biomed_problems:
    raise ConfigError("invalid config:\n  " + "\n  ".join(_biomed_problems))
SNAPSHOTS.update(biomed_checks.snapshot_keys(config))
# what each source's parser reads: its snapshot (see snapshot_input in common.smk) or the harvest's `.done.json`
BIOMED_INPUT = {s: snapshot_input(f"bioreview.{s}.snapshot_dir") if BIO[s]["mode"] == "snapshot"
                else f"{BIOMED_RAW}/{s}.done.json" for s in BIOMED_SOURCES}


rule biomed_harvest:
    output:
        done=f"{BIOMED_RAW}/{{source}}.done.json",
    params:
        out_dir=lambda w, output: harvested(output.done),
        options=lambda w: biomed_checks.harvest_flags(BIO[w.source]["harvest"]),
    log:
        f"{LOGS}/biomed_harvest/{{source}}.log",
    benchmark:
        f"{BENCH}/biomed_harvest/{{source}}.tsv"
    wildcard_constraints:
        source="|".join(BIOMED_DIR_FLAGS),
    threads: 1
    resources:
        mem_mb=2000,
        runtime=7 * 24 * 60,
    conda:
        "../envs/data.yaml"
    shell:
        "python -m workflow_scripts.sources.biomed.{wildcards.source} harvest --out-dir {params.out_dir}"
        " {params.options} --done {output.done} > {log} 2>&1"


rule biomed_parse:
    input:
        lambda w: BIOMED_INPUT[w.source],
    output:
        articles=f"{BIOMED_DIR}/{{source}}.articles.parquet",
        reports=f"{BIOMED_DIR}/{{source}}.reports.parquet",
        responses=f"{BIOMED_DIR}/{{source}}.responses.parquet",
        rejects=f"{BIOMED_DIR}/{{source}}.rejects.jsonl",
        summary=f"{BIOMED_DIR}/{{source}}.summary.json",
    params:
        dirs=lambda w, input: " ".join(f"{flag} {harvested(input[0])}" for flag in BIOMED_DIR_FLAGS[w.source]),
        extra="",
        bad_input=BIOMED_BAD_INPUT,
    log:
        f"{LOGS}/biomed_parse/{{source}}.log",
    benchmark:
        f"{BENCH}/biomed_parse/{{source}}.tsv"
    wildcard_constraints:
        source="|".join(s for s in BIOMED_DIR_FLAGS if s != "elife"),
    threads: 1
    resources:
        mem_mb=8000,
        runtime=60,
    conda:
        "../envs/data.yaml"
    shell:
        "python -m workflow_scripts.sources.biomed.{wildcards.source} parse {params.dirs} --articles {output.articles}"
        " --reports {output.reports} --responses {output.responses} {params.extra} --rejects {output.rejects}"
        " --summary {output.summary} {params.bad_input} > {log} 2>&1"


# eLife's parser also writes the editors' assessments, a table of its own
use rule biomed_parse as elife_parse with:
    output:
        articles=f"{BIOMED_DIR}/{{source}}.articles.parquet",
        reports=f"{BIOMED_DIR}/{{source}}.reports.parquet",
        responses=f"{BIOMED_DIR}/{{source}}.responses.parquet",
        assessments=f"{BIOMED_DIR}/{{source}}.assessments.parquet",
        rejects=f"{BIOMED_DIR}/{{source}}.rejects.jsonl",
        summary=f"{BIOMED_DIR}/{{source}}.summary.json",
    params:
        dirs=lambda w, input: f"--xml {harvested(input[0])}",
        extra=lambda w, output: f"--assessments {output.assessments}",
        bad_input=BIOMED_BAD_INPUT,
    wildcard_constraints:
        source="elife",
