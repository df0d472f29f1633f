"""The BioReview line's fixed texts: the concern schema, the extraction prompt, and the model card's SFT prompts.

``CATEGORIES`` are the extraction prompt's nine: the card's eight plus ``figure_issue`` (kept by the extraction,
removed from the all_nonfig corpus). ``SYSTEM_PROMPT`` and ``USER_PREFIX`` are copied character for character from
the model card (jang1563/bioreview-qwen3.5-9b-sft), its "concern strings" / "concern objects" contradiction
included: the card says the model was trained with exactly these strings.
"""

from __future__ import annotations

CARD_CATEGORIES = ("design_flaw", "statistical_methodology", "missing_experiment", "prior_art_novelty",
                   "writing_clarity", "reagent_method_specificity", "interpretation", "other")
FIGURE_CATEGORY = "figure_issue"
CATEGORIES = CARD_CATEGORIES + (FIGURE_CATEGORY,)
SEVERITIES = ("major", "minor", "optional")
CONCERN_KEYS = ("text", "category", "severity")

# The reference's extraction prompt (bioreview-bench, bioreview_bench/parse/concern_extractor.py,
# CONCERN_EXTRACTION_SYSTEM) restated: the same nine category definitions, the same seven rules, the same output
# line, and, like it, no definition of the severities.
CONCERN_EXTRACTION_SYSTEM = """\
You analyse biomedical peer review. Extract the specific scientific concerns raised in reviewer reports.

CATEGORY DEFINITIONS:
- design_flaw: problems of the experimental design that threaten the validity of the conclusions (missing controls, uncontrolled confounders, inappropriate comparisons)
- statistical_methodology: errors in the statistical analysis (multiple comparisons, the wrong test, missing effect sizes, p-hacking)
- missing_experiment: key experiments that are absent but needed to support the main claim
- figure_issue: ONLY concerns that can be judged only by looking at the figure itself (image quality, suspected band manipulation, labelling errors); never for concerns about figure legends or interpretations that the text allows to judge
- prior_art_novelty: missing citations, overstated novelty, inadequate comparison with prior work
- writing_clarity: unclear descriptions, undefined terms, missing method details (at the level of reproducibility)
- reagent_method_specificity: missing reagent catalogue numbers, software versions, analysis parameters
- interpretation: over-interpretation of the data, correlation taken for causation, unsupported generalisations
- other: a legitimate scientific concern that fits none of the categories above (use it sparingly, under 10%)

EXTRACTION RULES:
1. Extract only specific, actionable concerns, not general praise or vague criticism
2. Each concern must be about a specific aspect of the paper
3. Split compound concerns into separate items where they are clearly distinct
4. Do NOT extract: the reviewer's self-citations, purely stylistic preferences, typos without scientific impact
5. figure_issue: ONLY when the concern literally cannot be judged without seeing the figure
6. If the report holds ONLY a summary of the paper, praise or general enthusiasm, with NO specific weakness or recommendation, return an empty array: []
7. Do NOT invent concerns about what the reviewer did not mention: extract only what is raised explicitly

OUTPUT FORMAT: Return only a JSON array, no other text:
[{"text": "...", "category": "...", "severity": "major|minor|optional"}]
"""

REPORT_PREFIX = "Reviewer report:\n\n"

SYSTEM_PROMPT = (
    "You are an expert peer reviewer for biomedical research papers published in "
    "high-impact journals. Identify specific scientific concerns, weaknesses, and "
    "issues. Return only a JSON array of concern strings.\n\n"
    "OUTPUT FORMAT: Return a JSON array of concern objects, nothing else.\n"
    'Each item must be: {"text": string, "category": one of '
    "[design_flaw, statistical_methodology, missing_experiment, "
    "prior_art_novelty, writing_clarity, reagent_method_specificity, "
    'interpretation, other], "severity": one of [major, minor, optional]}.\n'
    "Do NOT return a JSON array of strings."
)

USER_PREFIX = (
    "Review the following biomedical article.\n\n"
    "Return ONLY a JSON array of objects with keys: `text`, `category`, `severity`.\n"
    "Allowed category values: design_flaw, statistical_methodology, "
    "missing_experiment, prior_art_novelty, writing_clarity, "
    "reagent_method_specificity, interpretation, other.\n"
    "Allowed severity values: major, minor, optional.\n\n"
)
