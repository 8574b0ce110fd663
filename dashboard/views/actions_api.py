"""The two ways to ask for an action: POST /api/actions/<name> and the Socket.IO event `action`."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify, request
from flask_socketio import disconnect

from dashboard.actions import REGISTRY, Outcome, perform, refuse
from dashboard.auth import csrf
from dashboard.auth.web import CSRF_REFUSED, checks_csrf_itself, csrf_ok, current_user, session_user
from dashboard.live import LiveNamespace

actions_api = Blueprint("actions", __name__)


@actions_api.get("/api/actions")
def list_actions():
    """Every registered action: its role, whether it needs confirmation, its parameters."""
    return jsonify(actions=[a.describe() for a in REGISTRY.values()])


@actions_api.post("/api/actions/<name>")
@checks_csrf_itself
def run_action(name: str):
    """Body {source, target, params}; the answer says ok, failed or refused, and why."""
    runtime, user = current_app.extensions["jobdash"], current_user()
    body = request.get_json(silent=True)
    fields = body if isinstance(body, dict) else {}
    if not csrf_ok():
        outcome = refuse(runtime, name, fields.get("source"), fields.get("target"), fields.get("params"), user,
                         "http", 403, CSRF_REFUSED)
    elif not isinstance(body, dict):
        outcome = refuse(runtime, name, "", "", {}, user, "http", 400,
                         'the body must be a JSON object {"source": ..., "target": ..., "params": {...}}')
    else:
        outcome = perform(runtime, name, body.get("source"), body.get("target"), body.get("params"), user, "http")
    return jsonify(outcome.as_json()), outcome.status


class LiveActionsNamespace(LiveNamespace):
    """The /live namespace plus the `action` event: {name, source, target, params, csrf}."""

    def on_action(self, data: Any = None) -> dict[str, Any]:
        # The socket was logged in when it connected; check again now: a logout ends its powers.
        user = session_user()
        if user is None:
            disconnect()
            return Outcome("refused", 401, "login required").as_json()
        runtime = current_app.extensions["jobdash"]
        fields = data if isinstance(data, dict) else {}
        name = fields.get("name")
        if not isinstance(data, dict) or not isinstance(name, str):
            outcome = refuse(runtime, name, "", "", {}, user, "socket", 400,
                             'the event must be an object {"name", "source", "target", "params", "csrf"}')
        elif not csrf.valid(fields.get("csrf")):
            outcome = refuse(runtime, name, fields.get("source"), fields.get("target"), fields.get("params"), user,
                             "socket", 403, CSRF_REFUSED)
        else:
            outcome = perform(runtime, name, fields.get("source"), fields.get("target"), fields.get("params"), user,
                              "socket")
        return outcome.as_json()
