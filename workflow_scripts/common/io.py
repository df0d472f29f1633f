"""Atomic file writes and the rejects file: the two guarantees every step relies on.

A step killed at any moment leaves either the old file or the new one, never half of one, because it writes to a
temporary file in the same directory and renames it over the target (rename is atomic on POSIX filesystems).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any, Iterator

import polars as pl

log = logging.getLogger(__name__)


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; rename it onto ``target`` only if the block succeeds."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_bytes_atomic(target: str | os.PathLike, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(target: str | os.PathLike, text: str) -> None:
    write_bytes_atomic(target, text.encode("utf-8"))


def write_json_atomic(target: str | os.PathLike, obj: Any) -> None:
    write_text_atomic(target, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def write_parquet_atomic(df: pl.DataFrame, target: str | os.PathLike, metadata: dict[str, str] | None = None) -> None:
    """``metadata``: the parquet's key-value metadata (what travels with the data, e.g. a step's counts)."""
    # statistics off and a fixed compression keep the bytes identical for identical frames
    with atomic_path(target) as tmp:
        df.write_parquet(tmp, compression="zstd", statistics=False, metadata=metadata)


def read_jsonl_tolerant(path: str | os.PathLike) -> list[dict]:
    """Read a JSON-lines state file that this package appends to; a torn last line (kill mid-append) is skipped."""
    path = Path(path)
    if not path.exists():
        return []
    rows = []
    lines = path.read_bytes().splitlines()
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            if i == len(lines) - 1:
                log.warning("%s: ignoring torn last line %d (an earlier run was killed mid-append)", path, i + 1)
            else:
                raise ValueError(f"{path}: line {i + 1} is not valid JSON") from None
    return rows


def append_jsonl(path: str | os.PathLike, row: dict) -> None:
    """Append one JSON line durably. A torn last line (an earlier kill mid-append) is cut off first, so the file
    stays readable by :func:`read_jsonl_tolerant` and the torn record is simply redone by the caller's resume logic."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and path.stat().st_size > 0:
        data = path.read_bytes()
        if not data.endswith(b"\n"):
            keep = data.rfind(b"\n") + 1
            log.warning("%s: cutting a torn last line of %d bytes (an earlier run was killed mid-append)", path, len(data) - keep)
            with open(path, "rb+") as fh:
                fh.truncate(keep)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(row, sort_keys=True, default=str) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


class Rejects:
    """Collects records that could not be used, with where they came from and why, and writes them as JSON lines.

    Nothing is dropped silently: every step that skips input records routes them through here, logs the count per
    reason, and writes the rejects file (empty when there were none, so Snakemake can track it as an output).
    """

    def __init__(self, max_raw_chars: int = 2000):
        self.rows: list[dict] = []
        self.max_raw_chars = max_raw_chars

    def add(self, file: str | os.PathLike, record: str | int, reason: str, raw: Any = None) -> None:
        if isinstance(raw, bytes):
            raw = raw.decode("utf-8", errors="backslashreplace")
        if raw is not None and not isinstance(raw, str):
            raw = json.dumps(raw, default=str, ensure_ascii=False)
        self.rows.append(
            {"file": str(file), "record": str(record), "reason": reason, "raw": None if raw is None else raw[: self.max_raw_chars]}
        )

    def __len__(self) -> int:
        return len(self.rows)

    def counts(self) -> dict[str, int]:
        return dict(sorted(Counter(r["reason"].split(":")[0] for r in self.rows).items()))

    def write(self, path: str | os.PathLike) -> None:
        body = "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in self.rows)
        write_text_atomic(path, body)
        if self.rows:
            log.warning("%d record(s) rejected, written to %s: %s", len(self.rows), path, self.counts())
        else:
            log.info("no records rejected")
