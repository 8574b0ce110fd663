"""What every page says of the store: the banner while it cannot write (why, since when, what is held
or lost), and the gaps in a source's events not filled yet."""
from __future__ import annotations

from typing import Any

from flask import Flask, current_app, jsonify, request
from sqlalchemy.exc import DatabaseError
from werkzeug.exceptions import InternalServerError

from dashboard.store.gaps import unfilled_gaps
from dashboard.store.health import reason, store_unavailable


def store_problem() -> dict[str, Any] | None:
    """The writer's health when it is not committing (or not running), else None."""
    runtime = current_app.extensions.get("jobdash")
    if runtime is None:
        return None
    health = runtime.writer.health()
    if health["ok"] and health["running"]:
        return None
    return {**health, "error": health["error"] or "the store writer is not running"}


def event_gaps(kind: str, source: str) -> list[dict[str, Any]]:
    """Gaps of a source a page should mention: being reconciled, or known not to be fillable."""
    return unfilled_gaps(current_app.extensions["jobdash"].engine, kind, source)


def store_fault(exc: DatabaseError):
    """A read the store cannot answer (corrupt pages, disk gone): 503 with the reason, and /readyz says so."""
    if not store_unavailable(exc):
        return InternalServerError()
    why = reason(exc)
    current_app.extensions["jobdash"].store_fault(why)
    message = f"The store cannot be read: {why}"
    if request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json":
        return jsonify(error=message), 503
    return message, 503, {"Content-Type": "text/plain; charset=utf-8"}


def init_app(app: Flask) -> None:
    app.context_processor(lambda: {"store_problem": store_problem(), "event_gaps": event_gaps})
    app.register_error_handler(DatabaseError, store_fault)
