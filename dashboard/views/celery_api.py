"""JSON API for Celery sources: task pages and detail, workers, queues, per-minute stats."""
from __future__ import annotations

import time
from datetime import datetime, timezone

from flask import Blueprint, abort, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from dashboard.store import celery_queries as q
from dashboard.store.timeseries import read_series, series_labels

celery_api = Blueprint("celery_api", __name__, url_prefix="/api/celery")

MAX_LIMIT = 500
LATEST_TIME = 253_402_300_799.0  # 9999-12-31T23:59:59Z


@celery_api.after_request
def no_store(response):
    response.headers["Cache-Control"] = "no-store"
    return response


@celery_api.errorhandler(q.QueryError)
def bad_query(exc: q.QueryError):
    return jsonify(error=str(exc)), 400


@celery_api.errorhandler(HTTPException)
def http_error(exc: HTTPException):
    return jsonify(error=exc.description), exc.code


def _runtime():
    return current_app.extensions["jobdash"]


def _source(name: str):
    source = _runtime().settings.source("celery", name)
    if source is None:
        abort(404, description=f"no Celery source named {name!r}")
    return source


def parse_time(key: str, raw: str) -> float | None:
    """Epoch seconds, or an ISO 8601 time; one without a zone is UTC (as the page says)."""
    raw = (raw or "").strip()
    if not raw:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        try:
            moment = datetime.fromisoformat(raw)
        except ValueError:
            raise q.QueryError(f"{key}: {raw[:80]!r} is neither epoch seconds nor a time like 2026-11-27T10:00 (UTC)") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        seconds = moment.timestamp()
    # nan, inf and times no calendar holds would break every page that shows them.
    if not LATEST_TIME >= seconds >= 0:
        raise q.QueryError(f"{key}: {raw[:80]!r} is not a time from 1970 to 9999")
    return seconds


def _time_arg(key: str) -> float | None:
    return parse_time(key, request.args.get(key, ""))


def _int_arg(key: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(key)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise q.QueryError(f"{key}: expected a whole number, got {raw!r}") from None
    if not low <= value <= high:
        raise q.QueryError(f"{key}: must be between {low} and {high}, got {value}")
    return value


def task_filter() -> q.TaskFilter:
    """The filter a task list request asks for; QueryError names what is malformed."""
    state = request.args.get("state") or None
    if state and state.upper() not in q.STATES:
        raise q.QueryError(f"state: must be one of {', '.join(q.STATES)}; got {state!r}")
    flt = q.TaskFilter(state=state, name=request.args.get("name") or None, worker=request.args.get("worker") or None,
                       queue=request.args.get("queue") or None, since=_time_arg("since"), until=_time_arg("until"),
                       search=request.args.get("q", ""))
    if flt.since is not None and flt.until is not None and flt.since > flt.until:
        raise q.QueryError("since: must not be later than until")
    flt.terms = q.parse_search(flt.search)
    return flt


@celery_api.get("/<source>/tasks")
def tasks(source: str):
    _source(source)
    page = q.task_page(_runtime().engine, source, task_filter(), after=request.args.get("after") or None,
                       limit=_int_arg("limit", 50, 1, MAX_LIMIT))
    return jsonify(page)


@celery_api.get("/<source>/tasks/<uuid>")
def task(source: str, uuid: str):
    _source(source)
    detail = q.task_detail(_runtime().engine, source, uuid)
    if detail is None:
        abort(404, description=f"no task {uuid!r} in Celery source {source!r}")
    return jsonify(detail)


@celery_api.get("/<source>/workers")
def workers(source: str):
    _source(source)
    return jsonify(workers=q.workers(_runtime().engine, source))


@celery_api.get("/<source>/workers/<hostname>")
def worker(source: str, hostname: str):
    _source(source)
    found = [w for w in q.workers(_runtime().engine, source) if w["hostname"] == hostname]
    if not found:
        abort(404, description=f"no worker {hostname!r} in Celery source {source!r}")
    return jsonify(found[0])


@celery_api.get("/<source>/queues")
def queues(source: str):
    """Depth of each queue now and over the asked span (raw, minute or hour points by span)."""
    _source(source)
    until = _time_arg("until") or time.time()
    since = _time_arg("since") or until - 3600
    engine, key = _runtime().engine, f"celery/{source}"
    labels = series_labels(engine, key, "queue_depth")
    out = []
    for label in labels:
        series = read_series(engine, key, "queue_depth", label, since, until)
        out.append({"queue": label, "depth": series[-1]["value"] if series else None, "series": series})
    return jsonify(queues=out)


@celery_api.get("/<source>/stats")
def stats(source: str):
    """Per-minute succeeded/failed/retried counts and runtime percentiles by name or queue."""
    _source(source)
    by = request.args.get("by", "name")
    if by not in ("name", "queue"):
        raise q.QueryError(f"by: must be name or queue, got {by!r}")
    until = _time_arg("until") or time.time()
    since = _time_arg("since") or until - 3600
    return jsonify(stats=q.minute_stats(_runtime().engine, source, by, since, until))


@celery_api.get("/<source>/failures")
def failure_count(source: str):
    """How many failures of a task name fall in a time range: shown before a bulk retry is confirmed."""
    _source(source)
    name = request.args.get("name", "")
    since, until = _time_arg("since"), _time_arg("until")
    if not name or since is None or until is None:
        raise q.QueryError("name, since and until are all required")
    count, _ = q.failures(_runtime().engine, source, name, since, until, 0)
    return jsonify(name=name, since=since, until=until, count=count)
