"""History over hours to months: any recorded metric, Celery outcomes and runtimes, a per-day summary.

Every series is read from rollups, never from raw rows: minute rollups for ranges up to about two
days, hour rollups beyond, re-bucketed in SQL so that no series has more than MAX_POINTS points.
"""
from __future__ import annotations

import time
from bisect import bisect_right
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import groupby
from operator import itemgetter
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, literal, select, text, tuple_
from sqlalchemy.engine import Engine

from dashboard.store.availability import segments
from dashboard.store.celery_ingest import sum_outcomes
from dashboard.store.celery_models import ALL_TASKS, CeleryHour, CeleryMinute
from dashboard.store.celery_queries import name_table
from dashboard.store.models import Rollup
from dashboard.store.runtime_hist import percentile, percentiles

MAX_POINTS = 2000
MINUTES_UP_TO = 2 * 86400 + 3600  # ranges up to ~2 days read minute rollups
# Bucket widths a chart may show, each a whole multiple of the rollup it is read from.
STEPS = (60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 7 * 86400)
MAX_LABELS = 20  # series per metric drawn; the rest are counted, not drawn
TOP_N = 5
OTHER = "other"
# Written out, not bound: only then may SQLite read hour rollups from their partial index.
HOURS = text("rollups.step = 3600")


def stored_step(w: Window):
    """The rollups' condition for the window's stored buckets (hours as HOURS, for its index)."""
    return HOURS if w.stored == 3600 else Rollup.step == w.stored


@dataclass(frozen=True)
class Window:
    """A range [since, until) read at `step`-second buckets from `stored`-second rollups."""

    since: int
    until: int
    stored: int
    step: int

    @property
    def span(self) -> int:
        return self.until - self.since

    def previous(self) -> "Window":
        """The period of the same length just before: what Compare overlays."""
        return Window(self.since - self.span, self.since, self.stored, self.step)

    def as_dict(self) -> dict[str, int]:
        return {"since": self.since, "until": self.until, "stored": self.stored, "step": self.step}


def window(since: float, until: float) -> Window:
    """The resolution for a range: minutes up to ~2 days, hours beyond; <= MAX_POINTS buckets.

    The range's ends are rounded out to whole buckets of the chosen step, so every bucket shown
    is complete and the same range always gives the same buckets.
    """
    span = max(until - since, 60)
    stored = 60 if span <= MINUTES_UP_TO else 3600
    step = next((s for s in STEPS if s >= stored and span / s <= MAX_POINTS), None)
    if step is None:
        step = -(-int(span) // (MAX_POINTS * 86400)) * 86400
    start = int(since // step) * step
    end = -(-int(until) // step) * step
    return Window(start, max(end, start + step), stored, step)


def _bucket(column, step: int):
    """The chart bucket of a stored bucket (integer division: the same in SQLite and PostgreSQL)."""
    return (column // literal(step)) * literal(step)


# -- any metric a collector records -------------------------------------------------------------

def series_keys(engine: Engine, w: Window, source: str | None = None,
                metric: str | None = None) -> list[tuple[str, str, str]]:
    """(source, metric, label) of every series (of one metric, when both are given) with an hour rollup in the range.

    Walks the rollups' primary key one distinct series at a time (an index seek each), so the
    cost follows the number of series, not the number of stored buckets.
    """
    r = Rollup
    key = (r.source, r.metric, r.label)
    found, last = [], None
    with engine.connect() as conn:
        while True:
            query = select(*key).order_by(*key).limit(1)
            if last is None and source is not None:  # start at the metric's first label
                query = query.where(tuple_(*key) >= tuple_(literal(source), literal(metric), literal("")))
            elif last is not None and conn.dialect.name == "sqlite":
                # SQLite steps through every bucket of the series equal to a `>` bound: seek to its successor.
                query = query.where(tuple_(*key) >= tuple_(literal(last[0]), literal(last[1]), literal(last[2] + "\x01")))
            elif last is not None:
                query = query.where(tuple_(*key) > tuple_(*(literal(v) for v in last)))
            row = conn.execute(query).first()
            if row is None or (source is not None and tuple(row[:2]) != (source, metric)):
                return found
            last = tuple(row)
            inside = select(literal(1)).where(r.source == last[0], r.metric == last[1], r.label == last[2],
                                              HOURS, r.bucket >= w.since // 3600 * 3600, r.bucket < w.until)
            if conn.execute(inside.limit(1)).first() is not None:
                found.append(last)


def metric_catalog(engine: Engine, w: Window) -> list[dict[str, Any]]:
    """Every (source, metric) with data in the range, and the labels drawn: all of them up to
    MAX_LABELS, beyond that the MAX_LABELS with the highest peak in the range (the rest counted)."""
    found: dict[tuple[str, str], list[str]] = {}
    for source, metric, label in series_keys(engine, w):
        found.setdefault((source, metric), []).append(label)
    return [{"source": source, "metric": metric, "unit": unit_in(metric, w), "value": value_of(metric),
             "labels": labels if len(labels) <= MAX_LABELS else top_labels(engine, w, source, metric),
             "labels_not_drawn": max(0, len(labels) - MAX_LABELS)}
            for (source, metric), labels in sorted(found.items())]


def top_labels(engine: Engine, w: Window, source: str, metric: str, n: int = MAX_LABELS) -> list[str]:
    """The `n` labels of a metric with the highest peak over the range's hour rollups (ties by label)."""
    r = Rollup
    peak = func.max(r.max)
    query = (select(r.label).where(r.source == source, r.metric == metric, HOURS,
                                   r.bucket >= w.since // 3600 * 3600, r.bucket < w.until)
             .group_by(r.label).order_by(peak.desc(), r.label).limit(n))
    with engine.connect() as conn:
        return list(conn.execute(query).scalars())


def unit_of(metric: str) -> str:
    """The unit a metric's name implies (collectors name them so): bytes for memory, "" for a plain number."""
    name = metric.lower()
    if name.startswith("memory") or "bytes" in name:
        return "bytes"
    # A rate (Kafka's consume_rate and produce_rate: messages a second) is a level per second.
    for suffix, unit in (("seconds", "s"), ("_s", "s"), ("percent", "%"), ("ratio", "ratio"), ("_rate", "/s")):
        if name.endswith(suffix):
            return unit
    return ""


# Metrics a collector records as a count of events since its previous poll: a bucket shows their
# sum (tasks per minute or hour). Every other metric is a level (a gauge): a bucket shows its mean.
COUNTS = frozenset({
    "tasks_completed", "tasks_failed",  # collectors/dask_scheduler.py: tasks finished since the last poll
})


def is_count(metric: str) -> bool:
    return metric in COUNTS


def value_of(metric: str) -> str:
    """The SERIES_FIELDS entry a chart of the metric draws: "sum" for counts, "mean" otherwise."""
    return "sum" if is_count(metric) else "mean"


def per_bucket(step: int) -> str:
    """"per minute", "per hour", "per 2 h": the unit of a count summed over `step`-second buckets."""
    named = {60: "minute", 3600: "hour", 86400: "day", 7 * 86400: "week"}
    if step in named:
        return f"per {named[step]}"
    return f"per {step // 3600} h" if step % 3600 == 0 else f"per {step // 60} min"


def unit_in(metric: str, w: Window) -> str:
    """The unit of a metric's chart over the window: a count's is per bucket, others' the name's."""
    return per_bucket(w.step) if is_count(metric) else unit_of(metric)


SERIES_FIELDS = ("ts", "mean", "sum", "min", "max", "count")


def metric_series(engine: Engine, w: Window, source: str, metric: str,
                  labels: list[str] | None = None) -> list[dict[str, Any]]:
    """A series per label (default: every label with data in the range), by label: its `label` and
    one array per field of SERIES_FIELDS, an entry per bucket in time order (`sum` is what a count
    metric's chart draws, `mean` a level's: see value_of).

    Arrays, not a row per point: a month of 50 series is 36,000 points, which as dicts cost more to
    build and to serialise than everything else the History page reads."""
    r = Rollup
    if labels is None:  # naming the labels lets the primary key find each series' buckets
        labels = [label for _, _, label in series_keys(engine, w, source, metric)]
    if w.step == w.stored:  # stored buckets as they are, in the index's order
        query = select(r.label, r.bucket, r.total, r.count, r.min, r.max).order_by(r.label, r.bucket)
    else:
        b = _bucket(r.bucket, w.step).label("b")
        query = (select(r.label, b, func.sum(r.total), func.sum(r.count), func.min(r.min), func.max(r.max))
                 .group_by(r.label, b).order_by(r.label, b))
    query = query.where(r.source == source, r.metric == metric, r.label.in_(labels),
                        stored_step(w), r.bucket >= w.since, r.bucket < w.until)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    series = []
    for label, points in groupby(rows, key=itemgetter(0)):  # rows come ordered by label: one run each
        _, ts, total, count, mn, mx = zip(*points)  # columns at C speed, not six appends a point
        series.append({"label": label, "ts": list(map(int, ts)),
                       "mean": [t / c if c else None for t, c in zip(total, count)],
                       "sum": list(total), "min": list(mn), "max": list(mx), "count": list(count)})
    return series


def series_rows(series: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The series as a row per label and bucket (their CSV)."""
    return [{"label": s["label"], **{f: s[f][i] for f in SERIES_FIELDS}} for s in series for i in range(len(s["ts"]))]


# -- Celery outcomes and runtimes ---------------------------------------------------------------

def _outcome_table(w: Window):
    return CeleryMinute if w.stored == 60 else CeleryHour


def celery_outcomes(engine: Engine, w: Window, source: str, by: str = "total",
                    top: int = TOP_N) -> list[dict[str, Any]]:
    """Rows of (ts, key, succeeded, failed, retried, failure_rate) per bucket.

    by "total": one row per bucket, of every task (named or not, as the summary counts them);
    "name" or "queue": per bucket, the `top` busiest keys of the range and OTHER for the rest (a task
    whose name or queue never arrived is in neither). Summing a column over the rows gives the range's total.
    """
    m = _outcome_table(w)
    dimension = ALL_TASKS if by == "total" else by
    b = _bucket(m.bucket, w.step).label("b")
    total = by == "total"  # summed in SQL: one row per bucket comes back
    query = (select(b, literal("all") if total else m.key, func.sum(m.succeeded), func.sum(m.failed), func.sum(m.retried))
             .where(m.source == source, m.dimension == dimension, m.bucket >= w.since, m.bucket < w.until)
             .group_by(*((b,) if total else (b, m.key))))
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    if total:
        keep = None
    else:
        busy: dict[str, int] = {}
        for _, key, s, f, r in rows:
            busy[key] = busy.get(key, 0) + s + f + r
        keep = set(sorted(busy, key=lambda k: (-busy[k], k))[:top])
    merged: dict[tuple[int, str], list[int]] = {}
    for bucket, key, s, f, r in rows:
        key = "all" if keep is None else key if key in keep else OTHER
        agg = merged.setdefault((int(bucket), key), [0, 0, 0])
        agg[0] += s
        agg[1] += f
        agg[2] += r
    return [{"ts": ts, "key": key, "succeeded": s, "failed": f, "retried": r,
             "failure_rate": f / (s + f) if s + f else None}
            for (ts, key), (s, f, r) in sorted(merged.items())]


def _outcome_rows(engine: Engine, w: Window, source: str, dimension: str = "name"):
    """Every outcome row of the range by `dimension`, histogram included."""
    m = _outcome_table(w)
    query = (select(m.key, m.bucket, m.succeeded, m.failed, m.retried, m.runtime_sum, m.runtime_hist,
                    m.runtime_min, m.runtime_max)
             .where(m.source == source, m.dimension == dimension, m.bucket >= w.since, m.bucket < w.until))
    with engine.connect() as conn:
        for row in conn.execute(query).mappings():
            yield row


def _quantiles(agg: dict[str, Any]) -> dict[str, float | None]:
    p50, p95 = percentiles(agg["runtime_hist"], (0.5, 0.95), agg["runtime_min"], agg["runtime_max"])
    return {"p50": p50, "p95": p95}


def celery_runtimes(engine: Engine, w: Window, source: str, top: int = TOP_N) -> dict[str, Any]:
    """Per task name over the range (outcomes, p50, p95), and p50/p95 per bucket for the `top` busiest."""
    buckets: dict[str, dict[int, list]] = {}
    for row in _outcome_rows(engine, w, source):  # one pass: a month of hours is read once
        buckets.setdefault(row["key"], {}).setdefault(row["bucket"] // w.step * w.step, []).append(row)
    table = name_table({name: [row for rows in per_bucket.values() for row in rows] for name, per_bucket in buckets.items()})
    series = []
    for name in [t["name"] for t in table[:top]]:
        merged = ((ts, rows[0] if len(rows) == 1 else sum_outcomes(rows)) for ts, rows in sorted(buckets[name].items()))
        series.append({"name": name, "points": [{"ts": ts, **_quantiles(agg)} for ts, agg in merged
                                                if any(agg["runtime_hist"])]})
    return {"names": table, "series": series}


# -- the summary table --------------------------------------------------------------------------

def _period_start(ts: float, tz: ZoneInfo, period: str) -> datetime:
    local = datetime.fromtimestamp(ts, tz)
    day = datetime(local.year, local.month, local.day, tzinfo=tz)
    return day - timedelta(days=day.weekday()) if period == "week" else day


def _is_lag(metric: str) -> bool:
    return metric.lower().startswith("lag") and unit_of(metric) == ""


def summary(engine: Engine, since: float, until: float, period: str, tz: ZoneInfo,
            celery_sources: list[str], sources: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """Per local day or week (Monday first) of `tz`: tasks run, failure rate, p95 runtime, peak lag, downtime.

    The range is read as the charts read it: window(since, until), rounded out to whole chart
    buckets, from the same rollups, so a range's totals here equal the outcomes chart's. Days split
    at the stored bucket (minute or hour) that holds local midnight.
    """
    w = window(since, until)
    periods: dict[datetime, dict[str, Any]] = {}
    cursor = _period_start(w.since, tz, period)
    while cursor.timestamp() < w.until:
        nxt = _period_start((cursor + timedelta(days=7 if period == "week" else 1, hours=12)).timestamp(), tz, period)
        periods[cursor] = {"from": max(cursor.timestamp(), w.since), "until": min(nxt.timestamp(), w.until),
                           "rows": [], "peak_lag": None, "downtime": 0.0}
        cursor = nxt
    starts = [p["from"] for p in periods.values()]
    by_start = list(periods.values())

    def period_of(ts: float) -> dict[str, Any]:
        return by_start[bisect_right(starts, ts) - 1]

    for source in celery_sources:
        for row in _outcome_rows(engine, w, source, ALL_TASKS):  # one row a bucket, however many names
            period_of(row["bucket"])["rows"].append(row)
    r = Rollup
    lags: dict[tuple[str, str], list[str]] = {}
    for source, metric, label in series_keys(engine, w):
        if _is_lag(metric):
            lags.setdefault((source, metric), []).append(label)
    with engine.connect() as conn:
        for (source, metric), labels in lags.items():
            query = select(r.bucket, func.max(r.max)).where(
                r.source == source, r.metric == metric, r.label.in_(labels),
                stored_step(w),
                r.bucket >= w.since, r.bucket < w.until).group_by(r.bucket)
            for bucket, mx in conn.execute(query):
                p = period_of(bucket)
                p["peak_lag"] = mx if p["peak_lag"] is None else max(p["peak_lag"], mx)
    for kind, name in sources:
        for seg in segments(engine, kind, name, w.since, min(w.until, time.time())):
            if seg["state"] != "down":
                continue
            for p in periods.values():
                p["downtime"] += max(0.0, min(seg["until"], p["until"]) - max(seg["from"], p["from"]))
    out = []
    for start, p in periods.items():
        o = sum_outcomes(p["rows"])
        done = o["succeeded"] + o["failed"]
        out.append({"period": start.isoformat(), "from": p["from"], "until": p["until"],
                    "tasks": done, "failed": o["failed"], "failure_rate": o["failed"] / done if done else None,
                    "p95_runtime": percentile(o["runtime_hist"], 0.95, o["runtime_min"], o["runtime_max"]),
                    "peak_lag": p["peak_lag"], "downtime_seconds": p["downtime"]})
    return out
