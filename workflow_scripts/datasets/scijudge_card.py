"""The dataset card of the SciJudge pairs: what each split holds, how it was built, and what was left out and why."""

from __future__ import annotations

from workflow_scripts.datasets.scijudge_splits import window_text

FIELDS = ("CS", "Math", "Physics", "Others")


def _field_order(names) -> list[str]:
    return sorted(set(names), key=lambda f: (f not in FIELDS, FIELDS.index(f) if f in FIELDS else 0, f))


def counts_table(splits: dict) -> list[str]:
    names = _field_order(f for st in splits.values() for f in st["per_field"])
    lines = ["| split | " + " | ".join(names) + " | total | answer A | answer B | share A |",
             "|" + "---|" * (len(names) + 5)]
    for name, st in splits.items():
        cells = [str(st["per_field"].get(f, 0)) for f in names]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {st['pairs']} | {st['answer_A']} | {st['answer_B']} "
                     f"| {st['share_A']} |")
    return lines


def sizes_table(report: dict) -> list[str]:
    lines = ["| field | size in config | pairs | candidate pairs | note |", "|---|---|---|---|---|"]
    for name in _field_order(report):
        r = report[name]
        target = "all" if r["target"] is None else r["target"]
        lines.append(f"| {name} | {target} | {r['pairs']} | {r['candidates']} | {r.get('reason') or ''} |")
    return lines


def _train_fields_text(pairs: dict, inputs: dict) -> str:
    fields = pairs.get("train_fields")
    if fields is None:
        return ""
    return (f" **Field OOD**: train pairs of {', '.join(fields)} only (config `train_fields`), "
            f"{inputs['train_pairs_outside_train_fields']} pair(s) of other fields left out; the tests keep every "
            "field.")


def render_card(stats: dict, block) -> str:
    """Markdown for ``stats`` (scijudge_pairs.build) and the config ``block`` (PairConfig) that produced them."""
    p, inputs, dup = block.pairs, stats["inputs"], stats["duplicates"]
    tid, ood, dd = p["test_id"], p["test_ood"], p["dedupe"]
    snap = stats["citation_snapshot"]
    fetched = snap["first"] if snap["first"] == snap["last"] else f"{snap['first']} .. {snap['last']}"
    by_rule = ", ".join(f"{rule} {n}" for rule, n in dup["pairs_by_rule"].items())
    return "\n".join([
        "# SciJudge citation preference pairs",
        "",
        "Each row asks which of two arXiv papers (A, B) of the same primary subcategory, first published in "
        f"{window_text(p['window'])}, has more citations. The more-cited paper lands in position A or B by a seeded "
        "coin. `messages` holds the system and user prompt (SciJudge template); `correct_answer` is 'A' or 'B'.",
        "",
        "## Counts per field and split",
        "",
        *counts_table(stats["splits"]),
        "",
        "## In-domain test per field",
        "",
        *sizes_table(stats["test_id_fields"]),
        "",
        "## Construction",
        "",
        f"- pairing window: same primary subcategory and {window_text(p['window'])} (config `window`: {p['window']}); "
        f"each paper in at most {p['max_pairs_per_paper']} pair(s) of a split.",
        f"- every split: papers first published by until_date {p['until_date']} and by the prompt's today "
        f"{block.today}; {inputs['papers_after_until_date']} later paper(s) and {inputs['papers_after_today']} "
        f"after today left out, {inputs['papers_without_citation_count']} without a citation count.",
        f"- train: papers up to {p['cutoff_year']} that are not held out, c_hi - c_lo >= {p['min_diff']} and "
        f"(c_hi - c_lo)/c_hi >= {p['min_rel_diff']}." + _train_fields_text(p, inputs),
        f"- test_id (in-domain): {tid['held_out_share']:.2%} of the papers up to {p['cutoff_year']} held out by a "
        f"seeded hash of the arXiv id before pairing ({inputs['papers_held_out']} papers), never in train; "
        f"c_hi - c_lo >= {tid['min_diff']} and >= {tid['min_rel_diff']}; sampled per field by a seeded hash of the "
        "pair to the sizes above.",
        f"- test_ood (temporal OOD): papers after {p['cutoff_year']} with >= {ood['min_citations']} citation(s) "
        f"({inputs['papers_after_cutoff_below_min_citations']} with fewer left out, quantiles over the rest); "
        f"c_i >= q{ood['hi_quantile']} and c_j <= q{ood['lo_quantile']} of the subcategory, dates within "
        f"{ood['max_days_apart']} days, c_i - c_j >= max({ood['rel_diff']} c_i, d_s), d_s = max({ood['ds_floor']}, "
        f"{ood['ds_scale']} (q{ood['ds_quantiles'][1]} - q{ood['ds_quantiles'][0]})).",
        f"- duplicates (one paper under several ids), rules {', '.join(dup['rules_checked'])}: pairs found {by_rule} "
        f"(title-near: word {dd['shingle_words']}-shingle Jaccard >= {dd['title_similarity']}, MinHash LSH "
        f"{dd['bands']} bands x {dd['rows_per_band']} rows, {dup['title_near_candidates']} candidates); "
        f"{dup['groups']} group(s) of {dup['papers_in_groups']} papers; {dup['train_duplicates_removed']} removed "
        f"from train (one kept per group), {dup['held_out_duplicates_excluded']} held-out and "
        f"{dup['ood_duplicates_excluded']} later papers kept out of the tests.",
        f"- prompt date: Today is {block.today}.",
        "",
        "## Citation counts",
        "",
        f"Fetched {fetched}" + (f" ({snap['note']})" if snap.get("note") else "") + "; a count is the number of "
        "citations on that date.",
        "",
        "## Inputs",
        "",
        *[f"- {k.replace('_', ' ')}: {v}" for k, v in inputs.items()],
        "",
    ])
