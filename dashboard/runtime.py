"""What runs behind the web app: the store writer, the collector threads and the live hub."""
from __future__ import annotations

import logging
import threading
import time
from typing import Any

import collectors
from collectors.base import Collector, Observation
from collectors.runner import CollectorRunner
from dashboard.config import Settings
from dashboard.live import LiveHub
from dashboard.rooms import register_rooms
from dashboard.store import HANDLERS, Writer, celery_queries, make_engine, retention, storage
from dashboard.store.gaps import open_gaps
from dashboard.store.status import read_statuses
from dashboard.store.timeseries import Point, Retention

logger = logging.getLogger(__name__)

PRUNE_FIRST = 30.0  # seconds after start of the first retention sweep
PRUNE_EVERY = 600.0  # seconds between retention sweeps
STORAGE_EVERY = 60.0  # seconds /readyz reuses its figures of the database's size and oldest rows
STORE_FAULT_KEPT = 300.0  # seconds /readyz reports a failed read of a damaged store


class Runtime:
    """Own the engine, the writer, the collectors and the hub; start and stop them together."""

    def __init__(self, settings: Settings, hub: LiveHub | None = None):
        self.settings = settings
        self.engine = make_engine(settings.database_url)
        self.writer = Writer(self.engine, HANDLERS)
        self.hub = hub
        self.runners: list[CollectorRunner] = []
        self._stop = threading.Event()
        self._pruner: threading.Thread | None = None
        self._fault: tuple[float, str] | None = None
        self._storage_seen: tuple[float, dict[str, Any]] = (0.0, {})
        if hub is not None:
            self.writer.add_listener(hub.on_commit)
            register_rooms(hub, self)

    # -- collector sink ------------------------------------------------------------------
    def publish(self, collector: Collector, status: dict[str, Any], observation: Observation | None) -> None:
        """Send a poll's status, history points and records to the store writer."""
        self.writer.submit("source_status", status)
        if observation is None:
            return
        ts = status["updated_at"]
        self.writer.submit_many(
            "sample", (Point(collector.key, metric, float(value), ts, label) for metric, label, value in observation.metrics)
        )
        for kind, payload in observation.records:
            self.writer.submit(kind, payload)

    def emit(self, kind: str, payloads: list[Any]) -> None:
        """Store writes a collector streams between polls (e.g. Celery events)."""
        self.writer.submit_many(kind, payloads)

    def celery_unfinished(self, source: str, before: float) -> list[dict[str, Any]]:
        """Tasks of a Celery source stored in a non-final state since before `before`."""
        return celery_queries.unfinished(self.engine, source, before)

    def celery_stored_states(self, source: str, uuids: list[str]) -> dict[str, str]:
        return celery_queries.stored_states(self.engine, source, uuids)

    def celery_last_seen(self, source: str) -> float | None:
        return celery_queries.last_seen(self.engine, source)

    def celery_gaps(self, source: str) -> list[dict[str, Any]]:
        """Gaps in a Celery source's events still to fill."""
        return open_gaps(self.engine, "celery", source)

    # -- reads ---------------------------------------------------------------------------
    def overview_snapshot(self) -> dict[str, dict[str, Any]]:
        """Every configured source keyed "kind/name", with its stored status (or unknown)."""
        stored = {f"{s['kind']}/{s['name']}": s for s in read_statuses(self.engine)}
        items = {}
        for source in self.settings.sources:
            items[source.key] = stored.get(source.key) or {
                "kind": source.kind, "name": source.name, "state": "unknown", "updated_at": None,
                "last_success_at": None, "last_error": None, "last_error_at": None, "last_poll_ms": None,
                "headline": {},
            }
        return items

    def store_fault(self, why: str) -> None:
        """A read found the store damaged or gone: /readyz says so for STORE_FAULT_KEPT seconds."""
        self._fault = (time.time(), why)

    def readiness(self) -> dict[str, Any]:
        """Whether the store answers, plus each collector's own status."""
        try:
            with self.engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
            store = {"ok": True}
        except Exception as exc:
            store = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        if self._fault and time.time() - self._fault[0] < STORE_FAULT_KEPT:
            store = {"ok": False, "error": f"a read failed: {self._fault[1]}", "at": self._fault[0]}
        if store["ok"]:
            store.update(self._storage())
        writer = self.writer.health()
        return {
            "ok": store["ok"] and writer["running"] and writer["ok"],
            "store": store,
            "writer": writer,
            "collectors": {r.collector.key: r.status() for r in self.runners},
        }

    def _storage(self) -> dict[str, Any]:
        """The database's size and the oldest row per table, refreshed at most every STORAGE_EVERY."""
        at, figures = self._storage_seen
        if time.monotonic() - at > STORAGE_EVERY or not figures:
            try:
                sources = [s.name for s in self.settings.sources if s.kind == "celery"]
                figures = {"size_bytes": storage.db_size(self.engine), "oldest": storage.oldest_rows(self.engine, sources)}
            except Exception as exc:  # noqa: BLE001 - readiness reports, it does not fail
                figures = {"storage_error": f"{type(exc).__name__}: {exc}"}
            self._storage_seen = (time.monotonic(), figures)
        return figures

    # -- lifecycle -----------------------------------------------------------------------
    def start(self, run_collectors: bool | None = None) -> None:
        self.writer.start()
        if self.hub is not None:
            self.hub.start()
        if self.settings.run_collectors if run_collectors is None else run_collectors:
            self.start_collectors()
        self._pruner = threading.Thread(target=self._prune_loop, name="store-pruner", daemon=True)
        self._pruner.start()

    def start_collectors(self) -> None:
        for source in self.settings.sources:
            collector = collectors.build(source.kind, source.name, source.interval, source.timeout, source.options)
            runner = CollectorRunner(collector, self)
            self.runners.append(runner)
            runner.start()

    def stop(self, timeout: float = 4.0) -> None:
        """Stop collectors, then commit what they queued; all within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        self._stop.set()
        for runner in self.runners:
            runner.stop()
        for runner in self.runners:
            runner.join(max(0.0, deadline - time.monotonic() - 1.0))
        if self.hub is not None:
            self.hub.stop()
        self.writer.stop(max(0.5, deadline - time.monotonic()))
        self.engine.dispose()

    def _prune_loop(self) -> None:
        """Sweep shortly after start (a process restarted often still prunes), then every PRUNE_EVERY."""
        s = self.settings
        policy = Retention(s.retention_raw_hours, s.retention_minute_days, s.retention_hour_days,
                           s.retention_tasks_days, s.retention_tasks_max)
        celery_sources = [src.name for src in s.sources if src.kind == "celery"]
        wait = PRUNE_FIRST
        while not self._stop.wait(wait):
            wait = PRUNE_EVERY
            try:
                retention.sweep(self.writer, self.engine, policy, celery_sources, self._stop)
            except Exception:  # noqa: BLE001 - a failed sweep is retried at the next one
                logger.exception("retention sweep failed")
