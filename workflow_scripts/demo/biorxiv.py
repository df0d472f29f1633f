"""The demo's bioRxiv world: synthetic preprints as api.biorxiv.org ``details`` answers, and Semantic Scholar batch
responses for their DOIs, with citation counts that depend on the text as in the arXiv demo (corpus.py).

    python -m workflow_scripts.demo.biorxiv --out-dir resources/demo --seed 1234 --n-papers 600 \
        --window 2024-01-01:2024-06-30 --window 2024-07-01:2024-12-31

Writes DIR/biorxiv/biorxiv-<from>-<until>-cursor-NNNNNN.json (100 records an answer; named as another tool might,
not as our harvester does: the reader takes any name) and DIR/biorxiv_semantic_scholar/batch-NNNNNN.json with its
manifest.jsonl (DOIs in sorted order, 500 a batch). Each paper's first version is posted inside a window; a third
get later versions (listed where they fall inside a window). Expected citations = base(category) *
months_since_v1^0.5 * exp(hot * n_hot - stale * n_stale), times lognormal noise, drawn gamma-Poisson: the same model
and constants as corpus.py, with bioRxiv categories and their own hot and stale terms. Dirt the readers must count:
revisions of papers first posted before the windows, one record without an abstract, papers Semantic Scholar does
not know (null), and preprints it merged with their journal version (it then names the journal's DOI). Same
arguments, byte-identical files.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path

import numpy as np

from workflow_scripts.common.cli import parser, setup_logging
from workflow_scripts.common.io import write_bytes_atomic
from workflow_scripts.demo import corpus, vocab
from workflow_scripts.demo.corpus import Draws, TextMaker, count_terms
from workflow_scripts.demo.vocab import Subcategory
from workflow_scripts.sources.biorxiv import Window

log = logging.getLogger(__name__)

PAGE_SIZE = 100  # records an answer, as the API serves them
S2_BATCH = 500
FETCHED_AT = dt.datetime(2025, 12, 1, tzinfo=dt.timezone.utc)
OLDER_REVISIONS = 3  # version-2 records of papers first posted before the windows
NOT_FOUND_SHARE = 0.02
MERGED_SHARE = 0.5  # of the preprints with a journal version, those Semantic Scholar reports under the journal's DOI

# bioRxiv subject collections ("field" is the SciJudge field of the test); base citations are higher than arXiv's
# because the test keeps only gaps of >= 24 citations and >= 75 %
CATEGORIES: tuple[Subcategory, ...] = (
    Subcategory(
        "neuroscience", "Biology", 0.28, 7.0, (),
        ("cortical neurons", "hippocampal circuits", "synaptic vesicles", "dopamine signals", "glial cells",
         "motor behaviour", "sleep states", "auditory responses"),
        ("two-photon imaging", "patch-clamp recordings", "optogenetic silencing", "viral tracing",
         "behavioural assays", "electrophysiological recordings"),
        ("memory formation", "sensory processing", "circuit development", "neurodegeneration", "reward learning"),
        ("single-cell transcriptomics of neurons", "closed-loop optogenetics", "whole-brain imaging"),
        ("lesion mapping", "golgi staining", "manual spike sorting"),
    ),
    Subcategory(
        "bioinformatics", "Biology", 0.22, 6.0, (),
        ("sequencing reads", "protein structures", "gene expression matrices", "variant calls", "metagenomes",
         "phylogenies", "regulatory regions", "reference genomes"),
        ("sequence alignment", "hidden Markov models", "graph-based assembly", "k-mer counting",
         "dimensionality reduction", "probabilistic clustering"),
        ("genome annotation", "variant calling", "structure prediction", "expression analysis", "read mapping"),
        ("protein language models", "long-read assembly", "spatial transcriptomics"),
        ("microarray normalization", "sanger trace curation", "expressed sequence tags"),
    ),
    Subcategory(
        "genomics", "Biology", 0.18, 6.5, (),
        ("chromatin accessibility", "enhancer elements", "structural variants", "population cohorts",
         "transposable elements", "methylation patterns", "haplotypes", "gene regulatory networks"),
        ("genome-wide association", "chromatin conformation capture", "CRISPR screens", "fine mapping",
         "massively parallel reporter assays", "linkage analysis"),
        ("trait mapping", "gene regulation", "genome evolution", "variant interpretation", "cell fate decisions"),
        ("base editing", "pangenome graphs", "single-cell multiomics"),
        ("candidate gene studies", "restriction mapping", "cosmid libraries"),
    ),
    Subcategory(
        "cell biology", "Biology", 0.17, 5.5, (),
        ("mitochondrial membranes", "actin filaments", "cell junctions", "endosomal compartments", "centrosomes",
         "nuclear pores", "lipid droplets", "cilia"),
        ("live-cell imaging", "proximity labelling", "super-resolution microscopy", "knockdown experiments",
         "correlative light microscopy", "biochemical fractionation"),
        ("organelle biogenesis", "cell division", "membrane trafficking", "cell migration", "stress responses"),
        ("organoid models", "cryo-electron tomography", "phase separation"),
        ("immortalized line passaging", "bulk lysate blotting", "fixed-cell counting"),
    ),
    Subcategory(
        "microbiology", "Biology", 0.15, 5.0, (),
        ("bacterial biofilms", "phage populations", "gut commensals", "antibiotic tolerance", "quorum signals",
         "fungal pathogens", "secretion systems", "plasmid transfer"),
        ("transposon sequencing", "growth curve analysis", "comparative genomics", "time-lapse microscopy",
         "metabolic profiling", "mutant screens"),
        ("host colonization", "drug resistance", "community assembly", "virulence regulation", "phage defence"),
        ("anti-phage defence systems", "microbiome engineering", "bacterial single-cell sequencing"),
        ("plate counting", "biochemical typing", "serotyping panels"),
    ),
)


def _doi(day: dt.date, number: int) -> str:
    return f"10.1101/{day:%Y.%m.%d}.{number:06d}"


def _authors(d: Draws) -> str:
    names = []
    for _ in range(2 + d.index(6)):
        forename = d.pick(vocab.FORENAMES)
        names.append(f"{d.pick(vocab.KEYNAMES)}, {forename[0]}.")
    return "; ".join(dict.fromkeys(names))


def _when(lo: dt.date, hi: dt.date, d: Draws) -> dt.date:
    return lo + dt.timedelta(days=d.index((hi - lo).days + 1))


def papers(n_papers: int, seed: int, windows: list[Window]) -> list[dict]:
    """Each paper: doi, category (Subcategory), versions (dates), text, hot/stale terms, citation count, journal DOI."""
    r_alloc, r_text, r_cite = np.random.default_rng([seed, 0xB10]).spawn(3)
    alloc, maker = Draws(r_alloc), TextMaker(r_text)
    spans = [(dt.date.fromisoformat(w.from_date), dt.date.fromisoformat(w.until_date)) for w in windows]
    sizes = corpus.largest_remainder(n_papers, [(b - a).days + 1 for a, b in spans])
    shares = [c.share for c in CATEGORIES]
    out = []
    for (lo, hi), size in zip(spans, sizes):
        for k in range(size):
            cat = CATEGORIES[alloc.categorical(shares)]
            v1 = _when(lo, hi, alloc)
            versions = [v1]
            while alloc.u() < 0.3 and len(versions) < 3:
                versions.append(versions[-1] + dt.timedelta(days=1 + int(alloc.exponential(60))))
            hot = maker.subset(cat.hot, min(maker.categorical(corpus.TERM_COUNT_P), len(cat.hot)))
            stale = maker.subset(cat.stale, min(maker.categorical(corpus.TERM_COUNT_P), len(cat.stale)))
            mixed = [(hot + stale)[i] for i in maker.permutation(len(hot) + len(stale))]
            abstract, title = maker.abstract(cat, mixed), maker.title(cat, mixed)
            text = f"{title} {abstract}"
            if count_terms(text, cat.hot) != len(hot) or count_terms(text, cat.stale) != len(stale):
                raise AssertionError(f"hot/stale terms in the text differ from the drawn ones: {text!r}")
            journal = f"10.{1000 + alloc.index(9000)}/j.{v1.year}.{alloc.index(10**6):06d}" if alloc.u() < 0.25 else None
            out.append({"doi": _doi(v1, len(out) + 1), "category": cat, "versions": versions, "title": title,
                        "abstract": abstract, "authors": _authors(alloc), "hot": hot, "stale": stale,
                        "journal_doi": journal})
    _citations(out, r_cite)
    return sorted(out, key=lambda p: p["doi"])


def _citations(items: list[dict], rng: np.random.Generator) -> None:
    """corpus.py's citation model, vectorized over the papers."""
    months = np.array([(FETCHED_AT.date() - p["versions"][0]).days / corpus.DAYS_PER_MONTH for p in items])
    base = np.array([p["category"].base for p in items])
    effect = np.array([corpus.HOT_EFFECT * len(p["hot"]) - corpus.STALE_EFFECT * len(p["stale"]) for p in items])
    lam = base * np.maximum(months, 0.0) ** corpus.AGE_EXPONENT * np.exp(effect)
    lam = lam * np.exp(rng.normal(0.0, corpus.NOISE_SIGMA, size=len(items)))
    draws = rng.poisson(rng.gamma(corpus.DISPERSION, np.maximum(lam, 1e-12) / corpus.DISPERSION))
    found = rng.random(len(items)) >= NOT_FOUND_SHARE
    merged = rng.random(len(items)) < MERGED_SHARE
    for k, p in enumerate(items):
        p.update(citations=int(min(draws[k], corpus.MAX_CITATIONS)), s2_found=bool(found[k]),
                 s2_doi=p["journal_doi"] if p["journal_doi"] and merged[k] else p["doi"])


def _record(p: dict, version: int, day: dt.date) -> dict:
    """A details record as the API writes it (strings throughout, "NA" for no journal version)."""
    return {
        "doi": p["doi"], "title": p["title"], "authors": p["authors"],
        "author_corresponding": p["authors"].split(";")[0], "author_corresponding_institution": "Demo Institute",
        "date": day.isoformat(), "version": str(version), "type": "new results", "license": "cc_by",
        "category": p["category"].name, "jatsxml": f"https://www.biorxiv.org/content/early/{day:%Y/%m/%d}/"
                                                   f"{p['doi'].rsplit('/', 1)[1]}.source.xml",
        "abstract": p["abstract"], "published": p["journal_doi"] or "NA", "server": "bioRxiv",
    }


def details_answers(items: list[dict], windows: list[Window], seed: int) -> dict[str, bytes]:
    """Per window, its versions in posting order, 100 an answer, with the messages block of each answer."""
    d = Draws(np.random.default_rng([seed, 0xB11]))
    spans = [(dt.date.fromisoformat(w.from_date), dt.date.fromisoformat(w.until_date)) for w in windows]
    posted = [(day, p["doi"], v, p) for p in items for v, day in enumerate(p["versions"], 1)]
    older = []  # revisions of papers first posted before the windows: only their version 2 is listed
    for k in range(OLDER_REVISIONS):
        p = items[d.index(len(items))]
        earlier = {**p, "doi": _doi(spans[0][0] - dt.timedelta(days=200 + k), 900_000 + k)}
        older.append((_when(*spans[0], d), earlier["doi"], 2, earlier))
    blank = items[d.index(len(items))]["doi"]  # its first version is listed without an abstract
    files = {}
    for window, (lo, hi) in zip(windows, spans):
        inside = sorted((x for x in posted + older if lo <= x[0] <= hi), key=lambda x: (x[0], x[1], x[2]))
        records = [_record(p, v, day) for day, _, v, p in inside]
        for r in records:
            if r["doi"] == blank and r["version"] == "1":
                r["abstract"] = ""
        new = sum(1 for _, _, v, _ in inside if v == 1)
        for cursor in range(0, max(len(records), 1), PAGE_SIZE):
            page = records[cursor : cursor + PAGE_SIZE]
            head = {"status": "ok", "interval": f"{window.from_date}:{window.until_date}", "cursor": cursor,
                    "count": len(page), "count_new_papers": str(new), "total": str(len(records))}
            name = f"biorxiv/biorxiv-{window.from_date}-{window.until_date}-cursor-{cursor:06d}.json"
            files[name] = (json.dumps({"messages": [head], "collection": page}, ensure_ascii=False) + "\n").encode()
    return files


def s2_batches(items: list[dict], seed: int) -> dict[str, bytes]:
    """POST /paper/batch with "DOI:<doi>" ids: an array aligned with the request, null for unknown papers."""
    files, manifest = {}, []
    for n, k in enumerate(range(0, len(items), S2_BATCH), 1):
        batch = items[k : k + S2_BATCH]
        body = [{"paperId": corpus.s2_paper_id(seed, p["doi"]),
                 "externalIds": {"DOI": p["s2_doi"], "CorpusId": corpus.corpus_id(seed, p["doi"])},
                 "citationCount": p["citations"], "publicationDate": p["versions"][0].isoformat()}
                if p["s2_found"] else None for p in batch]
        name = f"batch-{n:06d}.json"
        files[f"biorxiv_semantic_scholar/{name}"] = (json.dumps(body) + "\n").encode()
        manifest.append({"file": name, "fetched_at": FETCHED_AT.isoformat(), "ids": [p["doi"] for p in batch]})
    files["biorxiv_semantic_scholar/manifest.jsonl"] = "".join(json.dumps(m) + "\n" for m in manifest).encode()
    return files


def render(n_papers: int, seed: int, windows: list[Window]) -> dict[str, bytes]:
    items = papers(n_papers, seed, windows)
    return {**details_answers(items, windows, seed), **s2_batches(items, seed)}


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--out-dir", required=True, type=Path)
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--n-papers", type=int, default=600)
    p.add_argument("--window", required=True, action="append", type=Window.parse, dest="windows",
                   help="FROM:UNTIL of first versions (repeat); the harvest windows of the config")
    args = p.parse_args(argv)
    if args.n_papers < 10:
        p.error("--n-papers must be >= 10")
    setup_logging(args.verbose)
    files = render(args.n_papers, args.seed, args.windows)
    for rel in sorted(files):
        write_bytes_atomic(args.out_dir / rel, files[rel])
    log.info("%d bioRxiv demo papers, %d files written under %s", args.n_papers, len(files), args.out_dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
