"""Kafka consumer status: Burrow's rules over a window of samples, thresholds, lag in seconds.

Pure functions and small value classes: no I/O, no clock (callers pass `now`), so every rule
can be tested with crafted windows.

Partition rules, in Burrow's order (evaluator/caching.go calculatePartitionStatus):
  lag 0 now, or at any sample of the window -> OK  (Burrow's rule 1: it caught up within the window)
  offset moved backwards within the window                  -> REWIND
  offset unchanged over the whole window, no active member  -> STOP
  offset unchanged over the whole window, members active    -> STALL
  lag never decreased across the window while offsets moved -> WARN  (Burrow's rule; a lag that stays
                                                               level is OK here: a consumer keeping pace)
  lag grew across the window although it dipped             -> WARN  (what Burrow misses, #453):
                                        every lag of the window's later half above its earlier half
  otherwise             -> OK
OffsetFetch carries no commit time, so STOP (nobody commits) and STALL (a live consumer stuck on
one offset) are told apart by the group's members, as Burrow tells them apart by commit times.
When members are unknown, an unchanged offset is STOP once it has not moved for a whole window.

Group status: the worst partition, then the thresholds (total lag in messages, worst lag in
seconds) per source and per group. Burrow's own group word folds STOP/STALL/REWIND into ERR.
"""
from __future__ import annotations

import bisect
from collections import deque
from dataclasses import dataclass, field
from typing import Any, NamedTuple

STATUSES = ("OK", "WARN", "ERR", "REWIND", "STALL", "STOP")
RANK = {s: i for i, s in enumerate(STATUSES)}
THRESHOLD_KEYS = ("lag_warn", "lag_error", "lag_seconds_warn", "lag_seconds_error")


# Tuples, not dataclasses: a poll of 10k partitions makes 10k samples and verdicts, and a frozen
# dataclass takes several times as long to build.
class Sample(NamedTuple):
    """One poll of one partition: when, the committed offset, the end offset and the lag."""

    ts: float
    offset: int
    end: int
    lag: int


class Verdict(NamedTuple):
    """A status with the rule that gave it and the numbers behind it."""

    status: str
    rule: str
    reason: str


def burrow_word(status: str) -> str:
    """The group status Burrow itself would report: its partition-only states count as ERR."""
    return "ERR" if status in ("STOP", "STALL", "REWIND") else status


def worst(statuses) -> str:
    return max(statuses, key=RANK.__getitem__, default="OK")


def partition_status(window: list[Sample], size: int, members: int | None) -> Verdict:
    """Evaluate one partition's samples (oldest first); `size` is the full window length."""
    if not window:
        return Verdict("OK", "no-samples", "no offsets seen yet")
    last = window[-1]
    if last.lag <= 0:
        return Verdict("OK", "caught-up", "lag is 0")
    zero = next((s for s in reversed(window) if s.lag <= 0), None)
    if zero is not None:
        return Verdict("OK", "lag-zero-in-window",
                       f"lag was 0 {last.ts - zero.ts:.0f} s ago, within the window; lag {last.lag} now")
    if len(window) < 2:
        return Verdict("OK", "incomplete", f"1 of {size} samples: too few to judge")
    for before, after in zip(window, window[1:]):
        if after.offset < before.offset:
            return Verdict("REWIND", "rewind", f"offset went back from {before.offset} to {after.offset}")
    first = window[0]
    span = last.ts - first.ts
    unmoved = all(s.offset == first.offset for s in window)
    full = len(window) >= size
    if unmoved and full and not members:
        who = "no member is active" if members == 0 else "members unknown"
        return Verdict("STOP", "stopped",
                       f"offset {last.offset} unchanged for {span:.0f} s ({len(window)} samples), {who}, lag {last.lag}")
    if unmoved and full:
        return Verdict("STALL", "stalled",
                       f"{members} member(s) active but offset {last.offset} unchanged for {span:.0f} s, lag {last.lag}")
    if not full:
        return Verdict("OK", "incomplete", f"{len(window)} of {size} samples: too few to judge")
    if last.lag > first.lag and all(after.lag >= before.lag for before, after in zip(window, window[1:])):
        return Verdict("WARN", "lag-not-decreasing",
                       f"offsets moved {first.offset}→{last.offset} but lag never fell: {first.lag}→{last.lag}")
    half = len(window) // 2
    if min(s.lag for s in window[-half:]) > max(s.lag for s in window[:half]):
        slope = _slope([(s.ts, s.lag) for s in window])
        return Verdict("WARN", "lag-growing",
                       f"lag grew {first.lag}→{last.lag} over {span:.0f} s (+{slope:.2f}/s) while offsets moved")
    return Verdict("OK", "consuming", f"offsets moving, lag {last.lag}")


def _slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of y over x; 0 when x does not vary."""
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    var = sum((x - mx) ** 2 for x, _ in points)
    return 0.0 if var == 0 else sum((x - mx) * (y - my) for x, y in points) / var


def thresholds_for(options: dict[str, Any], group: str) -> dict[str, float]:
    """The source's thresholds with the group's own (options["group_thresholds"][group]) on top."""
    own = (options.get("group_thresholds") or {}).get(group) or {}
    found = {}
    for where, table in (("", options), (f"group_thresholds.{group}.", own)):
        for key in THRESHOLD_KEYS:
            value = table.get(key) if isinstance(table, dict) else None
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"{where}{key}: expected a number of at least 0, got {value!r}")
            found[key] = float(value)
    return found


def group_status(partitions: list[Verdict], total_lag: int, max_lag_seconds: float | None,
                 thresholds: dict[str, float], count: int | None = None) -> Verdict:
    """The worst partition verdict, raised by any threshold the group's lag crosses. A caller that
    already picked the worst partition passes only its verdict, and the group's partition `count`."""
    verdicts = list(partitions)
    count = len(partitions) if count is None else count
    checks = (("lag_error", "ERR", total_lag, "messages"), ("lag_seconds_error", "ERR", max_lag_seconds, "s"),
              ("lag_warn", "WARN", total_lag, "messages"), ("lag_seconds_warn", "WARN", max_lag_seconds, "s"))
    for key, status, value, unit in checks:
        limit = thresholds.get(key)
        if limit is not None and value is not None and value >= limit:
            verdicts.append(Verdict(status, key, f"lag {value:.0f} {unit} ≥ {key} {limit:g}"))
    if not verdicts:
        return Verdict("OK", "no-partitions", "no partition has a committed offset")
    top = max(verdicts, key=lambda v: RANK[v.status])
    if top.status == "OK":
        return Verdict("OK", "all-ok", f"{count} partition(s) OK")
    return top


# -- lag in seconds (kafka-lag-exporter's lookup table) -----------------------------------------

@dataclass
class OffsetTimes:
    """Per partition: (end offset, first time seen) points, newest last, at most `size` of them."""

    size: int = 60
    points: deque = field(default_factory=deque)

    def add(self, offset: int, ts: float) -> None:
        if self.points and offset <= self.points[-1][0]:
            if offset < self.points[-1][0]:  # the log shrank or was recreated: start over
                self.points.clear()
                self.points.append((offset, ts))
            return
        self.points.append((offset, ts))
        while len(self.points) > self.size:
            self.points.popleft()

    def lag_seconds(self, committed: int, now: float) -> tuple[float | None, bool]:
        """Seconds since the record at `committed` was produced, and whether it was extrapolated."""
        if not self.points:
            return None, False
        newest_offset, _ = self.points[-1]
        if committed >= newest_offset:
            return 0.0, False
        points = self.points
        i = bisect.bisect_right(points, committed, key=_offset)  # offsets only grow along the table
        if i:
            (o1, t1), (o2, t2) = points[i - 1], points[i]
            return max(0.0, now - (t1 + (committed - o1) * (t2 - t1) / (o2 - o1))), False
        # Older than the table: extend the line through its oldest and newest points backwards.
        (o1, t1), (o2, t2) = points[0], points[-1]
        if o2 == o1:
            return max(0.0, now - t1), True  # one point: at least this old
        return max(0.0, now - (t1 - (o1 - committed) * (t2 - t1) / (o2 - o1))), True


def _offset(point: tuple[int, float]) -> int:
    return point[0]
