"""JSON (and CSV) API of the History page: every series it draws, managers and admins only."""
from __future__ import annotations

import csv
import io
import time
from datetime import datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import Blueprint, Response, abort, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from dashboard.auth.web import requires_role
from dashboard.store import history_queries as hq
from dashboard.store.availability import availability as availability_of
from dashboard.store.celery_queries import QueryError
from dashboard.store.runtime_hist import ERROR_BOUND
from dashboard.views.audit import csv_cell
from dashboard.views.celery_api import parse_time

history_api = Blueprint("history_api", __name__, url_prefix="/api/history")

RANGES = {"1h": 3600, "24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400, "90d": 90 * 86400}
DEFAULT_RANGE = "24h"
MAX_SPAN = 800 * 86400
BY = ("total", "name", "queue")


@history_api.after_request
def no_store(response):
    response.headers["Cache-Control"] = "no-store"
    return response


@history_api.errorhandler(QueryError)
def bad_query(exc: QueryError):
    return jsonify(error=str(exc)), 400


@history_api.errorhandler(HTTPException)
def http_error(exc: HTTPException):
    return jsonify(error=exc.description), exc.code


def _settings():
    return current_app.extensions["jobdash"].settings


def _engine():
    return current_app.extensions["jobdash"].engine


def requested_range(args, now: float | None = None) -> tuple[float, float, str]:
    """(since, until, range key) from `range=24h` or `from=&until=` (epoch seconds or ISO 8601, UTC if no zone)."""
    now = time.time() if now is None else now
    since, until = parse_time("from", args.get("from", "")), parse_time("until", args.get("until", ""))
    if since is not None or until is not None:
        if since is None:
            raise QueryError("from: needed with until (or use range=1h, 24h, 7d, 30d or 90d)")
        until = now if until is None else until
        if since >= until:
            raise QueryError("from: must be earlier than until")
        if until - since > MAX_SPAN:
            raise QueryError(f"from: a range may span at most {MAX_SPAN // 86400} days")
        return since, until, "custom"
    key = args.get("range") or DEFAULT_RANGE
    if key not in RANGES:
        raise QueryError(f"range: must be one of {', '.join(RANGES)}, or give from and until; got {key!r}")
    return now - RANGES[key], now, key


def _window() -> tuple[hq.Window, dict[str, Any]]:
    since, until, key = requested_range(request.args)
    w = hq.window(since, until)
    return w, {"range": key, "asked": {"from": since, "until": until}, **w.as_dict()}


def _compare() -> bool:
    return request.args.get("compare", "") in ("1", "true", "yes")


def _top() -> int:
    raw = request.args.get("top", str(hq.TOP_N))
    if not raw.isdigit() or not 1 <= int(raw) <= 50:
        raise QueryError(f"top: a whole number from 1 to 50, got {raw!r}")
    return int(raw)


def _celery(name: str) -> None:
    if _settings().source("celery", name) is None:
        abort(404, description=f"no Celery source named {name!r}")


def iso(ts: float | None) -> str:
    if ts is None:
        return ""
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _answer(name: str, body: dict[str, Any], rows_key: str, columns: tuple[str, ...], time_keys=("ts",)):
    """JSON, or with format=csv the rows under `rows_key` (and the previous period's, marked) as CSV."""
    if request.args.get("format") != "csv":
        return jsonify(body)
    out = io.StringIO()
    writer = csv.writer(out)
    periods = [("current", body)] + ([("previous", body["previous"])] if "previous" in body else [])
    header = ["time" if k == "ts" else k for k in columns]
    writer.writerow((["period"] if len(periods) > 1 else []) + header)
    for label, part in periods:
        for row in part[rows_key]:
            cells = [iso(row.get(c)) if c in time_keys else row.get(c) for c in columns]
            writer.writerow(([label] if len(periods) > 1 else []) + ["" if v is None else csv_cell(v) for v in cells])
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return Response(out.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="jobdash-{name}-{stamp}.csv"'})


def _with_previous(w: hq.Window, read) -> dict[str, Any]:
    """read(window) -> dict; with compare=1 the previous period's, shifted by `shift` to overlay."""
    body = read(w)
    if _compare():
        body["previous"] = read(w.previous())
        body["shift"] = w.span
    return body


@history_api.get("")
@requires_role("manager")
def index():
    """The range's resolution, the configured sources, and every metric with data in the range."""
    w, meta = _window()
    sources = [{"kind": s.kind, "name": s.name, "key": s.key} for s in _settings().sources]
    return jsonify(window=meta, ranges=list(RANGES), sources=sources, metrics=hq.metric_catalog(_engine(), w))


@history_api.get("/metrics/<kind>/<name>/<metric>")
@requires_role("manager")
def metric(kind: str, name: str, metric: str):
    """Mean, sum, min, max and sample count per bucket of one metric, a series per label (as CSV, a row per
    point); `value` names the field its chart draws (sum for a count, mean otherwise)."""
    w, meta = _window()
    labels = request.args.getlist("label") or None

    body = {"window": meta, "source": f"{kind}/{name}", "metric": metric, "unit": hq.unit_in(metric, w),
            "value": hq.value_of(metric),
            **_with_previous(w, lambda win: {"series": hq.metric_series(_engine(), win, f"{kind}/{name}", metric, labels)})}
    if request.args.get("format") == "csv":
        for part in (body, body.get("previous")):
            if part is not None:
                part["rows"] = hq.series_rows(part.pop("series"))
    return _answer(f"{kind}-{name}-{metric}", body, "rows", ("ts", "label", "mean", "sum", "min", "max", "count"))


@history_api.get("/celery/<name>/outcomes")
@requires_role("manager")
def celery_outcomes(name: str):
    """Succeeded / failed / retried and failure rate per bucket, in total or per task name or queue (top N + other)."""
    _celery(name)
    by = request.args.get("by", "total")
    if by not in BY:
        raise QueryError(f"by: must be one of {', '.join(BY)}, got {by!r}")
    w, meta = _window()
    top = _top()
    body = {"window": meta, "by": by,
            **_with_previous(w, lambda win: {"rows": hq.celery_outcomes(_engine(), win, name, by, top)})}
    return _answer(f"celery-{name}-outcomes-{by}", body, "rows",
                   ("ts", "key", "succeeded", "failed", "retried", "failure_rate"))


@history_api.get("/celery/<name>/runtimes")
@requires_role("manager")
def celery_runtimes(name: str):
    """Runtime p50 / p95 per task name: over the range, and per bucket for the busiest."""
    _celery(name)
    w, meta = _window()
    top = _top()

    def read(win):
        found = hq.celery_runtimes(_engine(), win, name, top)
        return {"names": found["names"], "rows": [{"name": s["name"], **p} for s in found.pop("series") for p in s["points"]]}

    body = {"window": meta, "error_bound": f"within one histogram bin: at most {ERROR_BOUND - 1:.0%} from the true value",
            **_with_previous(w, read)}
    if request.args.get("part") == "names":
        return _answer(f"celery-{name}-runtimes-by-name", body, "names",
                       ("name", "succeeded", "failed", "retried", "failure_rate", "p50", "p95"))
    return _answer(f"celery-{name}-runtimes", body, "rows", ("ts", "name", "p50", "p95"))


def _sources() -> list[tuple[str, str]]:
    return [(s.kind, s.name) for s in _settings().sources]


@history_api.get("/availability")
@requires_role("manager")
def availability():
    """Per source: time up / degraded / down / unknown in the range, the strip, and the incidents."""
    w, meta = _window()
    found = availability_of(_engine(), _sources(), w.since, w.until)
    rows = [{"source": a["source"], **i} for a in found for i in a["incidents"]]
    segments = [{"source": a["source"], **s} for a in found for s in a["segments"]]
    body = {"window": meta, "sources": found, "incidents": rows, "segments": segments}
    if request.args.get("part") == "incidents":
        return _answer("availability-incidents", body, "incidents",
                       ("source", "state", "from", "until", "seconds", "ongoing", "error"), ("from", "until"))
    return _answer("availability", body, "segments", ("source", "state", "from", "until"), ("from", "until"))


@history_api.get("/summary")
@requires_role("manager")
def summary():
    """Per day or week in the asked time zone: tasks, failure rate, p95 runtime, peak lag, downtime."""
    since, until, key = requested_range(request.args)
    period = request.args.get("period", "day")
    if period not in ("day", "week"):
        raise QueryError(f"period: must be day or week, got {period!r}")
    tz_name = request.args.get("tz", "UTC")[:64]
    try:
        tz = ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise QueryError(f"tz: not a time zone name like Europe/Berlin or UTC: {tz_name!r}") from None
    celery = [s.name for s in _settings().sources if s.kind == "celery"]
    rows = hq.summary(_engine(), since, until, period, tz, celery, _sources())
    body = {"range": key, "window": hq.window(since, until).as_dict(), "period": period, "tz": tz_name, "rows": rows}
    return _answer(f"summary-{period}", body, "rows",
                   ("period", "tasks", "failed", "failure_rate", "p95_runtime", "peak_lag", "downtime_seconds"), ())
