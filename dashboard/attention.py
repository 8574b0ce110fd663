"""The overview's "Needs attention" strip and card sparklines, read from generic data.

Every source is read through what all verticals store alike: its status (state, error, headline
numbers) and its metric series (rollups). Only Celery, whose tasks live in tables of their own,
adds task-level items. A new vertical shows here by naming its headline rule and its key metric.
"""
from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote, urlencode

from dashboard.store import celery_queries
from dashboard.store.overview_queries import celery_tasks_by_name, latest_by_label, minute_series

FAILURES_WINDOW = 300.0  # Celery failures this recent count as "right now"
LOST_WINDOW = 3600.0
OFFLINE_WINDOW = 86400.0  # a worker offline longer than this is taken as retired, not news
SPARK_WINDOW = 3600.0

# kind -> (headline number, at least, what it means, metric whose labels name the culprits).
HEADLINE_RULES = {
    "kafka": ("lag", 100, "consumer lag {value:,} messages", "lag"),
    "consul": ("critical", 1, "{value:,} critical check(s)", None),
}
# kind -> the (metric, label) pairs a card's sparkline may draw, the first with data winning, and its unit.
# A label of None sums the metric over its labels; Dask's "" label is its total beside the per-prefix ones.
SPARK_METRICS = {
    "dask": ((("tasks_completed", ""), ("tasks_processing", "")), "tasks"),
    "kafka": ((("lag", None),), "messages behind"),
    "consul": ((("checks_critical", None),), "critical checks"),
}


def page_of(kind: str, name: str) -> str:
    """The page that explains a source."""
    return f"/celery/{quote(name, safe='')}" if kind == "celery" else f"/{kind}"


def _celery_tasks_link(source: str, **query: str) -> str:
    return f"/celery/{quote(source, safe='')}/tasks?{urlencode(query)}"


def needs_attention(runtime, now: float | None = None) -> list[dict[str, Any]]:
    """What is wrong right now across sources, newest first; each item links to its page."""
    now = time.time() if now is None else now
    engine = runtime.engine
    statuses = runtime.overview_snapshot()
    items: list[dict[str, Any]] = []
    for key, s in statuses.items():
        kind, name = s["kind"], s["name"]
        if s.get("state") in ("down", "degraded"):
            items.append({"key": f"state:{key}", "level": s["state"], "title": f"{key} is {s['state']}",
                          "detail": s.get("last_error") or "", "at": s.get("last_error_at") or s.get("updated_at"),
                          "href": page_of(kind, name)})
        rule = HEADLINE_RULES.get(kind)
        value = (s.get("headline") or {}).get(rule[0]) if rule else None
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= rule[1]:
            detail = ""
            if rule[3]:
                culprits = latest_by_label(engine, key, rule[3], now - 300)
                detail = ", ".join(f"{label} ({v:,.0f})" for label, v in sorted(culprits.items(), key=lambda kv: -kv[1])
                                   if label and v >= rule[1])
            items.append({"key": f"{rule[0]}:{key}", "level": "degraded", "title": f"{key}: " + rule[2].format(value=value),
                          "detail": detail, "at": s.get("updated_at"), "href": page_of(kind, name)})
    celery = {s["name"] for s in statuses.values() if s["kind"] == "celery"}
    for row in celery_tasks_by_name(engine, "FAILURE", now - FAILURES_WINDOW):
        if row["source"] in celery:
            items.append({"key": f"failed:{row['source']}:{row['name']}", "level": "down",
                          "title": f"celery/{row['source']}: {row['count']:,} × {row['name'] or '?'} failed in the last 5 min",
                          "detail": "", "at": row["at"],
                          "href": _celery_tasks_link(row["source"], state="FAILURE", name=row["name"] or "")})
    for row in celery_tasks_by_name(engine, "LOST", now - LOST_WINDOW):
        if row["source"] in celery:
            items.append({"key": f"lost:{row['source']}:{row['name']}", "level": "down",
                          "title": f"celery/{row['source']}: {row['count']:,} × {row['name'] or '?'} LOST",
                          "detail": "no worker holds them and no result backend knows their end", "at": row["at"],
                          "href": _celery_tasks_link(row["source"], state="LOST", name=row["name"] or "")})
    for source in sorted(celery):
        for w in celery_queries.workers(engine, source, now):
            seen = w.get("last_heartbeat") or w.get("updated_at")
            if not w["online"] and seen and now - seen <= OFFLINE_WINDOW:
                items.append({"key": f"offline:{source}:{w['hostname']}", "level": "down",
                              "title": f"celery/{source}: worker {w['hostname']} offline", "detail": "", "at": seen,
                              "href": f"/celery/{quote(source, safe='')}/workers/{quote(w['hostname'], safe='')}"})
    items.sort(key=lambda item: item["at"] or 0, reverse=True)
    return items


def sparklines(runtime, now: float | None = None) -> dict[str, dict[str, Any]]:
    """Per source key, the last hour of its key series per minute: {unit, series: [{name, points}]}."""
    now = time.time() if now is None else now
    since = int((now - SPARK_WINDOW) // 60) * 60
    out: dict[str, dict[str, Any]] = {}
    for source in runtime.settings.sources:
        if source.kind == "celery":
            per_minute: dict[int, list[int]] = {}
            for row in celery_queries.minute_stats(runtime.engine, source.name, "name", since):
                counts = per_minute.setdefault(int(row["ts"]), [0, 0])
                counts[0] += row["succeeded"]
                counts[1] += row["failed"]
            buckets = sorted(per_minute)
            out[source.key] = {"unit": "tasks/min", "integer": True, "series": [
                {"name": "succeeded", "points": [[b, per_minute[b][0]] for b in buckets]},
                {"name": "failed", "points": [[b, per_minute[b][1]] for b in buckets]}]}
        elif source.kind in SPARK_METRICS:
            metrics, unit = SPARK_METRICS[source.kind]
            for metric, label in metrics:
                points = minute_series(runtime.engine, source.key, metric, since, label)
                if points:
                    out[source.key] = {"unit": unit, "integer": False,
                                       "series": [{"name": metric, "points": [list(p) for p in points]}]}
                    break
    return out
