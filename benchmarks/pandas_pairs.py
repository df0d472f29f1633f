"""The pair rules of workflow_scripts.datasets.pair_rules written plainly in pandas, as the benchmark's reference.

Same algorithm, same tie-breaks, so the benchmark also checks that both give the same pairs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def split_half_pairs(papers: pd.DataFrame, group_cols, min_diff, min_rel_diff, max_pairs_per_paper=1, max_passes=4):
    uses = pd.Series(0, index=papers["arxiv_id"].values)
    found, seen = [], set()
    for p in range(max_passes * max_pairs_per_paper):
        pool = papers[papers["arxiv_id"].map(uses).values < max_pairs_per_paper]
        pool = pool.sort_values([*group_cols, "citations", "arxiv_id"]).reset_index(drop=True)
        g = pool.groupby(group_cols, sort=False)
        pool["rank"] = g.cumcount()
        pool["n"] = g["arxiv_id"].transform("size")
        pool["m"] = pool["n"] // 2
        pool = pool[pool["m"] > 0]
        low = pool[pool["rank"] < pool["m"]].copy()
        low["partner"] = low["n"] - low["m"] + (low["rank"] + p) % low["m"]
        high = pool[pool["rank"] >= pool["n"] - pool["m"]]
        cand = low.merge(high, left_on=[*group_cols, "partner"], right_on=[*group_cols, "rank"], suffixes=("", "_h"))
        diff = cand["citations_h"] - cand["citations"]
        keep = (cand["citations_h"] > 0) & (diff >= min_diff) & (diff >= min_rel_diff * cand["citations_h"])
        cand = cand[keep]
        pairs = [(h, l) for h, l in zip(cand["arxiv_id_h"], cand["arxiv_id"]) if (h, l) not in seen]
        if not pairs:
            break
        seen.update(pairs)
        found.extend(pairs)
        for h, l in pairs:
            uses[h] += 1
            uses[l] += 1
    return pd.DataFrame(found, columns=["hi_id", "lo_id"])


def ood_pairs(papers: pd.DataFrame, eligible_ids, hi_q=0.75, lo_q=0.25, days=5, rel=0.5, floor=12.0, scale=0.7, qs=(0.01, 0.99)):
    g = papers.groupby("subcategory")["citations"]
    stats = pd.DataFrame({"q_hi": g.quantile(hi_q), "q_lo": g.quantile(lo_q), "q99": g.quantile(qs[1]), "q1": g.quantile(qs[0])})
    stats["d_s"] = np.maximum(floor, scale * (stats["q99"] - stats["q1"]))
    pool = papers[papers["arxiv_id"].isin(set(eligible_ids))].join(stats, on="subcategory")
    pool["day"] = (pool["published"] - pd.Timestamp("1970-01-01")).dt.days
    hi = pool[pool["citations"] >= pool["q_hi"]]
    lo = pool[(pool["citations"] <= pool["q_lo"]) & (pool["citations"] < pool["q_hi"])]
    # each low paper once per day offset, then an equi-join on (subcategory, day): no subcategory-wide cross product
    lo = pd.concat([lo.assign(day=lo["day"] + k, gap=abs(k)) for k in range(-days, days + 1)])
    cand = hi.merge(lo, on=["subcategory", "day"], suffixes=("_h", "_l"))
    ok = cand["arxiv_id_h"] != cand["arxiv_id_l"]
    ok &= (cand["citations_h"] - cand["citations_l"]) >= np.maximum(rel * cand["citations_h"], cand["d_s_h"])
    cand = cand[ok][["arxiv_id_h", "arxiv_id_l", "gap"]]
    matched = []
    for _ in range(20):  # same round cap as the polars matcher
        if not len(cand):
            break
        prop = cand.sort_values(["arxiv_id_h", "gap", "arxiv_id_l"]).drop_duplicates("arxiv_id_h")
        acc = prop.sort_values(["arxiv_id_l", "arxiv_id_h"]).drop_duplicates("arxiv_id_l")
        matched.append(acc)
        cand = cand[~cand["arxiv_id_h"].isin(acc["arxiv_id_h"]) & ~cand["arxiv_id_l"].isin(acc["arxiv_id_l"])]
    out = pd.concat(matched) if matched else cand
    return out.rename(columns={"arxiv_id_h": "hi_id", "arxiv_id_l": "lo_id"})[["hi_id", "lo_id"]]


def build(papers_path, citations_path, block, seed, out_dir):
    """End to end like the polars step: read, pair all three splits, render prompts, write parquet."""
    import json
    from pathlib import Path

    from workflow_scripts.datasets.scijudge_prompt import render_messages

    cfg = block["pairs"]
    papers = pd.read_parquet(papers_path).merge(pd.read_parquet(citations_path), on="arxiv_id")
    papers = papers.rename(columns={"primary_category": "subcategory", "citation_count": "citations"})
    papers["published"] = pd.to_datetime(papers["published"])
    papers["window"] = papers["published"].dt.to_period("M")
    early = papers[papers["published"].dt.year <= cfg["cutoff_year"]]
    late = papers[papers["published"].dt.year > cfg["cutoff_year"]]
    norm = lambda s: s.str.normalize("NFKD").str.lower().str.replace(r"[^0-9a-z]+", " ", regex=True).str.strip()
    late_ok = late[~norm(late["title"]).isin(set(norm(early["title"])))]
    tid, ood = cfg["test_id"], cfg["test_ood"]
    splits = {
        "train": split_half_pairs(early, ["subcategory", "window"], cfg["min_diff"], cfg["min_rel_diff"], cfg["max_pairs_per_paper"]),
        "test_id": split_half_pairs(late_ok, ["subcategory", "window"], tid["min_diff"], tid["min_rel_diff"], cfg["max_pairs_per_paper"]),
    }
    used = set(splits["test_id"]["hi_id"]) | set(splits["test_id"]["lo_id"])
    splits["test_ood"] = ood_pairs(late, [i for i in late_ok["arxiv_id"] if i not in used], ood["hi_quantile"], ood["lo_quantile"],
                                   ood["max_days_apart"], ood["rel_diff"], ood["ds_floor"], ood["ds_scale"], tuple(ood["ds_quantiles"]))
    attrs = papers.set_index("arxiv_id")
    rng = np.random.default_rng(seed)
    counts = {}
    for name, pairs in splits.items():
        hi_is_a = rng.integers(0, 2, len(pairs)).astype(bool)
        ids = {"a": np.where(hi_is_a, pairs["hi_id"], pairs["lo_id"]), "b": np.where(hi_is_a, pairs["lo_id"], pairs["hi_id"])}
        rows = pd.DataFrame({"pair_id": [f"{name}-{h}-{lo}" for h, lo in zip(pairs["hi_id"], pairs["lo_id"])], "split": name,
                             "correct_answer": np.where(hi_is_a, "A", "B")})
        for side, sel in ids.items():
            p = attrs.loc[sel]
            rows[f"paper_{side}_arxiv_id"] = sel
            rows[f"paper_{side}_title"] = p["title"].to_numpy()
            rows[f"paper_{side}_abstract"] = p["abstract"].to_numpy()
            rows[f"paper_{side}_date"] = p["published"].dt.date.to_numpy()
            rows[f"paper_{side}_category"] = p["field"].to_numpy()
            rows[f"paper_{side}_subcategory"] = p["subcategory"].to_numpy()
            rows[f"paper_{side}_citations"] = p["citations"].to_numpy()
        rows["messages"] = [
            render_messages(r, system_prompt=block["system_prompt"], user_template=block["user_template"], today=block["today"])
            for r in rows[[f"paper_{s}_{k}" for s in "ab" for k in ("title", "abstract", "date")]].to_dict("records")
        ]
        rows.to_parquet(Path(out_dir) / f"{name}.parquet")
        counts[name] = len(rows)
    print(json.dumps(counts))
