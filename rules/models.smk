# Base models. Production configs name a hub id or a local directory; "tiny" builds a Qwen3-architecture model from
# scratch (random init, BPE tokenizer trained on the harvested titles and abstracts) so the demo and the tests run
# the same from_pretrained code path as production. A hub id is downloaded once, on the submitting host (compute
# nodes often have no internet), into the shared HF_HOME; the jobs that use it run offline (HUB_OFFLINE).

localrules:
    hub_model_download,


rule hub_model_download:
    output:
        f"{HUB_MARKERS}/{{hub_model}}.json",
    params:
        repo=lambda w: hub_model.repo_of(w.hub_model),
        revision=hub_model.DEFAULT_REVISION,
    log:
        f"{LOGS}/hub_model_download/{{hub_model}}.log",
    benchmark:
        f"{BENCH}/hub_model_download/{{hub_model}}.tsv"
    wildcard_constraints:
        hub_model=r"[A-Za-z0-9][A-Za-z0-9_.-]*--[A-Za-z0-9][A-Za-z0-9_.-]*",
    threads: 4
    resources:
        mem_mb=4000,
        runtime=6 * 60,
    conda:
        "../envs/train.yaml"
    shell:
        # the one job that reaches the hub, whatever the environment says
        "HF_HUB_OFFLINE=0 python -m workflow_scripts.train.hub_model download --repo {params.repo}"
        " --revision {params.revision} --out {output} > {log} 2>&1"


rule tiny_base_model:
    input:
        corpus=PAPERS,
    output:
        directory(TINY_MODEL),
    params:
        sizes=" ".join(f"--{k.replace('_', '-')} {v}" for k, v in sorted(config["models"]["tiny"].items())),
        seed=config["seed"],
    log:
        f"{LOGS}/tiny_base_model.log",
    benchmark:
        f"{BENCH}/tiny_base_model.tsv"
    priority: FEEDS_TRAINING
    # building a tiny model is mostly imports and a tokenizer fit: one core, so another job runs beside it
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../envs/train.yaml"
    shell:
        "python -m workflow_scripts.train.tiny_model build --corpus {input.corpus} --text-columns title,abstract"
        " --out-dir {output} {params.sizes} --seed {params.seed} > {log} 2>&1"
