"""History for any metric: raw samples for a short window, minute and hour rollups for long ones."""
from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.engine import Connection, Engine

from dashboard.store.db import insert_rows, upsert_rows
from dashboard.store.models import Rollup, Sample

STEPS = (60, 3600)
SAMPLE_COLUMNS = ("source", "metric", "label", "ts", "value")
ROLLUP_KEY = ("source", "metric", "label", "step", "bucket")
ROLLUP_AGG = ("total", "min", "max", "count", "last", "last_ts")
# How a bucket already stored absorbs the same bucket from a later batch (SQL for SQLite and PostgreSQL).
_NEWER = "excluded.last_ts >= {t}.last_ts"
ROLLUP_MERGE = {
    "total": "{t}.total + excluded.total",
    "count": "{t}.count + excluded.count",
    "min": "CASE WHEN excluded.min < {t}.min THEN excluded.min ELSE {t}.min END",
    "max": "CASE WHEN excluded.max > {t}.max THEN excluded.max ELSE {t}.max END",
    "last": f"CASE WHEN {_NEWER} THEN excluded.last ELSE {{t}}.last END",
    "last_ts": f"CASE WHEN {_NEWER} THEN excluded.last_ts ELSE {{t}}.last_ts END",
}


@dataclass(frozen=True)
class Point:
    """A sample to record: submit as writer.submit("sample", Point(...))."""

    source: str
    metric: str
    value: float
    ts: float
    label: str = ""


@dataclass(frozen=True)
class Retention:
    """How long each kind of row is kept (dashboard.store.retention applies it)."""

    raw_hours: float
    minute_days: float
    hour_days: float
    tasks_days: float = 30  # Celery task rows
    tasks_max: int = 10_000_000  # Celery task rows per source, newest kept


def write_points(conn: Connection, points: list[Point]) -> None:
    """Insert raw samples and fold them into the minute and hour rollups."""
    insert_rows(conn, Sample.__table__, SAMPLE_COLUMNS, [(p.source, p.metric, p.label, p.ts, p.value) for p in points])
    rows = _fold(((p.source, p.metric, p.label, 60, int(p.ts // 60) * 60), p.value, p.value, p.value, 1, p.value, p.ts)
                 for p in points)
    # Hours fold from the minutes: a few hundred groups instead of every point again.
    rows.update(_fold(((src, met, lab, 3600, bucket // 3600 * 3600), *agg) for (src, met, lab, _, bucket), agg in rows.items()))
    upsert_rows(conn, Rollup.__table__, ROLLUP_KEY, ROLLUP_KEY + ROLLUP_AGG,
                [key + agg for key, agg in rows.items()], ROLLUP_MERGE)


def _fold(entries) -> dict[tuple, tuple]:
    """Merge (key, total, min, max, count, last, last_ts) entries that share a key."""
    out: dict[tuple, tuple] = {}
    for key, total, mn, mx, count, last, last_ts in entries:
        seen = out.get(key)
        if seen is None:
            out[key] = (total, mn, mx, count, last, last_ts)
        else:
            t, a, b, c, l, lt = seen
            out[key] = (t + total, a if a < mn else mn, b if b > mx else mx, c + count,
                        *((last, last_ts) if last_ts >= lt else (l, lt)))
    return out


def read_series(
    engine: Engine, source: str, metric: str, label: str = "", start: float | None = None,
    end: float | None = None, step: int | None = None,
) -> list[dict[str, float]]:
    """Points of one series between start and end, at raw (step=0), 60 s or 3600 s resolution.

    Without a step, the resolution follows the span: raw up to 2 hours, minutes up to 3 days,
    hours beyond. Rollup points carry the bucket's mean, min, max and count.
    """
    end = time.time() if end is None else end
    start = end - 3600 if start is None else start
    if step is None:
        span = end - start
        step = 0 if span <= 2 * 3600 else 60 if span <= 3 * 86400 else 3600
    with engine.connect() as conn:
        if step == 0:
            rows = conn.execute(
                select(Sample.ts, Sample.value)
                .where(Sample.source == source, Sample.metric == metric, Sample.label == label,
                       Sample.ts >= start, Sample.ts <= end)
                .order_by(Sample.ts)
            )
            return [{"ts": ts, "value": value} for ts, value in rows]
        rows = conn.execute(
            select(Rollup.bucket, Rollup.count, Rollup.total, Rollup.min, Rollup.max)
            .where(Rollup.source == source, Rollup.metric == metric, Rollup.label == label,
                   Rollup.step == step, Rollup.bucket >= int(start // step) * step, Rollup.bucket <= end)
            .order_by(Rollup.bucket)
        )
        return [
            {"ts": float(bucket), "value": total / count, "min": mn, "max": mx, "count": count}
            for bucket, count, total, mn, mx in rows
        ]


def series_labels(engine: Engine, source: str, metric: str) -> list[str]:
    """Labels a metric of a source has had (e.g. the queues whose depth was sampled)."""
    with engine.connect() as conn:
        query = select(Rollup.label).where(Rollup.source == source, Rollup.metric == metric, Rollup.step == 3600)
        return sorted(conn.execute(query.distinct()).scalars())


HANDLERS = {"sample": write_points}
