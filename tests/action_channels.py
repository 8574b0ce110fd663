"""Asking for actions as a test: over HTTP or Socket.IO, as some role or nobody; and their audit rows."""
from __future__ import annotations

from dashboard.store.audit_log import AuditFilter, read_audit
from tests.conftest import csrf_of, login


def action_rows(app) -> list[dict]:
    """Audit rows of watched-system actions (logins and token changes left out), newest first."""
    rows = read_audit(app.extensions["jobdash"].engine, AuditFilter())
    return [r for r in rows if r["action"].split(".")[0] not in ("auth", "token", "user")]


class Channel:
    """Ask for an action over HTTP or over Socket.IO, as a logged-in user (or nobody)."""

    def __init__(self, app, kind: str, role: str | None):
        self.app, self.kind = app, kind
        self.client = login(app, role) if role else app.test_client()
        self.csrf = csrf_of(self.client) if role else ""
        if kind == "socket":
            self.socket = app.extensions["socketio"].test_client(app, namespace="/live", flask_test_client=self.client)

    def ask(self, name: str, body: dict, csrf: str | None = None) -> tuple[int, dict]:
        csrf = self.csrf if csrf is None else csrf
        if self.kind == "http":
            headers = {"X-CSRF-Token": csrf} if csrf else {}
            response = self.client.post(f"/api/actions/{name}", json=body, headers=headers)
            return response.status_code, response.json
        if not self.socket.is_connected("/live"):
            return 401, {"error": "connection refused"}
        event = {"name": name, **body, **({"csrf": csrf} if csrf else {})}
        ack = self.socket.emit("action", event, namespace="/live", callback=True)
        return ack["status"], ack
