"""JSON API for Dask sources: cluster, workers, prefixes, erred tasks (paged) and history."""
from __future__ import annotations

import time

from flask import Blueprint, abort, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from dashboard.auth.web import requires_role
from dashboard.store import dask_queries as q
from dashboard.store.timeseries import read_series, series_labels

dask_api = Blueprint("dask_api", __name__, url_prefix="/api/dask")

MAX_LIMIT = 500
# span -> seconds; the series' resolution follows the span (raw, minutes, hours).
SPANS = {"1h": 3600, "24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400}
GAUGES = ("workers", "memory_bytes", "memory_managed", "memory_spilled", "tasks_processing", "tasks_erred")
COUNTS = ("tasks_completed", "tasks_failed")


@dask_api.after_request
def no_store(response):
    response.headers["Cache-Control"] = "no-store"
    return response


@dask_api.errorhandler(q.QueryError)
def bad_query(exc: q.QueryError):
    return jsonify(error=str(exc)), 400


@dask_api.errorhandler(HTTPException)
def http_error(exc: HTTPException):
    return jsonify(error=exc.description), exc.code


def _engine():
    return current_app.extensions["jobdash"].engine


def _source(name: str):
    source = current_app.extensions["jobdash"].settings.source("dask", name)
    if source is None:
        abort(404, description=f"no Dask source named {name!r}")
    return source


def _limit() -> int:
    raw = request.args.get("limit") or "50"
    try:
        value = int(raw)
    except ValueError:
        raise q.QueryError(f"limit: expected a whole number, got {raw!r}") from None
    if not 1 <= value <= MAX_LIMIT:
        raise q.QueryError(f"limit: must be between 1 and {MAX_LIMIT}, got {value}")
    return value


@dask_api.get("/<source>/cluster")
def cluster(source: str):
    _source(source)
    return jsonify(cluster=q.cluster(_engine(), source))


@dask_api.get("/<source>/workers")
def workers(source: str):
    _source(source)
    return jsonify(workers=q.workers(_engine(), source))


@dask_api.get("/<source>/prefixes")
def prefixes(source: str):
    _source(source)
    return jsonify(prefixes=q.prefixes(_engine(), source))


@dask_api.get("/<source>/erred")
def erred(source: str):
    """Erred tasks newest first; `after` is the `next` of the page before."""
    _source(source)
    return jsonify(q.erred_page(_engine(), source, after=request.args.get("after") or None, limit=_limit(),
                                prefix=request.args.get("prefix") or None, state=request.args.get("state") or None))


@dask_api.get("/<source>/erred/<path:key>")
def erred_task(source: str, key: str):
    _source(source)
    task = q.erred_task(_engine(), source, key)
    if task is None:
        abort(404, description=f"no erred task {key!r} in Dask source {source!r}")
    return jsonify(task)


def history_of(source: str, span: str) -> dict:
    """Gauges and per-poll counts from the rollups (total and per prefix), and per-prefix durations."""
    if span not in SPANS:
        raise q.QueryError(f"span: must be one of {', '.join(SPANS)}; got {span!r}")
    until = time.time()
    since = until - SPANS[span]
    engine, key = _engine(), f"dask/{source}"
    # Counts are summed per minute (per hour beyond a day) from the rollups' totals.
    step = 60 if SPANS[span] <= 86400 else 3600

    def totals(metric: str, label: str) -> list[dict]:
        return [{"ts": p["ts"], "value": p["value"] * p["count"]}
                for p in read_series(engine, key, metric, label, since, until, step=step)]

    series = {metric: read_series(engine, key, metric, "", since, until) for metric in GAUGES}
    series |= {metric: totals(metric, "") for metric in COUNTS}
    per_prefix = {metric: {label: totals(metric, label) for label in series_labels(engine, key, metric) if label}
                  for metric in COUNTS}
    return {"span": span, "since": since, "until": until, "count_step": step, "series": series,
            "per_prefix": per_prefix, "durations": q.prefix_stats(engine, source, since, until)["prefixes"]}


@dask_api.get("/<source>/history")
@requires_role("manager")
def history(source: str):
    _source(source)
    return jsonify(history_of(source, request.args.get("span", "1h")))
