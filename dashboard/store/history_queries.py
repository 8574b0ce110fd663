"""History over hours to months: any recorded metric, Celery outcomes and runtimes, a per-day summary.

Every series is read from rollups, never from raw rows: minute rollups for ranges up to about two
days, hour rollups beyond, re-bucketed in SQL so that no series has more than MAX_POINTS points.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, literal, select
from sqlalchemy.engine import Engine

from dashboard.store.availability import segments
from dashboard.store.celery_ingest import merge_outcomes, no_outcomes, percentile
from dashboard.store.celery_models import CeleryHour, CeleryMinute
from dashboard.store.models import Rollup

MAX_POINTS = 2000
MINUTES_UP_TO = 2 * 86400 + 3600  # ranges up to ~2 days read minute rollups
# Bucket widths a chart may show, each a whole multiple of the rollup it is read from.
STEPS = (60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 7 * 86400)
MAX_LABELS = 20  # series per metric drawn; the rest are counted, not drawn
TOP_N = 5
OTHER = "other"


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

def metric_catalog(engine: Engine, w: Window) -> list[dict[str, Any]]:
    """Every (source, metric) with data in the range, and its labels (the most active MAX_LABELS)."""
    r = Rollup
    query = (select(r.source, r.metric, r.label, func.sum(r.count))
             .where(r.step == 3600, r.bucket >= w.since // 3600 * 3600, r.bucket < w.until)
             .group_by(r.source, r.metric, r.label))
    found: dict[tuple[str, str], list[tuple[int, str]]] = {}
    with engine.connect() as conn:
        for source, metric, label, count in conn.execute(query):
            found.setdefault((source, metric), []).append((-count, label))
    out = []
    for (source, metric), labels in sorted(found.items()):
        labels.sort()
        out.append({"source": source, "metric": metric, "unit": unit_of(metric),
                    "labels": sorted(label for _, label in labels[:MAX_LABELS]),
                    "labels_not_drawn": max(0, len(labels) - MAX_LABELS)})
    return out


def unit_of(metric: str) -> str:
    """The unit a metric's name implies (collectors name them so); "" when it is a plain count."""
    name = metric.lower()
    for suffix, unit in (("seconds", "s"), ("_s", "s"), ("bytes", "bytes"), ("memory", "bytes"),
                         ("percent", "%"), ("ratio", "ratio")):
        if name.endswith(suffix):
            return unit
    return ""


def metric_series(engine: Engine, w: Window, source: str, metric: str,
                  labels: list[str] | None = None) -> list[dict[str, Any]]:
    """One series per label: per bucket the mean, min, max and number of samples."""
    r = Rollup
    b = _bucket(r.bucket, w.step).label("b")
    query = (select(r.label, b, func.sum(r.total), func.sum(r.count), func.min(r.min), func.max(r.max))
             .where(r.source == source, r.metric == metric, r.step == w.stored,
                    r.bucket >= w.since, r.bucket < w.until)
             .group_by(r.label, b).order_by(r.label, b))
    if labels is not None:
        query = query.where(r.label.in_(labels))
    series: dict[str, list] = {}
    with engine.connect() as conn:
        for label, bucket, total, count, mn, mx in conn.execute(query):
            series.setdefault(label, []).append(
                {"ts": int(bucket), "mean": total / count if count else None, "min": mn, "max": mx, "count": count})
    return [{"label": label, "points": points} for label, points in series.items()]


# -- Celery outcomes and runtimes ---------------------------------------------------------------

def _outcome_table(w: Window):
    return CeleryMinute if w.stored == 60 else CeleryHour


def celery_outcomes(engine: Engine, w: Window, source: str, by: str = "total",
                    top: int = TOP_N) -> list[dict[str, Any]]:
    """Rows of (ts, key, succeeded, failed, retried, failure_rate) per bucket.

    by "total": one row per bucket; "name" or "queue": per bucket, the `top` busiest keys of the
    range and OTHER for the rest. Summing a column over the rows gives the range's total.
    """
    m = _outcome_table(w)
    dimension = "name" if by == "total" else by
    b = _bucket(m.bucket, w.step).label("b")
    query = (select(b, m.key, func.sum(m.succeeded), func.sum(m.failed), func.sum(m.retried))
             .where(m.source == source, m.dimension == dimension, m.bucket >= w.since, m.bucket < w.until)
             .group_by(b, m.key))
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    if by == "total":
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


def _outcome_rows(engine: Engine, w: Window, source: str, names: list[str] | None):
    m = _outcome_table(w)
    query = (select(m.key, m.bucket, m.succeeded, m.failed, m.retried, m.runtime_sum, m.runtime_hist,
                    m.runtime_min, m.runtime_max)
             .where(m.source == source, m.dimension == "name", m.bucket >= w.since, m.bucket < w.until))
    if names is not None:
        query = query.where(m.key.in_(names))
    with engine.connect() as conn:
        for row in conn.execute(query).mappings():
            yield row


def _quantiles(agg: dict[str, Any]) -> dict[str, float | None]:
    hist, low, high = agg["runtime_hist"], agg["runtime_min"], agg["runtime_max"]
    return {"p50": percentile(hist, 0.5, low, high), "p95": percentile(hist, 0.95, low, high)}


def celery_runtimes(engine: Engine, w: Window, source: str, top: int = TOP_N) -> dict[str, Any]:
    """Per task name over the range (outcomes, p50, p95), and p50/p95 per bucket for the `top` busiest."""
    totals: dict[str, dict[str, Any]] = {}
    for row in _outcome_rows(engine, w, source, None):
        merge_outcomes(totals.setdefault(row["key"], no_outcomes()), row)
    names = sorted(totals, key=lambda k: (-(totals[k]["succeeded"] + totals[k]["failed"]), k))
    table = []
    for name in names:
        t = totals[name]
        done = t["succeeded"] + t["failed"]
        table.append({"name": name, "succeeded": t["succeeded"], "failed": t["failed"], "retried": t["retried"],
                      "failure_rate": t["failed"] / done if done else None, **_quantiles(t)})
    buckets: dict[tuple[str, int], dict[str, Any]] = {}
    for row in _outcome_rows(engine, w, source, names[:top]):
        merge_outcomes(buckets.setdefault((row["key"], row["bucket"] // w.step * w.step), no_outcomes()), row)
    series = {name: [] for name in names[:top]}
    for (name, ts), agg in sorted(buckets.items()):
        if agg["runtime_hist"]:
            series[name].append({"ts": ts, **_quantiles(agg)})
    return {"names": table, "series": [{"name": n, "points": p} for n, p in series.items()]}


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

    Read from the hour rollups, so a zone whose offset is not whole hours splits its days at the hour.
    """
    periods: dict[datetime, dict[str, Any]] = {}
    cursor = _period_start(since, tz, period)
    while cursor.timestamp() < until:
        nxt = _period_start((cursor + timedelta(days=7 if period == "week" else 1, hours=12)).timestamp(), tz, period)
        periods[cursor] = {"from": max(cursor.timestamp(), since), "until": min(nxt.timestamp(), until),
                           "outcomes": no_outcomes(), "peak_lag": None, "downtime": 0.0}
        cursor = nxt
    hours = Window(int(since // 3600) * 3600, int(until), 3600, 3600)
    for source in celery_sources:
        for row in _outcome_rows(engine, hours, source, None):
            if since <= row["bucket"] < until:
                merge_outcomes(periods[_period_start(row["bucket"], tz, period)]["outcomes"], row)
    r = Rollup
    lag = (select(r.metric, r.bucket, r.max)
           .where(r.step == 3600, r.bucket >= hours.since, r.bucket < until, r.metric.like("lag%")))
    with engine.connect() as conn:
        for metric, bucket, mx in conn.execute(lag):
            if _is_lag(metric) and bucket >= since:
                p = periods[_period_start(bucket, tz, period)]
                p["peak_lag"] = mx if p["peak_lag"] is None else max(p["peak_lag"], mx)
    for kind, name in sources:
        for seg in segments(engine, kind, name, since, min(until, time.time())):
            if seg["state"] != "down":
                continue
            for p in periods.values():
                p["downtime"] += max(0.0, min(seg["until"], p["until"]) - max(seg["from"], p["from"]))
    out = []
    for start, p in periods.items():
        o = p["outcomes"]
        done = o["succeeded"] + o["failed"]
        out.append({"period": start.isoformat(), "from": p["from"], "until": p["until"],
                    "tasks": done, "failed": o["failed"], "failure_rate": o["failed"] / done if done else None,
                    "p95_runtime": percentile(o["runtime_hist"], 0.95, o["runtime_min"], o["runtime_max"]),
                    "peak_lag": p["peak_lag"], "downtime_seconds": p["downtime"]})
    return out
