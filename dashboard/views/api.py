"""JSON API: health, readiness and the overview, never cached."""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify

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
    """The store is reachable; each collector's status alongside."""
    report = current_app.extensions["jobdash"].readiness()
    return jsonify(report), 200 if report["ok"] else 503


@api.get("/api/overview")
def overview():
    return jsonify(sources=current_app.extensions["jobdash"].overview_snapshot())


@api.get("/api/overview/attention")
def overview_attention():
    """The overview's "Needs attention" items (newest first) and each card's last-hour sparkline."""
    runtime = current_app.extensions["jobdash"]
    return jsonify(items=needs_attention(runtime), sparklines=sparklines(runtime))
