"""The content-addressed response cache: append-only segment files, safe against a kill at any moment.

A directory per use (``results/llm_cache/teacher/``) holds ``seg-*.jsonl`` files. Every process that receives
answers appends to a segment of its own, one line per answer, written with a single ``write`` to a file opened with
O_APPEND, so processes sharing the directory never interleave. A process killed mid-write leaves at most a torn last
line in its own segment; readers skip it (counted, with a warning) and the answer it held is simply asked again. A
key already present is never written again by the process that knows it, so the cache holds each answer once; when
two processes ask the same request at the same moment, the first line read wins.

Lines start with their key (``{"key":"<sha256>",...``) so the index is built without parsing whole records; records
are read on demand, so a large cache costs an index entry per answer in memory, not the answers.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

_PREFIX = b'{"key":"'
_KEY_END = len(_PREFIX) + 64


class ResponseCache:
    def __init__(self, directory: str | os.PathLike):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._index: dict[str, tuple[int, int, int]] = {}  # key -> (segment number, offset, length)
        self._files: list[int] = []  # read descriptors, by segment number
        self._writer: int | None = None  # our own segment, created on the first answer
        self._own = -1  # its segment number
        self._end = 0  # its length: where the next line goes
        self.torn = 0
        self._load()

    def _load(self) -> None:
        for path in sorted(self.dir.glob("seg-*.jsonl")):
            data = path.read_bytes()
            number = len(self._files)
            self._files.append(os.open(path, os.O_RDONLY))
            offset = 0
            for line in data.splitlines(keepends=True):
                key = line[len(_PREFIX):_KEY_END].decode("ascii", "replace")
                complete = line.endswith(b"}\n") and line.startswith(_PREFIX) and line[_KEY_END:_KEY_END + 1] == b'"'
                if not complete:
                    self.torn += 1
                elif key not in self._index:
                    self._index[key] = (number, offset, len(line))
                offset += len(line)
        if self.torn:
            log.warning("%s: %d torn or unreadable cache line(s) skipped (a process was killed mid-write); their "
                        "requests are asked again", self.dir, self.torn)

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, key: str) -> bool:
        return key in self._index

    def get(self, key: str) -> dict[str, Any] | None:
        where = self._index.get(key)
        if where is None:
            return None
        number, offset, length = where
        line = os.pread(self._files[number], length, offset)
        try:
            return json.loads(line)
        except ValueError:  # damaged on disk after it was indexed: a miss, asked again
            log.warning("%s: cache record of %s is unreadable; asking again", self.dir, key[:12])
            del self._index[key]
            return None

    def put(self, key: str, record: dict[str, Any]) -> None:
        """Append ``record`` under ``key`` unless the key is known (one answer per request)."""
        if key in self._index:
            return
        fields = json.dumps(record, ensure_ascii=False, separators=(",", ":"), default=str)[1:]  # '"a":1,...}'
        line = _PREFIX + key.encode("ascii") + (b'",' if record else b'"') + fields.encode("utf-8") + b"\n"
        if self._writer is None:
            name = f"seg-{time.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(4)}.jsonl"
            path = self.dir / name
            self._writer = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            self._files.append(os.open(path, os.O_RDONLY))
            self._own = len(self._files) - 1
        written = os.write(self._writer, line)
        if written != len(line):  # a short write (disk full): the line is torn, and readers will skip it
            raise OSError(f"{self.dir}: short write to the cache ({written} of {len(line)} bytes)")
        self._index[key] = (self._own, self._end, len(line))
        self._end += len(line)

    def close(self) -> None:
        if self._writer is not None:
            os.fsync(self._writer)
            os.close(self._writer)
            self._writer = None
        for fd in self._files:
            os.close(fd)
        self._files = []

    def __enter__(self) -> "ResponseCache":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
