"""PeerRead (allenai/PeerRead): a resumable download of its ``data/`` tree, and the parser of that layout into the
papers and reviews tables (tables.py).

    python -m workflow_scripts.sources.reviews.peerread harvest --out-dir DIR --venues iclr_2017 acl_2017 ... --done F
    python -m workflow_scripts.sources.reviews.peerread parse --snapshot DIR --venues ... --splits train dev test \
        --out-papers P --out-reviews R --rejects X --summary S

``harvest`` resolves the configured ref to a commit, lists the files of each venue with the GitHub trees API
(``{venue}/{split}/reviews/<id>.json`` and ``parsed_pdfs/<id>.pdf.json``; not the PDFs, which science-parse already
turned into ``parsed_pdfs``) and fetches each from the raw-file host at that commit. Every file is checked against
its git blob checksum from the listing (``listing.json``, which records the commit and every checksum); a rerun
keeps the files whose checksum matches and fetches the rest, so a kill costs at most one file. DIR then has
PeerRead's own layout, which is also what snapshot mode reads: ``{venue}/{split}/reviews/*.json`` (+ ``parsed_pdfs``),
e.g. the ``data/`` directory of a clone.

``parse`` handles the quirks of the real files: an ``id`` that is an int, a string or empty (then the file name);
scores as strings ("4", ACL/CoNLL) or ints (ICLR); ICLR's ``reviews`` list mixing official reviews with the program
committee's decision note, public comments, author replies, reviewers' empty pre-review questions and
``IS_META_REVIEW`` copies of an official review (each kept apart by ``kind``, copies and repeated entries dropped and
counted); null headings or sections in parsed PDFs; the margin line numbers of the ACL/CoNLL review copies. The
decision is ICLR's ``accepted``; ACL 2017 and CoNLL 2016 have none (null: the label rule is the benchmark's choice).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import re
import sys
from pathlib import Path
from typing import Any

import polars as pl
from tqdm import tqdm

from workflow_scripts.common.cli import parser, setup_logging
from workflow_scripts.common.io import Rejects, write_bytes_atomic, write_json_atomic
from workflow_scripts.sources.bad_input import BadInput, load_json_file
from workflow_scripts.sources.errors import BadFileError, RecordError, UnusableFile, run_main
from workflow_scripts.sources.http import HarvestError, PoliteClient, RetryPolicy
from workflow_scripts.sources.reader_io import remove_stale_temp_files
from workflow_scripts.sources.reviews import tables
from workflow_scripts.sources.reviews.text import clean_text, compile_patterns, first_date, score

log = logging.getLogger(__name__)

SOURCE = "peerread"
LISTING = "listing.json"
FILE_KINDS = ("reviews", "parsed_pdfs")
# numeric review fields (code/models/Review.py of PeerRead); PRESENTATION_FORMAT ("Poster", "Oral") is not a score
SCORES = ("RECOMMENDATION", "REVIEWER_CONFIDENCE", "CLARITY", "ORIGINALITY", "IMPACT", "SUBSTANCE",
          "SOUNDNESS_CORRECTNESS", "APPROPRIATENESS", "MEANINGFUL_COMPARISON", "REPLICABILITY",
          "RECOMMENDATION_UNOFFICIAL")
_YEAR_RE = re.compile(r"_(\d{4})$")


# ---------------------------------------------------------------------------------------------------------------------
# harvest


def git_blob_sha(data: bytes) -> str:
    """The checksum git (and the trees API) gives a file: sha1 of "blob <size>\\0" + content."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _api_json(client: PoliteClient, url: str) -> Any:
    resp = client.get(url)
    try:
        return resp.json()
    except ValueError:
        raise HarvestError(f"GET {url}: not a JSON answer: {resp.text[:200]!r}") from None


def _subtree(client: PoliteClient, api: str, tree_sha: str, name: str, what: str) -> str:
    tree = _api_json(client, f"{api}/git/trees/{tree_sha}")
    for entry in tree.get("tree", []):
        if entry.get("path") == name and entry.get("type") == "tree":
            return entry["sha"]
    names = sorted(e.get("path") for e in tree.get("tree", []) if e.get("type") == "tree")
    raise HarvestError(f"{what}: no directory {name!r}; there are {names}")


def list_files(client: PoliteClient, api_url: str, repo: str, ref: str, venues: list[str], splits: list[str]) -> dict:
    """The commit of ``ref`` and the review and parsed-PDF files of each venue/split with their git checksums."""
    api = f"{api_url.rstrip('/')}/repos/{repo}"
    commit = _api_json(client, f"{api}/commits/{ref}")
    try:
        commit_sha, root = commit["sha"], commit["commit"]["tree"]["sha"]
    except (KeyError, TypeError):
        raise HarvestError(f"{api}/commits/{ref}: no commit in the answer: {str(commit)[:200]}") from None
    data = _subtree(client, api, root, "data", f"{repo}@{commit_sha[:12]}")
    files = []
    for venue in venues:
        venue_sha = _subtree(client, api, data, venue, f"{repo}@{commit_sha[:12]}/data")
        tree = _api_json(client, f"{api}/git/trees/{venue_sha}?recursive=1")
        if tree.get("truncated"):
            raise HarvestError(f"{repo}/data/{venue}: the trees API truncated the listing; it cannot be complete")
        for entry in tree.get("tree", []):
            parts = entry.get("path", "").split("/")
            if (entry.get("type") == "blob" and len(parts) == 3 and parts[0] in splits and parts[1] in FILE_KINDS
                    and parts[2].endswith(".json")):
                files.append({"path": f"{venue}/{entry['path']}", "sha": entry["sha"], "size": entry.get("size")})
    return {"commit": commit_sha, "files": sorted(files, key=lambda f: f["path"])}


def harvest(out_dir: Path, repo: str, ref: str, venues: list[str], splits: list[str], api_url: str, raw_url: str,
            policy: RetryPolicy | None = None) -> dict:
    out_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temp_files(out_dir)
    request = {"repo": repo, "ref": ref, "venues": sorted(venues), "splits": sorted(splits)}
    listing_path = out_dir / LISTING
    listing = json.loads(listing_path.read_text(encoding="utf-8")) if listing_path.exists() else None
    with PoliteClient(policy, headers={"Accept": "application/vnd.github+json"}) as client:
        if listing is None or listing.get("request") != request:
            # a resumed harvest keeps the commit it started on, even when the branch has moved since
            listing = {"request": request, **list_files(client, api_url, repo, ref, venues, splits)}
            write_json_atomic(listing_path, listing)
            log.info("%s@%s: %d files to fetch for %s", repo, listing["commit"][:12], len(listing["files"]), venues)
        fetched = kept = 0
        for f in tqdm(listing["files"], unit="file", desc="peerread", file=sys.stderr, mininterval=5):
            target = out_dir / f["path"]
            if target.exists() and git_blob_sha(target.read_bytes()) == f["sha"]:
                kept += 1
                continue
            url = f"{raw_url.rstrip('/')}/{repo}/{listing['commit']}/data/{f['path']}"
            body = client.get(url).content
            if git_blob_sha(body) != f["sha"]:
                raise HarvestError(f"GET {url}: checksum {git_blob_sha(body)} differs from the listing's {f['sha']}")
            write_bytes_atomic(target, body)
            fetched += 1
    summary = {"source": SOURCE, "repo": repo, "ref": ref, "commit": listing["commit"], "files": len(listing["files"]),
               "fetched": fetched, "already_present": kept,
               "listing_sha256": hashlib.sha256(listing_path.read_bytes()).hexdigest()}
    log.info("peerread: %d file(s) fetched, %d already present and verified, commit %s", fetched, kept,
             listing["commit"])
    return summary


# ---------------------------------------------------------------------------------------------------------------------
# parse


def _check_review_file(obj: Any) -> None:
    if not isinstance(obj, dict) or not isinstance(obj.get("reviews"), list):
        keys = sorted(obj)[:12] if isinstance(obj, dict) else type(obj).__name__
        raise UnusableFile("unknown schema", f"not a PeerRead review file (no 'reviews' list); found {keys}")


def _check_parsed_pdf(obj: Any) -> None:
    if not isinstance(obj, dict) or not isinstance(obj.get("metadata"), dict):
        keys = sorted(obj)[:12] if isinstance(obj, dict) else type(obj).__name__
        raise UnusableFile("unknown schema", f"not a science-parse file (no 'metadata' object); found {keys}")


def paper_id(raw: Any, path: Path) -> tuple[str, str]:
    """(id, its form): PeerRead's ``id`` as text (an int or a string in the files), the file name when it is empty
    (as PeerRead's own code/models/Paper.py does)."""
    stem = path.name.removesuffix(".json")
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return stem, "empty (file name used)"
    if isinstance(raw, bool) or not isinstance(raw, (int, str)):
        raise RecordError(f"bad id: {raw!r}")
    return str(raw).strip(), type(raw).__name__


def decision_of(obj: dict) -> tuple[str | None, str | None]:
    """ICLR's ``accepted`` (a bool; ``"true"``/``"false"`` strings accepted) -> accept/reject; absent -> None."""
    raw = obj.get("accepted")
    if raw is None:
        return None, None
    if isinstance(raw, str) and raw.strip().lower() in ("true", "false"):
        raw = raw.strip().lower() == "true"
    if not isinstance(raw, bool):
        raise RecordError(f"bad accepted value: {raw!r}")
    return ("accept" if raw else "reject"), str(raw).lower()


def _kind(entry: dict, rating: float | None) -> str:
    other = str(entry.get("OTHER_KEYS") or "")
    if entry.get("IS_META_REVIEW") or entry.get("is_meta_review"):
        return "meta_review"
    if other.endswith(" pcs") or str(entry.get("TITLE") or "").strip().lower() == "iclr committee final decision":
        return "decision"
    if rating is not None:
        return "official"
    return "question" if "AnonReviewer" in other else "comment"


def _norm(text: str) -> str:
    return " ".join(text.split())


def review_entries(entries: list, key: str, venue: str, pid: str, path: Path, rejects: Rejects, counts: dict) -> list[dict]:
    """The review-like entries of one paper as reviews-table rows, copies and repeats dropped (and counted)."""
    rows, seen = [], set()
    for i, entry in enumerate(entries):
        record = f"{pid}#{i}"
        if not isinstance(entry, dict):
            rejects.add(path, record, f"malformed review entry: expected an object, got {type(entry).__name__}", raw=entry)
            continue
        try:
            values = {name: score(entry.get(name), name) for name in SCORES}
        except RecordError as exc:
            rejects.add(path, record, str(exc), raw=entry)
            continue
        text = entry.get("comments")
        text = text if isinstance(text, str) else ""
        kind = _kind(entry, values["RECOMMENDATION"])
        scores = [{"name": name.lower(), "value": v} for name, v in values.items() if v is not None]
        fingerprint = (kind, entry.get("OTHER_KEYS"), _norm(text), tuple((s["name"], s["value"]) for s in scores))
        if fingerprint in seen:
            counts["repeated_entries"] += 1
            continue
        seen.add(fingerprint)
        rows.append({
            "key": key, "source": SOURCE, "venue": venue, "paper_id": pid, "review_id": record, "kind": kind,
            "reviewer": entry.get("OTHER_KEYS") or None, "title": entry.get("TITLE") or None, "text": text,
            "rating": values["RECOMMENDATION"], "confidence": values["REVIEWER_CONFIDENCE"], "scores": scores,
            "date": first_date(entry.get("DATE")),
        })
    official_texts = {_norm(r["text"]) for r in rows if r["kind"] == "official" and r["text"].strip()}
    kept = [r for r in rows if not (r["kind"] == "meta_review" and _norm(r["text"]) in official_texts)]
    counts["meta_review_copies"] += len(rows) - len(kept)
    return kept


def parsed_sections(path: Path, bad: BadInput, patterns, counts: dict) -> tuple[list[dict] | None, dict]:
    """(sections, metadata) of a parsed PDF; (None, {}) when it is missing, unusable (a bad file) or has none."""
    if not path.exists():
        counts["without_parsed_pdf"] += 1
        return None, {}
    try:
        meta = load_json_file(path, _check_parsed_pdf)["metadata"]
    except UnusableFile as problem:
        bad.add(path, problem, raw=path.read_bytes()[:500])
        return None, {}
    raw_sections = meta.get("sections")
    if not isinstance(raw_sections, list):
        counts["sections_null"] += 1
        return None, meta
    sections = []
    for s in raw_sections:
        if not isinstance(s, dict):
            continue
        heading = s.get("heading")
        counts["null_headings"] += heading is None
        text = clean_text(s.get("text") if isinstance(s.get("text"), str) else "", patterns)
        if text or heading:
            sections.append({"heading": heading if isinstance(heading, str) else None, "text": text})
    return sections, meta


def _authors(obj: dict, meta: dict) -> list[str]:
    raw = obj.get("authors", meta.get("authors"))
    if isinstance(raw, str):  # ICLR: "Nicolas Papernot, Martín Abadi, ..."
        return [a.strip() for a in raw.split(",") if a.strip()]
    return [a.strip() for a in raw if isinstance(a, str) and a.strip()] if isinstance(raw, list) else []


def read_paper(path: Path, venue: str, split: str, root: Path, bad: BadInput, patterns, counts: dict) -> tuple[dict, list[dict]] | None:
    """One review file (+ its parsed PDF) -> (paper row, review rows); None when the file or the record is unusable."""
    rejects = bad.rejects
    try:
        obj = load_json_file(path, _check_review_file)
    except UnusableFile as problem:
        bad.add(path, problem, raw=path.read_bytes()[:500])
        return None
    try:
        pid, form = paper_id(obj.get("id"), path)
        decision, decision_raw = decision_of(obj)
    except RecordError as exc:
        rejects.add(path, obj.get("id") or path.stem, str(exc))
        return None
    counts["id_forms"][form] = counts["id_forms"].get(form, 0) + 1
    parsed = path.parent.parent / "parsed_pdfs" / f"{path.name.removesuffix('.json')}.pdf.json"
    sections, meta = parsed_sections(parsed, bad, patterns, counts)
    title = obj.get("title") or meta.get("title")
    if not isinstance(title, str) or not title.strip():
        rejects.add(path, pid, "missing title")
        return None
    key = tables.paper_key(SOURCE, venue, pid)
    reviews = review_entries(obj["reviews"], key, venue, pid, path, rejects, counts)
    official = tables.official_reviews(reviews)
    abstract = obj.get("abstract") or meta.get("abstractText")
    year = _YEAR_RE.search(venue)
    paper = {
        "key": key, "source": SOURCE, "venue": venue, "year": int(year.group(1)) if year else None, "split": split,
        "paper_id": pid, "title": " ".join(title.split()), "abstract": abstract.strip() if isinstance(abstract, str) else None,
        "authors": _authors(obj, meta), "sections": sections or None,
        "text_source": "science-parse" if sections else None,
        "decision": decision, "decision_raw": decision_raw, "reviews": official, "n_reviews": len(official),
        "pdf_field": None, "file": path.relative_to(root).as_posix(),
    }
    return paper, reviews


def parse(root: Path, venues: list[str], splits: list[str], bad: BadInput, drop_lines: list[str]) -> tuple[pl.DataFrame, pl.DataFrame, dict, int]:
    """(papers, reviews, counts, papers lost to bad review files) of a directory in PeerRead's layout."""
    patterns = compile_patterns(drop_lines)
    counts = {"id_forms": {}, "repeated_entries": 0, "meta_review_copies": 0, "without_parsed_pdf": 0,
              "sections_null": 0, "null_headings": 0, "duplicates": 0, "duplicates_conflicting": 0}
    found: dict[str, tuple[dict, list[dict]]] = {}
    files = lost = 0
    for venue in venues:
        for split in splits:
            review_dir = root / venue / split / "reviews"
            if not review_dir.is_dir():
                raise BadFileError(f"{review_dir}: missing; a PeerRead snapshot holds {{venue}}/{{split}}/reviews/*.json "
                                   f"for every configured venue and split ({venue}, {split})")
            for path in sorted(review_dir.glob("*.json"), key=lambda p: (len(p.name), p.name)):
                if path.name.startswith("."):
                    continue
                files += 1
                before = len(bad)
                paper = read_paper(path, venue, split, root, bad, patterns, counts)
                lost += any(f.file == str(path) for f in bad.files[before:])
                if paper is None:
                    continue
                # the one duplicate rule (duplicates.py) without a timestamp: the copy read later wins
                earlier = found.get(paper[0]["key"])
                if earlier is not None:
                    counts["duplicates"] += 1
                    same = {k: v for k, v in earlier[0].items() if k != "file"} == {k: v for k, v in paper[0].items() if k != "file"}
                    counts["duplicates_conflicting"] += not same
                    log.info("%s: paper %s already read from %s; the copy read later is kept",
                             path, paper[0]["paper_id"], earlier[0]["file"])
                found[paper[0]["key"]] = paper
    papers = tables.papers_frame([p for p, _ in found.values()])
    reviews = tables.reviews_frame([r for _, rows in found.values() for r in rows])
    return papers, reviews, {"files": files, **counts, "venues": venues, "splits": splits}, lost


def main(argv: list[str] | None = None) -> None:
    p = parser(__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    h = sub.add_parser("harvest", help="download PeerRead's data/ tree", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    h.add_argument("--out-dir", required=True, type=Path, help="files in PeerRead's layout + listing.json")
    h.add_argument("--repo", default="allenai/PeerRead")
    h.add_argument("--ref", default="master", help="branch, tag or commit")
    h.add_argument("--venues", nargs="+", required=True)
    h.add_argument("--splits", nargs="+", default=["train", "dev", "test"])
    h.add_argument("--api-url", default="https://api.github.com")
    h.add_argument("--raw-url", default="https://raw.githubusercontent.com")
    h.add_argument("--min-interval-s", type=float, default=0.2)
    h.add_argument("--max-retries", type=int, default=8)
    h.add_argument("--backoff-base-s", type=float, default=2.0)
    h.add_argument("--backoff-max-s", type=float, default=300.0)
    h.add_argument("--timeout-s", type=float, default=120.0)
    h.add_argument("--done", type=Path, help="JSON summary written at the end (the file Snakemake tracks)")
    c = sub.add_parser("parse", help="a directory in PeerRead's layout -> papers + reviews tables",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    c.add_argument("--snapshot", required=True, type=Path, help="{venue}/{split}/reviews/*.json (+ parsed_pdfs/)")
    c.add_argument("--venues", nargs="+", required=True)
    c.add_argument("--splits", nargs="+", default=["train", "dev", "test"])
    tables.add_output_args(c)
    args = p.parse_args(argv)
    setup_logging(args.verbose)
    if args.command == "harvest":
        policy = RetryPolicy(args.min_interval_s, args.max_retries, args.backoff_base_s, args.backoff_max_s, args.timeout_s)
        summary = harvest(args.out_dir, args.repo, args.ref, args.venues, args.splits, args.api_url, args.raw_url, policy)
        if args.done:
            write_json_atomic(args.done, summary)
        return
    bad = BadInput.from_args(args, Rejects())
    papers, reviews, summary, lost = parse(args.snapshot, args.venues, args.splits, bad, args.drop_lines)
    tables.write_tables(SOURCE, papers, reviews, bad, summary, args, lost, summary["files"])


if __name__ == "__main__":
    run_main(main)
