"""Runtime histograms (Celery task runtimes, Dask task durations): log-spaced bins, stored compactly,
merged, and read as percentiles.

Bin i holds runtimes up to 1 ms * 2**(i/4) (19% apart), the last bin the rest. In memory a
histogram is a list of RUNTIME_BINS counts. Stored, it is the counts from its first to its last
non-empty bin as little-endian uint32, after one byte holding the first bin's index (b"" when
empty): decoding is one struct call and merging an element-wise add in C, so the History page
reads a month of hourly rows per task name in milliseconds, where a JSON object per row cost
about 25 us to decode and merge.
"""
from __future__ import annotations

import math
import struct
from bisect import bisect_left
from itertools import accumulate

from sqlalchemy import LargeBinary
from sqlalchemy.types import TypeDecorator

RUNTIME_BINS = 81
ERROR_BOUND = 2 ** 0.25  # a percentile lies within this factor (about 19%) of the true value


def runtime_bin(seconds: float) -> int:
    if seconds <= 0.001:
        return 0
    return min(RUNTIME_BINS - 1, math.ceil(4 * math.log2(seconds / 0.001)))


def bin_upper(index: int) -> float:
    return 0.001 * 2 ** (index / 4)


# Each bin's lower and upper edge, looked up rather than computed: a month's chart reads thousands.
_EDGES = [((bin_upper(i - 1) if i else 0.0), bin_upper(i)) for i in range(RUNTIME_BINS)]


def empty() -> list[int]:
    return [0] * RUNTIME_BINS


def total(histograms: list[list[int]]) -> list[int]:
    """The bin-by-bin sum of histograms (in C: summing a month of hours is one call)."""
    return list(map(sum, zip(*histograms))) if histograms else empty()


def encode(counts: list[int]) -> bytes:
    used = [i for i, n in enumerate(counts) if n]
    if not used:
        return b""
    first, last = used[0], used[-1]
    return bytes((first,)) + struct.pack(f"<{last - first + 1}I", *counts[first:last + 1])


def decode(blob: bytes | None) -> list[int]:
    if not blob:
        return empty()
    first, n = blob[0], (len(blob) - 1) // 4
    counts = [0] * first + list(struct.unpack_from(f"<{n}I", blob, 1))
    return (counts + [0] * (RUNTIME_BINS - len(counts)))[:RUNTIME_BINS]


class Histogram(TypeDecorator):
    """A column holding one histogram (see the module's docstring for the bytes)."""

    impl = LargeBinary
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return None if value is None else encode(value)

    def process_result_value(self, value, dialect):
        return decode(value)


def percentile(counts: list[int], q: float, low: float | None = None, high: float | None = None) -> float | None:
    """The runtime (seconds) below which a fraction q of the histogram's tasks fall (see percentiles)."""
    return percentiles(counts, (q,), low, high)[0]


def percentiles(counts: list[int], qs: tuple[float, ...], low: float | None = None,
                high: float | None = None) -> list[float | None]:
    """Runtimes (seconds) below which the fractions `qs` (ascending) of the histogram's tasks fall.

    Each is interpolated within the bin that holds its rank (geometrically: bins are log-spaced),
    with the fastest and slowest run (`low`, `high`) as the outer edges when known. The true value
    lies in the same bin, so each answer is within ERROR_BOUND of it, and never outside low..high.
    """
    cumulative = list(accumulate(counts))
    runs = cumulative[-1]
    if not runs:
        return [None] * len(qs)
    out = []
    for q in qs:
        rank = q * runs
        # A rank of 0 falls before the first run: bisect for a sliver above it, into the first non-empty bin.
        index = bisect_left(cumulative, rank or 0.5)
        n = counts[index]
        lo, hi = _EDGES[index]
        if index == RUNTIME_BINS - 1 and high is not None:
            hi = max(hi, high)  # the last bin holds everything slower
        if low is not None:
            lo = min(max(lo, low), hi)
        if high is not None:
            hi = max(min(hi, high), lo)
        frac = min(1.0, max(0.0, (rank - cumulative[index] + n) / n))
        value = lo * (hi / lo) ** frac if lo > 0 else lo + (hi - lo) * frac
        out.append(min(max(value, low if low is not None else value), high if high is not None else value))
    return out
