"""The vectorized shingles and MinHash signatures of near_titles against their definitions, one title at a time."""

from __future__ import annotations

import numpy as np
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from workflow_scripts.datasets import near_titles as nt
from workflow_scripts.datasets.stable_hash import hash_strings, mix64, seed_word
from workflow_scripts.sources.titles import Utf8

M64 = 2**64
COMBINE = int(nt._COMBINE)


def mix(x: int) -> int:
    return int(mix64(np.array([x], dtype=np.uint64))[0])


def plain_shingles(title: str | None, k: int, seed: int) -> list[int]:
    """k consecutive words folded from their hashes; a title of fewer words is one shingle."""
    words = title.split(" ") if title else []
    h = [int(x) for x in hash_strings(pl.Series(words, dtype=pl.String), seed)]
    out = []
    for i in range(len(words)):
        if i + k <= len(words) or (i == 0 and len(words) < k):
            sh = h[i]
            for step in range(1, k):
                sh = mix((sh * COMBINE + (h[i + step] if i + step < len(words) else 0)) % M64)
            out.append(sh)
    return out


def plain_signatures(shingles: list[list[int]], bands: int, rows: int, seed: int):
    """Per title: band keys and the 8-bit fingerprints of min((a x + b) mod 2^64) over its shingles."""
    n_hash = bands * rows
    params = mix64(seed_word(seed) + np.arange(1, 2 * n_hash + 1, dtype=np.uint64))
    a, b = [int(x) | 1 for x in params[:n_hash]], [int(x) for x in params[n_hash:]]
    keys, fingerprints = [], []
    for t, xs in enumerate(shingles):
        if not xs:  # a band key of its own in every band, no fingerprint
            keys.append([mix(t + 2**63) >> 32] * bands)
            fingerprints.append([0] * n_hash)
            continue
        m = [min((a[f] * x + b[f]) % M64 for x in xs) for f in range(n_hash)]
        band_keys = []
        for band in range(bands):
            acc = band
            for r in range(rows):
                acc = mix((acc * COMBINE + m[band * rows + r]) % M64)
            band_keys.append(acc >> 32)
        keys.append(band_keys)
        fingerprints.append([v >> 56 for v in m])
    return np.array(keys, dtype=np.uint32).T.reshape(bands, -1), np.array(fingerprints, dtype=np.uint8).T.reshape(n_hash, -1)


WORD = st.sampled_from(["a", "of", "graph", "neural", "networks", "quantum", "x1", "sparse", "attention"])
TITLES = st.lists(st.one_of(st.none(), st.lists(WORD, max_size=40).map(" ".join)), max_size=30)


@settings(max_examples=60, deadline=None)
@given(TITLES, st.integers(1, 3), st.integers(0, 2**32))
def test_title_shingles_are_their_definition(titles, k, seed):
    counts, s = nt.title_shingles(Utf8.of(pl.Series(titles, dtype=pl.String)), k, seed, threads=2)
    expected = [plain_shingles(t, k, seed) for t in titles]
    assert counts.tolist() == [len(e) for e in expected]
    assert s.tolist() == [x for e in expected for x in e]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.integers(0, 2**32 - 1), max_size=70), max_size=40), st.integers(1, 4), st.integers(1, 3),
       st.integers(0, 2**32), st.randoms(use_true_random=False))
def test_minhash_signatures_are_their_definition(shingles, bands, rows, seed, rnd):
    """Titles of 0 to 70 shingles (each width of the vectorized layout), some shingles unused."""
    counts = np.array([len(x) for x in shingles], dtype=np.int64)
    s = np.array([x for xs in shingles for x in xs], dtype=np.uint32)
    use = np.array([rnd.random() < 0.8 for _ in range(len(s))], dtype=bool)
    sig = nt.minhash(counts, s, use, bands, rows, seed, threads=2)
    used, i = [], 0
    for xs in shingles:
        used.append([x for x, u in zip(xs, use[i : i + len(xs)]) if u])
        i += len(xs)
    keys, fingerprints = plain_signatures(used, bands, rows, seed)
    assert np.array_equal(sig.keys, keys) and np.array_equal(sig.fingerprints, fingerprints)
