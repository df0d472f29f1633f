"""Vocabularies of the demo corpus: subcategories with their field, share of papers and technical words.

Each subcategory has its own objects, methods and tasks (so a tokenizer and a bag-of-words model see distinct
topics), plus a few *hot* terms that raise a paper's expected citations and a few *stale* ones that lower it. Hot and
stale terms are inserted through the same sentence templates, so only the terms themselves carry the signal.
Everything here is a tuple: iteration order is part of the determinism contract.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Subcategory:
    name: str  # primary category, e.g. "cs.LG"
    field: str  # CS | Math | Physics | Others (the default ``fields:`` mapping of the config)
    share: float  # share of all papers
    base: float  # expected citations per unit of the age factor, before term effects
    cross: tuple[str, ...]  # plausible cross-list categories
    objects: tuple[str, ...]
    methods: tuple[str, ...]
    tasks: tuple[str, ...]
    hot: tuple[str, ...]
    stale: tuple[str, ...]


# Shares: CS 40 %, Physics 30 %, Math 15 %, Others 15 %. Nine subcategories get >= 6.5 % so that, with the per-month
# quota allocation in corpus.py, more than half of the (subcategory, month) groups hold >= 4 papers at n = 4000 over
# five years (66.7 papers a month): pairs inside one group are what the SciJudge builder forms.
SUBCATEGORIES: tuple[Subcategory, ...] = (
    Subcategory(
        "cs.LG", "CS", 0.11, 3.3, ("stat.ML", "cs.AI", "cs.CV"),
        ("neural networks", "gradient descent", "representation learning", "generalization bounds", "loss landscapes",
         "benchmark datasets", "training dynamics", "feature attribution", "optimization trajectories", "tabular data",
         "distribution shift", "sample complexity", "overparameterized models", "learning curves"),
        ("stochastic optimization", "contrastive pretraining", "regularized training", "meta-learning",
         "gradient clipping", "ensemble averaging", "adaptive learning rates", "knowledge distillation",
         "curriculum learning", "weight averaging"),
        ("image classification", "time series forecasting", "continual learning", "anomaly detection",
         "semi-supervised learning", "federated training", "out-of-distribution detection", "hyperparameter tuning",
         "active learning", "reinforcement learning"),
        ("diffusion models", "in-context learning", "mixture of experts", "state space models", "scaling laws"),
        ("restricted Boltzmann machines", "support vector machines", "hand-crafted features",
         "extreme learning machines", "greedy layerwise pretraining"),
    ),
    Subcategory(
        "cs.CL", "CS", 0.10, 3.3, ("cs.AI", "cs.LG"),
        ("language models", "token embeddings", "parallel corpora", "syntactic structure", "dialogue systems",
         "named entities", "low-resource languages", "text corpora", "question answering datasets",
         "machine translation systems", "discourse relations", "subword vocabularies", "annotation guidelines",
         "reading comprehension"),
        ("sequence labeling", "beam search decoding", "instruction tuning", "prompt engineering",
         "cross-lingual transfer", "constrained decoding", "data augmentation", "span extraction",
         "contrastive decoding", "back-translation"),
        ("machine translation", "summarization", "sentiment analysis", "information extraction", "text classification",
         "dependency parsing", "open-domain question answering", "fact verification", "coreference resolution",
         "text simplification"),
        ("retrieval-augmented generation", "chain-of-thought prompting", "preference optimization",
         "large language model agents", "hallucination detection"),
        ("statistical phrase tables", "bag-of-words classifiers", "n-gram smoothing", "rule-based taggers",
         "hidden Markov taggers"),
    ),
    Subcategory(
        "cs.CV", "CS", 0.10, 3.3, ("cs.LG", "eess.IV"),
        ("convolutional backbones", "point clouds", "video frames", "depth maps", "image patches",
         "segmentation masks", "bounding boxes", "optical flow", "camera poses", "remote sensing imagery",
         "medical scans", "keypoint detectors", "multi-view geometry", "image pyramids"),
        ("self-supervised pretraining", "attention pooling", "feature pyramids", "test-time adaptation",
         "pseudo-labeling", "masked image modeling", "domain randomization", "multi-scale fusion",
         "mesh deformation", "contrastive alignment"),
        ("object detection", "semantic segmentation", "pose estimation", "image restoration", "3D reconstruction",
         "video understanding", "visual tracking", "image retrieval", "scene parsing", "super-resolution"),
        ("vision transformers", "neural radiance fields", "Gaussian splatting", "text-to-image generation",
         "open-vocabulary segmentation"),
        ("SIFT descriptors", "histogram of oriented gradients", "sliding window detectors",
         "deformable part models", "bag of visual words"),
    ),
    Subcategory(
        "cs.AI", "CS", 0.09, 2.7, ("cs.LG", "cs.CL", "cs.MA"),
        ("planning domains", "knowledge graphs", "multi-agent systems", "constraint problems", "decision policies",
         "reward functions", "search spaces", "logical theories", "game trees", "causal graphs",
         "belief states", "ontologies", "preference profiles", "heuristic functions"),
        ("Monte Carlo tree search", "answer set programming", "symbolic regression", "policy iteration",
         "abductive inference", "heuristic search", "probabilistic programming", "neuro-symbolic reasoning",
         "argumentation frameworks", "belief revision"),
        ("automated planning", "explainable decision making", "commonsense reasoning", "multi-agent coordination",
         "theorem proving", "scheduling", "knowledge base completion", "fair allocation", "causal discovery",
         "program synthesis"),
        ("LLM-based planning", "tool-use agents", "world models", "reasoning benchmarks", "AI alignment"),
        ("expert systems", "frame-based representations", "blackboard architectures", "fuzzy rule bases",
         "production rule systems"),
    ),
    Subcategory(
        "quant-ph", "Physics", 0.065, 2.4, ("cond-mat.str-el", "physics.optics", "cs.ET"),
        ("qubits", "entangled states", "quantum channels", "trapped ions", "superconducting circuits",
         "photonic chips", "spin chains", "quantum memories", "Bell inequalities", "stabilizer codes",
         "open quantum systems", "quantum sensors", "qudits", "decoherence times"),
        ("tensor network simulation", "randomized benchmarking", "quantum tomography", "variational circuits",
         "dynamical decoupling", "measurement-based protocols", "adiabatic evolution", "shadow estimation",
         "cavity cooling", "quantum walks"),
        ("quantum error correction", "quantum key distribution", "quantum metrology", "state preparation",
         "entanglement certification", "quantum simulation", "gate calibration", "noise characterization",
         "quantum communication", "resource estimation"),
        ("logical qubits", "quantum advantage", "error mitigation", "neutral atom arrays", "magic state distillation"),
        ("hidden variable models", "NMR quantum computing", "bulk ensemble qubits",
         "linear optics without feedforward", "continuous-variable cloning"),
    ),
    Subcategory(
        "hep-ph", "Physics", 0.065, 2.4, ("hep-ex", "hep-lat"),
        ("parton distributions", "Higgs couplings", "neutrino masses", "dark matter candidates", "collider events",
         "heavy quarks", "jet substructure", "flavour anomalies", "effective operators", "gauge bosons",
         "lepton universality", "axion couplings", "form factors", "cross sections"),
        ("next-to-leading order calculations", "lattice matching", "global fits", "renormalization group running",
         "Monte Carlo event generation", "resummation", "effective field theory matching", "sum rules",
         "dispersive analysis", "chiral perturbation theory"),
        ("precision electroweak tests", "new physics searches", "neutrino oscillation analysis",
         "dark matter phenomenology", "flavour physics", "Higgs phenomenology", "jet tagging",
         "baryogenesis", "quarkonium production", "collider sensitivity studies"),
        ("muon g-2", "axion-like particles", "machine-learned jet taggers", "sterile neutrino searches",
         "SMEFT global analyses"),
        ("technicolor models", "little Higgs models", "universal extra dimensions", "fourth generation quarks",
         "minimal supergravity benchmarks"),
    ),
    Subcategory(
        "hep-th", "Physics", 0.065, 2.1, ("gr-qc", "math-ph", "math.MP"),
        ("black holes", "conformal field theories", "scattering amplitudes", "string compactifications",
         "gauge theories", "entanglement entropy", "anti-de Sitter space", "supersymmetric vacua", "Wilson loops",
         "moduli spaces", "boundary conditions", "instantons", "higher-spin fields", "dualities"),
        ("bootstrap methods", "holographic renormalization", "localization", "perturbative expansions",
         "integrability techniques", "on-shell recursion", "lattice discretization", "anomaly matching",
         "large N expansions", "worldsheet methods"),
        ("black hole thermodynamics", "holographic duality", "quantum gravity", "symmetry classification",
         "vacuum selection", "confinement", "cosmological model building", "amplitude computation",
         "topological phases", "renormalization flows"),
        ("generalized symmetries", "celestial holography", "island formula", "swampland conjectures",
         "double copy relations"),
        ("dilaton gravity toys", "bosonic string tachyons", "Kaluza-Klein towers", "old matrix models",
         "noncommutative field theory"),
    ),
    Subcategory(
        "cond-mat.mtrl-sci", "Physics", 0.065, 2.4, ("cond-mat.str-el", "physics.comp-ph"),
        ("thin films", "perovskite oxides", "grain boundaries", "phonon spectra", "crystal structures",
         "alloys", "defects", "band structures", "magnetic anisotropy", "interfaces", "polymers",
         "thermal conductivity", "dislocations", "ferroelectric domains"),
        ("density functional theory", "molecular dynamics", "high-throughput screening", "phase-field modeling",
         "X-ray diffraction", "cluster expansion", "tight-binding models", "kinetic Monte Carlo",
         "electron microscopy", "first-principles calculations"),
        ("battery cathode design", "catalyst discovery", "thermoelectric performance", "phase stability",
         "strain engineering", "defect engineering", "magnetic ordering", "corrosion resistance",
         "photovoltaic efficiency", "mechanical strength"),
        ("machine-learned interatomic potentials", "two-dimensional magnets", "moire materials",
         "high-entropy alloys", "generative materials design"),
        ("empirical pair potentials", "rigid ion models", "virtual crystal approximation",
         "jellium slab models", "muffin-tin orbitals"),
    ),
    Subcategory(
        "astro-ph.GA", "Physics", 0.04, 2.4, ("astro-ph.CO", "astro-ph.SR"),
        ("galaxy clusters", "stellar populations", "spiral arms", "interstellar medium", "molecular clouds",
         "dwarf galaxies", "galactic bulges", "star-forming regions", "globular clusters", "dark matter halos",
         "gas inflows", "metallicity gradients", "stellar streams", "active nuclei"),
        ("hydrodynamical simulations", "spectral energy distribution fitting", "integral field spectroscopy",
         "radiative transfer", "chemical evolution models", "kinematic modeling", "photometric redshifts",
         "semi-analytic models", "n-body simulations", "Bayesian population inference"),
        ("galaxy formation", "star formation histories", "galaxy morphology", "feedback processes",
         "halo assembly", "chemical enrichment", "gas dynamics", "galaxy mergers",
         "quenching mechanisms", "disk structure"),
        ("JWST observations", "Gaia data release", "high-redshift galaxies", "little red dots",
         "Euclid early release"),
        ("Hubble deep field counts", "IRAS point sources", "photographic plate surveys",
         "closed box models", "hand classified morphologies"),
    ),
    Subcategory(
        "math.CO", "Math", 0.05, 0.72, ("cs.DM",),
        ("graphs", "hypergraphs", "permutations", "partitions", "matroids", "posets", "tournaments",
         "set systems", "colorings", "lattice paths", "Young tableaux", "designs", "cliques", "spanning trees"),
        ("probabilistic method", "generating functions", "algebraic methods", "bijective proofs",
         "entropy compression", "regularity lemma", "polynomial method", "discharging arguments",
         "linear algebra bounds", "container lemma"),
        ("extremal problems", "Ramsey numbers", "enumeration", "graph coloring", "Turán densities",
         "matching theory", "additive combinatorics", "structural graph theory", "design theory",
         "random graph thresholds"),
        ("sunflower bounds", "Kahn-Kalai thresholds", "absorption method", "spread approximations",
         "twin-width"),
        ("hand enumeration tables", "ad hoc case analysis", "exhaustive census", "greedy colorings",
         "classical inclusion-exclusion"),
    ),
    Subcategory(
        "math.PR", "Math", 0.05, 0.72, ("math-ph", "math.ST"),
        ("random walks", "Brownian motion", "martingales", "random matrices", "percolation clusters",
         "Markov chains", "point processes", "branching processes", "stochastic differential equations",
         "interacting particle systems", "random trees", "Gaussian fields", "Lévy processes", "exclusion processes"),
        ("coupling arguments", "Stein's method", "concentration inequalities", "large deviation principles",
         "Malliavin calculus", "renormalization schemes", "martingale methods", "spectral gap estimates",
         "hydrodynamic limits", "moment methods"),
        ("mixing times", "scaling limits", "hitting probabilities", "phase transitions", "fluctuation bounds",
         "local limits", "extreme values", "ergodicity", "metastability", "tail asymptotics"),
        ("KPZ universality", "random geometry", "Liouville quantum gravity", "stochastic localization",
         "cutoff phenomena"),
        ("classical urn schemes", "elementary renewal bounds", "ad hoc tail estimates", "discrete gambler models",
         "textbook ergodic theorems"),
    ),
    Subcategory(
        "math.AG", "Math", 0.05, 0.6, ("math.NT", "math.AC"),
        ("algebraic curves", "moduli stacks", "vector bundles", "toric varieties", "abelian varieties",
         "derived categories", "Hodge structures", "sheaf cohomology", "Calabi-Yau threefolds",
         "singularities", "line bundles", "intersection numbers", "Fano varieties", "Hilbert schemes"),
        ("deformation theory", "birational geometry", "intersection theory", "tropical methods",
         "motivic integration", "degeneration techniques", "Gromov-Witten theory", "stability conditions",
         "Frobenius splitting", "minimal model program"),
        ("classification of varieties", "enumerative problems", "rationality questions", "compactifications",
         "cohomology computations", "moduli problems", "birational invariants", "positivity questions",
         "arithmetic of varieties", "period computations"),
        ("perfectoid spaces", "Bridgeland stability", "K-stability", "derived algebraic geometry",
         "log Calabi-Yau mirror symmetry"),
        ("classical elimination theory", "synthetic projective constructions", "Plücker formulas by hand",
         "italian school arguments", "explicit plane cubics"),
    ),
    Subcategory(
        "stat.ML", "Others", 0.065, 2.7, ("cs.LG", "stat.ME"),
        ("posterior distributions", "kernel methods", "Gaussian processes", "high-dimensional regression",
         "latent variable models", "covariance estimation", "sparse signals", "uncertainty estimates",
         "graphical models", "calibration errors", "confidence sets", "empirical risk", "mixture models",
         "treatment effects"),
        ("variational inference", "Markov chain Monte Carlo", "conformal prediction", "bootstrap resampling",
         "empirical Bayes", "random features", "spectral methods", "importance sampling",
         "stochastic gradient Langevin dynamics", "doubly robust estimation"),
        ("density estimation", "causal inference", "model selection", "uncertainty quantification",
         "two-sample testing", "clustering", "dimension reduction", "Bayesian optimization",
         "off-policy evaluation", "survival analysis"),
        ("score-based generative models", "neural tangent kernels", "simulation-based inference",
         "conformal risk control", "benign overfitting"),
        ("naive Bayes baselines", "linear discriminant rules", "stepwise selection", "k-means heuristics",
         "EM for Gaussian mixtures"),
    ),
    Subcategory(
        "eess.SP", "Others", 0.035, 1.8, ("cs.IT", "math.IT", "eess.SY"),
        ("antenna arrays", "radar waveforms", "channel estimates", "wireless links", "sensor networks",
         "audio signals", "OFDM symbols", "beamforming weights", "sparse spectra", "EEG recordings",
         "multipath channels", "sampling grids", "graph signals", "Doppler profiles"),
        ("compressed sensing", "Kalman filtering", "adaptive filtering", "sparse recovery", "spectral estimation",
         "message passing detection", "convex relaxation", "subspace tracking", "matched filtering",
         "atomic norm minimization"),
        ("channel estimation", "target localization", "signal detection", "source separation",
         "spectrum sensing", "waveform design", "direction of arrival estimation", "denoising",
         "synchronization", "interference cancellation"),
        ("integrated sensing and communication", "reconfigurable intelligent surfaces", "cell-free massive MIMO",
         "semantic communication", "deep unfolding"),
        ("analog matched receivers", "fixed-point FIR design", "zero-forcing only detection",
         "Wiener filter tables", "single-antenna narrowband links"),
    ),
    Subcategory(
        "q-bio.NC", "Others", 0.025, 1.8, ("cs.NE", "physics.bio-ph"),
        ("cortical circuits", "spiking neurons", "neural populations", "synaptic plasticity", "place cells",
         "grid cells", "fMRI signals", "dendritic trees", "motor cortex", "working memory",
         "sensory coding", "oscillations", "connectomes", "decision variables"),
        ("dimensionality reduction", "mean-field models", "recurrent network models", "Bayesian decoding",
         "information-theoretic analysis", "dynamical systems analysis", "calcium imaging analysis",
         "encoding models", "point-process models", "normative modeling"),
        ("neural coding", "learning rules", "memory consolidation", "motor control", "perceptual decision making",
         "spatial navigation", "attention modulation", "sleep dynamics", "sensory adaptation",
         "network synchronization"),
        ("neural manifolds", "predictive coding networks", "brain-inspired transformers", "Neuropixels recordings",
         "representational drift"),
        ("single unit anecdotes", "grandmother cell models", "phrenological mapping", "simple integrate models",
         "box-and-arrow diagrams"),
    ),
    Subcategory(
        "econ.EM", "Others", 0.025, 1.5, ("stat.ME", "econ.TH"),
        ("panel data", "instrumental variables", "treatment assignments", "time series regressions",
         "demand systems", "auction data", "labor markets", "household surveys", "policy shocks",
         "structural parameters", "heterogeneous effects", "forecast errors", "price indices", "firm outcomes"),
        ("generalized method of moments", "difference-in-differences", "regression discontinuity",
         "quantile regression", "synthetic control", "local projections", "sieve estimation",
         "bootstrap inference", "shrinkage estimation", "partial identification"),
        ("causal effect estimation", "policy evaluation", "demand estimation", "forecast evaluation",
         "inference with weak instruments", "program evaluation", "welfare analysis", "risk measurement",
         "network effects estimation", "market power measurement"),
        ("double machine learning", "staggered adoption designs", "synthetic difference-in-differences",
         "shift-share instruments", "heterogeneous treatment forests"),
        ("two-stage least squares only", "Hodrick-Prescott filtering", "ad hoc dummy regressions",
         "calibrated RBC models", "ordinary probit tables"),
    ),
)

# Shared filler: the function words and generic science phrasing every abstract uses, whatever its topic.
ADJECTIVES = (
    "simple", "scalable", "unified", "robust", "efficient", "principled", "general", "novel", "tractable", "sharp",
    "explicit", "systematic", "flexible", "lightweight", "rigorous", "modular", "interpretable", "consistent",
)
RESULT_VERBS = ("outperforms", "matches", "improves upon", "complements", "extends", "generalizes", "simplifies")
QUALIFIERS = ("in most settings", "under mild assumptions", "at moderate cost", "across regimes",
              "with few exceptions", "in the studied cases", "for realistic parameters")

OPENINGS = (
    "We study {task} for {obj}.",
    "This paper addresses {task} in the presence of {obj}.",
    "We consider the problem of {task} when {obj} are only partially observed.",
    "Understanding {obj} is central to {task}.",
    "We revisit {task} from the point of view of {obj}.",
)
BODY = (
    "We propose a {adj} approach based on {method}.",
    "Our analysis relies on {method} and a careful treatment of {obj}.",
    "We show that {obj} admit a {adj} characterization in terms of {obj2}.",
    "The method {verb} existing approaches {qual}.",
    "Experiments on {obj} show that {method} {verb} strong baselines.",
    "A key ingredient is a {adj} reduction from {task} to {obj2}.",
    "We derive {adj} guarantees for {method} applied to {obj}.",
    "Numerical results confirm the {adj} behaviour of {obj2} {qual}.",
    "We further connect {method} with {method2}.",
    "Our framework is {adj} and applies to {obj2} as well.",
    "We identify conditions under which {method} remains {adj} for {task}.",
    "The resulting procedure is {adj} and easy to implement.",
)
# the carrier sentences of hot and stale terms: identical for both, so only the term says which one it is
TERM_SENTENCES = (
    "We build on {term} to handle {obj}.",
    "Our method combines {term} with {method}.",
    "We revisit {term} in the context of {task}.",
    "In contrast to earlier work, we rely on {term} for {obj2}.",
    "We also study how {term} interacts with {obj}.",
)
CLOSINGS = (
    "Finally, we discuss implications for {task}.",
    "We conclude with open problems on {obj}.",
    "Code and data are available upon request.",
    "These results suggest new directions for {task}.",
)
TITLE_PATTERNS = (
    "{Adj} {Method} for {Task}",
    "On {Task} with {Obj}",
    "{Method} and {Obj}: A {Adj} Perspective",
    "Towards {Adj} {Task} via {Method}",
    "{Task} of {Obj} Revisited",
    "{Term} for {Task}",
    "Understanding {Obj} through {Term}",
)
# math-flavoured extra sentences: TeX and a '<' that the XML writers must escape
TEX_SENTENCES = (
    "The bound is sharp for $1 < p < 2$ and fails for $p > 2$.",
    "We obtain an $O(n \\log n)$ estimate with explicit constants.",
    "In particular, the exponent $\\alpha$ satisfies $0 < \\alpha \\le 1/2$.",
)
TEX_SUBCATEGORIES = ("math.CO", "math.PR", "math.AG", "hep-th")

FORENAMES = (
    "Jane", "John", "Wei", "Li", "Priya", "Arjun", "Maria", "José", "Anna", "Lukas", "Sofia", "Mohammed", "Fatima",
    "Yuki", "Hiroshi", "Olga", "Ivan", "Chen", "Xin", "Ana", "Pedro", "Emma", "Noah", "Lena", "Jonas", "Amara",
    "Kwame", "Elif", "Mehmet", "Sara", "David", "Rachel", "Tomás", "Zoë", "Björn", "Ingrid", "Ravi", "Meera",
    "Hyun-woo", "Ji-yeon", "Thanh", "Linh", "Carlos", "Lucía", "Pierre", "Camille", "Giulia", "Marco", "Aisha", "Omar",
)
KEYNAMES = (
    "Smith", "Zhang", "Wang", "Li", "Kumar", "Patel", "García", "Müller", "Schmidt", "Rossi", "Nguyen", "Kim",
    "Park", "Tanaka", "Sato", "Ivanov", "Petrova", "Chen", "Liu", "Silva", "Santos", "Dubois", "Martin", "Novak",
    "Kowalski", "Andersson", "Johansson", "Okafor", "Mensah", "Yilmaz", "Demir", "Cohen", "Levi", "Haddad", "Rahman",
    "Singh", "Gupta", "Fernández", "López", "O'Brien", "Murphy", "van der Berg", "de Vries", "Nakamura", "Ito",
    "Huang", "Zhou", "Wu", "Sun", "Ma",
)

LICENSES = (
    "http://creativecommons.org/licenses/by/4.0/",
    "http://arxiv.org/licenses/nonexclusive-distrib/1.0/",
    "http://creativecommons.org/licenses/by-nc-sa/4.0/",
    "http://creativecommons.org/licenses/by-sa/4.0/",
    "http://creativecommons.org/publicdomain/zero/1.0/",
)
# (journal-ref pattern, DOI prefix) per field; the numbers are drawn per paper
JOURNALS = {
    "CS": (("Trans. Mach. Learn. Res. ({year})", "10.5555/tmlr"), ("IEEE Trans. Pattern Anal. Mach. Intell. {vol} ({year}) {page}", "10.1109/TPAMI")),
    "Physics": (("Phys. Rev. D {vol}, {page} ({year})", "10.1103/PhysRevD"), ("JHEP {vol} ({year}) {page}", "10.1007/JHEP"),
                ("Phys. Rev. B {vol}, {page} ({year})", "10.1103/PhysRevB"), ("Astrophys. J. {vol} ({year}) {page}", "10.3847/ApJ")),
    "Math": (("Combinatorica {vol} ({year}) {page}", "10.1007/s00493"), ("Ann. Probab. {vol} ({year}) {page}", "10.1214/AOP")),
    "Others": (("J. Mach. Learn. Res. {vol} ({year}) {page}", "10.5555/jmlr"), ("Econometrica {vol} ({year}) {page}", "10.3982/ECTA")),
}
COMMENTS = ("{p} pages", "{p} pages, {f} figures", "{p} pages, {f} figures, {t} tables", "Accepted at a peer-reviewed venue; {p} pages",
            "v2: minor corrections, {p} pages", "{p} pages, comments welcome")
