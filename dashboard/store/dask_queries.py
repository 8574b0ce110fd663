"""Reads of Dask history: cluster, workers, prefixes, erred tasks (paged), per-minute statistics."""
from __future__ import annotations

import time
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.engine import Engine

from dashboard.store import runtime_hist
from dashboard.store.celery_queries import COUNT_CAP, QueryError, counted_rows, decode_cursor, encode_cursor
from dashboard.store.dask_models import DaskCluster, DaskErred, DaskMinute, DaskPrefix, DaskWorker
from dashboard.store.runtime_hist import percentile

ERRED_STATES = ("erred", "retried", "memory", "forgotten")
PREVIEW_CHARS = 300  # of the exception text, in list rows
TRACEBACK_PREVIEW = 4000  # of the traceback, collapsed in list rows
LIST_COLUMNS = ("key", "prefix", "worker", "erred_at", "state", "state_at", "retries")

__all__ = ["QueryError", "cluster", "workers", "prefixes", "erred_page", "erred_task", "erred_keys", "prefix_stats"]


def cluster(engine: Engine, source: str) -> dict[str, Any] | None:
    """The cluster's last-seen totals, with when they were seen."""
    with engine.connect() as conn:
        row = conn.execute(select(DaskCluster.info, DaskCluster.updated_at).where(DaskCluster.source == source)).first()
    return None if row is None else {**(row.info or {}), "updated_at": row.updated_at}


def workers(engine: Engine, source: str) -> list[dict[str, Any]]:
    """Workers present (by name) first, then those gone, most recently gone first."""
    t = DaskWorker
    with engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(select(t).where(t.source == source)).mappings()]
    for row in rows:
        row["gone"] = row["gone_at"] is not None
    rows.sort(key=lambda w: (w["gone"], -(w["gone_at"] or 0), str(w["name"] if w["name"] is not None else w["address"]),
                             w["address"]))
    return rows


def prefixes(engine: Engine, source: str) -> list[dict[str, Any]]:
    """Task counts by state for each prefix the scheduler holds tasks of, by name."""
    columns = ("prefix", "waiting", "processing", "memory", "erred", "released", "updated_at")
    with engine.connect() as conn:
        rows = conn.execute(select(*(getattr(DaskPrefix, c) for c in columns))
                            .where(DaskPrefix.source == source).order_by(DaskPrefix.prefix)).mappings()
        return [dict(r) for r in rows]


def erred_page(engine: Engine, source: str, after: str | None = None, limit: int = 50, prefix: str | None = None,
               state: str | None = None) -> dict[str, Any]:
    """One page of erred tasks, newest first, by keyset, with a capped count and exception previews."""
    if state is not None and state not in ERRED_STATES:
        raise QueryError(f"state: must be one of {', '.join(ERRED_STATES)}; got {state!r}")
    t = DaskErred
    where = [t.source == source]
    if prefix:
        where.append(t.prefix == prefix)
    if state:
        where.append(t.state == state)
    page_where = list(where)
    if after:
        ts, key = decode_cursor(after)
        page_where.append(or_(t.erred_at < ts, and_(t.erred_at == ts, t.key < key)))
    query = (select(*(getattr(t, c) for c in LIST_COLUMNS), func.substr(t.exception, 1, PREVIEW_CHARS).label("exception"),
                    func.substr(t.traceback, 1, TRACEBACK_PREVIEW).label("traceback"))
             .where(*page_where).order_by(t.erred_at.desc(), t.key.desc()).limit(limit + 1))
    capped = select(func.count()).select_from(select(t.key).where(*where).limit(COUNT_CAP + 1).subquery())
    rows, total = counted_rows(engine, query, capped, bool(after))
    more = len(rows) > limit
    rows = rows[:limit]
    return {"tasks": rows, "next": encode_cursor(rows[-1]["erred_at"], rows[-1]["key"]) if more else None,
            "total": min(total, COUNT_CAP), "total_capped": total > COUNT_CAP}


def erred_task(engine: Engine, source: str, key: str) -> dict[str, Any] | None:
    with engine.connect() as conn:
        row = conn.execute(select(DaskErred).where(DaskErred.source == source, DaskErred.key == key)).mappings().first()
    return None if row is None else dict(row)


def erred_keys(engine: Engine, source: str, keys: list[str] | None = None, prefix: str | None = None,
               limit: int = 1000) -> dict[str, dict[str, Any]]:
    """Stored erred tasks by key text: those named, or those of a prefix still erred."""
    t = DaskErred
    where = [t.source == source]
    if prefix is not None:
        where += [t.prefix == prefix, t.state == "erred"]
    found: dict[str, dict[str, Any]] = {}
    with engine.connect() as conn:
        if keys is None:
            chunks = [None]
        else:
            chunks = [keys[i:i + 500] for i in range(0, len(keys), 500)]
        for chunk in chunks:
            query = select(t.key, t.raw, t.state, t.prefix).where(*where)
            if chunk is not None:
                query = query.where(t.key.in_(chunk))
            for r in conn.execute(query.order_by(t.erred_at.desc()).limit(limit)).mappings():
                found[r["key"]] = dict(r)
    return found


def prefix_stats(engine: Engine, source: str, since: float, until: float | None = None) -> dict[str, Any]:
    """Per-minute finished/erred counts (total and per prefix) and duration p50/p95 per prefix."""
    until = time.time() if until is None else until
    m = DaskMinute
    minutes: dict[int, dict[str, int]] = {}
    totals: dict[str, dict[str, Any]] = {}
    with engine.connect() as conn:
        rows = conn.execute(select(m.prefix, m.bucket, m.completed, m.erred, m.duration_sum, m.duration_hist)
                            .where(m.source == source, m.bucket >= since - 60, m.bucket <= until).order_by(m.bucket))
        series: dict[str, list[dict[str, Any]]] = {}
        for prefix, bucket, completed, erred, duration_sum, hist in rows:
            minute = minutes.setdefault(bucket, {"ts": bucket, "completed": 0, "erred": 0})
            minute["completed"] += completed
            minute["erred"] += erred
            series.setdefault(prefix, []).append({"ts": bucket, "completed": completed, "erred": erred,
                                                  "p50": percentile(hist, 0.5), "p95": percentile(hist, 0.95)})
            tot = totals.setdefault(prefix, {"prefix": prefix, "completed": 0, "erred": 0, "duration_sum": 0.0, "hist": runtime_hist.empty()})
            tot["completed"] += completed
            tot["erred"] += erred
            tot["duration_sum"] += duration_sum
            tot["hist"] = runtime_hist.total([tot["hist"], hist])
    by_prefix = []
    for tot in sorted(totals.values(), key=lambda t: (-(t["completed"] + t["erred"]), t["prefix"])):
        by_prefix.append({"prefix": tot["prefix"], "completed": tot["completed"], "erred": tot["erred"],
                          "mean": tot["duration_sum"] / tot["completed"] if tot["completed"] else None,
                          "p50": percentile(tot["hist"], 0.5), "p95": percentile(tot["hist"], 0.95),
                          "minutes": series[tot["prefix"]]})
    return {"minutes": [minutes[b] for b in sorted(minutes)], "prefixes": by_prefix}
