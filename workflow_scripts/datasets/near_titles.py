"""Near-duplicate titles: word-shingle sets with Jaccard similarity >= a threshold, found with MinHash and LSH.

For millions of titles, in numpy over the Arrow buffers of the normalized titles, a chunk of titles at a time:

1. shingles: ``k`` consecutive words, hashed from the words' stable hashes (:mod:`stable_hash`); kept as 32 bits;
2. the most common shingles ("of the", "neural networks") find no candidates (a sketch counts them): three minima of
   one common shingle would put thousands of unrelated titles into one bucket, and a near duplicate shares its rare
   shingles too;
3. MinHash: bands x rows seeded functions x -> (a x + b) mod 2^64 (odd a; the minimum is that of the high bits, as in
   multiply-shift hashing); a band key hashes a band's minima, and titles sharing a key in some band are candidates
   (a pair of similarity s is one with probability 1 - (1 - s^r)^b);
4. an 8-bit fingerprint of every minimum estimates each candidate's similarity; the exact Jaccard similarity of the
   full 64-bit shingle sets is computed for the candidates whose estimate is near the threshold or above, and only
   pairs that reach it are returned.

Large temporary arrays are avoided on purpose: fresh memory is what this costs most on virtual machines.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import polars as pl

from workflow_scripts.datasets.stable_hash import CHUNK, hash_spans, mix64, mix64_inplace, seed_word
from workflow_scripts.sources.titles import Utf8, words

_COMBINE = np.uint64(0x9E3779B97F4A7C15)
_SKETCH_BITS = 21  # counters of the shingle-frequency sketch (16 MB: small enough for the allocator to reuse)
_TITLES_PER_CHUNK = CHUNK // 16  # ~16 words a title at most on average: a chunk's words stay near CHUNK


def _shingles_of(text: Utf8, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(shingles per string, 64-bit shingle hashes in string order) of a few normalized strings."""
    owner, starts, lengths = words(text)
    h = hash_spans(text.data, starts, lengths, seed)
    n_words = len(owner)
    per_title = np.bincount(owner, minlength=len(text.valid)) if n_words else np.zeros(len(text.valid), np.int64)
    sh = h
    # words are in title order, so word j is in word i's title exactly when owner[j] == owner[i]
    with np.errstate(over="ignore"):
        for step in range(1, k):  # fold in word i + step of the same title (none past its end)
            nxt = np.zeros_like(h)
            np.copyto(nxt[:-step], h[step:], where=owner[step:] == owner[:-step])
            sh = mix64(sh * _COMBINE + nxt)
    # full shingles (word i + k - 1 in the same title), or a title's first word when it has fewer than k words
    keep = np.r_[True, owner[1:] != owner[:-1]] if n_words else np.zeros(0, dtype=bool)
    m = max(n_words - k + 1, 0)
    keep[:m] |= owner[k - 1 :] == owner[:m]
    return np.where(per_title > 0, np.maximum(per_title - k + 1, 1), 0), sh[keep]


def title_shingles(text: Utf8, k: int, seed: int, bits: int = 64, threads: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(shingles per title, shingle hashes ordered by title), as uint64 or (``bits=32``) their top 32 bits.

    A shingle is ``k`` consecutive words; a title of fewer words is one shingle. A shingle repeated within a title
    repeats here (MinHash ignores it; :func:`jaccard` takes sets). Chunks of titles run on ``threads`` threads."""
    n = len(text.valid)
    counts = np.zeros(n, dtype=np.int64)

    def chunk(i: int) -> np.ndarray:
        j = min(n, i + _TITLES_PER_CHUNK)
        counts[i:j], sh = _shingles_of(text.slice(i, j), k, seed)
        return (sh >> np.uint64(32)).astype(np.uint32) if bits == 32 else sh

    with ThreadPoolExecutor(max(1, threads)) as pool:
        parts = list(pool.map(chunk, range(0, n, _TITLES_PER_CHUNK)))
    dtype = np.uint32 if bits == 32 else np.uint64
    return counts, (np.concatenate(parts) if parts else np.zeros(0, dtype))


def _title_ranges(counts: np.ndarray) -> list[tuple[int, int, int, int]]:
    """(first title, end title, first shingle, end shingle) of consecutive titles holding about CHUNK shingles."""
    ends = np.cumsum(counts)
    ranges, i = [], 0
    while i < len(counts):
        start = int(ends[i - 1]) if i else 0
        j = max(i + 1, int(np.searchsorted(ends, start + CHUNK, side="right")))
        j = min(j, len(counts))
        ranges.append((i, j, start, int(ends[j - 1])))
        i = j
    return ranges


def informative(counts: np.ndarray, s: np.ndarray, share: float, threads: int = 1) -> np.ndarray:
    """Mask of the shingles that find candidates: all but the common ones (counted more than ``share`` x titles
    times, and more than 100), and all of a title's shingles when it has no other. The counts come from a sketch (a
    counter per 2^21 hash buckets): a collision can only make a shingle look more common. ``threads`` threads."""
    limit = max(100, share * len(counts))
    shift = np.uint32(32 - _SKETCH_BITS)
    ranges = _title_ranges(counts)

    def count(part: list[tuple[int, int, int, int]]) -> np.ndarray:
        sketch = np.zeros(1 << _SKETCH_BITS, dtype=np.int64)
        for _, _, s0, s1 in part:
            sketch += np.bincount(s[s0:s1] >> shift, minlength=len(sketch))
        return sketch

    keep = np.empty(len(s), dtype=bool)

    def mark(bounds: tuple[int, int, int, int]) -> None:
        t0, t1, s0, s1 = bounds
        rare = ~common[s[s0:s1] >> shift]
        has_rare = np.repeat(_per_title(rare, counts[t0:t1]) > 0, counts[t0:t1])
        keep[s0:s1] = rare | ~has_rare

    threads = max(1, threads)
    with ThreadPoolExecutor(threads) as pool:
        # a table of flags (2 MB) rather than of counts (16 MB): its look-ups stay in the cache
        common = sum(pool.map(count, [ranges[i::threads] for i in range(threads)])) > limit
        list(pool.map(mark, ranges))
    return keep


def _per_title(flags: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """How many of each title's rows are flagged (``counts``: rows per title, in order; titles may have none)."""
    starts = np.cumsum(counts) - counts
    padded = np.append(flags.astype(np.int32), 0)  # a title without rows at the very end points past the rows
    sums = np.add.reduceat(padded, starts) if len(counts) else np.zeros(0, np.int32)
    sums[counts == 0] = 0  # reduceat gives an empty group the next row's value
    return sums


@dataclass
class Signatures:
    """Per title: LSH band keys (bands, n; 32 bits, a chance collision only adds a candidate that the estimate
    drops) and an 8-bit fingerprint of every MinHash value (hashes, n)."""

    keys: np.ndarray
    fingerprints: np.ndarray


def minhash(counts: np.ndarray, s: np.ndarray, use: np.ndarray, bands: int, rows: int, seed: int,
            threads: int = 1) -> Signatures:
    """MinHash signatures of each title's shingles that ``use`` marks. A title without any gets band keys of its
    own, shared with no other title. Ranges of titles run on ``threads`` threads (numpy's loops release the GIL)."""
    n, n_hash = len(counts), bands * rows
    params = mix64(seed_word(seed) + np.arange(1, 2 * n_hash + 1, dtype=np.uint64))
    a, b = params[:n_hash] | np.uint64(1), params[n_hash:]
    with np.errstate(over="ignore"):
        own = (mix64(np.arange(n, dtype=np.uint64) + np.uint64(1 << 63)) >> np.uint64(32)).astype(np.uint32)
    keys = np.repeat(own[None, :], bands, axis=0)
    fingerprints = np.zeros((n_hash, n), dtype=np.uint8)

    def run(bounds: tuple[int, int, int, int]) -> None:
        t0, t1, s0, s1 = bounds
        mask = use[s0:s1]
        columns, titles = _by_width(s[s0:s1][mask].astype(np.uint64), _per_title(mask, counts[t0:t1]))
        if not len(titles):
            return
        titles += t0
        m, acc = np.empty(len(titles), dtype=np.uint64), np.empty(len(titles), dtype=np.uint64)
        scratch = [np.empty_like(c) for c in columns]
        with np.errstate(over="ignore"):
            for band in range(bands):
                acc.fill(band)
                for r in range(rows):
                    f = band * rows + r
                    start = 0
                    for col, v in zip(columns, scratch):
                        np.multiply(col, a[f], out=v)
                        v += b[f]
                        np.minimum.reduce(v, axis=0, out=m[start : start + v.shape[1]])
                        start += v.shape[1]
                    fingerprints[f, titles] = (m >> np.uint64(56)).astype(np.uint8)
                    acc *= _COMBINE
                    acc += m
                    mix64_inplace(acc)
                keys[band, titles] = (acc >> np.uint64(32)).astype(np.uint32)

    with ThreadPoolExecutor(max(1, threads)) as pool:
        list(pool.map(run, _title_ranges(counts)))
    return Signatures(keys, fingerprints)


def _by_width(x: np.ndarray, used: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """The shingles ``x`` of titles holding ``used`` each (in order) as matrices with a column per title, one
    matrix per width, and the titles (positions in ``used``, none without shingles) in the order of the columns.

    A title's minimum is then a minimum over rows, which numpy vectorizes across titles: several times faster than a
    ``minimum.reduceat`` over runs of ~10 values. A title is padded to its width with repeats of its last shingle
    (a repeat leaves a minimum unchanged); widths step by 1 up to 15 shingles, then by 1/8 of the count at most.
    """
    titles = np.flatnonzero(used)
    if not len(titles):
        return [], titles
    n_used, first = used[titles], (np.cumsum(used) - used)[titles]
    step = 1 << np.maximum(np.log2(np.maximum(n_used, 1)).astype(np.int64) - 3, 0)
    width = -(-n_used // step) * step
    order = np.argsort(width, kind="stable")
    titles, n_used, first, width = titles[order], n_used[order], first[order], width[order]
    cuts = [0, *(np.flatnonzero(np.diff(width)) + 1).tolist(), len(titles)]
    columns = []
    for lo, hi in zip(cuts[:-1], cuts[1:]):
        row = np.arange(int(width[lo]))[:, None]
        columns.append(x[first[None, lo:hi] + np.minimum(row, n_used[None, lo:hi] - 1)])
    return columns, titles


def repeated(values: pl.Series) -> pl.Series:
    """Mask of the values that occur more than once; through a sort, which polars does several times faster than
    its hash-based ``is_duplicated`` on millions of integers."""
    ordered = values.sort()
    return values.is_in(ordered.filter(ordered == ordered.shift(1)).unique().implode())


def candidates(keys: np.ndarray, max_bucket: int) -> tuple[pl.DataFrame, int]:
    """Distinct title pairs (ta < tb) sharing a band key in some band; and the number of buckets left out for
    holding more than ``max_bucket`` titles (their pairs grow quadratically; a near duplicate pair has other bands)."""
    found, too_big = [], 0
    index = pl.Series("t", np.arange(keys.shape[1], dtype=np.uint32))
    for band in range(keys.shape[0]):
        key = pl.Series("key", keys[band])
        shared = pl.DataFrame([key, index]).filter(repeated(key))
        sizes = shared.group_by("key").len()
        too_big += sizes.filter(pl.col("len") > max_bucket).height
        shared = shared.join(sizes.filter(pl.col("len") <= max_bucket), on="key", how="semi")
        found.append(shared.join(shared, on="key", suffix="_b").filter(pl.col("t") < pl.col("t_b"))
                     .select(pl.col("t").alias("ta"), pl.col("t_b").alias("tb")))
    return pl.concat(found).unique(), too_big


def estimate_filter(cand: pl.DataFrame, sig: Signatures, threshold: float) -> pl.DataFrame:
    """Candidates whose MinHash estimate (share of equal fingerprints) is within three standard deviations of the
    threshold or above: a pair at the threshold fails this with probability ~1e-3 (30 hashes), an unrelated pair
    passes it almost never (8-bit fingerprints add 1/256 to the share of equal ones, which the floor allows for)."""
    n_hash = sig.fingerprints.shape[0]
    floor = threshold - 3 * (threshold * (1 - threshold) / n_hash) ** 0.5 + 1 / 256
    ta, tb = cand["ta"].to_numpy(), cand["tb"].to_numpy()
    equal = np.zeros(len(ta), dtype=np.int32)
    for f in range(n_hash):
        row = sig.fingerprints[f]
        equal += row[ta] == row[tb]
    return cand.filter(pl.Series(equal >= floor * n_hash))


def jaccard(cand: pl.DataFrame, titles: pl.Series, k: int, seed: int) -> pl.DataFrame:
    """Exact Jaccard similarity of the 64-bit shingle sets of each candidate pair (its titles are recomputed)."""
    involved = pl.concat([cand["ta"], cand["tb"]]).unique().sort()
    counts, s = title_shingles(Utf8.of(titles.gather(involved)), k, seed)
    shingles = pl.DataFrame({"t": np.repeat(involved.to_numpy(), counts), "s": s}).unique()
    sizes = shingles.group_by("t").len()
    inter = (
        cand.join(shingles, left_on="ta", right_on="t")
        .join(shingles, left_on=["tb", "s"], right_on=["t", "s"], how="semi")
        .group_by("ta", "tb").len("inter")
    )
    return (
        cand.join(inter, on=["ta", "tb"], how="left")
        .join(sizes.rename({"t": "ta", "len": "na"}), on="ta")
        .join(sizes.rename({"t": "tb", "len": "nb"}), on="tb")
        .with_columns(pl.col("inter").fill_null(0))
        .with_columns((pl.col("inter") / (pl.col("na") + pl.col("nb") - pl.col("inter"))).alias("jaccard"))
    )


def near_pairs(titles: pl.Series, cfg, threads: int = 1) -> tuple[pl.DataFrame, dict]:
    """(ta, tb, jaccard) for the pairs of normalized ``titles`` (by position) with similarity >= the threshold of
    ``cfg`` (:class:`dedupe.DedupeConfig`); and counts (candidates, checked exactly, buckets left out)."""
    counts, s32 = title_shingles(Utf8.of(titles), cfg.shingle_words, cfg.seed, bits=32, threads=threads)
    use = informative(counts, s32, cfg.common_shingle_share, threads)
    sig = minhash(counts, s32, use, cfg.bands, cfg.rows_per_band, cfg.seed, threads)
    del s32, use
    cand, too_big = candidates(sig.keys, cfg.max_bucket)
    likely = estimate_filter(cand, sig, cfg.title_similarity)
    scored = jaccard(likely, titles, cfg.shingle_words, cfg.seed).filter(pl.col("jaccard") >= cfg.title_similarity)
    return scored.select("ta", "tb", "jaccard"), {
        "title_near_candidates": cand.height, "title_near_checked_exactly": likely.height,
        "title_near_buckets_too_big": too_big,
    }
