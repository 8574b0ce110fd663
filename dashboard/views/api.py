"""JSON API: health, readiness and the overview, never cached."""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify

from dashboard.auth.web import current_user
from dashboard.attention import needs_attention, sparklines

api = Blueprint("api", __name__)


@api.after_request
def no_store(response):
    response.headers["Cache-Control"] = "no-store"
    return response


@api.get("/healthz")
def healthz():
    """The process is alive and serving."""
    return jsonify(ok=True)


@api.get("/readyz")
def readyz():
    """The store is reachable; each collector's status alongside, for a login or a token only."""
    report = current_app.extensions["jobdash"].readiness()
    status = 200 if report["ok"] else 503
    if current_user() is None:
        return jsonify(ok=report["ok"]), status  # sources, addresses and errors are not for anyone
    return jsonify(report), status


@api.get("/api/overview")
def overview():
    return jsonify(sources=current_app.extensions["jobdash"].overview_snapshot())


@api.get("/api/overview/attention")
def overview_attention():
    """The overview's "Needs attention" items (newest first) and each card's last-hour sparkline."""
    runtime = current_app.extensions["jobdash"]
    return jsonify(items=needs_attention(runtime), sparklines=sparklines(runtime))
