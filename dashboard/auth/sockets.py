"""Live sockets bound to their login session: checked at connect and every join, ended with it.

Logout and user removal end their sockets at once (in this process); a sweep every few seconds
ends those whose session expired, idled out or was ended elsewhere, and takes each socket out
of the rooms its user's role no longer allows.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Iterable

from flask import current_app, request, session
from flask_socketio import SocketIO

from dashboard.auth import sessions
from dashboard.auth.users import User, has_role
from dashboard.auth.web import session_user
from dashboard.live import NAMESPACE

logger = logging.getLogger(__name__)

EXTENSION = "jobdash_sockets"


class SocketGuard:
    """Which socket belongs to which session and user; the /live namespace's guard."""

    def __init__(self, socketio: SocketIO, runtime, interval: float = 5.0):
        self.socketio = socketio
        self.runtime = runtime
        self.interval = interval
        # room name (or a prefix ending in "/") -> the least role that may be in it; viewer otherwise
        self.room_roles: dict[str, str] = {}
        self._sockets: dict[str, tuple[str, str]] = {}  # socket id -> (session id, user name)
        self._lock = threading.Lock()
        self._sweeper = None

    # -- the namespace's hooks (inside a socket's request context) -------------------------
    def connect(self) -> bool:
        user = session_user()
        if user is None:
            return False
        with self._lock:
            self._sockets[request.sid] = (session["sid"], user.name)
            if self._sweeper is None:
                self._sweeper = self.socketio.start_background_task(self._sweep_loop)
        return True

    def may_join(self, room: str) -> str | None:
        """None when this socket's session may join `room` now, else why not (a dead session is disconnected)."""
        user = session_user()
        if user is None:
            self.end_sockets([request.sid])
            return "login required"
        needed = self.role_for(room)
        return None if has_role(user.role, needed) else f"this room needs the {needed} role"

    def disconnected(self) -> None:
        with self._lock:
            self._sockets.pop(request.sid, None)

    # -- ending sockets ---------------------------------------------------------------------
    def role_for(self, room: str) -> str:
        for prefix, role in self.room_roles.items():
            if room == prefix or (prefix.endswith("/") and room.startswith(prefix)):
                return role
        return "viewer"

    def end(self, session_ids: Iterable[str] = (), user_name: str | None = None) -> None:
        """Disconnect the sockets of these sessions, or of this user."""
        ended = set(session_ids)
        with self._lock:
            doomed = [sid for sid, (session_id, name) in self._sockets.items()
                      if session_id in ended or name == user_name]
        self.end_sockets(doomed)

    def end_sockets(self, socket_ids: Iterable[str]) -> None:
        for sid in socket_ids:
            with self._lock:
                self._sockets.pop(sid, None)
            try:
                self.socketio.server.disconnect(sid, namespace=NAMESPACE)
            except Exception:  # already gone
                logger.debug("socket %s was already gone", sid, exc_info=True)

    def sweep(self) -> None:
        """Check every socket's session now: end the dead ones, leave rooms the role no longer allows."""
        settings = self.runtime.settings
        with self._lock:
            by_session: dict[str, list[str]] = {}
            for sid, (session_id, _name) in self._sockets.items():
                by_session.setdefault(session_id, []).append(sid)
        for session_id, socket_ids in by_session.items():
            found = sessions.lookup(self.runtime.engine, session_id, settings.session_idle_hours * 3600,
                                    settings.session_lifetime_hours * 3600)
            if found is None:
                self.end_sockets(socket_ids)
            else:
                self._leave_forbidden(found[0], socket_ids)

    def _leave_forbidden(self, user: User, socket_ids: list[str]) -> None:
        for sid in socket_ids:
            try:
                rooms = self.socketio.server.rooms(sid, namespace=NAMESPACE)
            except Exception:  # gone since the sweep began
                continue
            for room in rooms:
                if room != sid and not has_role(user.role, self.role_for(room)):
                    self.socketio.server.leave_room(sid, room, namespace=NAMESPACE)
                    self.socketio.server.emit("error", {"error": f"left {room}: it needs the {self.role_for(room)} role"},
                                              to=sid, namespace=NAMESPACE)

    def _sweep_loop(self) -> None:
        # Runs while the app's runtime does; the next connection starts it again.
        while True:
            self.socketio.sleep(self.interval)
            if not self.runtime.writer.running:
                break
            try:
                self.sweep()
            except Exception:
                logger.exception("live socket sweep failed")
        with self._lock:
            self._sweeper = None


def end_socket_sessions(session_ids: Iterable[str] = (), user_name: str | None = None) -> None:
    """Disconnect the live sockets of ended sessions or of a removed user (this process's; others sweep)."""
    guard = current_app.extensions.get(EXTENSION)
    if guard is not None:
        guard.end(session_ids, user_name)
