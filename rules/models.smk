# Base models. Production configs name a hub id or a local directory; "tiny" builds a Qwen3-architecture model from
# scratch (random init, BPE tokenizer trained on the harvested titles and abstracts) so the demo and the tests run
# the same from_pretrained code path as production.

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
    threads: 2
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../envs/train.yaml"
    shell:
        "python -m workflow_scripts.train.tiny_model build --corpus {input.corpus} --text-columns title,abstract"
        " --out-dir {output} {params.sizes} --seed {params.seed} > {log} 2>&1"
