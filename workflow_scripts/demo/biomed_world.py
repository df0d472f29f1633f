"""The synthetic biomedical world of the BioReview demo: articles with planted flaws and the reviews that name them.

Every article studies one gene in one tissue of one model organism (a topic drawn from small lists) and has 1-4
planted flaws from :data:`FLAWS`. A flaw is a sentence in the article's text (the methods say "n = 3 mice per group",
a figure legend lacks its scale bar); an article without that flaw carries the flaw's clean counterpart at the same
place ("n = 12 mice per group, chosen by a power analysis"). So the text of an article predicts its concerns. Each
planted flaw is raised by at least one first-round reviewer in a concern sentence made by
``bioreview_extractor.concern_sentence`` (``Statistics (major): <text>.``), the text a paraphrase of the flaw, worded
differently by each reviewer who raises it; the rest of a review is summary, praise and neutral sentences without a
cue. Later rounds say the concerns were addressed and raise none. A revised version (F1000's versions 2 and 3) has
its flaws fixed: its text carries the clean sentences.

All randomness comes from one ``random.Random(seed)``, drawn in a fixed order, so the same arguments give the same
world.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field

from workflow_scripts.demo.bioreview_extractor import concern_sentence


@dataclass(frozen=True)
class Flaw:
    key: str
    category: str  # one of bioreview_prompts.CATEGORIES
    severity: str  # one of bioreview_prompts.SEVERITIES
    place: str  # the section kind (introduction, methods, results, discussion) or "figure1" / "figure2"
    planted: str  # the sentence that carries the flaw
    clean: str  # the sentence an article without the flaw carries at the same place
    concerns: tuple[str, ...]  # one-sentence paraphrases a reviewer writes; each names the same problem


# {gene} {animals} {tissue} {phenotype} are filled from the article's topic
FLAWS: tuple[Flaw, ...] = (
    Flaw("small_sample", "statistical_methodology", "major", "methods",
         "Each experimental group comprised n = 3 {animals}.",
         "Each experimental group comprised n = 12 {animals}, a size chosen by a power analysis.",
         ("Three {animals} per group are too few to support the reported effect sizes.",
          "With only n = 3 per group the study has very little statistical power.",
          "The sample size of three animals per condition is too small for the conclusions drawn.")),
    Flaw("uncorrected_tests", "statistical_methodology", "major", "results",
         "Each of the twenty outcome measures was compared with a separate t-test at p < 0.05.",
         "The twenty outcome measures were compared with t-tests corrected for multiple comparisons (Holm).",
         ("The twenty separate t-tests are not corrected for multiple comparisons.",
          "No correction for multiple testing is applied although many outcomes are compared.",
          "With so many uncorrected comparisons some of the significant results are expected by chance.")),
    Flaw("no_control_group", "design_flaw", "major", "methods",
         "All {animals} received the treatment, and outcomes were compared with their own baseline values.",
         "Littermates injected with vehicle served as the control group.",
         ("There is no untreated control group, so the changes cannot be attributed to the treatment.",
          "The design lacks a vehicle-treated control and compares animals only with their own baseline.",
          "Without a parallel control group the effect may reflect time or handling rather than the treatment.")),
    Flaw("unblinded_scoring", "design_flaw", "minor", "methods",
         "The {tissue} sections were scored by the investigators who had performed the treatments.",
         "The {tissue} sections were scored by an investigator blinded to group allocation.",
         ("The histological scoring was not blinded to the treatment groups.",
          "Scoring by investigators who knew the group allocation may bias the outcome.",
          "The assessors were aware of which animals were treated, which risks biased scoring.")),
    Flaw("missing_knockout", "missing_experiment", "major", "results",
         "The requirement for {gene} is inferred from its expression pattern in the {tissue}.",
         "Conditional knockout of {gene} in the {tissue} abolished the phenotype.",
         ("A {gene} knockout or knockdown is needed to show that the gene is required.",
          "The claim that {gene} is necessary rests on expression data alone, without a loss-of-function "
          "experiment.",
          "The authors should delete {gene} to test whether it is actually required for the effect.")),
    Flaw("missing_rescue", "missing_experiment", "minor", "results",
         "The phenotype of {gene} mutants was not complemented by re-expression of the gene.",
         "Re-expression of {gene} rescued the phenotype of the mutants.",
         ("A rescue experiment re-expressing {gene} would exclude off-target effects.",
          "Without restoring {gene} in the mutants the specificity of the phenotype is unclear.",
          "The mutant phenotype should be rescued by re-introducing {gene}.")),
    Flaw("no_scale_bar", "figure_issue", "minor", "figure2",
         "Representative micrographs of the {tissue} from each group.",
         "Representative micrographs of the {tissue} from each group; scale bar, 50 µm.",
         ("The micrographs in Figure 2 have no scale bar.",
          "Figure 2 should include a scale bar so that sizes can be judged.",
          "Scale bars are missing from the images in Figure 2.")),
    Flaw("no_error_bars", "figure_issue", "minor", "figure1",
         "Bars show the group means.",
         "Bars show means with the standard error, and dots show individual animals.",
         ("Figure 1 shows group means without error bars or individual data points.",
          "The bar graphs in Figure 1 lack any measure of variability.",
          "Error bars and the individual values should be added to Figure 1.")),
    Flaw("unvalidated_antibody", "reagent_method_specificity", "minor", "methods",
         "Sections were stained with an anti-{gene} antibody.",
         "Sections were stained with an anti-{gene} antibody validated on knockout tissue (catalogue numbers in "
         "Table S1).",
         ("The anti-{gene} antibody is neither identified by catalogue number nor validated.",
          "The specificity of the {gene} antibody is not demonstrated, for instance on knockout tissue.",
          "The source and validation of the antibody against {gene} should be reported.")),
    Flaw("causal_overclaim", "interpretation", "major", "discussion",
         "These data prove that {gene} causes {phenotype} in humans.",
         "These data suggest that {gene} contributes to {phenotype} in {animals}.",
         ("The claim that {gene} causes {phenotype} in humans is not supported by correlative data in {animals}.",
          "The discussion overstates the findings by asserting causation in humans.",
          "Extrapolating from {animals} to a causal role in human {phenotype} goes beyond the data.")),
    Flaw("uncited_prior_work", "prior_art_novelty", "minor", "introduction",
         "To our knowledge, a link between {gene} and {phenotype} has never been examined.",
         "Earlier work linked {gene} to {phenotype} in cultured cells, and we test the link in vivo.",
         ("The earlier studies linking {gene} to {phenotype} are not cited, so the novelty is overstated.",
          "Contrary to the introduction, a role of {gene} in {phenotype} has been reported before.",
          "The manuscript ignores prior work on {gene} and {phenotype}, which weakens the claim of novelty.")),
    Flaw("undefined_scores", "writing_clarity", "optional", "results",
         "Damage was graded with the HX score in all {animals}.",
         "Damage was graded with a five-point histology score, each grade defined in the methods.",
         ("The HX score is never defined, so the grading cannot be understood.",
          "It is unclear what the HX grading scale measures or how it was applied.",
          "The abbreviation HX and its scale should be explained in the text.")),
)
FLAW_BY_KEY = {f.key: f for f in FLAWS}

GENES = ("Sox9", "Foxp3", "Pax6", "Notch1", "Wnt5a", "Bmp4", "Hif1a", "Stat3", "Klf4", "Nrf2", "Atg7", "Yap1")
ANIMALS = ("mice", "rats", "zebrafish", "pigs")
TISSUES = ("liver", "retina", "intestinal crypts", "hippocampus", "kidney", "skin", "pancreatic islets", "lung")
PHENOTYPES = ("fibrosis", "regeneration", "inflammation", "neurodegeneration", "insulin resistance",
              "tumour growth", "ageing")

SECTION_TITLES = {  # varied so that jats.section_kind meets every spelling it reads
    "introduction": ("Introduction", "Background", "1. Introduction"),
    "methods": ("Methods", "Materials and methods", "Materials & Methods", "Experimental procedures"),
    "results": ("Results", "2. Results", "Results and discussion"),
    "discussion": ("Discussion", "Conclusions", "Discussion and conclusions"),
}
FILLER = {
    "introduction": ("{Gene} is expressed in the {tissue} of adult {animals}.",
                     "{Phenotype} remains a major cause of disease.",
                     "How {gene} signalling shapes {phenotype} is poorly understood."),
    "methods": ("All procedures were approved by the institutional animal care committee.",
                "Animals were housed under a 12 h light cycle with food and water ad libitum.",
                "Tissue was fixed in 4% paraformaldehyde and cut into 10 µm sections."),
    "results": ("Loss of {gene} altered {phenotype} within two weeks.",
                "Expression of {gene} in the {tissue} rose threefold after injury.",
                "The {tissue} of mutant {animals} showed a disorganised architecture."),
    "discussion": ("Our findings place {gene} upstream of {phenotype}.",
                   "Future work should examine other tissues and ages.",
                   "Targeting {gene} may offer a route to modify {phenotype}."),
}
ETHICS = "Ethics statement"  # an untitled-kind section ("other") in some articles
FIGURE1 = "Quantification of {phenotype} in the {tissue}."
FIGURE2 = "Histology of the {tissue}."

SUMMARY = ("The authors study how {gene} affects {phenotype} in the {tissue} of {animals}.",
           "This manuscript examines the role of {gene} in {phenotype}.",
           "The study asks whether {gene} controls {phenotype} in {animals}.")
PRAISE = ("The question is important and the manuscript is clearly written.",
          "The imaging data are of high quality.",
          "I enjoyed reading this study.",
          "The topic is timely and of broad interest.",
          "The experiments are described in enough detail to be repeated.")
NEUTRAL = ("I have the following comments.",
           "My comments are listed below.",
           "Please find my points below.")
CLOSING = ("I hope these comments help the authors.",
           "I look forward to reading a revised version.",
           "With these changes the work would be a useful contribution.")
ADDRESSED = ("The authors have addressed my concerns.",
             "The revision answers all of my points.",
             "I am satisfied with the changes and have no further comments.")


@dataclass
class Topic:
    gene: str
    animals: str
    tissue: str
    phenotype: str

    def fill(self, template: str) -> str:
        return template.format(gene=self.gene, Gene=self.gene, animals=self.animals, tissue=self.tissue,
                               phenotype=self.phenotype, Phenotype=self.phenotype[:1].upper() + self.phenotype[1:])


@dataclass
class Concern:
    flaw: str  # Flaw.key
    category: str
    severity: str
    text: str

    @property
    def sentence(self) -> str:
        return concern_sentence(self.category, self.severity, self.text)


@dataclass
class Review:
    reviewer: int  # 1-based within its round
    round: int
    sentences: list[str]  # in order: summary, praise, concern sentences, closing
    concerns: list[Concern] = field(default_factory=list)

    @property
    def text(self) -> str:
        return " ".join(self.sentences)


@dataclass
class Article:
    index: int
    source: str  # tables.SOURCES
    topic: Topic
    title: str
    flaws: list[Flaw]
    published: dt.date
    section_titles: dict[str, str]  # kind -> title
    with_ethics: bool
    reviews: list[Review]  # every round
    response: str  # the authors' answer to round 1
    variant: int  # a per-article draw for source-specific choices (style, journal, versions)

    def sections(self, revised: bool = False) -> list[tuple[str, str]]:
        """(title, text) of the body in order; a revised version carries every flaw's clean sentence."""
        out = []
        for kind in ("introduction", "methods", "results", "discussion"):
            sentences = [self.topic.fill(s) for s in FILLER[kind]]
            for flaw in FLAWS:
                if flaw.place == kind:
                    planted = flaw in self.flaws and not revised
                    # among the filler, never first: the flaw's place does not give it away
                    sentences.insert(1 + FLAWS.index(flaw) % 2, self.topic.fill(flaw.planted if planted
                                                                                  else flaw.clean))
            out.append((self.section_titles[kind], " ".join(sentences)))
            if kind == "methods" and self.with_ethics:
                out.append((ETHICS, "The study followed the ARRIVE guidelines."))
        return out

    def figures(self, revised: bool = False) -> list[tuple[str, str]]:
        """(label, caption) of the two figures."""
        out = []
        for n, title in ((1, FIGURE1), (2, FIGURE2)):
            flaw = next(f for f in FLAWS if f.place == f"figure{n}")
            planted = flaw in self.flaws and not revised
            legend = self.topic.fill(flaw.planted if planted else flaw.clean)
            out.append((f"Figure {n}", f"{self.topic.fill(title)} {legend}"))
        return out

    @property
    def abstract(self) -> str:
        return self.topic.fill("{Gene} is expressed in the {tissue}, but its role in {phenotype} is unknown. "
                               "We studied {animals} lacking or over-expressing {gene}. "
                               "We find that {gene} shapes {phenotype}.")

    def round_reviews(self, round_: int) -> list[Review]:
        return [r for r in self.reviews if r.round == round_]


def _title(rng: random.Random, t: Topic) -> str:
    template = rng.choice(("{Gene} controls {phenotype} in the {tissue} of {animals}",
                           "A role for {gene} in {tissue} {phenotype}",
                           "{Gene} signalling shapes {phenotype} in {animals}"))
    return t.fill(template)


def _reviews(rng: random.Random, topic: Topic, flaws: list[Flaw], n_reviewers: int, rounds: int) -> list[Review]:
    """First-round reviews raising every flaw at least once (each raiser in its own wording), later rounds none."""
    raisers: dict[int, list[Flaw]] = {n: [] for n in range(1, n_reviewers + 1)}
    for i, flaw in enumerate(flaws):
        first = 1 + (i + rng.randrange(n_reviewers)) % n_reviewers
        raisers[first].append(flaw)
        if rng.random() < 0.5:  # a second reviewer raises it too, in other words
            raisers[1 + first % n_reviewers].append(flaw)
    reviews = []
    for n in range(1, n_reviewers + 1):
        concerns = []
        for flaw in sorted(raisers[n], key=FLAWS.index):
            wording = flaw.concerns[(n + FLAWS.index(flaw)) % len(flaw.concerns)]
            concerns.append(Concern(flaw.key, flaw.category, flaw.severity, topic.fill(wording)))
        sentences = [topic.fill(rng.choice(SUMMARY)), rng.choice(PRAISE), rng.choice(NEUTRAL),
                     *(c.sentence for c in concerns), rng.choice(CLOSING)]
        if not concerns:
            sentences = [topic.fill(rng.choice(SUMMARY)), rng.choice(PRAISE), rng.choice(PRAISE)]
        reviews.append(Review(n, 1, sentences, concerns))
    for round_ in range(2, rounds + 1):
        reviews += [Review(n, round_, [rng.choice(ADDRESSED)]) for n in range(1, n_reviewers + 1)]
    return reviews


def build(n_articles: int, seed: int, sources: list[str]) -> list[Article]:
    """``n_articles`` articles, the i-th of source ``sources[i]``."""
    rng = random.Random(seed)
    articles = []
    for i, source in enumerate(sources[:n_articles]):
        topic = Topic(rng.choice(GENES), rng.choice(ANIMALS), rng.choice(TISSUES), rng.choice(PHENOTYPES))
        flaws = sorted(rng.sample(FLAWS, rng.randint(1, 4)), key=FLAWS.index)
        n_reviewers = 2 if source == "peerj" else rng.randint(2, 3)
        published = dt.date(2019, 1, 1) + dt.timedelta(days=rng.randrange(5 * 365))
        titles = {kind: rng.choice(options) for kind, options in SECTION_TITLES.items()}
        articles.append(Article(
            index=i, source=source, topic=topic, title=_title(rng, topic), flaws=flaws, published=published,
            section_titles=titles, with_ethics=rng.random() < 0.3,
            reviews=_reviews(rng, topic, flaws, n_reviewers, rounds=2),
            response=topic.fill("We thank the reviewers and have revised the manuscript on {gene} accordingly."),
            variant=rng.randrange(1000)))
    return articles


def paraphrase_pairs(seed: int, n_topics: int = 4) -> list[dict]:
    """Labelled pairs of concern texts from :data:`FLAWS`: two wordings of one flaw (label 1) and wordings of two
    different flaws (label 0, as many, half of them within one category where there are such pairs), each pair
    filled with one topic."""
    rng = random.Random(seed)
    topics = [Topic(rng.choice(GENES), rng.choice(ANIMALS), rng.choice(TISSUES), rng.choice(PHENOTYPES))
              for _ in range(n_topics)]
    positives, negatives = [], []
    for t in topics:
        for flaw in FLAWS:
            for a in range(len(flaw.concerns)):
                for b in range(a + 1, len(flaw.concerns)):
                    positives.append(_pair(t, flaw, a, flaw, b, 1))
        same = [(f, g) for i, f in enumerate(FLAWS) for g in FLAWS[i + 1:] if f.category == g.category]
        other = [(f, g) for i, f in enumerate(FLAWS) for g in FLAWS[i + 1:] if f.category != g.category]
        n_pos = len(FLAWS) * 3
        for f, g in same + rng.sample(other, n_pos - len(same)):
            negatives.append(_pair(t, f, rng.randrange(len(f.concerns)), g, rng.randrange(len(g.concerns)), 0))
    return positives + negatives


def _pair(t: Topic, f: Flaw, a: int, g: Flaw, b: int, label: int) -> dict:
    return {"text_a": t.fill(f.concerns[a]), "text_b": t.fill(g.concerns[b]), "label": label,
            "flaw_a": f.key, "flaw_b": g.key, "category_a": f.category, "category_b": g.category}
