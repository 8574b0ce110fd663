"""jobdash: one live dashboard for Celery, Dask, Kafka consumer groups and Consul services."""
from __future__ import annotations

import logging
import secrets

from flask import Flask
from flask_socketio import SocketIO

from dashboard import audit_room
from dashboard.auth.web import init_app as init_auth
from dashboard.auth.sockets import EXTENSION as SOCKETS, SocketGuard
from dashboard.config import Settings, load_settings
from dashboard.hardening import SafeJSON
from dashboard.hardening import init_app as init_hardening
from dashboard.live import LiveHub
from dashboard.runtime import Runtime
from dashboard.views.actions_api import LiveActionsNamespace

logger = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, start: bool = True) -> Flask:
    """Build the app for `settings` (default: load_settings()); start its runtime unless told not to."""
    settings = settings or load_settings()
    app = Flask(__name__, template_folder="../templates", static_folder="../static")
    app.config["SECRET_KEY"] = settings.secret_key or secrets.token_hex(32)
    app.config["JOBDASH"] = settings

    if settings.database_url.startswith("sqlite"):
        from dashboard.store.migrate import upgrade

        upgrade(settings.database_url)

    # One SocketIO per app (not a module global) so that apps built one after another in a
    # process, as the tests do, never share rooms or handlers. Threading mode serves real
    # WebSockets through simple-websocket.
    socketio = SocketIO(app, async_mode="threading", message_queue=settings.message_queue or None, json=SafeJSON)
    app.extensions["socketio"] = socketio
    hub = LiveHub(socketio)
    runtime = Runtime(settings, hub)
    guard = app.extensions[SOCKETS] = SocketGuard(socketio, runtime)
    guard.room_roles[audit_room.ROOM] = audit_room.ROLE
    socketio.on_namespace(LiveActionsNamespace(hub, guard=guard))
    app.extensions["jobdash"] = runtime

    from dashboard.views import register

    init_hardening(app, settings.trusted_proxies)
    init_auth(app)
    register(app)
    if start:
        runtime.start()
    return app


__all__ = ["create_app", "Settings"]
