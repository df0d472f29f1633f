"""The synthetic paper corpus behind the demo snapshots: ids, dates, versions, text, metadata and citation counts.

Kept apart from the writers (formats.py) so that every native format renders the same papers. Randomness comes from
child generators of one ``numpy.random.default_rng(seed)``, one per concern, so the draws of one concern do not shift
when another changes; every loop runs over sorted or positional sequences, never over sets or dict hashes.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import math
import re
import string
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from workflow_scripts.demo import vocab
from workflow_scripts.demo.vocab import SUBCATEGORIES, Subcategory

UTC = dt.timezone.utc
SECONDS_PER_DAY = 86400
DAYS_PER_MONTH = 30.4375

# citation model: expected = base(subcategory) * age(months)^AGE_EXPONENT * exp(HOT * n_hot - STALE * n_stale),
# then a lognormal factor (sigma NOISE_SIGMA) and a gamma-Poisson draw (shape DISPERSION): heavy tailed integers
AGE_EXPONENT = 0.5  # concave: young (2025) papers reach counts that pass the in-domain test gap (>= 32)
HOT_EFFECT = 0.75
STALE_EFFECT = 0.6
NOISE_SIGMA = 0.8
DISPERSION = 3.0
MAX_CITATIONS = 50_000
TERM_COUNT_P = (0.45, 0.30, 0.17, 0.08)  # P(0..3 hot terms), the same for stale terms
VERSION_P = (0.62, 0.28, 0.10)  # P(1..3 versions)


@dataclass
class Paper:
    arxiv_id: str
    sub: Subcategory
    categories: list[str]
    versions: list[dt.datetime]  # v1, v2, ... (UTC), all before the fetch
    title: str = ""
    abstract: str = ""
    authors: list[tuple[str, str]] = field(default_factory=list)  # (keyname, forenames)
    comments: str | None = None
    journal_ref: str | None = None
    doi: str | None = None
    journal_version: int = 0  # index of the version that added journal_ref/doi (its state before lacks them)
    report_no: str | None = None
    license: str | None = None
    hot_terms: list[str] = field(default_factory=list)
    stale_terms: list[str] = field(default_factory=list)
    expected_citations: float = 0.0
    citation_count: int = 0
    s2_found: bool = True
    s2_date_missing: bool = False
    datestamp: dt.date | None = None  # OAI header datestamp: last change of the record

    @property
    def published(self) -> dt.datetime:
        return self.versions[0]

    @property
    def primary(self) -> str:
        return self.categories[0]


@dataclass
class Corpus:
    papers: list[Paper]  # sorted by arxiv_id
    deleted: list[tuple[str, dt.date, str]]  # OAI tombstones: (arxiv_id, datestamp, primary category)
    fetched_at: dt.datetime
    window: tuple[dt.date, dt.date]
    dump_date: dt.date
    dump_empty_abstract: list[str]  # dump lines whose abstract is empty (the reader must reject and count them)
    dump_versioned_duplicate: str | None  # paper that the dump lists twice, once more under a versioned id

    def in_dump(self, p: Paper) -> bool:
        return p.published.date() <= self.dump_date

    def dump_versions(self, p: Paper) -> list[dt.datetime]:
        return [v for v in p.versions if v.date() <= self.dump_date]


# ---------------------------------------------------------------------------------------------------------------------
# allocation of papers to months and subcategories


def months_in(start: dt.date, end: dt.date) -> list[tuple[dt.date, dt.date]]:
    """(first day, last day) of each calendar month touching [start, end], clipped to it."""
    out = []
    y, m = start.year, start.month
    while dt.date(y, m, 1) <= end:
        first = dt.date(y, m, 1)
        nxt = dt.date(y + (m == 12), m % 12 + 1, 1)
        out.append((max(first, start), min(nxt - dt.timedelta(days=1), end)))
        y, m = nxt.year, nxt.month
    return out


def largest_remainder(total: int, weights: Sequence[float]) -> list[int]:
    """Integer split of ``total`` proportional to ``weights``; ties go to the earlier index (no randomness)."""
    w = np.asarray(weights, dtype=float)
    exact = total * w / w.sum()
    base = np.floor(exact).astype(int)
    rest = total - int(base.sum())
    order = np.argsort(-(exact - base), kind="stable")
    base[order[:rest]] += 1
    return base.tolist()


def quota_split(total: int, shares: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Counts per subcategory for one month: floor of the expectation plus the leftover papers drawn without
    replacement in proportion to the fractional parts. Each count is within one of its expectation, so small
    subcategories never get an empty or overfull month by chance (the pair builder groups by subcategory and month)."""
    exact = total * shares
    base = np.floor(exact).astype(int)
    rest = total - int(base.sum())
    if rest:
        frac = exact - base
        picks = rng.choice(len(shares), size=rest, replace=False, p=frac / frac.sum())
        base[np.sort(picks)] += 1
    return base


# ---------------------------------------------------------------------------------------------------------------------
# text


def _title_case(text: str) -> str:
    small = {"a", "an", "and", "for", "in", "of", "on", "the", "to", "via", "with", "without", "from", "by"}
    words = text.split(" ")
    out = []
    for i, w in enumerate(words):
        if i and w in small:
            out.append(w)
        else:
            # parts that already hold capitals (fMRI, LLM-based, Calabi-Yau) keep their spelling
            out.append("-".join(p if p != p.lower() else p[:1].upper() + p[1:] for p in w.split("-")))
    return " ".join(out)


class Draws:
    """Scalar draws served from a buffer of uniforms refilled from one generator.

    A scalar ``rng.integers`` call costs ~5 us and the corpus needs ~400k draws; serving them from a buffer is ~10x
    faster and the sequence is still a pure function of the seed.
    """

    BUFFER = 65536

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.buf: list[float] = []
        self.pos = 0

    def u(self) -> float:
        if self.pos == len(self.buf):
            self.buf = self.rng.random(self.BUFFER).tolist()
            self.pos = 0
        self.pos += 1
        return self.buf[self.pos - 1]

    def index(self, n: int) -> int:
        i = int(self.u() * n)
        return i if i < n else n - 1

    def integer(self, lo: int, hi: int) -> int:
        """Uniform in [lo, hi)."""
        return lo + self.index(hi - lo)

    def pick(self, seq: Sequence):
        return seq[self.index(len(seq))]

    def two(self, seq: Sequence[str]) -> tuple[str, str]:
        """Two different items."""
        n = len(seq)
        i = self.index(n)
        return seq[i], seq[(i + 1 + self.index(n - 1)) % n]

    def permutation(self, n: int) -> list[int]:
        keys = [self.u() for _ in range(n)]
        return sorted(range(n), key=lambda k: (keys[k], k))

    def subset(self, pool: Sequence, k: int) -> list:
        """k distinct items of ``pool``, in pool order."""
        return [pool[i] for i in sorted(self.permutation(len(pool))[:k])]

    def categorical(self, probs: Sequence[float]) -> int:
        u, acc = self.u(), 0.0
        for i, q in enumerate(probs):
            acc += q
            if u < acc:
                return i
        return len(probs) - 1

    def exponential(self, mean: float) -> float:
        return -mean * math.log(1.0 - self.u())

    def poisson(self, lam: float) -> int:
        """Inversion; only for the small means used here (author counts)."""
        u, k, prob = self.u(), 0, math.exp(-lam)
        acc = prob
        while u > acc and k < 100:
            k += 1
            prob *= lam / k
            acc += prob
        return k


class TextMaker(Draws):
    """Titles and abstracts from the subcategory vocabulary, the shared filler and the paper's hot/stale terms."""

    def fill(self, template: str, sub: Subcategory, term: str = "") -> str:
        values: dict[str, str] = {"term": term}
        out = {}
        for name in _slots(template):  # only the slots the template uses are drawn
            low = name[:1].lower() + name[1:]
            if low not in values:
                if low in ("obj", "obj2"):
                    values["obj"], values["obj2"] = self.two(sub.objects)
                elif low in ("method", "method2"):
                    values["method"], values["method2"] = self.two(sub.methods)
                else:
                    values[low] = self.pick(_FILLER[low] if low in _FILLER else getattr(sub, _SUB_SLOTS[low]))
            # title patterns ask for capitalized slots ({Obj}, {Method}, ...)
            out[name] = values[low] if name == low else _title_case(values[low])
        return template.format(**out)

    def abstract(self, sub: Subcategory, terms: Sequence[str]) -> str:
        opening = self.fill(self.pick(vocab.OPENINGS), sub)
        closing = self.fill(self.pick(vocab.CLOSINGS), sub)
        middle = [self.fill(self.pick(vocab.TERM_SENTENCES), sub, t) for t in terms]
        if sub.name in vocab.TEX_SUBCATEGORIES and self.u() < 0.35:
            middle.append(self.pick(vocab.TEX_SENTENCES))
        target = 60 + self.index(91)
        words = sum(len(s.split()) for s in (opening, closing, *middle))
        while words < target:
            s = self.fill(self.pick(vocab.BODY), sub)
            n = len(s.split())
            if words + n > 150:
                break
            middle.append(s)
            words += n
        order = self.permutation(len(middle))
        return " ".join([opening, *(middle[k] for k in order), closing])

    def title(self, sub: Subcategory, terms: Sequence[str]) -> str:
        with_term = [p for p in vocab.TITLE_PATTERNS if "{Term}" in p]
        without = [p for p in vocab.TITLE_PATTERNS if "{Term}" not in p]
        if terms and self.u() < 0.5:
            return self.fill(self.pick(with_term), sub, term=terms[0])
        return self.fill(self.pick(without), sub)


_FILLER = {"adj": vocab.ADJECTIVES, "verb": vocab.RESULT_VERBS, "qual": vocab.QUALIFIERS}
_SUB_SLOTS = {"task": "tasks"}


@functools.lru_cache(maxsize=None)
def _slots(template: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(f for _, f, _, _ in string.Formatter().parse(template) if f))


@functools.lru_cache(maxsize=None)
def _term_pattern(term: str) -> re.Pattern:
    return re.compile(rf"(?<![a-z]){re.escape(term.lower())}(?![a-z])")


def count_terms(text: str, terms: Sequence[str]) -> int:
    """How many of ``terms`` occur in ``text`` (case-insensitive, whole words)."""
    low = text.lower()
    return sum(1 for t in terms if t.lower() in low and _term_pattern(t).search(low))


# ---------------------------------------------------------------------------------------------------------------------
# the corpus


def _hash_int(*parts: object) -> int:
    return int.from_bytes(hashlib.sha1(":".join(map(str, parts)).encode()).digest()[:8], "big")


def build(
    n_papers: int,
    seed: int,
    start: dt.date,
    end: dt.date,
    fetched_at: dt.datetime,
    dump_date: dt.date,
    subcategories: Sequence[Subcategory] = SUBCATEGORIES,
) -> Corpus:
    if n_papers < 1:
        raise ValueError("--n-papers must be >= 1")
    # a paper cannot be published after the snapshot it appears in: the window ends the day before the fetch
    last = min(end, (fetched_at - dt.timedelta(seconds=1)).date())
    if start > last:
        raise ValueError(f"empty window: start {start} is after min(end date, day before --fetched-at) = {last}")
    r_alloc, r_text, r_meta, r_cite, r_dirt = np.random.default_rng(seed).spawn(5)
    shares = np.array([s.share for s in subcategories], dtype=float)
    shares /= shares.sum()

    months = months_in(start, last)
    per_month = largest_remainder(n_papers, [(b - a).days + 1 for a, b in months])
    papers: list[Paper] = []
    fetch_ts = fetched_at.timestamp()
    for (first, last_day), n_month in zip(months, per_month):
        if n_month == 0:
            continue
        counts = quota_split(n_month, shares, r_alloc)
        subs = np.repeat(np.arange(len(subcategories)), counts)
        span = ((last_day - first).days + 1) * SECONDS_PER_DAY
        t0 = dt.datetime(first.year, first.month, first.day, tzinfo=UTC).timestamp()
        secs = r_alloc.integers(0, span, size=n_month)
        # ids are numbered in submission order within the month, with gaps (other papers exist on arXiv)
        order = np.lexsort((subs, secs))
        if n_month > 99_998:
            raise ValueError(f"{n_month} papers in {first:%Y-%m} exceed the 5-digit arXiv number space")
        max_gap = max(1, min(250, 99_000 // n_month))
        numbers = np.cumsum(r_alloc.integers(1, max_gap + 1, size=n_month))
        for k, idx in enumerate(order):
            v1 = dt.datetime.fromtimestamp(t0 + int(secs[idx]), UTC)
            sub = subcategories[int(subs[idx])]
            papers.append(Paper(arxiv_id=f"{first:%y%m}.{int(numbers[k]):05d}", sub=sub, categories=[sub.name], versions=[v1]))

    maker, meta = TextMaker(r_text), Draws(r_meta)
    for p in papers:
        _versions(p, meta, fetch_ts)
        _metadata(p, meta, fetched_at)
        terms_hot, terms_stale = _terms(p.sub, maker)
        p.hot_terms, p.stale_terms = terms_hot, terms_stale
        mixed = list(terms_hot) + list(terms_stale)
        mixed = [mixed[k] for k in maker.permutation(len(mixed))]
        p.abstract = maker.abstract(p.sub, mixed)
        p.title = maker.title(p.sub, mixed)
        text = f"{p.title} {p.abstract}"
        # the ground truth must be what the text says: a vocabulary clash would silently break the signal
        if count_terms(text, p.sub.hot) != len(terms_hot) or count_terms(text, p.sub.stale) != len(terms_stale):
            raise AssertionError(f"{p.arxiv_id}: hot/stale terms in the text differ from the drawn ones: {text!r}")
    _citations(papers, r_cite, fetched_at)

    papers.sort(key=lambda p: p.arxiv_id)
    deleted = _tombstones(papers, r_dirt, fetched_at)
    corpus = Corpus(papers=papers, deleted=deleted, fetched_at=fetched_at, window=(start, last), dump_date=dump_date,
                    dump_empty_abstract=[], dump_versioned_duplicate=None)
    _dump_dirt(corpus, r_dirt)
    return corpus


def _dump_dirt(corpus: Corpus, rng: np.random.Generator) -> None:
    """Pick the dump's dirty lines: 3 papers with an empty abstract, 1 revised paper listed twice (versioned id)."""
    in_dump = [p for p in corpus.papers if corpus.in_dump(p)]
    if len(in_dump) >= 3:
        corpus.dump_empty_abstract = [in_dump[i].arxiv_id for i in np.sort(rng.choice(len(in_dump), size=3, replace=False))]
    revised = [p for p in in_dump if len(corpus.dump_versions(p)) > 1 and p.arxiv_id not in corpus.dump_empty_abstract]
    if revised:
        corpus.dump_versioned_duplicate = revised[int(rng.integers(len(revised)))].arxiv_id


def _terms(sub: Subcategory, maker: TextMaker) -> tuple[list[str], list[str]]:
    hot = maker.subset(sub.hot, min(maker.categorical(TERM_COUNT_P), len(sub.hot)))
    stale = maker.subset(sub.stale, min(maker.categorical(TERM_COUNT_P), len(sub.stale)))
    return hot, stale


def _versions(p: Paper, d: Draws, fetch_ts: float) -> None:
    n = d.categorical(VERSION_P) + 1
    ts = p.versions[0].timestamp()
    for _ in range(n - 1):
        ts = float(int(ts + 86400 + d.exponential(75 * 86400)))
        if ts >= fetch_ts:  # a revision after the fetch is not in any snapshot
            break
        p.versions.append(dt.datetime.fromtimestamp(ts, UTC))


def _metadata(p: Paper, d: Draws, fetched_at: dt.datetime) -> None:
    sub = p.sub
    if d.u() < 0.35:
        k = 1 + int(d.u() < 0.3)
        p.categories += d.subset(sub.cross, min(k, len(sub.cross)))
    n_auth = 1 + min(d.poisson(3.5 if sub.field == "CS" else 2.0), 11)
    used: list[tuple[str, str]] = []
    while len(used) < n_auth:
        name = (d.pick(vocab.KEYNAMES), d.pick(vocab.FORENAMES))
        if name not in used:
            used.append(name)
    p.authors = used
    if d.u() < 0.7:
        p.comments = d.pick(vocab.COMMENTS).format(p=d.integer(4, 60), f=d.integer(1, 15), t=d.integer(1, 6))
    p.license = d.pick(vocab.LICENSES) if d.u() < 0.95 else None
    # older papers are more often published in a journal by the time of the snapshot
    years = (fetched_at - p.published).days / 365.25
    if d.u() < 0.04 + 0.03 * years:
        ref, prefix = d.pick(vocab.JOURNALS[sub.field])
        year = min(p.versions[-1].year + d.integer(0, 2), fetched_at.year)
        vol, page = d.integer(10, 999), d.integer(1000, 99999)
        p.journal_ref = ref.format(year=year, vol=vol, page=page)
        if d.u() < 0.9:
            p.doi = f"{prefix}.{vol}.{page}"
        p.journal_version = len(p.versions) - 1  # added with the last revision
    if sub.field == "Physics" and d.u() < 0.04:
        p.report_no = f"CERN-TH-{p.published.year}-{d.integer(1, 300):03d}"
    # the OAI datestamp trails the last revision by a few days (metadata updates), never past the fetch
    lag = dt.timedelta(days=d.integer(0, 8))
    p.datestamp = min(p.versions[-1].date() + lag, (fetched_at - dt.timedelta(seconds=1)).date())


def _citations(papers: Sequence[Paper], rng: np.random.Generator, fetched_at: dt.datetime) -> None:
    """All papers at once (vectorized): expected count from subcategory, age and terms; lognormal x gamma-Poisson."""
    months = np.array([max((fetched_at - p.published).total_seconds() / 86400 / DAYS_PER_MONTH, 0.0) for p in papers])
    base = np.array([p.sub.base for p in papers])
    effect = np.array([HOT_EFFECT * len(p.hot_terms) - STALE_EFFECT * len(p.stale_terms) for p in papers])
    mu = base * months**AGE_EXPONENT * np.exp(effect)
    lam = mu * np.exp(rng.normal(0.0, NOISE_SIGMA, size=len(papers)))
    rate = rng.gamma(DISPERSION, np.maximum(lam, 1e-12) / DISPERSION)
    draws = np.minimum(rng.poisson(rate), MAX_CITATIONS)
    found = rng.random(len(papers)) >= 0.02
    no_date = rng.random(len(papers)) < 0.01
    for k, p in enumerate(papers):
        p.expected_citations = float(mu[k])
        p.citation_count = int(draws[k]) if lam[k] > 0 else 0
        p.s2_found = bool(found[k])
        p.s2_date_missing = bool(no_date[k])


def _tombstones(papers: list[Paper], rng: np.random.Generator, fetched_at: dt.datetime) -> list[tuple[str, dt.date, str]]:
    """Two deleted OAI records (withdrawn submissions) under ids no live paper uses: one CS, one Physics."""
    used = {p.arxiv_id for p in papers}
    out = []
    for fld in ("CS", "Physics"):
        candidates = [p for p in papers if p.sub.field == fld]
        if not candidates:
            continue
        anchor = candidates[int(rng.integers(len(candidates)))]
        prefix, number = anchor.arxiv_id.split(".")
        n = int(number) + 1
        while f"{prefix}.{n:05d}" in used:
            n += 1
        when = min(anchor.published.date() + dt.timedelta(days=int(rng.integers(20, 200))), (fetched_at - dt.timedelta(days=1)).date())
        out.append((f"{prefix}.{n:05d}", when, anchor.primary))
        used.add(out[-1][0])
    return sorted(out)


def s2_paper_id(seed: int, arxiv_id: str) -> str:
    return hashlib.sha1(f"s2:{seed}:{arxiv_id}".encode()).hexdigest()


def corpus_id(seed: int, arxiv_id: str) -> int:
    return 200_000_000 + _hash_int("corpus", seed, arxiv_id) % 90_000_000


def openalex_id(seed: int, arxiv_id: str) -> str:
    return f"W4{_hash_int('openalex', seed, arxiv_id) % 10**9:09d}"
