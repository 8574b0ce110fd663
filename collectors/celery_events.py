"""Celery's event stream: a receiver thread per source that hands every event to the store."""
from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any

from celery import Celery

from collectors.runner import backoff_delay

logger = logging.getLogger(__name__)

# Workers forget `enable_events` when they restart; ask again this often (as Flower does).
ENABLE_EVENTS_EVERY = 30.0


class EventReceiver:
    """Capture a Celery broker's events on a thread of its own; reconnect with backoff.

    Like Flower's EventsReceiver: the thread only moves events along. Each event goes to
    `emit("celery_event", [(source, event)])`, which queues it for the store's writer.
    """

    def __init__(self, app: Celery, source: str, emit: Callable[[str, list[Any]], None],
                 timeout: float = 5.0, backoff_cap: float = 30.0):
        self.app = app
        self.source = source
        self.emit = emit
        self.timeout = timeout
        self.backoff_cap = backoff_cap
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._rng = random.Random()
        self.connected = False
        self.events = 0
        self.last_event_at: float | None = None
        self.last_error: str | None = None
        self.connected_at: float | None = None  # a gap in the stream ends here
        self._lost_at: float | None = None  # ... and began here (the last event before the stream broke)

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"celery-events-{self.source}", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def status(self) -> dict[str, Any]:
        with self._lock:
            return {"connected": self.connected, "events": self.events, "last_event_at": self.last_event_at,
                    "last_error": self.last_error, "connected_at": self.connected_at}

    def _on_event(self, event: dict) -> None:
        self.emit("celery_event", [(self.source, event)])
        with self._lock:
            self.events += 1
            self.last_event_at = time.time()

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                self._capture()
                failures = 0
            except Exception as exc:  # noqa: BLE001 - a dead broker must not end the thread
                failures += 1
                with self._lock:
                    if self.connected_at is not None and self._lost_at is None:  # startup gaps: the reconciler's
                        self._lost_at = self.last_event_at or time.time()
                    self.connected = False
                    self.last_error = f"{type(exc).__name__}: {exc}"[:2000]
                logger.warning("celery/%s event stream lost (%d in a row): %s", self.source, failures, exc)
                self._stop.wait(backoff_delay(1.0, failures, self.backoff_cap, self._rng))

    def _capture(self) -> None:
        with self.app.connection_for_read() as conn:
            conn.ensure_connection(max_retries=0)
            receiver = self.app.events.Receiver(conn, handlers={"*": self._on_event})
            asked_at = [0.0]

            def every_iteration() -> None:
                # kombu calls this hook about once a second, events or not.
                if self._stop.is_set():
                    receiver.should_stop = True
                elif time.monotonic() - asked_at[0] > ENABLE_EVENTS_EVERY:
                    self.app.control.enable_events(connection=conn)
                    asked_at[0] = time.monotonic()

            receiver.on_iteration = every_iteration
            with self._lock:
                self.connected, self.last_error, self.connected_at = True, None, time.time()
                lost_at, self._lost_at = self._lost_at, None
            if lost_at is not None:
                # What ended while the stream was down is recovered from the result backend.
                self.emit("store_gap", [{"kind": "celery_event", "source": self.source, "started_at": lost_at,
                                         "ended_at": self.connected_at, "cause": "event stream down"}])
            # One long capture: re-subscribing would lose the events sent in between (Redis fanout).
            receiver.capture(limit=None, timeout=None, wakeup=True)
