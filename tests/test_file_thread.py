"""The pair builder's FileThread: a file written by a thread of its own keeps every byte in order and does not lose
a failed write."""

from __future__ import annotations

import os

import pytest

from workflow_scripts.datasets.scijudge_pairs import FileThread


def test_writes_arrive_whole_and_in_order(tmp_path):
    path = tmp_path / "out.bin"
    parts = [bytes([i % 251]) * (1 + 7919 * i % 100_000) for i in range(300)]  # more writes than the queue holds
    with FileThread(path, depth=4) as sink:
        for part in parts:
            buffer = bytearray(part)
            assert sink.write(memoryview(buffer)) == len(part)
            buffer[:] = b"\0" * len(buffer)  # the caller reuses its buffer once write returns
    assert path.read_bytes() == b"".join(parts)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (every write fails with ENOSPC)")
def test_a_failed_write_is_raised_not_lost():
    with pytest.raises(OSError, match="No space left"):
        with FileThread("/dev/full") as sink:
            for _ in range(50):
                sink.write(b"x" * 1_000_000)
