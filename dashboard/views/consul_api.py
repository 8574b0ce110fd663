"""JSON API for Consul sources: services worst first, one service, nodes, transitions, history."""
from __future__ import annotations

import time

from flask import Blueprint, abort, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from dashboard.store import consul_queries as q
from dashboard.store.timeseries import read_series

consul_api = Blueprint("consul_api", __name__, url_prefix="/api/consul")

# span -> (seconds, rollup step): raw points for an hour, minutes for a day, hours beyond.
SPANS = {"1h": (3600, 0), "24h": (86400, 60), "7d": (7 * 86400, 3600), "30d": (30 * 86400, 3600)}
HISTORY_METRICS = ("service_passing", "service_warning", "service_critical")


@consul_api.after_request
def no_store(response):
    response.headers["Cache-Control"] = "no-store"
    return response


@consul_api.errorhandler(q.QueryError)
def bad_query(exc: q.QueryError):
    return jsonify(error=str(exc)), 400


@consul_api.errorhandler(HTTPException)
def http_error(exc: HTTPException):
    return jsonify(error=exc.description), exc.code


def _runtime():
    return current_app.extensions["jobdash"]


def _source(name: str):
    source = _runtime().settings.source("consul", name)
    if source is None:
        abort(404, description=f"no Consul source named {name!r}")
    return source


def service_filter(args) -> dict[str, str]:
    """name, tag and state as the services list takes them; QueryError for an unknown state."""
    flt = {key: (args.get(key) or "").strip()[:255] for key in ("name", "tag", "state")}
    if flt["state"] and flt["state"] not in q.STATES:
        raise q.QueryError(f"state: must be one of {', '.join(q.STATES)}; got {flt['state']!r}")
    return flt


def service_history(source: str, name: str, span: str, until: float | None = None) -> dict[str, list]:
    """Passing / warning / critical check counts of a service over `span`, from the history rollups."""
    if span not in SPANS:
        raise q.QueryError(f"span: must be one of {', '.join(SPANS)}; got {span!r}")
    until = time.time() if until is None else until
    seconds, step = SPANS[span]
    return {metric.split("_", 1)[1]: read_series(_runtime().engine, f"consul/{source}", metric, name,
                                                   until - seconds, until, step=step)
            for metric in HISTORY_METRICS}


@consul_api.get("/<source>/services")
def services(source: str):
    _source(source)
    return jsonify(services=q.services(_runtime().engine, source, **service_filter(request.args)))


@consul_api.get("/<source>/services/<path:name>")
def service(source: str, name: str):
    _source(source)
    detail = q.service(_runtime().engine, source, name)
    if detail is None:
        abort(404, description=f"no service {name!r} in Consul source {source!r}")
    return jsonify(detail)


@consul_api.get("/<source>/services/<path:name>/history")
def history(source: str, name: str):
    _source(source)
    span = request.args.get("span", "1h")
    return jsonify(span=span, series=service_history(source, name, span))


@consul_api.get("/<source>/nodes")
def nodes(source: str):
    _source(source)
    return jsonify(nodes=q.nodes(_runtime().engine, source))


@consul_api.get("/<source>/critical")
def critical(source: str):
    """Critical checks, longest first (maintenance left out): what needs attention."""
    _source(source)
    return jsonify(checks=q.critical_checks(_runtime().engine, source))


@consul_api.get("/<source>/transitions")
def transitions(source: str):
    _source(source)
    return jsonify(transitions=q.transitions(_runtime().engine, source, service=request.args.get("service") or None))
