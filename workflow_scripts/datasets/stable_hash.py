"""Seeded 64-bit hashes of strings that do not depend on row order, the polars version or the platform.

Polars' own ``hash`` may change between releases; the splits of a dataset must not. A string is hashed from its UTF-8
bytes in 8-byte little-endian blocks (the last one zero-padded; at least one), starting from the seed and the length:
h = mix64(h ^ block) per block, with the SplitMix64 finalizer as ``mix64``. It is vectorized over the Arrow buffers
(one pass per 8 bytes of the longest string, no per-string Python); ``benchmarks/pandas_pairs.py`` computes the
same function in plain Python.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from workflow_scripts.sources.titles import Utf8

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
CHUNK = 1 << 20  # elements per step of the vectorized loops (8 MB of uint64)


def mix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finalizer: a bijection of uint64 that spreads every input bit over the whole word."""
    return mix64_inplace(x.astype(np.uint64, copy=True))


def mix64_inplace(x: np.ndarray, scratch: np.ndarray | None = None) -> np.ndarray:
    """:func:`mix64` in place (``scratch``: a uint64 array of x's shape, to allocate nothing)."""
    tmp = np.empty_like(x) if scratch is None else scratch
    with np.errstate(over="ignore"):
        for shift, mult in ((30, _M1), (27, _M2), (31, None)):
            np.right_shift(x, np.uint64(shift), out=tmp)
            x ^= tmp
            if mult is not None:
                x *= mult
    return x


def seed_word(seed: int) -> np.uint64:
    """A seed as a well-spread 64-bit word."""
    with np.errstate(over="ignore"):
        return mix64(np.array([np.uint64(seed % 2**64) * _GOLDEN + _GOLDEN], dtype=np.uint64))[0]


_TAIL_MASKS = np.array([(1 << (8 * n)) - 1 for n in range(8)] + [2**64 - 1], dtype=np.uint64)


def hash_spans(data: np.ndarray, starts: np.ndarray, lengths: np.ndarray, seed: int = 0) -> np.ndarray:
    """uint64 per byte span ``data[start : start + length]``."""
    padded = np.concatenate([data, np.zeros(8, dtype=np.uint8)])
    # every byte offset as the start of an unaligned little-endian uint64: one gather reads a block
    blocks = np.ndarray((len(padded) - 7,), dtype="<u8", buffer=padded, strides=(1,))
    out = np.empty(len(starts), dtype=np.uint64)
    for i in range(0, len(starts), CHUNK):  # small temporaries are reused by the allocator, large ones re-faulted
        out[i : i + CHUNK] = _hash_chunk(blocks, starts[i : i + CHUNK], lengths[i : i + CHUNK], seed_word(seed))
    return out


def _hash_chunk(blocks: np.ndarray, starts: np.ndarray, lengths: np.ndarray, seed: np.uint64) -> np.ndarray:
    n_blocks = np.maximum((lengths + 7) // 8, 1)
    # most blocks first (a radix sort of small integers): the spans with a block left at step k are then a prefix,
    # so every step works on a slice, not on a gathered subset
    order = np.argsort((n_blocks.max(initial=1) - n_blocks).astype(np.uint16), kind="stable")
    starts, lengths = starts[order], lengths[order]
    running = len(order) - np.cumsum(np.bincount(n_blocks, minlength=n_blocks.max(initial=1) + 1))[:-1]
    with np.errstate(over="ignore"):
        h = lengths.astype(np.uint64) * _GOLDEN
        h ^= seed
        scratch = np.empty_like(h)
        for k, n in enumerate(running):
            left = np.minimum(lengths[:n] - 8 * k, 8)  # bytes of this span in the block; the rest is the next span's
            block = blocks[starts[:n] + 8 * k] & _TAIL_MASKS[np.maximum(left, 0)]
            part = h[:n]
            part ^= block
            mix64_inplace(part, scratch[:n])
    out = np.empty_like(h)
    out[order] = h
    return out


def hash_strings(strings: pl.Series, seed: int = 0) -> np.ndarray:
    """uint64 per string (a null hashes like the empty string)."""
    text = Utf8.of(strings)
    return hash_spans(text.data, text.starts, text.lengths, seed)


def unit_interval(h: np.ndarray) -> np.ndarray:
    """Hashes as floats in [0, 1) (the top 53 bits), for seeded shares: ``unit_interval(h) < share``."""
    return (h >> np.uint64(11)).astype(np.float64) / float(2**53)
