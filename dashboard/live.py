"""Live push: Socket.IO rooms per page, a snapshot on join, then coalesced deltas.

Protocol, namespace /live:
  client -> server  join  {"room": "overview"}
  server -> client  snapshot {"room": ..., "items": {key: item}}
  server -> client  delta    {"room": ..., "items": {key: item or null}}   (null: key removed)
Items replace by key, so a delta that repeats what a snapshot already held is harmless.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from flask import request
from flask_socketio import Namespace, SocketIO, emit, join_room, leave_room

logger = logging.getLogger(__name__)

NAMESPACE = "/live"
Snapshot = Callable[[], dict[str, Any]]
# Turns the payloads of one committed store kind into {room: {key: item}}.
Translator = Callable[[list[Any]], dict[str, dict[str, Any]]]


class LiveHub:
    """Collect deltas per room; emit a room's first pending delta at once, then at most every `interval`.

    A quiet room's delta leaves as soon as it is published (leading edge; after `settle`, a few ms
    that let the rest of the same burst ride along: a quick task's end with its start); what follows
    within `interval` is coalesced into the next emit, so a busy room gets about 1/interval emits a second.
    Under steady load a change waits for the next emit, up to `interval`: 200 ms (5 emits/s) is what
    lets a change reach a viewer within 250 ms at p95 (issue 14).
    A client whose socket has more than `max_backlog` messages waiting is taken out of the room
    and, once it has read them, put back with a fresh snapshot: it never silently skips deltas,
    and a stalled client cannot make the server queue deltas for it without bound.
    """

    def __init__(self, socketio: SocketIO, interval: float = 0.2, settle: float = 0.02, max_backlog: int = 20):
        self.socketio = socketio
        self.interval = interval
        self.settle = settle
        self.max_backlog = max_backlog
        self._rooms: dict[str, Snapshot] = {}
        self._translators: dict[str, Translator] = {}
        self._pending: dict[str, dict[str, Any]] = {}
        self._last_emit: dict[str, float] = {}
        self._pending_since: dict[str, float] = {}
        self._behind: dict[tuple[str, str], str] = {}  # (sid, room) -> eio sid, set aside until caught up
        self._lock = threading.Lock()  # guards _pending, _pending_since and _last_emit
        self._emitting = threading.Lock()  # orders emits: deltas, and snapshots against them
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._task = None
        self.emits = 0
        self.catch_ups = 0  # snapshots sent to clients that had fallen behind

    def add_room(self, room: str, snapshot: Snapshot) -> None:
        self._rooms[room] = snapshot

    def add_translator(self, store_kind: str, translator: Translator) -> None:
        self._translators[store_kind] = translator

    def has_room(self, room: str) -> bool:
        return room in self._rooms

    def send_snapshot(self, room: str, send: Callable[[dict[str, Any]], None]) -> None:
        """Send a fresh snapshot of `room`, ordered after every delta queued before it.

        Deltas queued before the read are flushed first and the loop cannot emit in between,
        so no delta older than the snapshot can follow it.
        """
        with self._emitting:
            self._emit_due(rooms=[room])
            send({"room": room, "items": self._rooms[room]()})

    def publish(self, room: str, items: dict[str, Any]) -> None:
        """Queue deltas for a room; later values for the same key replace earlier ones."""
        with self._lock:
            if room not in self._pending:
                self._pending[room] = {}
                self._pending_since[room] = time.monotonic()
            self._pending[room].update(items)
        self._wake.set()

    def on_commit(self, committed: dict[str, list[Any]]) -> None:
        """Store listener: translate what was just committed into room deltas."""
        for kind, payloads in committed.items():
            translator = self._translators.get(kind)
            if translator:
                for room, items in translator(payloads).items():
                    self.publish(room, items)

    def flush(self) -> None:
        """Emit every room's pending deltas now."""
        with self._emitting:
            self._emit_due(rooms=None)

    def _emit_due(self, rooms: list[str] | None, now: float | None = None) -> None:
        """Emit pending deltas of `rooms` (None: all), or with `now`, of the rooms whose window has passed."""
        with self._lock:
            if now is None:
                due = [r for r in (self._pending if rooms is None else rooms) if r in self._pending]
            else:
                due = [r for r in self._pending if now >= self._due_at(r)]
            batches = [(room, self._pending.pop(room)) for room in due]
            stamp = time.monotonic()
            for room in due:
                del self._pending_since[room]
                self._last_emit[room] = stamp
        for room, items in batches:
            self._set_aside_laggards(room)
            self.socketio.emit("delta", {"room": room, "items": items}, to=room, namespace=NAMESPACE)
            self.emits += 1

    def _wait_time(self) -> float:
        """Seconds until the next pending room may emit (a laggard check at least every interval)."""
        with self._lock:
            if not self._pending:
                return self.interval
            return max(0.0, min(self._due_at(r) for r in self._pending) - time.monotonic())

    def _due_at(self, room: str) -> float:
        return max(self._last_emit.get(room, 0.0) + self.interval, self._pending_since[room] + self.settle)

    # -- clients that fall behind ------------------------------------------------------
    @property
    def behind(self) -> int:
        """How many clients are set aside right now, waiting to catch up."""
        return len(self._behind)

    def _backlog(self, eio_sid: str) -> int | None:
        """Messages waiting in this Engine.IO socket's queue (None: no such socket in this process)."""
        socket = self.socketio.server.eio.sockets.get(eio_sid)
        return None if socket is None else socket.queue.qsize()

    def _set_aside_laggards(self, room: str) -> None:
        server = self.socketio.server
        if getattr(server, "eio", None) is None:
            return  # a write-only hub (jobdash collect): the web processes hold the sockets
        for sid, eio_sid in list(server.manager.get_participants(NAMESPACE, room)):
            backlog = self._backlog(eio_sid)
            if backlog is not None and backlog > self.max_backlog:
                logger.info("live client %s is %d messages behind in %s: snapshot when it catches up", sid, backlog, room)
                server.leave_room(sid, room, namespace=NAMESPACE)
                self._behind[(sid, room)] = eio_sid

    def _catch_up(self) -> None:
        """Put back, with a fresh snapshot, each set-aside client that has read what was queued for it."""
        for (sid, room), eio_sid in list(self._behind.items()):
            backlog = self._backlog(eio_sid)
            if backlog is not None and backlog > 0:
                continue
            del self._behind[(sid, room)]
            if backlog == 0:
                self.socketio.server.enter_room(sid, room, namespace=NAMESPACE)
                self._emit_due(rooms=[room])
                self.socketio.emit("snapshot", {"room": room, "items": self._rooms[room]()}, to=sid, namespace=NAMESPACE)
                self.catch_ups += 1

    # -- the loop ------------------------------------------------------------------------
    def start(self) -> None:
        if self._task is None:
            self._stop.clear()
            self._task = self.socketio.start_background_task(self._loop)

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._task = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._wait_time())
            self._wake.clear()
            try:
                with self._emitting:
                    self._emit_due(rooms=None, now=time.monotonic())
                    if self._behind:
                        self._catch_up()
            except Exception:
                logger.exception("live flush failed")


class OpenDoor:
    """A socket guard that lets everyone in (the app passes auth.sockets.SocketGuard)."""

    def connect(self) -> bool:
        return True

    def may_join(self, room: str) -> str | None:
        return None

    def disconnected(self) -> None:
        pass


class LiveNamespace(Namespace):
    """Socket.IO handlers: join a page's room and receive its snapshot; `guard` says who may."""

    def __init__(self, hub: LiveHub, guard=None):
        super().__init__(NAMESPACE)
        self.hub = hub
        self.guard = guard or OpenDoor()

    def on_connect(self, auth=None):
        if not self.guard.connect():
            logger.info("refused live connection from %s", request.remote_addr)
            return False
        return True

    def on_disconnect(self, *reason):
        self.guard.disconnected()

    def on_join(self, data=None):
        room = data.get("room") if isinstance(data, dict) else None
        if not isinstance(room, str) or not self.hub.has_room(room):
            emit("error", {"error": f"unknown room {room!r}"})
            return {"ok": False, "error": "unknown room"}
        refusal = self.guard.may_join(room)  # the session is checked again at every join
        if refusal:
            emit("error", {"error": refusal})
            return {"ok": False, "error": refusal}
        # Join before reading the snapshot: a delta racing the read is then delivered, not lost.
        join_room(room)
        self.hub.send_snapshot(room, lambda snapshot: emit("snapshot", snapshot))
        return {"ok": True}

    def on_leave(self, data=None):
        room = data.get("room") if isinstance(data, dict) else None
        if isinstance(room, str):
            leave_room(room)
        return {"ok": True}
