"""The bad-file policy every reader shares (config ``bad_input``, options ``--quarantine-bad-files`` and
``--max-lost-fraction``), and the data-quality summary each reader step ends its log with.

A bad file is an input file with nothing usable in it: empty, not parseable (a truncated download), an HTML page, an
error answer saved as a response, or another source's response. Each becomes one rejects row (record ``*``, reason
``bad file (<kind>): <detail>``) and a WARNING line, and the reader goes on, so that the step reports every bad file at
once. Then the step fails, naming them, when quarantine is off, or when the papers lost to them exceed
``max_lost_fraction`` of the papers the step would have had (a loss that cannot be counted always fails).
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import re
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

from workflow_scripts.common.io import Rejects
from workflow_scripts.sources.errors import BadFileError, UnusableFile

log = logging.getLogger(__name__)

LISTED_IN_ERROR = 20  # the error names this many files; the log has a line per bad file
_HTML_RE = re.compile(rb"^\s*(<\?xml[^>]*>\s*)?(<!--.*?-->\s*)*<(!doctype\s+html|html)[\s>]", re.I | re.S)
_TITLE_RE = re.compile(rb"<title[^>]*>(.*?)</title>", re.I | re.S)
ERROR_KEYS = ("message", "error", "errors", "detail")


def fraction(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"expected a fraction in [0, 1], got {text}")
    return value


def add_bad_input_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quarantine-bad-files", action="store_true",
                   help="bad files become counted rejects instead of failing the step (up to --max-lost-fraction)")
    p.add_argument("--max-lost-fraction", type=fraction, default=0.01,
                   help="with --quarantine-bad-files: the step fails when more than this share of its papers was "
                        "in bad files")


def sniff(data: bytes) -> None:
    """UnusableFile for what no reader can use whatever its format: an empty body or an HTML page."""
    if not data.strip():
        raise UnusableFile("empty", f"{len(data)} bytes" + (" of whitespace" if data else ""))
    head = data[:4096]
    if _HTML_RE.match(head):
        title = _TITLE_RE.search(head)
        text = " ".join(title.group(1).decode("utf-8", "replace").split()) if title else ""
        raise UnusableFile("html", f"an HTML page{f' titled {text!r}' if text else ''}, not a response of the source")


def read_native(path) -> bytes:
    """A snapshot file's bytes, gunzipped when its name ends in .gz (some harvesters store responses so)."""
    data = Path(path).read_bytes()
    if not str(path).endswith(".gz"):
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        raise UnusableFile("malformed", f"not a complete gzip file (truncated?): {exc}") from None


def load_json_file(path, check: Callable[[object], None] | None = None) -> object:
    """One JSON file under the bad-file rules: UnusableFile when empty, HTML, not JSON or failing ``check``."""
    data = read_native(path)
    sniff(data)
    try:
        obj = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UnusableFile("malformed", f"not JSON (truncated?): {exc}") from None
    if check is not None:
        check(obj)
    return obj


def error_answer(obj: Any) -> str | None:
    """The message of a JSON error answer ({"message": "Too Many Requests"}, {"error": ...}), else None."""
    if not isinstance(obj, dict):
        return None
    for key in ERROR_KEYS:
        if obj.get(key):
            value = obj[key]
            return value if isinstance(value, str) else json.dumps(value)[:300]
    return None


@dataclass
class BadFile:
    file: str
    kind: str
    detail: str


class BadInput:
    """The bad files of one step: recorded as rejects while reading, judged once at the end by :meth:`enforce`."""

    def __init__(self, rejects: Rejects, quarantine: bool = False, max_lost_fraction: float = 0.01):
        self.rejects = rejects
        self.quarantine = quarantine
        self.max_lost_fraction = max_lost_fraction
        self.files: list[BadFile] = []

    @classmethod
    def from_args(cls, args: argparse.Namespace, rejects: Rejects) -> "BadInput":
        return cls(rejects, args.quarantine_bad_files, args.max_lost_fraction)

    def add(self, path, problem: UnusableFile, raw: Any = None) -> None:
        self.files.append(BadFile(str(path), problem.kind, problem.detail))
        self.rejects.add(path, "*", f"bad file ({problem.kind}): {problem.detail}", raw=raw)
        log.warning("%s: bad file (%s): %s", path, problem.kind, problem.detail)

    def __len__(self) -> int:
        return len(self.files)

    def summary(self, lost: int | None, expected: int, estimated: bool = False) -> dict:
        """The bad-input part of a step summary; ``lost`` of ``expected`` papers (None: the loss cannot be counted)."""
        if not self.files:
            lost = 0
        fraction = None if lost is None else (lost / expected if expected else float(lost > 0))
        return {
            "bad_files": [asdict(f) for f in self.files],
            "papers_lost": lost,
            "papers_lost_estimated": bool(self.files) and estimated,
            "lost_fraction": None if fraction is None else round(fraction, 6),
        }

    def conclude(self, step: str, summary: dict, write_outputs: Callable[[], None]) -> None:
        """Write the step's outputs if the policy accepts its bad files (else raise BadFileError naming them); either
        way the log ends with the data-quality summary."""
        try:
            self.enforce(step, summary)
            write_outputs()
        finally:
            log_summary(step, summary)

    def enforce(self, step: str, summary: dict) -> None:
        """Raise BadFileError naming the bad files when the policy does not accept them."""
        if not self.files:
            return
        if not self.quarantine:
            why = "bad files stop the step unless quarantined (--quarantine-bad-files, config bad_input.quarantine)"
        elif summary["lost_fraction"] is None:
            why = "the papers they held cannot be counted"
        elif summary["lost_fraction"] > self.max_lost_fraction:
            why = (f"{lost_text(summary)} lost, more than the allowed {self.max_lost_fraction:.2%} "
                   "(--max-lost-fraction, config bad_input.max_lost_fraction)")
        else:
            return
        listed = "\n  ".join(f"{f.file} ({f.kind}: {f.detail})" for f in self.files[:LISTED_IN_ERROR])
        more = len(self.files) - LISTED_IN_ERROR
        raise BadFileError(f"{step}: {len(self.files)} bad input file(s); {why}:\n  {listed}"
                           + (f"\n  ... and {more} more (one log line each)" if more > 0 else ""))


def lost_text(summary: dict) -> str:
    lost = summary.get("papers_lost")
    if lost is None:
        return "an unknown number of papers"
    approx = "~" if summary.get("papers_lost_estimated") else ""
    return f"{approx}{lost} paper(s) ({summary['lost_fraction']:.2%})"


def log_summary(step: str, summary: dict) -> None:
    """The last word of a reader step: rejects by reason, bad files, papers lost, duplicates; a WARNING when anything
    was rejected."""
    parts = []
    if summary.get("rejects"):
        parts.append(f"{sum(summary['rejects'].values())} reject(s) by reason {summary['rejects']}")
    bad = summary.get("bad_files") or []
    if bad:
        names = ", ".join(f"{b['file']} ({b['kind']})" for b in bad[:LISTED_IN_ERROR])
        parts.append(f"{len(bad)} bad file(s): {names}{' ...' if len(bad) > LISTED_IN_ERROR else ''}; "
                     f"{lost_text(summary)} lost to them")
    # duplicates are expected (versions, repeats) and resolved by one rule: counted here, never a warning by themselves
    duplicates = (f"{summary.get('duplicates', 0)} duplicate(s) resolved, {summary.get('duplicates_conflicting', 0)} "
                  "with conflicting values (the most recent wins; on a tie the one read later)")
    if parts:
        log.warning("%s data quality: %s; %s", step, "; ".join(parts), duplicates)
    else:
        log.info("%s data quality: no rejects, no bad files; %s", step, duplicates)
