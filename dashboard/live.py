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
    """Collect deltas per room and emit each room's pending deltas at most every `interval`."""

    def __init__(self, socketio: SocketIO, interval: float = 0.25):
        self.socketio = socketio
        self.interval = interval
        self._rooms: dict[str, Snapshot] = {}
        self._translators: dict[str, Translator] = {}
        self._pending: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()  # guards _pending
        self._emitting = threading.Lock()  # orders emits: deltas, and snapshots against them
        self._stop = threading.Event()
        self._task = None
        self.emits = 0

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
            self._flush_locked()
            send({"room": room, "items": self._rooms[room]()})

    def publish(self, room: str, items: dict[str, Any]) -> None:
        """Queue deltas for a room; later values for the same key replace earlier ones."""
        with self._lock:
            self._pending.setdefault(room, {}).update(items)

    def on_commit(self, committed: dict[str, list[Any]]) -> None:
        """Store listener: translate what was just committed into room deltas."""
        for kind, payloads in committed.items():
            translator = self._translators.get(kind)
            if translator:
                for room, items in translator(payloads).items():
                    self.publish(room, items)

    def flush(self) -> None:
        with self._emitting:
            self._flush_locked()

    def _flush_locked(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
        for room, items in pending.items():
            self.socketio.emit("delta", {"room": room, "items": items}, to=room, namespace=NAMESPACE)
            self.emits += 1

    def start(self) -> None:
        if self._task is None:
            self._stop.clear()
            self._task = self.socketio.start_background_task(self._loop)

    def stop(self) -> None:
        self._stop.set()
        self._task = None

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.flush()
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
